// The Generate playground: show only the fields the chosen model takes and quote the price live.
// The page works without this file; the server validates everything again on submit.
(() => {
  const form = document.getElementById("generate-form");
  const data = document.getElementById("catalog-data");
  if (!form || !data) return;
  const catalog = JSON.parse(data.textContent);
  const field = (name) => form.querySelector(`[data-field="${name}"]`);
  const input = (name) => form.elements.namedItem(name);
  const modelSelect = input("model");
  const typeSelect = input("type");
  // Form field -> API field, where the names differ.
  const apiNames = { negative_prompt: "negativePrompt", max_tokens: "maxTokens" };
  const modelParams = ["width", "height", "steps", "style", "duration", "resolution", "fps", "voice", "speed", "language", "max_tokens"];
  const numberParams = ["width", "height", "steps", "duration", "fps", "speed", "max_tokens"];
  const promptLabels = { TEXT_TO_SPEECH: "Text to read aloud", TEXT_TO_MUSIC: "Describe the music", CHAT: "Your message" };
  let quoteTimer = null;
  let quoteSeq = 0;

  const current = () => catalog.models[modelSelect.value] || { types: [], params: {}, credits: 0 };

  function show(name, visible) {
    const wrapper = field(name);
    if (!wrapper) return;
    wrapper.hidden = !visible;
    // Hidden fields are disabled so they are not sent: a model refuses settings it does not take.
    wrapper.querySelectorAll("input, select, textarea").forEach((el) => { el.disabled = !visible; });
  }

  function restrictTypes(model) {
    let firstAllowed = null;
    for (const option of typeSelect.options) {
      const allowed = model.types.includes(option.value);
      option.hidden = !allowed;
      option.disabled = !allowed;
      if (allowed && firstAllowed === null) firstAllowed = option.value;
    }
    if (!model.types.includes(typeSelect.value) && firstAllowed) typeSelect.value = firstAllowed;
  }

  // A numeric setting the model takes only a few values of is a select of them; a range is a number input.
  function fitWidget(name, spec) {
    const el = input(name);
    if (!el || !spec || !numberParams.includes(name)) return;
    const value = el.value;
    const wanted = spec.allowed ? "SELECT" : "INPUT";
    const fresh = el.tagName === wanted ? el : document.createElement(wanted.toLowerCase());
    if (fresh !== el) {
      for (const attr of ["id", "name", "aria-describedby", "aria-invalid"]) {
        if (el.hasAttribute(attr)) fresh.setAttribute(attr, el.getAttribute(attr));
      }
      if (wanted === "INPUT") {
        fresh.type = "number";
        fresh.step = name === "speed" ? "any" : "1";
      }
      el.replaceWith(fresh);
    }
    if (spec.allowed) {
      const values = spec.allowed.map(String);
      fresh.replaceChildren(new Option("Model default", ""), ...values.map((value) => new Option(value, value)));
    }
    fresh.value = value;  // kept where the new widget has it, else empty (the model's default)
  }

  function describeRange(name, spec) {
    const el = input(name);
    if (!el || !spec) return;
    const help = document.getElementById(`${el.id}_helptext`);
    if (help) {
      help.dataset.base = help.dataset.base || help.textContent;
      help.textContent = help.dataset.base;
    }
    if (el.tagName === "SELECT") {
      const allowed = (spec.allowed || []).map(String);
      for (const option of el.options) {
        option.hidden = option.value !== "" && !allowed.includes(option.value);
      }
      if (el.selectedOptions[0] && el.selectedOptions[0].hidden) el.value = "";
      el.options[0].textContent = spec.default !== undefined ? `Model default (${spec.default})` : "Model default";
      return;
    }
    if (el.type === "number") {
      if (spec.min !== undefined) el.min = spec.min; else el.removeAttribute("min");
      if (spec.max !== undefined) el.max = spec.max; else el.removeAttribute("max");
    }
    el.placeholder = spec.default !== undefined ? String(spec.default) : "";
    if (help && (el.type === "number" || !spec.allowed)) {
      const hint = spec.allowed ? spec.allowed.join(", ") : `${spec.min} to ${spec.max}`;
      help.textContent = `${spec.allowed ? "One of" : "From"} ${hint}. ${help.dataset.base}`;
    }
  }

  function fillList(id, values) {
    const list = document.getElementById(id);
    if (!list) return;
    list.replaceChildren(...(values || []).map((value) => new Option(value, value)));
  }

  function update() {
    const model = current();
    restrictTypes(model);
    const type = typeSelect.value;
    modelParams.forEach((name) => {
      const spec = model.params[apiNames[name] || name];
      fitWidget(name, spec);
      show(name, spec !== undefined);
      describeRange(name, spec);
    });
    show("seed", type !== "CHAT");
    show("negative_prompt", catalog.visual.includes(type));
    show("image", catalog.needsImage.includes(type));
    fillList("voice-options", model.params.voice && model.params.voice.allowed);
    fillList("language-options", model.params.language && model.params.language.allowed);
    fillList("style-options", model.params.style && model.params.style.allowed);
    const group = document.getElementById("settings");
    group.hidden = !group.querySelector(".field:not([hidden])");
    const promptLabel = form.querySelector('label[for="id_prompt"]');
    if (promptLabel) promptLabel.textContent = `${promptLabels[type] || "Prompt"}:`;
    input("prompt").placeholder = catalog.placeholders[type] || "";
    const description = document.getElementById("model-description");
    if (description) {
      const standIn = model.standIn
        ? " On this server it runs on the built-in local engine (no upstream is set up), at the hosted model's price."
        : "";
      description.textContent = (model.description || "") + standIn;
    }
  }

  function quoteBody() {
    // The page's own quote (this form, posted as "Check price"): it spends none of the API's rate limit.
    // Disabled fields, the settings the model does not take, are left out as on submit.
    const body = new FormData(form);
    body.set("intent", "quote");
    return body;
  }

  function showPrice(text, note) {
    document.getElementById("price").textContent = text;
    document.getElementById("price-note").textContent = note;
  }

  async function quote() {
    const seq = ++quoteSeq;
    const balance = Number(document.getElementById("balance").textContent.replace(/[^0-9]/g, ""));
    if (input("prompt").value.trim() === "") {
      const credits = current().credits;
      showPrice(String(credits), `credit${credits === 1 ? "" : "s"} at the model's default settings.`);
      return;
    }
    let response;
    try {
      response = await fetch(form.action, {
        method: "POST",
        body: quoteBody(),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
    } catch (error) {
      return;  // offline: the price is checked again on submit
    }
    if (seq !== quoteSeq) return;  // a newer quote is on its way
    const payload = await response.json().catch(() => ({}));
    if (response.ok) {
      const price = payload.data.creditsCharged;
      const plural = price === 1 ? "" : "s";
      const short = price > balance ? " That is more than your balance." : "";
      showPrice(String(price), `credit${plural} for this job.${short}`);
    } else if (response.status === 422) {
      const details = (payload.error && payload.error.details) || {};
      const first = Object.values(details)[0];
      showPrice("–", first ? `Not ready yet: ${first[0]}` : "Fill in the form to see the price.");
    } else {
      showPrice("–", "The price is checked again when you generate.");
    }
  }

  function scheduleQuote() {
    clearTimeout(quoteTimer);
    quoteTimer = setTimeout(quote, 400);
  }

  modelSelect.addEventListener("change", () => { update(); scheduleQuote(); });
  typeSelect.addEventListener("change", () => { update(); scheduleQuote(); });
  form.addEventListener("change", (event) => {
    if (event.target !== modelSelect && event.target !== typeSelect) scheduleQuote();
  });
  form.addEventListener("submit", (event) => {
    const button = event.submitter;
    if (button && button.value === "generate") {
      // Keep the button's value in the post, then stop a double click from submitting twice.
      setTimeout(() => { button.disabled = true; button.textContent = "Generating…"; }, 0);
    }
  });
  // Coming back with the Back button restores the page as it was left: make the button usable again.
  window.addEventListener("pageshow", () => {
    const button = document.getElementById("generate-button");
    button.disabled = false;
    button.textContent = "Generate";
  });
  update();
  if (!form.querySelector(".errorlist")) scheduleQuote();
})();
