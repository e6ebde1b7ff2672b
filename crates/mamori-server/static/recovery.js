// Recovery codes page: copy the codes to the clipboard and print them. No inline script (the
// console's Content-Security-Policy allows only scripts from the server itself).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var list = document.getElementById("codes");
  var copy = document.getElementById("copy-codes");
  if (list && copy) {
    copy.addEventListener("click", function () {
      var text = Array.prototype.map
        .call(list.querySelectorAll("code"), function (c) { return c.textContent; })
        .join("\n") + "\n";
      var shown = function () { document.getElementById("copied").hidden = false; };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(shown, function () { select(list); });
      } else {
        select(list);
      }
    });
  }
  var print = document.getElementById("print-codes");
  if (print) {
    print.addEventListener("click", function () { window.print(); });
  }
  // Where the clipboard is unavailable, select the codes so that the user can copy them.
  function select(el) {
    var r = document.createRange();
    r.selectNodeContents(el);
    var s = window.getSelection();
    s.removeAllRanges();
    s.addRange(r);
  }
});
