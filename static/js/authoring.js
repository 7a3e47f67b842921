// Course editor enhancements: in-place editing keys, type-dependent fields, drag and drop.
// Everything here is optional: every action is also a plain form with buttons.
(function () {
  "use strict";

  // Escape cancels an in-place form; Enter saves it.
  document.addEventListener("keydown", function (evt) {
    var form = evt.target.closest && evt.target.closest(".inplace-form");
    if (!form) return;
    if (evt.key === "Escape") {
      var cancel = form.querySelector("[data-cancel]");
      if (cancel) { evt.preventDefault(); cancel.click(); }
    } else if (evt.key === "Enter" && evt.target.tagName === "TEXTAREA") {
      // A title/description form: Enter saves, Shift+Enter is a new line. In a block's
      // editor Enter writes Markdown, and Ctrl/Cmd+Enter saves.
      var short = !form.classList.contains("block-form");
      if ((short && !evt.shiftKey) || evt.ctrlKey || evt.metaKey) {
        evt.preventDefault();
        form.requestSubmit();
      }
    }
  });

  // Clicking the text itself opens its in-place editor, like its Edit button.
  document.addEventListener("click", function (evt) {
    var text = evt.target.closest && evt.target.closest(".inplace-text");
    if (!text) return;
    var holder = text.closest(".inplace, .block-row");
    var edit = holder && holder.querySelector("[data-inplace-edit]");
    if (edit) edit.click();
  });

  // Show only the fields the chosen block type uses.
  function showFieldsFor(form) {
    var select = form.querySelector("[data-block-type]");
    if (!select) return;
    form.querySelectorAll("[data-types]").forEach(function (el) {
      var types = el.getAttribute("data-types").split(" ");
      el.classList.toggle("hidden", types.indexOf(select.value) === -1);
    });
  }
  document.addEventListener("change", function (evt) {
    if (evt.target.matches && evt.target.matches("[data-block-type]")) showFieldsFor(evt.target.form);
  });

  // Drag and drop: on drop, post the whole order; the server refuses a stale one.
  function postOrder() {
    var form = document.getElementById("order-form");
    if (!form) return;
    var order = [];
    document.querySelectorAll("#outline .sections > .section").forEach(function (section) {
      var blocks = [];
      section.querySelectorAll(".blocks > .block").forEach(function (block) {
        blocks.push(Number(block.getAttribute("data-id")));
      });
      order.push([Number(section.getAttribute("data-id")), blocks]);
    });
    form.querySelector("input[name=order]").value = JSON.stringify(order);
    form.requestSubmit();
  }

  // Sortable leaves style="" (or mid-animation styles) on the items; when htmx settles the
  // swapped outline it would copy those attributes, which the CSP (rightly) refuses. Drop them.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var target = evt.detail.target;
    if (!target || !target.querySelectorAll) return;
    if (target.hasAttribute("style")) target.removeAttribute("style");
    target.querySelectorAll("[style]").forEach(function (el) { el.removeAttribute("style"); });
  });

  function setUp(root) {
    root.querySelectorAll(".block-form, .add-block").forEach(showFieldsFor);
    if (root.matches && root.matches(".block-form, .add-block")) showFieldsFor(root);
    if (typeof window.Sortable === "undefined" || !window.matchMedia("(pointer: fine)").matches) return;
    var lists = [];
    if (root.matches && root.matches(".sections")) lists.push(root);
    root.querySelectorAll(".sections").forEach(function (el) { lists.push(el); });
    lists.forEach(function (el) {
      if (el.dataset.sortable) return;
      el.dataset.sortable = "1";
      window.Sortable.create(el, { handle: ".section-handle", draggable: ".section", animation: 0, onEnd: postOrder });
    });
    root.querySelectorAll(".blocks").forEach(function (el) {
      if (el.dataset.sortable) return;
      el.dataset.sortable = "1";
      window.Sortable.create(el, { group: "blocks", handle: ".block-handle", draggable: ".block", animation: 0, onEnd: postOrder });
    });
  }

  function start() {
    setUp(document);
    if (window.htmx) window.htmx.onLoad(function (elt) { if (elt.querySelectorAll) setUp(elt); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
