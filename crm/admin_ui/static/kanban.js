// Deals kanban: drag a card onto another stage's column. The drop only fills in the card's
// own "Move" form (the one that works without this script) and submits it; a lost stage
// first asks for the reason in that form, as the API requires one.
(function () {
  "use strict";
  document.documentElement.classList.add("js-kanban");

  function stageKind(form) {
    var select = form.querySelector("select[name=stage_id]");
    var option = select && select.options[select.selectedIndex];
    return option ? option.getAttribute("data-kind") : null;
  }

  function showReason(form) {
    form.classList.toggle("lost", stageKind(form) === "lost");
  }

  function submit(form) {
    if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
  }

  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form.move");
    if (form && event.target.name === "stage_id") { showReason(form); }
  });

  var dragged = null;
  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest(".deal-card[draggable=true]");
    if (!card) { return; }
    dragged = card;
    card.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.id);
  });
  document.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("dragging"); }
    dragged = null;
    document.querySelectorAll(".column.drop-target").forEach(function (c) { c.classList.remove("drop-target"); });
  });
  document.addEventListener("dragover", function (event) {
    var column = dragged && event.target.closest && event.target.closest(".column[data-stage]");
    if (!column) { return; }
    event.preventDefault();
    column.classList.add("drop-target");
  });
  document.addEventListener("dragleave", function (event) {
    var column = event.target.closest && event.target.closest(".column[data-stage]");
    if (column && !column.contains(event.relatedTarget)) { column.classList.remove("drop-target"); }
  });
  document.addEventListener("drop", function (event) {
    var column = dragged && event.target.closest && event.target.closest(".column[data-stage]");
    if (!column) { return; }
    event.preventDefault();
    column.classList.remove("drop-target");
    var form = dragged.querySelector("form.move");
    var select = form && form.querySelector("select[name=stage_id]");
    if (!select || select.value === column.getAttribute("data-stage")) { return; }
    select.value = column.getAttribute("data-stage");
    showReason(form);
    if (column.getAttribute("data-kind") === "lost") {
      // Not sent yet: the card shows its reason box, focused, next to its Move button.
      form.querySelector("input[name=lost_reason]").focus();
      return;
    }
    submit(form);
  });
})();
