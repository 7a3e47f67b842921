// Teaching: keyboard shortcuts in the grading queue and in-place editing in the gradebook.
// Everything works without this file: the shortcuts are links and the cells are links too.
(function () {
  "use strict";

  // The legend of the shortcuts below is shown only when they work.
  function showLegend() {
    document.querySelectorAll(".shortcuts[hidden]").forEach(function (el) {
      el.hidden = false;
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", showLegend);
  } else {
    showLegend();
  }

  function typing(el) {
    return !!el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  document.addEventListener("keydown", function (evt) {
    if (evt.defaultPrevented || evt.ctrlKey || evt.metaKey || evt.altKey) return;
    var el = evt.target;
    if (evt.key === "Escape") {
      var cellForm = el.closest && el.closest(".cell-form");
      var cancel = cellForm && cellForm.querySelector(".cell-cancel");
      if (cancel) { evt.preventDefault(); cancel.click(); return; }
      if (typing(el)) {
        var heading = document.getElementById("panel-heading");
        if (heading) { evt.preventDefault(); heading.focus(); }
      }
      return;
    }
    if (typing(el)) return; // never steal letters from a field
    var which = { j: "next", n: "next", k: "prev", p: "prev" }[evt.key];
    if (which) {
      var link = document.querySelector('[data-shortcut="' + which + '"]');
      if (link) { evt.preventDefault(); link.click(); }
      return;
    }
    if (evt.key === "g") {
      var grade = document.querySelector("#grading-panel input[name=grade]");
      if (grade) { evt.preventDefault(); grade.focus(); grade.select(); }
    }
  });

  // The queue beside the grading panel is not sent again with each panel: after a swap, mark
  // the submission just graded and the one now shown (data-graded, data-current).
  document.addEventListener("htmx:afterSettle", function () {
    var panel = document.getElementById("grading-panel");
    var queue = document.getElementById("grading-queue");
    if (!panel || !queue) return;
    var graded = document.getElementById("queue-item-" + panel.getAttribute("data-graded"));
    if (graded && !graded.classList.contains("graded")) {
      graded.classList.add("graded");
      var mark = document.createElement("span");
      mark.className = "badge";
      mark.textContent = "graded";
      graded.appendChild(mark);
    }
    queue.querySelectorAll("a[aria-current]").forEach(function (a) {
      a.removeAttribute("aria-current");
    });
    var shown = document.querySelector("#queue-item-" + panel.getAttribute("data-current") + " a");
    if (shown) shown.setAttribute("aria-current", "true");
  });

  // Gradebook: a click on a grade loads its editor into the cell (one listener for all cells).
  document.addEventListener("click", function (evt) {
    var link = evt.target.closest && evt.target.closest('#gradebook-table td[id^="cell-"] > a');
    if (!link || !window.htmx || evt.button !== 0 || evt.ctrlKey || evt.metaKey || evt.shiftKey) return;
    var cell = link.closest("td");
    if (!cell || !cell.id) return;
    evt.preventDefault();
    window.htmx.ajax("GET", link.getAttribute("href"), { target: cell, swap: "innerHTML" });
  });
})();
