// medsafe workbench: every script of the app lives in static files (the CSP forbids inline
// script). Confirm-before-submit for forms that carry data-confirm.
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
