// Keyboard labelling on the review pages (no inline script: the CSP forbids it).
// Digits 1-9 and 0 pick the choice with that number in the first field without a choice
// (once every field has one: the field holding the focus, to correct it); n / p open the next / previous unit; Enter submits the
// label form once every field has a choice. Keys typed into a text box are left alone.
(function () {
  "use strict";
  function form() { return document.getElementById("label-form"); }
  function activeField(f) {
    // the first field without a choice; once all have one, the field holding the focus
    var sets = f.querySelectorAll("fieldset.field");
    for (var i = 0; i < sets.length; i++) {
      if (!sets[i].querySelector("input[type=radio]:checked")) { return sets[i]; }
    }
    var focused = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest("fieldset.field") : null;
    if (focused && f.contains(focused)) { return focused; }
    return sets.length ? sets[sets.length - 1] : null;
  }
  function complete(f) {
    var sets = f.querySelectorAll("fieldset.field");
    for (var i = 0; i < sets.length; i++) {
      if (!sets[i].querySelector("input[type=radio]:checked")) { return false; }
    }
    return true;
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var target = event.target;
    if (target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type !== "radio"))) { return; }
    var f = form();
    if (/^[0-9]$/.test(event.key) && f) {
      var field = activeField(f);
      if (!field) { return; }
      var index = event.key === "0" ? 9 : Number(event.key) - 1;
      var radios = field.querySelectorAll("input[type=radio]");
      if (index < radios.length) {
        radios[index].checked = true;
        field.classList.add("picked");
        event.preventDefault();
      }
    } else if (event.key === "n" || event.key === "p") {
      var link = document.getElementById(event.key === "n" ? "next-link" : "prev-link");
      if (link) { event.preventDefault(); window.location.assign(link.href); }
    } else if (event.key === "Enter" && f && complete(f)) {
      event.preventDefault();
      f.requestSubmit();
    }
  });
})();
