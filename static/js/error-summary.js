// A refused form's summary (templates/_error_summary.html) takes the focus, so a keyboard or a screen
// reader starts at the list of problems, and comes to the top of the window with the form's heading above
// it. Its autofocus does without JavaScript what browsers allow: focused, scrolled just into view.
(() => {
  const summary = document.getElementById("error-summary");
  if (!summary) return;
  summary.focus({ preventScroll: true });
  summary.scrollIntoView({ block: "start" });
})();
