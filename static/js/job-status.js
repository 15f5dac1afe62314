// An unfinished job's page follows the job in place. A reload every 2 s (the <noscript> fallback) sends the
// focus and a screen reader back to the top of the page each time; instead this fetches the page and swaps
// in only the parts (data-job-part) whose data-state changed, and says a new status politely (#job-announce).
(() => {
  const announcer = document.getElementById("job-announce");
  if (!announcer || !document.querySelector("[data-job-live]")) return;
  const heading = document.querySelector("h1");

  // A part that held the focus is gone once swapped: the focus goes to the heading, not to the page's top.
  function swap(part, fresh) {
    const hadFocus = part.contains(document.activeElement);
    part.replaceWith(fresh);
    if (hadFocus) heading.focus();
  }

  function update(page) {
    for (const fresh of page.querySelectorAll("[data-job-part]")) {
      const part = document.querySelector(`[data-job-part="${fresh.dataset.jobPart}"]`);
      if (part && part.dataset.state !== fresh.dataset.state) swap(part, document.adoptNode(fresh));
    }
  }

  async function follow() {
    try {
      const response = await fetch(location.href, { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) return setTimeout(follow, 2000);
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const before = document.getElementById("job-status").dataset.state;
      update(page);
      const after = document.getElementById("job-status").dataset.state;
      if (after !== before) announcer.textContent = `Job status: ${after}.`;
      if (page.querySelector("[data-job-live]")) setTimeout(follow, 2000);
    } catch (error) {
      setTimeout(follow, 2000);  // offline for a moment: try again
    }
  }

  setTimeout(follow, 2000);
})();
