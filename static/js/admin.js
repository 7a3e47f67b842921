// Administration: "select all" for the bulk actions and a live count of the selection; a row's
// actions, once loaded, scrolled into view.
// Everything works without this file (each row checkbox is a plain form control).
(function () {
  "use strict";

  function boxes() {
    return Array.prototype.slice.call(document.querySelectorAll("input[type=checkbox][name=user_ids]"));
  }

  function refresh() {
    var all = document.getElementById("select-all");
    var count = document.getElementById("bulk-count");
    var list = boxes();
    var checked = list.filter(function (b) { return b.checked; }).length;
    if (all) {
      all.hidden = list.length === 0;
      all.checked = list.length > 0 && checked === list.length;
      all.indeterminate = checked > 0 && checked < list.length;
    }
    if (count) count.textContent = checked ? checked + " selected" : "";
  }

  document.addEventListener("change", function (evt) {
    var el = evt.target;
    if (el.id === "select-all") {
      boxes().forEach(function (b) { b.checked = el.checked; });
    }
    if (el.id === "select-all" || (el.type === "checkbox" && el.name === "user_ids")) refresh();
  });
  document.addEventListener("htmx:afterSettle", refresh);

  // A row's actions, just loaded into its last cell: bring the whole menu into view (on a phone
  // the table scrolls sideways, and focusing the summary shows only the summary).
  document.addEventListener("htmx:afterSettle", function (evt) {
    var cell = evt.detail.elt;
    var menu = cell && cell.querySelector && cell.querySelector("details.row-actions[open] > .menu");
    if (menu) menu.scrollIntoView({ block: "nearest", inline: "nearest" });
  });
  document.addEventListener("DOMContentLoaded", refresh);
})();
