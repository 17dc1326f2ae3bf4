// Siyu console, customer groups: draws a group's members, joins and leaves
// per day (data-community-chart) with the vendored ECharts. No inline
// script (the CSP forbids it).
(function () {
  "use strict";
  if (typeof echarts === "undefined") return;
  var text = "#3b4a55", line = "#e3e8eb";

  function draw(el) {
    var d;
    try { d = JSON.parse(el.getAttribute("data-community-chart")); } catch (e) { return; }
    if (!d || !d.days || !d.days.length) return;
    var chart = echarts.init(el, null, { renderer: "canvas" });
    chart.setOption({
      animationDuration: 300,
      textStyle: { fontFamily: getComputedStyle(document.body).fontFamily },
      tooltip: { renderMode: "richText", trigger: "axis" },
      legend: { bottom: 0, textStyle: { color: text } },
      aria: { enabled: true },
      grid: { left: 8, right: 8, top: 24, bottom: 32, containLabel: true },
      xAxis: { type: "category", data: d.days, axisTick: { show: false }, axisLine: { lineStyle: { color: line } }, axisLabel: { color: text } },
      yAxis: [
        { type: "value", minInterval: 1, splitLine: { lineStyle: { color: line } }, axisLabel: { color: text } },
        { type: "value", minInterval: 1, splitLine: { show: false }, axisLabel: { color: text } }
      ],
      series: [
        { type: "bar", name: d.names.joins, data: d.joins, itemStyle: { color: "#0f766e" }, barMaxWidth: 18 },
        { type: "bar", name: d.names.leaves, data: d.leaves, itemStyle: { color: "#ef4444" }, barMaxWidth: 18 },
        { type: "line", name: d.names.members, data: d.members, yAxisIndex: 1, smooth: true, itemStyle: { color: "#6366f1" } }
      ]
    });
    el.setAttribute("data-chart-ready", "");
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-community-chart]"), draw);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
