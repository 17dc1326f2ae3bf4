// Siyu console: the audience builder. It edits the documented JSON condition
// tree (docs/audiences.md) as AND/OR groups of rows, keeps the tree in the
// form's textarea (the JSON view, and what is saved), and asks the server for
// the count as the conditions change, showing a refused tree's error beside
// the row its path names. Its strings and choices come from the page
// (data-builder); no inline script, no framework, no build step.
(function () {
  "use strict";
  var root = document.getElementById("builder");
  if (!root) return;
  var data;
  try { data = JSON.parse(root.getAttribute("data-builder")); } catch (e) { return; }

  var treeEl = document.getElementById("aud-tree");
  var jsonEl = document.getElementById("aud-json");
  var jsonErr = document.getElementById("aud-json-error");
  var rootErr = document.getElementById("aud-root-error");
  var countEl = document.getElementById("aud-count-value");
  var noteEl = document.getElementById("aud-count-note");
  var views = root.querySelector(".aud-views");

  // ---- strings ----
  function t(key) {
    var s = data.text[key] || key;
    for (var i = 1; i < arguments.length; i++) s = s.replace(/%[sd]/, String(arguments[i]));
    return s;
  }
  var OPKEY = { "=": "eq", "!=": "ne", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "in": "in", "not_in": "not_in",
    "contains": "contains", "between": "between", "is_set": "is_set", "is_not_set": "is_not_set",
    "before": "before", "after": "after", "within_last_days": "within_last_days" };
  function opLabel(op) { return OPKEY[op] ? t("op." + OPKEY[op]) : op; }
  var OPS = {
    text: ["=", "!=", "in", "not_in", "contains", "is_set", "is_not_set"],
    enum: ["=", "!=", "in", "not_in", "is_set", "is_not_set"],
    number: ["=", "!=", ">", ">=", "<", "<=", "between", "is_set", "is_not_set"],
    date: ["within_last_days", "before", "after", "is_set", "is_not_set"],
    bool: ["=", "is_set", "is_not_set"]
  };
  var WHERE_OPS = ["=", "!=", "in", "not_in", ">", ">=", "<", "<=", "contains", "is_set"];
  var COUNT_OPS = [">=", "=", ">", "<", "<=", "!="];
  var TYPES = ["tag", "attr", "event", "order", "source", "audience", "raw"];

  var attrs = {};
  data.attrs.forEach(function (a) { attrs[a.name] = a; });

  // ---- DOM ----
  function h(tag, props, kids) {
    var el = document.createElement(tag);
    Object.keys(props || {}).forEach(function (k) {
      var v = props[k];
      if (v === undefined || v === null || v === false) return;
      if (k === "text") el.textContent = v;
      else if (k === "class") el.className = v;
      else if (k === "value") el.value = v;
      else if (k.indexOf("on") === 0) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    });
    (kids || []).forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      el.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return el;
  }
  function select(opts, value, onchange, props) {
    var el = h("select", Object.assign({ class: "select-sm", onchange: function () { onchange(el.value); } }, props || {}));
    opts.forEach(function (o) {
      if (o.group) {
        var g = h("optgroup", { label: o.group });
        o.options.forEach(function (x) { g.appendChild(h("option", { value: x.value, text: x.label })); });
        el.appendChild(g);
      } else {
        el.appendChild(h("option", { value: o.value, text: o.label, disabled: o.disabled }));
      }
    });
    el.value = value === undefined || value === null ? "" : String(value);
    return el;
  }
  var datalists = {};
  function datalist(name, values) {
    if (datalists[name]) return datalists[name];
    var id = "aud-dl-" + Object.keys(datalists).length;
    var dl = h("datalist", { id: id });
    values.forEach(function (v) { dl.appendChild(h("option", typeof v === "string" ? { value: v } : { value: v.value, label: v.label })); });
    root.appendChild(dl);
    datalists[name] = id;
    return id;
  }

  // ---- the model: groups of rows, each turned into one node of the tree ----
  var uid = 0;
  function node(type, extra) { return Object.assign({ id: ++uid, type: type, not: false }, extra || {}); }
  function blank(type) {
    switch (type) {
      case "group": return node("group", { op: "and", children: [] });
      case "tag": return node("tag", { mode: "tag", tags: [] });
      case "attr":
        var first = data.attrs[0] || { name: "", kind: "text" };
        return node("attr", { attr: first.name, op: opsFor(first)[0], value: undefined });
      case "event": return node("event", { event: "", where: [], count: "", n: 1, win: "days", days: 30, from: "", to: "" });
      case "order": return node("order", { kind: "spend", op: ">=", value: undefined, days: "" });
      case "source": return node("source", { field: "source", value: "" });
      case "audience": return node("audience", { aud: "" });
    }
    return node("raw", { text: "{}" });
  }
  function opsFor(a) {
    if (!a) return OPS.text;
    if (a.kind === "money") return OPS.number;
    if (a.kind === "text" && a.values && a.values.length) return OPS.enum;
    return OPS[a.kind] || OPS.text;
  }
  function isMoney(a) { return a && a.kind === "money"; }

  function join(path, part) { return path ? path + "." + part : part; }

  // toNode turns a row into its node of the tree, noting each row's path.
  function toNode(m, path) {
    m.path = path;
    var inner = m.not ? join(path, "not") : path;
    var n = innerNode(m, inner);
    return m.not ? { not: n } : n;
  }
  function windowOf(m, n) {
    if (m.win === "days" && m.days !== "" && m.days !== undefined) n.within_days = toNumber(m.days);
    if (m.win === "between") n.between = [m.from, m.to];
  }
  function innerNode(m, path) {
    switch (m.type) {
      case "group":
        var list = m.children.map(function (c, i) { return toNode(c, join(path, m.op + "[" + i + "]")); });
        var g = {}; g[m.op] = list; return g;
      case "tag":
        var tn = {};
        if (m.mode === "tag") tn.tag = m.tags[0] || ""; else tn[m.mode] = m.tags.slice();
        return tn;
      case "attr":
        var an = { attr: m.attr, op: m.op };
        if (m.value !== undefined && m.op !== "is_set" && m.op !== "is_not_set") an.value = m.value;
        return an;
      case "event":
        var en = { event: m.event };
        if (m.where.length) en.where = m.where.map(function (w) {
          var x = { prop: w.prop, op: w.op };
          if (w.value !== undefined && w.op !== "is_set") x.value = w.value;
          return x;
        });
        if (m.count === "none") en.count = { op: "=", value: 0 };
        else if (m.count) en.count = { op: m.count, value: toNumber(m.n) };
        windowOf(m, en);
        return en;
      case "order":
        var o = {};
        if (m.kind === "spend" || m.kind === "count") {
          o.metric = m.kind; o.op = m.op;
          if (m.value !== undefined) o.value = m.value;
        } else {
          o[m.kind] = m.value === undefined ? "" : m.value;
        }
        if (m.days !== "" && m.days !== undefined) o.within_days = toNumber(m.days);
        return { order: o };
      case "source":
        var sn = {}; sn[m.field] = m.value; return sn;
      case "audience":
        return { audience: toNumber(m.aud) || 0 };
    }
    try { return JSON.parse(m.text); } catch (e) { throw { row: m }; }
  }

  // fromTree turns a node into a row; a node the rows cannot say exactly
  // (or a kind they do not offer) stays as JSON in a row of its own, so
  // nothing pasted is ever lost.
  function fromTree(c) {
    if (!c || typeof c !== "object" || Array.isArray(c)) return raw(c);
    var keys = Object.keys(c);
    if (keys.length === 1 && keys[0] === "not") {
      var inner = fromTree(c.not);
      if (inner.not || inner.type === "raw") return raw(c);
      inner.not = true;
      return inner;
    }
    var m = rowOf(c, keys);
    if (!m) return raw(c);
    try {
      if (canon(toNode(m, "")) !== canon(c)) return raw(c);
    } catch (e) { return raw(c); }
    return m;
  }
  function raw(c) { return node("raw", { text: JSON.stringify(c === undefined ? {} : c, null, 2) }); }
  function rowOf(c, keys) {
    if ((keys.length === 1) && (Array.isArray(c.and) || Array.isArray(c.or))) {
      var op = c.and ? "and" : "or";
      return node("group", { op: op, children: c[op].map(fromTree) });
    }
    if ("tag" in c) return node("tag", { mode: "tag", tags: [c.tag] });
    var modes = ["tags_any", "tags_all", "tags_none"];
    for (var i = 0; i < modes.length; i++) {
      if (Array.isArray(c[modes[i]])) return node("tag", { mode: modes[i], tags: c[modes[i]].slice() });
    }
    if ("attr" in c) return typeof c.op === "string" ? node("attr", { attr: c.attr, op: c.op, value: c.value }) : null;
    if ("event" in c) {
      var m = node("event", { event: c.event, where: (c.where || []).map(function (w) { return { prop: w.prop, op: w.op, value: w.value }; }),
        count: "", n: 1, win: "all", days: 30, from: "", to: "" });
      if (c.count) {
        if (c.count.op === "=" && c.count.value === 0) m.count = "none";
        else { m.count = c.count.op; m.n = c.count.value; }
      }
      if (c.within_days !== undefined) { m.win = "days"; m.days = c.within_days; }
      if (c.between) { m.win = "between"; m.from = c.between[0]; m.to = c.between[1]; }
      return m;
    }
    if (c.order && typeof c.order === "object") {
      if (c.order.between) return null; // dates are edited as JSON
      var o = c.order, om = node("order", { kind: "spend", op: o.op, value: o.value, days: o.within_days === undefined ? "" : o.within_days });
      if (o.metric) om.kind = o.metric;
      else if ("sku" in o) { om.kind = "sku"; om.value = o.sku; }
      else if ("category" in o) { om.kind = "category"; om.value = o.category; }
      return om;
    }
    if ("source" in c) return node("source", { field: "source", value: c.source });
    if ("source_code" in c) return node("source", { field: "source_code", value: c.source_code });
    if ("audience" in c) return node("audience", { aud: String(c.audience) });
    return null;
  }
  function canon(v) {
    if (Array.isArray(v)) return "[" + v.map(canon).join(",") + "]";
    if (v && typeof v === "object") {
      return "{" + Object.keys(v).filter(function (k) { return v[k] !== undefined; }).sort().map(function (k) {
        return JSON.stringify(k) + ":" + canon(v[k]);
      }).join(",") + "}";
    }
    return JSON.stringify(v);
  }
  function fromRoot(c) {
    if (c && typeof c === "object" && !Array.isArray(c)) {
      var keys = Object.keys(c);
      if (keys.length === 1 && (Array.isArray(c.and) || Array.isArray(c.or))) {
        var g = fromTree(c);
        if (g.type === "group") return g;
      }
      if (keys.length === 0) return blank("group");
    }
    var r = blank("group");
    r.children.push(fromTree(c));
    return r;
  }

  function toNumber(v) {
    if (v === "" || v === undefined || v === null) return undefined;
    var n = Number(v);
    return isNaN(n) ? v : n;
  }
  // Typed text to a value: numbers for numeric attributes, yuan to fen.
  function parseValue(s, kind) {
    s = String(s).trim();
    if (s === "") return undefined;
    if (kind === "number" || kind === "money") {
      var n = Number(s);
      if (isNaN(n)) return s; // the server says what is wrong, beside the row
      return kind === "money" ? Math.round(n * 100) : n;
    }
    if (kind === "bool") return s === "true";
    return s;
  }
  function showValue(v, kind) {
    if (v === undefined || v === null) return "";
    if (kind === "money" && typeof v === "number") return String(v / 100);
    return String(v);
  }
  function splitList(s, kind) {
    return String(s).split(/[,，、\n]/).map(function (x) { return x.trim(); }).filter(Boolean).map(function (x) { return parseValue(x, kind); });
  }

  // ---- rendering ----
  var model = blank("group");
  var mode = "visual";

  function render() {
    var focused = document.activeElement && document.activeElement.getAttribute("data-k");
    treeEl.replaceChildren(renderGroup(model, null));
    if (focused) {
      var el = treeEl.querySelector('[data-k="' + CSS.escape(focused) + '"]');
      if (el) el.focus();
    }
  }
  function k(m, field) { return m.id + ":" + field; }

  function renderGroup(g, parent) {
    var isRoot = !parent;
    var head = h("div", { class: "aud-group-head" }, [
      select([{ value: "and", label: t("group.all") }, { value: "or", label: t("group.any") }], g.op,
        function (v) { g.op = v; changed(true); }, { "data-k": k(g, "op"), "aria-label": t("group.match") }),
      isRoot ? null : notToggle(g),
      isRoot ? null : removeButton(g, parent)
    ]);
    var list = h("ol", { class: "aud-rows" });
    g.children.forEach(function (c, i) {
      var li = h("li", { class: "aud-item" + (c.type === "group" ? " aud-item-group" : "") }, [
        i > 0 ? h("span", { class: "aud-join", text: t(g.op === "and" ? "join.and" : "join.or") }) : null,
        c.type === "group" ? renderGroup(c, g) : renderRow(c, g)
      ]);
      list.appendChild(li);
    });
    var foot = h("div", { class: "aud-group-foot" }, [
      h("button", { type: "button", class: "btn btn-sm", "data-add": "row", "data-k": k(g, "add"), onclick: function () {
        g.children.push(blank(g.children.length ? lastType(g) : "attr")); changed(true);
      } }, [t("add_condition")]),
      h("button", { type: "button", class: "btn btn-sm btn-ghost", "data-k": k(g, "addg"), onclick: function () {
        var sub = blank("group"); sub.children.push(blank("attr")); g.children.push(sub); changed(true);
      } }, [t("add_group")])
    ]);
    var err = h("p", { class: "field-error aud-error", role: "alert", hidden: true });
    g.errEl = err;
    var box = h("div", { class: "aud-group" + (isRoot ? " aud-group-root" : "") + (g.not ? " is-not" : ""), "data-path": g.path || "" }, [
      head, err, g.children.length ? list : h("p", { class: "muted aud-empty", text: t("empty") }), foot
    ]);
    return box;
  }
  function lastType(g) {
    var last = g.children[g.children.length - 1];
    return last.type === "group" || last.type === "raw" ? "attr" : last.type;
  }
  function notToggle(m) {
    var cb = h("input", { type: "checkbox", checked: m.not, "data-k": k(m, "not"), onchange: function () { m.not = cb.checked; changed(true); } });
    return h("label", { class: "aud-not", title: t("not_hint") }, [cb, h("span", { text: t("not") })]);
  }
  function removeButton(m, parent) {
    return h("button", { type: "button", class: "icon-btn icon-btn-sm aud-remove", title: t("remove"), "aria-label": t("remove"),
      onclick: function () { parent.children.splice(parent.children.indexOf(m), 1); changed(true); } }, [svgIcon("x")]);
  }
  function svgIcon(name) {
    var ns = "http://www.w3.org/2000/svg";
    var s = document.createElementNS(ns, "svg");
    s.setAttribute("class", "icon");
    s.setAttribute("aria-hidden", "true");
    var u = document.createElementNS(ns, "use");
    u.setAttribute("href", "#i-" + name);
    s.appendChild(u);
    return s;
  }

  function renderRow(m, parent) {
    var typeSel = select(TYPES.map(function (ty) { return { value: ty, label: t("type." + ty) }; }), m.type, function (v) {
      var fresh = blank(v);
      fresh.not = m.not;
      parent.children[parent.children.indexOf(m)] = fresh;
      changed(true);
    }, { "data-k": k(m, "type"), "aria-label": t("type.label"), class: "select-sm aud-type" });
    var fields = h("div", { class: "aud-fields" }, editor(m));
    var err = h("p", { class: "field-error aud-error", role: "alert", hidden: true });
    m.errEl = err;
    return h("div", { class: "aud-row" + (m.not ? " is-not" : ""), "data-type": m.type, "data-path": m.path || "" }, [
      h("div", { class: "aud-row-main" }, [
        m.not ? h("span", { class: "badge badge-bad aud-not-badge", text: t("not_badge") }) : null,
        typeSel, fields,
        h("div", { class: "aud-row-end" }, [notToggle(m), removeButton(m, parent)])
      ]),
      err
    ]);
  }

  function editor(m) {
    switch (m.type) {
      case "tag": return tagEditor(m);
      case "attr": return attrEditor(m);
      case "event": return eventEditor(m);
      case "order": return orderEditor(m);
      case "source": return sourceEditor(m);
      case "audience": return audienceEditor(m);
    }
    return rawEditor(m);
  }

  function input(m, field, value, oninput, props) {
    var el = h("input", Object.assign({ type: "text", class: "aud-input", value: value, "data-k": k(m, field), autocomplete: "off",
      oninput: function () { oninput(el.value); changed(false); } }, props || {}));
    return el;
  }

  function chips(m, values, onremove) {
    return h("span", { class: "aud-chips" }, values.map(function (v, i) {
      return h("span", { class: "chip aud-chip" }, [String(v), h("button", { type: "button", class: "aud-chip-x", "aria-label": t("tag.remove", v), title: t("tag.remove", v),
        onclick: function () { onremove(i); changed(true); } }, ["×"])]);
    }));
  }

  function tagEditor(m) {
    var modeSel = select(["tag", "tags_any", "tags_all", "tags_none"].map(function (x) { return { value: x, label: t("tag.mode." + x) }; }), m.mode,
      function (v) { m.mode = v; if (v === "tag") m.tags = m.tags.slice(0, 1); changed(true); }, { "data-k": k(m, "mode"), "aria-label": t("tag.mode_label") });
    function add(ref) {
      ref = String(ref).trim();
      if (!ref) return;
      if (m.mode === "tag") m.tags = [ref];
      else if (m.tags.indexOf(ref) < 0) m.tags.push(ref);
      changed(true);
    }
    var picker;
    if (data.tags.length) {
      var groups = {}, order = [];
      data.tags.forEach(function (tg) {
        if (!groups[tg.group]) { groups[tg.group] = []; order.push(tg.group); }
        groups[tg.group].push({ value: tg.ref, label: tg.name });
      });
      picker = select([{ value: "", label: t("tag.pick") }].concat(order.map(function (g) { return { group: g, options: groups[g] }; })), "",
        add, { "data-k": k(m, "pick"), "aria-label": t("tag.pick"), class: "select-sm aud-tag-pick" });
    } else {
      var box = h("input", { type: "text", class: "aud-input", placeholder: t("tag.placeholder"), "data-k": k(m, "pick"), "aria-label": t("tag.placeholder"),
        onkeydown: function (e) { if (e.key === "Enter") { e.preventDefault(); add(box.value); } },
        onchange: function () { add(box.value); } });
      picker = box;
    }
    return [modeSel, chips(m, m.tags, function (i) { m.tags.splice(i, 1); }), picker];
  }

  function attrEditor(m) {
    var a = attrs[m.attr];
    var groups = {}, order = [];
    data.attrs.forEach(function (x) {
      if (!groups[x.group]) { groups[x.group] = []; order.push(x.group); }
      groups[x.group].push({ value: x.name, label: x.label });
    });
    var opts = order.map(function (g) { return { group: t("attr.group." + g), options: groups[g] }; });
    if (!a) opts.unshift({ value: m.attr, label: m.attr || t("attr.pick") });
    var attrSel = select(opts, m.attr, function (v) {
      var next = attrs[v];
      m.attr = v;
      if (opsFor(next).indexOf(m.op) < 0) m.op = opsFor(next)[0];
      m.value = undefined;
      changed(true);
    }, { "data-k": k(m, "attr"), "aria-label": t("attr.label"), class: "select-sm aud-attr" });
    var ops = opsFor(a).slice();
    if (ops.indexOf(m.op) < 0) ops.push(m.op);
    var opSel = select(ops.map(function (o) { return { value: o, label: opLabel(o) }; }), m.op, function (v) {
      var wasList = m.op === "in" || m.op === "not_in";
      var isList = v === "in" || v === "not_in";
      m.op = v;
      if (wasList !== isList || v === "between" || v === "is_set" || v === "is_not_set") m.value = undefined;
      changed(true);
    }, { "data-k": k(m, "op"), "aria-label": t("op.label"), class: "select-sm aud-op" });
    return [attrSel, opSel].concat(valueEditor(m, a));
  }

  function valueEditor(m, a) {
    var kind = a ? a.kind : (typeof m.value === "number" ? "number" : "text");
    var op = m.op;
    if (op === "is_set" || op === "is_not_set") return [];
    var unit = isMoney(a) ? h("span", { class: "aud-unit", text: t("unit.yuan") }) : null;
    if (a && a.values && a.values.length && kind === "text") {
      if (op === "in" || op === "not_in") {
        var chosen = Array.isArray(m.value) ? m.value : [];
        return [h("span", { class: "aud-checks" }, a.values.map(function (v) {
          var cb = h("input", { type: "checkbox", checked: chosen.indexOf(v.value) >= 0, "data-k": k(m, "v-" + v.value), onchange: function () {
            var cur = Array.isArray(m.value) ? m.value.slice() : [];
            var i = cur.indexOf(v.value);
            if (cb.checked && i < 0) cur.push(v.value);
            if (!cb.checked && i >= 0) cur.splice(i, 1);
            m.value = cur.length ? cur : undefined;
            changed(false);
          } });
          return h("label", { class: "aud-check" }, [cb, h("span", { text: v.label })]);
        }))];
      }
      if (op === "=" || op === "!=") {
        var vals = [{ value: "", label: t("value.pick") }].concat(a.values);
        if (m.value !== undefined && !a.values.some(function (v) { return v.value === m.value; })) vals.push({ value: m.value, label: String(m.value) });
        return [select(vals, m.value, function (v) { m.value = v === "" ? undefined : v; changed(false); },
          { "data-k": k(m, "value"), "aria-label": t("value.label"), class: "select-sm aud-value" })];
      }
    }
    if (kind === "bool" && op === "=") {
      return [select([{ value: "", label: t("value.pick") }, { value: "true", label: t("bool.true") }, { value: "false", label: t("bool.false") }],
        m.value === undefined ? "" : String(m.value), function (v) { m.value = v === "" ? undefined : v === "true"; changed(false); },
        { "data-k": k(m, "value"), "aria-label": t("value.label") })];
    }
    if (op === "in" || op === "not_in") {
      return [input(m, "value", Array.isArray(m.value) ? m.value.map(function (v) { return showValue(v, kind); }).join(", ") : "",
        function (s) { var l = splitList(s, kind); m.value = l.length ? l : undefined; },
        { placeholder: t("value.list_placeholder"), "aria-label": t("value.label"), class: "aud-input aud-wide" }), unit];
    }
    if (op === "between") {
      var pair = Array.isArray(m.value) ? m.value : [undefined, undefined];
      function setPair(i, s) {
        var p = Array.isArray(m.value) ? m.value.slice() : [undefined, undefined];
        p[i] = parseValue(s, kind);
        m.value = p[0] === undefined && p[1] === undefined ? undefined : [p[0] === undefined ? null : p[0], p[1] === undefined ? null : p[1]];
      }
      return [input(m, "lo", showValue(pair[0], kind), function (s) { setPair(0, s); }, { inputmode: "decimal", placeholder: t("value.low"), "aria-label": t("value.low"), class: "aud-input aud-num" }),
        h("span", { class: "aud-sep", text: "–" }),
        input(m, "hi", showValue(pair[1], kind), function (s) { setPair(1, s); }, { inputmode: "decimal", placeholder: t("value.high"), "aria-label": t("value.high"), class: "aud-input aud-num" }), unit];
    }
    if (op === "before" || op === "after") {
      return [input(m, "value", m.value || "", function (s) { m.value = s || undefined; }, { type: "date", "aria-label": t("value.label") })];
    }
    if (op === "within_last_days") {
      return [input(m, "value", showValue(m.value), function (s) { m.value = parseValue(s, "number"); },
        { inputmode: "numeric", "aria-label": t("value.label"), class: "aud-input aud-num" }), h("span", { class: "aud-unit", text: t("unit.days") })];
    }
    var numeric = kind === "number" || kind === "money" || kind === "date";
    var props = { placeholder: t("value.placeholder"), "aria-label": t("value.label"), class: "aud-input aud-value" + (numeric ? " aud-num" : "") };
    if (numeric) props.inputmode = "decimal";
    if (a && !numeric && a.name) props.list = datalist("attr:" + a.name, (a.values || []));
    return [input(m, "value", showValue(m.value, kind), function (s) { m.value = parseValue(s, kind === "date" ? "number" : kind); }, props), unit];
  }

  function windowEditor(m, allowBetween) {
    var opts = [{ value: "all", label: t("window.all") }, { value: "days", label: t("window.days") }];
    if (allowBetween) opts.push({ value: "between", label: t("window.between") });
    var out = [select(opts, m.win, function (v) { m.win = v; changed(true); }, { "data-k": k(m, "win"), "aria-label": t("window.label") })];
    if (m.win === "days") {
      out.push(input(m, "days", String(m.days === undefined ? "" : m.days), function (s) { m.days = s.trim(); },
        { inputmode: "numeric", "aria-label": t("window.days_label"), class: "aud-input aud-num" }), h("span", { class: "aud-unit", text: t("unit.days") }));
    } else if (m.win === "between") {
      out.push(input(m, "from", m.from, function (s) { m.from = s; }, { type: "date", "aria-label": t("window.from") }),
        h("span", { class: "aud-sep", text: t("window.to") }),
        input(m, "to", m.to, function (s) { m.to = s; }, { type: "date", "aria-label": t("window.to") }));
    }
    return out;
  }

  function eventEditor(m) {
    var name = input(m, "event", m.event, function (s) { m.event = s.trim(); },
      { placeholder: t("event.placeholder"), "aria-label": t("event.label"), list: datalist("events", data.events), class: "aud-input aud-event" });
    name.addEventListener("change", function () { changed(true); }); // offer the new event's properties
    var countSel = select([{ value: "", label: t("count.any") }].concat(COUNT_OPS.map(function (o) { return { value: o, label: opLabel(o) }; }),
      [{ value: "none", label: t("count.none") }]), m.count, function (v) { m.count = v; changed(true); },
      { "data-k": k(m, "count"), "aria-label": t("count.label") });
    var out = [name, h("span", { class: "aud-sep", text: t("count.label") }), countSel];
    if (m.count && m.count !== "none") {
      out.push(input(m, "n", String(m.n), function (s) { m.n = s.trim(); }, { inputmode: "numeric", "aria-label": t("count.times_label"), class: "aud-input aud-num" }),
        h("span", { class: "aud-unit", text: t("count.times") }));
    }
    out = out.concat(windowEditor(m, true));
    var props = data.props[m.event] || [];
    var where = h("div", { class: "aud-where" }, m.where.map(function (w, i) {
      var ptype = (props.filter(function (p) { return p.name === w.prop; })[0] || {}).type;
      var kind = ptype === "number" ? "number" : ptype === "bool" ? "bool" : "text";
      var valueInput = w.op === "is_set" ? null : input(m, "wv" + i,
        Array.isArray(w.value) ? w.value.join(", ") : showValue(w.value), function (s) {
          w.value = w.op === "in" || w.op === "not_in" ? splitList(s, kind) : parseValue(s, kind);
        }, { placeholder: t("value.placeholder"), "aria-label": t("value.label") });
      return h("div", { class: "aud-where-row" }, [
        h("span", { class: "aud-sep", text: t("event.where") }),
        input(m, "wp" + i, w.prop, function (s) { w.prop = s.trim(); }, { placeholder: t("event.prop"), "aria-label": t("event.prop"),
          list: datalist("props:" + m.event, props.map(function (p) { return p.name; })) }),
        select(WHERE_OPS.map(function (o) { return { value: o, label: opLabel(o) }; }), w.op, function (v) { w.op = v; w.value = undefined; changed(true); },
          { "data-k": k(m, "wo" + i), "aria-label": t("op.label") }),
        valueInput,
        h("button", { type: "button", class: "icon-btn icon-btn-sm", title: t("remove"), "aria-label": t("remove"),
          onclick: function () { m.where.splice(i, 1); changed(true); } }, [svgIcon("x")])
      ]);
    }));
    where.appendChild(h("button", { type: "button", class: "btn btn-sm btn-ghost", "data-k": k(m, "addw"),
      onclick: function () { m.where.push({ prop: "", op: "=", value: undefined }); changed(true); } }, [t("event.add_where")]));
    out.push(where);
    return out;
  }

  function orderEditor(m) {
    var kindSel = select(["spend", "count", "sku", "category"].map(function (x) { return { value: x, label: t("order." + x) }; }), m.kind,
      function (v) { m.kind = v; m.value = undefined; m.op = ">="; changed(true); }, { "data-k": k(m, "kind"), "aria-label": t("order.label") });
    var out = [kindSel];
    if (m.kind === "spend" || m.kind === "count") {
      var money = m.kind === "spend";
      var fake = { name: "", kind: money ? "money" : "number" };
      var ops = ["=", "!=", ">", ">=", "<", "<=", "between"];
      if (ops.indexOf(m.op) < 0) ops.push(m.op);
      out.push(select(ops.map(function (o) { return { value: o, label: opLabel(o) }; }), m.op, function (v) {
        if ((v === "between") !== (m.op === "between")) m.value = undefined;
        m.op = v; changed(true);
      }, { "data-k": k(m, "op"), "aria-label": t("op.label") }));
      out = out.concat(valueEditor(m, fake));
    } else {
      out.push(input(m, "value", m.value || "", function (s) { m.value = s.trim(); },
        { placeholder: t("order." + m.kind + "_placeholder"), "aria-label": t("order." + m.kind) }));
    }
    var w = { id: m.id, win: m.days === "" || m.days === undefined ? "all" : "days", days: m.days };
    out.push(h("span", { class: "aud-sep", text: t("order.within") }));
    out.push(select([{ value: "all", label: t("window.all") }, { value: "days", label: t("window.days") }], w.win, function (v) {
      m.days = v === "days" ? 90 : ""; changed(true);
    }, { "data-k": k(m, "win"), "aria-label": t("window.label") }));
    if (w.win === "days") {
      out.push(input(m, "days", String(m.days), function (s) { m.days = s.trim(); }, { inputmode: "numeric", "aria-label": t("window.days_label"), class: "aud-input aud-num" }),
        h("span", { class: "aud-unit", text: t("unit.days") }));
    }
    return out;
  }

  function sourceEditor(m) {
    var fieldSel = select([{ value: "source", label: t("source.source") }, { value: "source_code", label: t("source.source_code") }], m.field,
      function (v) { m.field = v; m.value = ""; changed(true); }, { "data-k": k(m, "field"), "aria-label": t("source.label") });
    if (m.field === "source") {
      var opts = [{ value: "", label: t("value.pick") }].concat(data.sources);
      if (m.value && !data.sources.some(function (s) { return s.value === m.value; })) opts.push({ value: m.value, label: m.value });
      return [fieldSel, select(opts, m.value, function (v) { m.value = v; changed(false); }, { "data-k": k(m, "value"), "aria-label": t("source.source") })];
    }
    return [fieldSel, input(m, "value", m.value, function (s) { m.value = s.trim(); }, { placeholder: t("source.code_placeholder"), "aria-label": t("source.source_code") })];
  }

  function audienceEditor(m) {
    if (!data.audiences.length && !m.aud) return [h("span", { class: "muted small", text: t("audience.none") })];
    var opts = [{ value: "", label: t("audience.pick") }].concat(data.audiences);
    if (m.aud && !data.audiences.some(function (a) { return a.value === m.aud; })) opts.push({ value: m.aud, label: "#" + m.aud });
    return [h("span", { class: "aud-sep", text: t("audience.in") }),
      select(opts, m.aud, function (v) { m.aud = v; changed(false); }, { "data-k": k(m, "aud"), "aria-label": t("type.audience") })];
  }

  function rawEditor(m) {
    var ta = h("textarea", { class: "mono aud-raw", rows: 3, spellcheck: "false", "data-k": k(m, "text"), "aria-label": t("type.raw"),
      oninput: function () { m.text = ta.value; changed(false); } });
    ta.value = m.text;
    return [ta, h("p", { class: "hint", text: t("raw.hint") })];
  }

  // ---- the tree, the textarea and the count ----
  function serialize() {
    try { return { tree: toNode(model, "") }; } catch (e) {
      if (e && e.row) return { bad: e.row };
      throw e;
    }
  }
  function changed(structural) {
    var s = serialize(); // first, so that the rows know their paths
    if (structural) render();
    clearErrors();
    if (s.bad) { showError(s.bad, { message: t("raw.invalid") }); setCount(null, ""); return; }
    jsonEl.value = model.children.length ? JSON.stringify(s.tree, null, 2) : "";
    scheduleCount(jsonEl.value);
  }

  var seq = 0, timer = 0;
  function scheduleCount(text) {
    clearTimeout(timer);
    if (!text.trim()) { seq++; setCount(null, t("count.empty")); return; }
    setBusy(true);
    timer = setTimeout(function () { count(text); }, 350);
  }
  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"]; } catch (e) { return ""; }
  }
  function count(text) {
    var mine = ++seq;
    fetch("/audiences/count", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrfToken(), "HX-Request": "true" },
      body: new URLSearchParams({ conditions: text }).toString()
    }).then(function (res) {
      var to = res.headers.get("HX-Redirect");
      if (to) { window.location.href = to; return null; }
      return res.json();
    }).then(function (r) {
      if (!r || mine !== seq) return;
      clearErrors();
      if (r.error) {
        setCount(null, t("count.error"));
        placeError(r.error);
        return;
      }
      setCount(r.text, t("count.updated"));
      document.body.dispatchEvent(new CustomEvent("audience-counted", { bubbles: true }));
    }).catch(function () {
      if (mine === seq) setCount(null, t("count.failed"));
    });
  }
  function setBusy(on) { document.getElementById("aud-count").classList.toggle("is-busy", on); }
  function setCount(text, note) {
    setBusy(false);
    countEl.textContent = text === null ? "—" : text;
    countEl.classList.toggle("is-stale", text === null);
    noteEl.textContent = note;
  }

  function rows(m, out) {
    out.push(m);
    if (m.type === "group") m.children.forEach(function (c) { rows(c, out); });
    return out;
  }
  function clearErrors() {
    rows(model, []).forEach(function (m) {
      if (m.errEl) { m.errEl.hidden = true; m.errEl.textContent = ""; }
      var el = m.errEl && m.errEl.parentNode;
      if (el) el.classList.remove("has-error");
    });
    rootErr.hidden = true; rootErr.textContent = "";
    jsonErr.hidden = true; jsonErr.textContent = "";
  }
  // placeError shows an error beside the row whose path is the longest
  // prefix of the error's path (and[1].value belongs to the row at and[1]).
  function placeError(err) {
    if (mode === "json") {
      jsonErr.hidden = false;
      jsonErr.textContent = (err.path ? err.path + ": " : "") + err.message + (err.detail ? " (" + err.detail + ")" : "");
      return;
    }
    var best = null, path = err.path || "";
    rows(model, []).forEach(function (m) {
      var p = m.path || "";
      if (m === model || !p) return;
      if (path === p || path.indexOf(p + ".") === 0 || path.indexOf(p + "[") === 0) {
        if (!best || p.length > best.path.length) best = m;
      }
    });
    if (best) showError(best, err);
    else {
      rootErr.hidden = false;
      rootErr.replaceChildren(h("span", { text: err.message }), err.detail ? h("span", { class: "detail-en", text: " " + err.detail }) : "");
    }
  }
  function showError(m, err) {
    if (!m.errEl) return;
    m.errEl.hidden = false;
    m.errEl.replaceChildren(document.createTextNode(err.message), err.detail ? h("span", { class: "detail-en", text: " " + err.detail }) : "");
    m.errEl.parentNode.classList.add("has-error");
  }

  // ---- the JSON view ----
  function setMode(next) {
    if (next === "visual") {
      var text = jsonEl.value.trim(), parsed;
      if (text) {
        try { parsed = JSON.parse(text); } catch (e) {
          jsonErr.hidden = false; jsonErr.textContent = t("json.invalid", e.message);
          return;
        }
      }
      model = text ? fromRoot(parsed) : blank("group");
    }
    mode = next;
    treeEl.hidden = mode !== "visual";
    document.getElementById("aud-json-panel").hidden = mode !== "json";
    Array.prototype.forEach.call(views.querySelectorAll("[data-view]"), function (b) {
      var on = b.getAttribute("data-view") === mode;
      b.classList.toggle("is-on", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    });
    if (mode === "visual") changed(true);
    else { clearErrors(); scheduleCount(jsonEl.value); } // errors now read by path
  }
  views.addEventListener("click", function (e) {
    var b = e.target.closest("[data-view]");
    if (b && b.getAttribute("data-view") !== mode) setMode(b.getAttribute("data-view"));
  });
  jsonEl.addEventListener("input", function () {
    if (mode !== "json") return;
    clearErrors();
    var text = jsonEl.value.trim();
    if (text) {
      try { JSON.parse(text); } catch (e) {
        jsonErr.hidden = false; jsonErr.textContent = t("json.invalid", e.message);
        setCount(null, t("count.error"));
        return;
      }
    }
    scheduleCount(jsonEl.value);
  });

  // ---- start ----
  views.hidden = false;
  var initial = jsonEl.value.trim(), parsedInitial, ok = true;
  if (initial) {
    try { parsedInitial = JSON.parse(initial); } catch (e) { ok = false; }
  }
  if (!ok) {
    mode = "json";
    setMode("json");
    jsonErr.hidden = false; jsonErr.textContent = t("json.invalid", "");
  } else {
    model = initial ? fromRoot(parsedInitial) : blank("group");
    if (!initial) model.children.push(blank("attr"));
    mode = "visual";
    treeEl.hidden = false;
    document.getElementById("aud-json-panel").hidden = true;
    var s = serialize();
    render();
    if (!s.bad && initial) jsonEl.value = JSON.stringify(s.tree, null, 2);
    if (data.error) {
      // A refused save: show why beside its row, and count nothing yet.
      placeError(data.error);
      setCount(null, t("count.error"));
    } else if (initial) {
      scheduleCount(jsonEl.value);
    } else {
      setCount(null, t("count.empty"));
    }
  }
})();
