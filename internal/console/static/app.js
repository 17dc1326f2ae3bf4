// Siyu console: the little behaviour htmx does not cover. No inline script
// anywhere (the Content-Security-Policy forbids it); everything hangs off
// data- attributes.
(function () {
  "use strict";

  function setMenu(open) {
    document.body.classList.toggle("nav-open", open);
    var btn = document.querySelector("[data-menu]");
    if (btn) btn.setAttribute("aria-expanded", open ? "true" : "false");
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain HTTP on another host: fall back to a selection and execCommand.
    return new Promise(function (resolve, reject) {
      var ta = document.createElement("textarea");
      ta.value = text;
      ta.setAttribute("readonly", "");
      ta.className = "sr-only";
      document.body.appendChild(ta);
      ta.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(ta);
      if (ok) { resolve(); } else { reject(new Error("copy failed")); }
    });
  }

  document.addEventListener("click", function (e) {
    var t = e.target;
    if (!(t instanceof Element)) return;

    var menu = t.closest("[data-menu]");
    if (menu) { setMenu(!document.body.classList.contains("nav-open")); return; }
    if (t.closest("[data-menu-close]")) { setMenu(false); return; }

    var copy = t.closest("[data-copy]");
    if (copy) {
      var src = document.getElementById(copy.getAttribute("data-copy"));
      if (!src) return;
      var label = copy.querySelector("span");
      var before = label ? label.textContent : "";
      copyText(src.textContent.trim()).then(function () {
        copy.classList.add("is-copied");
        if (label) label.textContent = copy.getAttribute("data-copied") || before;
        setTimeout(function () {
          copy.classList.remove("is-copied");
          if (label) label.textContent = before;
        }, 2000);
      }, function () {
        // Leave the key selected so it can be copied by hand.
        var range = document.createRange();
        range.selectNodeContents(src);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
      });
    }
  });

  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && document.body.classList.contains("nav-open")) setMenu(false);
  });
})();
