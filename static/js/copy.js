// Copy buttons: <button data-copy="#selector"> copies that element's text.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  const status = document.getElementById("copy-status");
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
    if (status) status.textContent = "Copied to the clipboard.";
  } catch (error) {
    const range = document.createRange();
    range.selectNodeContents(source);
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
    if (status) status.textContent = "Press Ctrl+C (or Cmd+C) to copy the selected key.";
  }
});
