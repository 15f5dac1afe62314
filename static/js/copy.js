// Copy buttons: <button data-copy="#selector" hidden> copies that element's text. They are hidden until
// this file runs: without JavaScript there is nothing they could do.
document.querySelectorAll("[data-copy]").forEach((button) => { button.hidden = false; });

function selectText(source) {
  const range = document.createRange();
  range.selectNodeContents(source);
  window.getSelection().removeAllRanges();
  window.getSelection().addRange(range);
}

async function copyText(source) {
  const text = source.textContent.trim();
  try {
    // Only in a secure context (https, or this machine): a server reached over http at a LAN address has none.
    await navigator.clipboard.writeText(text);
    return true;
  } catch (error) {
    selectText(source);
    return document.execCommand("copy");  // the older way, which still works where the above does not
  }
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  const status = document.getElementById("copy-status");
  if (await copyText(source)) {
    button.textContent = "Copied";
    if (status) status.textContent = "Copied to the clipboard.";
  } else {
    selectText(source);
    if (status) status.textContent = "Press Ctrl+C (or Cmd+C) to copy the selected text.";
  }
});
