// Siyu console: draws the charts a page describes in data-chart attributes
// (kind, series, labels, values, links) with the vendored Apache ECharts.
// Loaded only by pages that draw charts; no inline script (the CSP forbids
// it), and tooltips are drawn on the canvas so no inline style is needed.
(function () {
  "use strict";
  if (typeof echarts === "undefined") return;

  var palette = ["#0f766e", "#14b8a6", "#5eead4", "#0ea5e9", "#6366f1", "#f59e0b", "#ef4444", "#8b5cf6", "#64748b", "#84cc16"];
  var text = "#3b4a55", line = "#e3e8eb";

  function option(spec) {
    var data = spec.values.map(function (v, i) {
      return { value: v, name: spec.labels[i], itemStyle: { color: spec.kind === "bar" || spec.kind === "hbar" ? palette[0] : palette[i % palette.length] } };
    });
    var base = {
      animationDuration: 300,
      textStyle: { fontFamily: getComputedStyle(document.body).fontFamily },
      tooltip: { renderMode: "richText", trigger: spec.kind === "pie" ? "item" : "axis", axisPointer: { type: "shadow" } },
      aria: { enabled: true }
    };
    if (spec.kind === "pie") {
      base.legend = { bottom: 0, icon: "circle", textStyle: { color: text } };
      base.series = [{ type: "pie", name: spec.series, radius: ["42%", "68%"], center: ["50%", "44%"], data: data,
        label: { formatter: "{b}\n{d}%", color: text }, itemStyle: { borderColor: "#fff", borderWidth: 2 } }];
      return base;
    }
    var cat = { type: "category", data: spec.labels, axisTick: { show: false }, axisLine: { lineStyle: { color: line } }, axisLabel: { color: text } };
    var val = { type: "value", minInterval: 1, splitLine: { lineStyle: { color: line } }, axisLabel: { color: text } };
    var horizontal = spec.kind === "hbar";
    if (horizontal) {
      cat.inverse = true; // largest first, as the table lists them
      base.grid = { left: 8, right: 48, top: 8, bottom: 8, containLabel: true };
    } else {
      base.grid = { left: 8, right: 8, top: 24, bottom: 8, containLabel: true };
    }
    base.xAxis = horizontal ? val : cat;
    base.yAxis = horizontal ? cat : val;
    base.series = [{ type: "bar", name: spec.series, data: data, barMaxWidth: 36,
      label: { show: true, position: horizontal ? "right" : "top", color: text },
      itemStyle: { borderRadius: horizontal ? [0, 4, 4, 0] : [4, 4, 0, 0] } }];
    return base;
  }

  function draw(root) {
    var els = root.querySelectorAll ? root.querySelectorAll("[data-chart]") : [];
    Array.prototype.forEach.call(els, function (el) {
      if (echarts.getInstanceByDom(el)) return;
      var spec;
      try { spec = JSON.parse(el.getAttribute("data-chart")); } catch (e) { return; }
      if (!spec || !spec.labels || !spec.labels.length) return;
      if (spec.kind === "hbar") {
        // Room for every bar: the chart grows with its values.
        el.style.height = Math.max(160, spec.labels.length * 30 + 24) + "px";
      }
      var chart = echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(option(spec));
      if (spec.links) {
        chart.on("click", function (p) {
          var href = spec.links[p.dataIndex];
          if (href) window.location.href = href;
        });
      }
      el.setAttribute("data-chart-ready", "");
    });
  }

  function dispose(root) {
    var els = root.querySelectorAll ? root.querySelectorAll("[data-chart]") : [];
    Array.prototype.forEach.call(els, function (el) {
      var c = echarts.getInstanceByDom(el);
      if (c) c.dispose();
    });
  }

  var resizing = 0;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      Array.prototype.forEach.call(document.querySelectorAll("[data-chart-ready]"), function (el) {
        var c = echarts.getInstanceByDom(el);
        if (c) c.resize();
      });
    }, 150);
  });
  document.addEventListener("htmx:beforeSwap", function (e) { if (e.detail && e.detail.target) dispose(e.detail.target); });
  document.addEventListener("htmx:afterSettle", function () { draw(document); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { draw(document); });
  } else {
    draw(document);
  }
})();
