// Siyu console: the mass-message composer. Shows the target fields of the
// chosen kind (customers or groups) and audience mode (saved audience or
// conditions), and reveals attachment rows one at a time (WeCom takes 9).
// Without script every field shows and the server decides.
(function () {
  "use strict";
  var form = document.getElementById("message-form");
  if (!form) return;

  function checked(name) {
    var el = form.querySelector('input[name="' + name + '"]:checked');
    return el ? el.value : "";
  }
  function sync() {
    var kind = checked("kind") || "customers";
    var mode = checked("target_mode") || "audience";
    Array.prototype.forEach.call(form.querySelectorAll("[data-for-kind]"), function (el) {
      el.hidden = el.getAttribute("data-for-kind") !== kind;
    });
    Array.prototype.forEach.call(form.querySelectorAll("[data-for-mode]"), function (el) {
      el.hidden = el.getAttribute("data-for-mode") !== mode;
    });
  }
  form.addEventListener("change", function (e) {
    if (e.target.name === "kind" || e.target.name === "target_mode") sync();
  });
  sync();

  var add = document.getElementById("att-add");
  function hiddenRows() { return form.querySelectorAll(".att-row[hidden]"); }
  if (add) {
    add.hidden = hiddenRows().length === 0;
    add.addEventListener("click", function () {
      var rows = hiddenRows();
      if (rows.length) {
        rows[0].hidden = false;
        var first = rows[0].querySelector("input, select");
        if (first) first.focus();
      }
      add.hidden = hiddenRows().length === 0;
    });
  }
})();
