// Siyu console: the channel code editor's live welcome preview — the
// message as the customer will see it, placeholders filled with a sample
// customer and the first staff member of the pool, updated while typing.
(function () {
  "use strict";
  var form = document.getElementById("acquire-form");
  var box = document.getElementById("acquire-preview");
  if (!form || !box) return;
  var textEl = document.getElementById("acquire-preview-text");
  var attEl = document.getElementById("acquire-preview-atts");

  function names() {
    var m = {};
    var first = form.querySelector("input[name=staff_userid]");
    var spec = first ? first.getAttribute("data-staff-names") || "" : "";
    spec.split(";").forEach(function (pair) {
      var i = pair.indexOf("=");
      if (i > 0) m[pair.slice(0, i)] = pair.slice(i + 1);
    });
    return m;
  }
  var staffNames = names();

  function staffName() {
    var inputs = form.querySelectorAll("input[name=staff_userid]");
    for (var i = 0; i < inputs.length; i++) {
      var v = inputs[i].value.trim();
      if (v) return staffNames[v] || v;
    }
    return box.getAttribute("data-staff-default");
  }

  function val(name) {
    var el = form.querySelector("[name=" + name + "]");
    return el ? el.value.trim() : "";
  }

  function item(text) {
    var li = document.createElement("li");
    li.textContent = text;
    attEl.appendChild(li);
  }

  function render() {
    var t = val("welcome_text")
      .split("{{customer_name}}").join(box.getAttribute("data-customer"))
      .split("{{staff_name}}").join(staffName());
    textEl.textContent = t;
    attEl.textContent = "";
    if (val("image_url")) item("🖼 " + val("image_url"));
    if (val("link_title") || val("link_url")) item("🔗 " + val("link_title") + " — " + val("link_url"));
    if (val("mp_title") || val("mp_appid")) item("▣ " + val("mp_title") + " (" + val("mp_appid") + ")");
    if (val("group_code_id")) item("👥 #" + val("group_code_id"));
  }
  form.addEventListener("input", render);
  form.addEventListener("change", render);
  render();
})();
