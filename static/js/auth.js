// Accounts: after inline validation swaps a field's messages in, mark the field (in)valid.
(function () {
  "use strict";
  document.addEventListener("htmx:afterSwap", function (evt) {
    var box = evt.detail.target;
    if (!box || !box.classList || !box.classList.contains("feedback")) return;
    var input = document.getElementById(box.id.replace(/-feedback$/, ""));
    var invalid = box.textContent.trim() !== "";
    if (input) input.setAttribute("aria-invalid", invalid ? "true" : "false");
    var field = box.closest(".field");
    if (field) field.classList.toggle("has-error", invalid);
  });
})();
