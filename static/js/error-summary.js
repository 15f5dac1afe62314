// A refused form's summary (templates/_error_summary.html) takes the focus, so a keyboard or a screen
// reader starts at the list of problems. The form's action already scrolled the page to it.
(() => {
  const summary = document.getElementById("error-summary");
  if (summary) summary.focus({ preventScroll: true });
})();
