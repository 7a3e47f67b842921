// Lectern: small progressive enhancements on top of htmx. Everything works without this file.
(function () {
  "use strict";

  function announce(text) {
    var region = document.getElementById("status");
    if (!region) return;
    var p = document.createElement("p");
    p.textContent = text;
    region.replaceChildren(p);
    window.setTimeout(function () { if (p.parentNode === region) region.removeChild(p); }, 6000);
  }
  window.lecternAnnounce = announce;

  // An htmx request that failed (4xx/5xx not swapped): say so in the status region.
  document.addEventListener("htmx:responseError", function (evt) {
    var xhr = evt.detail.xhr;
    var text = "Something went wrong (" + xhr.status + ").";
    try {
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var msg = doc.querySelector(".flash, h1");
      if (msg && msg.textContent.trim()) text = msg.textContent.trim();
    } catch (e) { /* keep the generic text */ }
    announce(text);
  });
  document.addEventListener("htmx:sendError", function () {
    announce("Could not reach Lectern. Check your connection and try again.");
  });

  // Server-sent announcements: HX-Trigger: {"announce": "Saved"}
  document.addEventListener("announce", function (evt) {
    var value = evt.detail && (evt.detail.value || evt.detail);
    if (typeof value === "string") announce(value);
  });

  // Elements with data-autofocus get focus after they are swapped in, unless the focus is
  // already inside what was swapped (htmx keeps it on an element of the same id, and a quick
  // keyboard user may have moved on within it before the settle).
  document.addEventListener("htmx:afterSettle", function (evt) {
    var box = evt.detail.elt;
    var el = box && box.querySelector && box.querySelector("[data-autofocus]");
    if (el && !box.contains(document.activeElement)) el.focus();
  });

  // A swap that removes the focused element (a row ended by its own button, answered with
  // nothing) would drop keyboard users at the top of the page. Before the swap, note where to
  // go: a control in the next row, else in the previous one, else <main>. (htmx fires its
  // after-swap events on the removed element, where they no longer reach the document, so
  // the check runs in a task queued behind the swap.)
  var FOCUSABLE = "button:not([disabled]), a[href], input:not([type=hidden]), select, textarea";
  var focusedIn = null;
  document.addEventListener("htmx:beforeRequest", function (evt) {
    // Before hx-disabled-elt disables the button, which takes its focus away.
    var target = evt.detail.target;
    focusedIn = target && target.id && target.contains(document.activeElement) ? target.id : null;
  });
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var target = evt.detail.target;
    if (!evt.detail.shouldSwap || !target || !target.id || target.id !== focusedIn) return;
    focusedIn = null;
    var next = null;
    [target.nextElementSibling, target.previousElementSibling].forEach(function (el) {
      next = next || (el && el.querySelector(FOCUSABLE));
    });
    next = next || document.getElementById("main");
    var id = target.id;
    window.setTimeout(function () {
      if (document.getElementById(id)) return;  // replaced, not removed: leave focus be
      var lost = !document.activeElement || document.activeElement === document.body;
      if (lost && next.isConnected) next.focus();
    }, 0);
  });

  // A page that comes back with form errors starts at the first field to fix, not at the
  // field that has autofocus (without this file, autofocus still applies).
  document.addEventListener("DOMContentLoaded", function () {
    var invalid = document.querySelector("main [aria-invalid=true]");
    if (invalid) invalid.focus();
  });

  // Folded sections of a course outline (learning pages): a link with data-fold opens or folds
  // the list it controls (aria-controls). A list not on the page yet is loaded by htmx (the
  // link's hx-get); once loaded (data-loaded) it folds and unfolds here, without a request.
  // Without this file the link opens the page with that section open.
  document.addEventListener("click", function (evt) {
    var link = evt.target.closest && evt.target.closest("a[data-fold]");
    if (!link || evt.ctrlKey || evt.metaKey || evt.shiftKey || evt.altKey) return;
    var list = document.getElementById(link.getAttribute("aria-controls"));
    if (!list || !list.hasAttribute("data-loaded")) return;  // htmx loads it
    evt.preventDefault();
    evt.stopPropagation();  // before htmx's own listener on the link
    var open = link.getAttribute("aria-expanded") !== "true";
    link.setAttribute("aria-expanded", open ? "true" : "false");
    list.hidden = !open;
  }, true);
  document.addEventListener("htmx:afterRequest", function (evt) {
    var link = evt.detail.elt;
    if (evt.detail.successful && link && link.hasAttribute && link.hasAttribute("data-fold")) {
      link.setAttribute("aria-expanded", "true");
    }
  });

  // The block page's outline (a scrolling sidebar on wide screens) starts at the current block.
  document.addEventListener("DOMContentLoaded", function () {
    var here = document.querySelector(".block-outline [aria-current=page]");
    var box = here && here.closest(".block-outline");
    if (box && box.scrollHeight > box.clientHeight && box.contains(here.offsetParent)) {
      box.scrollTop = here.offsetTop - box.clientHeight / 3;
    }
  });

  // Disclosure menus (<details class="menu">: a row's other actions). Without this file they
  // are plain <details>. Here: aria-expanded on the summary, one menu open at a time, Escape
  // closes the innermost open part (a confirmation inside the menu, then the menu) and gives
  // focus back to its summary, and a click elsewhere closes the menu.
  function markMenus(root) {
    if (!root.querySelectorAll) return;
    root.querySelectorAll("details.menu > summary").forEach(function (summary) {
      summary.setAttribute("aria-expanded", summary.parentNode.open ? "true" : "false");
    });
  }
  document.addEventListener("DOMContentLoaded", function () { markMenus(document); });
  document.addEventListener("htmx:load", function (evt) { markMenus(evt.detail.elt); });
  document.addEventListener("toggle", function (evt) {
    var menu = evt.target;
    if (!menu.matches || !menu.matches("details.menu")) return;
    var summary = menu.querySelector(":scope > summary");
    if (summary) summary.setAttribute("aria-expanded", menu.open ? "true" : "false");
    if (!menu.open) return;
    document.querySelectorAll("details.menu[open]").forEach(function (other) {
      if (other !== menu && !other.contains(menu)) other.open = false;
    });
  }, true);
  document.addEventListener("keydown", function (evt) {
    if (evt.key !== "Escape" || !evt.target.closest) return;
    var open = evt.target.closest("details[open]");
    if (!open || !open.closest("details.menu")) return;
    evt.preventDefault();
    open.open = false;
    open.querySelector(":scope > summary").focus();
  });
  document.addEventListener("click", function (evt) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(evt.target)) menu.open = false;
    });
  });

  // Confirm dialogs declared in markup (data-confirm) for plain forms too.
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    var msg = form.getAttribute && form.getAttribute("data-confirm");
    if (msg && !form.hasAttribute("hx-post") && !window.confirm(msg)) evt.preventDefault();
  }, true);
})();
