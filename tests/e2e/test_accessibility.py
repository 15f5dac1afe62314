"""Every page a user reaches, checked for what a screen reader and a keyboard need: a title that says where
you are, the page's language, one h1 and headings in order, a label for every control, help and errors tied
to their fields, text alternatives for images and names for table columns."""

import re

import pytest
from playwright.sync_api import expect

from billing.services import wallet_adjust
from generation.models import AiModel, Job
from tests.e2e.conftest import contrast

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = "var/test/screenshots"
TITLE = re.compile(r"^\S.* · Flixly$")

# What a sighted mouse user gets for free, listed per page as sentences a failure can print.
SEMANTICS = r"""() => {
  const problems = [];
  const shown = (el) => !el.closest('[hidden]') && getComputedStyle(el).display !== 'none';
  const text = (el) => el.textContent.replace(/\s+/g, ' ').trim();
  const html = (el) => el.outerHTML.slice(0, 100);
  if (document.documentElement.lang !== 'en') problems.push(`<html lang> is ${document.documentElement.lang}`);
  const headings = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].filter(shown);
  const h1s = headings.filter((h) => h.tagName === 'H1').length;
  if (h1s !== 1) problems.push(`${h1s} h1 headings`);
  headings.reduce((previous, h) => {
    const level = Number(h.tagName[1]);
    if (level > previous + 1) problems.push(`${h.tagName} "${text(h)}" skips a level`);
    return level;
  }, 0);
  if (!document.querySelector('main#main') || !document.querySelector('a.skip-link[href="#main"]'))
    problems.push('no main landmark with a skip link to it');
  const controls = [...document.querySelectorAll('input:not([type=hidden]), select, textarea')].filter(shown);
  for (const control of controls) {
    const named = control.labels.length || control.getAttribute('aria-labelledby');
    if (!named && !control.getAttribute('aria-label')) problems.push(`no label: ${html(control)}`);
  }
  for (const el of document.querySelectorAll('[aria-describedby], [aria-labelledby]')) {
    const ids = `${el.getAttribute('aria-describedby') || ''} ${el.getAttribute('aria-labelledby') || ''}`;
    for (const id of ids.trim().split(/\s+/)) {
      if (id && !document.getElementById(id)) problems.push(`${html(el)} points at a missing #${id}`);
    }
  }
  // A field's help and errors are read with it: the control, or the fieldset of a group of choices, names them.
  for (const field of [...document.querySelectorAll('.field')].filter(shown)) {
    const control = field.querySelector('fieldset') || field.querySelector('input, select, textarea');
    const describedBy = (control && control.getAttribute('aria-describedby') || '').split(/\s+/);
    for (const note of field.querySelectorAll('.errorlist, .helptext, small')) {
      if (!describedBy.includes(note.id)) problems.push(`"${text(note).slice(0, 40)}" is not tied to ${html(control)}`);
    }
  }
  const described = [...document.querySelectorAll('[aria-describedby]')]
    .flatMap((el) => el.getAttribute('aria-describedby').split(/\s+/));
  for (const errors of [...document.querySelectorAll('.errorlist')].filter(shown)) {
    if (!described.includes(errors.id)) problems.push(`"${text(errors).slice(0, 40)}" is tied to no field`);
  }
  for (const el of document.querySelectorAll('a[href], button')) {
    if (shown(el) && !text(el) && !el.getAttribute('aria-label')) problems.push(`nameless: ${html(el)}`);
  }
  for (const img of document.querySelectorAll('img:not([alt])')) problems.push(`no alt: ${html(img)}`);
  for (const svg of document.querySelectorAll('svg:not([aria-hidden=true]):not([role=img])')) {
    problems.push(`an svg neither hidden nor named: ${html(svg)}`);
  }
  for (const table of document.querySelectorAll('table')) {
    if (!table.querySelector('th')) problems.push(`table without headers: ${html(table)}`);
  }
  for (const th of document.querySelectorAll('th')) {
    if (!text(th)) problems.push(`an empty column header in ${text(th.closest('tr')).slice(0, 60)}`);
  }
  return problems;
}"""


def page_problems(page) -> list[str]:
    problems = page.evaluate(SEMANTICS)
    title = page.title()
    if not TITLE.match(title) or title.startswith("Flixly ·"):
        problems.append(f"the title {title!r} does not say where you are")
    return problems


@pytest.fixture
def account(signed_in, live_server, catalog, make_key, django_user_model, receiver):
    """The signed-in user with credits, a key, a finished job and a webhook endpoint."""
    user = django_user_model.objects.get(email="someone@example.com")
    wallet_adjust(user_id=user.pk, amount=100, reason="test funds")
    make_key(user, name="Laptop")
    model = AiModel.objects.get(pk="local-image")
    job = Job.objects.create(
        user=user, model=model, type="TEXT_TO_IMAGE", params={"prompt": "A lighthouse"}, status="completed",
        route=model.route, credits_charged=1,
    )  # fmt: skip
    signed_in.job_url = f"/jobs/{job.pk}/"
    return signed_in


def visit_every_signed_in_page(page, live_server, receiver):
    """Go to each page a signed-in user reaches, yielding its name on arrival."""
    base = live_server.url

    def follow(control) -> None:
        # A click starts the navigation without waiting for it: a check run meanwhile can find no document.
        with page.expect_navigation():
            control.click()

    for name, path in [
        ("dashboard", "/dashboard/"), ("generate", "/generate/"), ("jobs", "/jobs/"), ("job", page.job_url),
        ("billing", "/billing/"), ("docs", "/docs/"), ("e-mail settings", "/accounts/email/"),
        ("password settings", "/accounts/password/change/"), ("404", "/no-such-page/"),
    ]:  # fmt: skip
        page.goto(f"{base}{path}")
        yield name
    page.goto(f"{base}/settings/api-keys/")
    yield "api keys"
    page.get_by_label("Name:", exact=True).fill("No scopes")
    for scope in page.get_by_role("group", name="Scopes").get_by_role("checkbox").all():
        scope.uncheck()
    follow(page.get_by_role("button", name="Create API Key"))
    yield "api keys, refused"
    follow(page.get_by_role("link", name="Roll"))
    yield "roll a key"
    page.goto(f"{base}/settings/api-keys/")
    follow(page.get_by_role("link", name="Revoke"))
    yield "revoke a key"
    page.goto(f"{base}/settings/api-keys/")
    page.get_by_label("Name:", exact=True).fill("CI")
    follow(page.get_by_role("button", name="Create API Key"))
    yield "new key"
    page.goto(f"{base}/settings/webhooks/")
    yield "webhooks"
    page.get_by_label("Endpoint URL:", exact=True).fill(receiver.url)
    follow(page.get_by_role("button", name="Set URL"))
    yield "webhook secret"
    page.goto(f"{base}/settings/webhooks/remove/")
    yield "remove the webhook"
    page.context.clear_cookies(name="csrftoken")  # as when the form sat open past the session's end
    follow(page.get_by_role("button", name="Remove endpoint"))
    yield "403"


PUBLIC_PAGES = {
    "home": "/", "log in": "/accounts/login/", "sign up": "/accounts/signup/", "docs": "/docs/",
    "password reset": "/accounts/password/reset/", "reset link that is not valid": "/accounts/password/reset/key/x-y/",
    "confirmation link that is not valid": "/accounts/confirm-email/nope/", "404": "/no-such-page/",
}  # fmt: skip


def test_every_signed_in_page_is_titled_headed_and_labelled(account, live_server, receiver):
    page = account
    problems = {name: page_problems(page) for name in visit_every_signed_in_page(page, live_server, receiver)}
    assert page.get_by_role("heading", name="This form has expired").is_visible()
    assert len(problems) == 18
    assert not {name: found for name, found in problems.items() if found}


def test_every_public_page_is_titled_headed_and_labelled(page, live_server):
    problems = {}
    for name, path in PUBLIC_PAGES.items():
        page.goto(f"{live_server.url}{path}")
        problems[name] = page_problems(page)
    assert not {name: found for name, found in problems.items() if found}


# An element's place in the page, the same for the focused element and for the list of controls.
PATH = r"""(el) => {
  const steps = [];
  for (let n = el; n !== document.body; n = n.parentElement) {
    steps.unshift(n.tagName + [...n.parentElement.children].indexOf(n));
  }
  return steps.join('/');
}"""

# The focused element, how its focus shows, and the colour behind that ring (the nearest painted background).
FOCUSED = f"""() => {{
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const behind = (node) => {{
    for (let n = node; n; n = n.parentElement) {{
      const colour = getComputedStyle(n).backgroundColor;
      if (!/rgba\\(.*, 0\\)$/.test(colour)) return colour;
    }}
    return 'rgb(255, 255, 255)';
  }};
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  const onScreen = box.width > 0 && box.left >= 0 && box.top >= 0 && box.right <= innerWidth;
  return {{
    path: ({PATH})(el), html: el.outerHTML.slice(0, 80), onScreen: onScreen && box.bottom <= innerHeight,
    style: style.outlineStyle, width: parseFloat(style.outlineWidth), colour: style.outlineColor,
    behind: behind(el.parentElement),
  }};
}}"""

# Every control a mouse can use in the page's content.
CONTROLS = f"""() => [...document.querySelectorAll(
    'main a[href], main button, main input:not([type=hidden]), main select, main textarea')]
  .filter((el) => el.getClientRects().length && getComputedStyle(el).visibility !== 'hidden' && !el.disabled)
  .filter((el) => el.type !== 'radio' || el.checked)  // arrow keys, not Tab, move within a group of radios
  .map({PATH})"""


def tab_through(page) -> list[dict]:
    """Press Tab from the top of the page until the focus leaves it (or comes round again): each stop once."""
    page.wait_for_load_state()
    # From the top, wherever the page put the focus: a focused and removed element leaves the start there.
    page.evaluate("""() => { const start = document.createElement('span'); start.tabIndex = -1;
      document.body.prepend(start); start.focus(); start.remove(); window.scrollTo(0, 0); }""")
    stops: dict[str, dict] = {}
    for _ in range(150):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None or focused["path"] == next(iter(stops), None):
            return list(stops.values())
        stops.setdefault(focused["path"], focused)  # a date field's parts are one control, met three times
    raise AssertionError(f"the focus never leaves {page.url}: a keyboard trap near {focused['html']}")


def keyboard_problems(page) -> list[str]:
    stops = tab_through(page)
    problems = []
    if not stops or "skip-link" not in stops[0]["html"] or not stops[0]["onScreen"]:
        problems.append("the first Tab does not show a skip link")
    for stop in stops:
        if stop["style"] == "auto":
            continue  # the browser's own two-tone ring, as around a scrollable code sample
        if stop["style"] == "none" or stop["width"] < 2:
            problems.append(f"no focus ring: {stop['html']}")
        elif contrast(stop["colour"], stop["behind"]) < 3:
            ratio = contrast(stop["colour"], stop["behind"])
            problems.append(f"focus ring {stop['colour']} on {stop['behind']} is {ratio:.2f}:1: {stop['html']}")
    missed = set(page.evaluate(CONTROLS)) - {stop["path"] for stop in stops}
    problems += [f"Tab never reaches {path}" for path in sorted(missed)]
    return problems


def test_the_keyboard_reaches_every_control_of_every_page_with_a_ring_that_shows(account, live_server, receiver):
    page = account
    problems = {name: keyboard_problems(page) for name in visit_every_signed_in_page(page, live_server, receiver)}
    for name, path in PUBLIC_PAGES.items():
        page.goto(f"{live_server.url}{path}")
        problems[f"{name}, signed in"] = keyboard_problems(page)
    assert not {name: found for name, found in problems.items() if found}


FIELDS = "main input:not([type=hidden]):not([type=checkbox]):not([type=radio]), main select, main textarea"
FIELD_EDGES = f"""() => [...document.querySelectorAll('{FIELDS}')]
  .filter((el) => el.getClientRects().length)
  .map((el) => {{
    let behind = 'rgb(255, 255, 255)';
    for (let n = el.parentElement; n; n = n.parentElement) {{
      const colour = getComputedStyle(n).backgroundColor;
      if (!/rgba\\(.*, 0\\)$/.test(colour)) {{ behind = colour; break; }}
    }}
    return [el.outerHTML.slice(0, 60), getComputedStyle(el).borderTopColor, behind];
  }})"""


def test_every_fields_edge_stands_out_from_what_is_around_it(account, live_server):
    # The fields' 1.3:1 border on a white card left an empty field hard to find (WCAG asks 3:1 of a control).
    page = account
    faint = []
    for path in ["/generate/", "/jobs/", "/settings/api-keys/", "/settings/webhooks/", "/accounts/password/change/"]:
        page.goto(f"{live_server.url}{path}")
        for field, edge, behind in page.evaluate(FIELD_EDGES):
            if contrast(edge, behind) < 3:
                faint.append(f"{path} {field}: {edge} on {behind} is {contrast(edge, behind):.2f}:1")
    assert not faint


def refuse_the_login(page, base):
    page.context.clear_cookies()
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill("someone@example.com")
    page.locator("#id_password").fill("not my password")
    page.get_by_role("button", name="Sign In").click()
    return "The email address and/or password you specified are not correct."


def refuse_the_sign_up(page, base):
    page.context.clear_cookies()
    page.goto(f"{base}/accounts/signup/")
    page.get_by_label("Email").fill("new@example.com")
    page.locator("#id_password1").fill("12345678")
    page.locator("#id_password2").fill("12345678")
    page.get_by_role("button", name="Sign Up").click()
    return "Password: This password is too common."


def refuse_the_password_change(page, base):
    page.goto(f"{base}/accounts/password/change/")
    page.locator("#id_oldpassword").fill("not my password")
    page.locator("#id_password1").fill("Another-Quiet-Lake-77")
    page.locator("#id_password2").fill("Another-Quiet-Lake-77")
    page.get_by_role("button", name="Change Password").click()
    return "Please type your current password."


def refuse_the_email_change(page, base):
    page.goto(f"{base}/accounts/email/")
    page.get_by_label("Change to:").fill("someone@example.com")
    page.get_by_role("button", name="Change Email").click()
    return "Email: This email address is already associated with this account."


def refuse_the_webhook_url(page, base):
    page.goto(f"{base}/settings/webhooks/")
    page.get_by_label("Endpoint URL:", exact=True).fill("https://169.254.169.254/latest/meta-data")
    page.get_by_role("button", name="Set URL").click()
    return "Endpoint URL: "


def refuse_the_roll(page, base):
    page.goto(f"{base}/settings/api-keys/")
    page.get_by_role("link", name="Roll").click()
    page.locator("form").last.evaluate("form => { form.noValidate = true; }")  # as a browser without checks
    page.get_by_label("Keep the old secret working for (hours)").fill("48")
    page.get_by_role("button", name="Roll key").click()
    return "Ensure this value is less than or equal to 24."


def refuse_the_job(page, base):
    page.goto(f"{base}/generate/")
    page.get_by_label("Model").select_option("local-image")
    page.get_by_label("Prompt:", exact=True).fill("A lighthouse")
    page.locator("#generate-form").evaluate("form => { form.noValidate = true; }")
    page.get_by_label("Width (pixels)").fill("99999")
    page.get_by_role("button", name="Generate", exact=True).click()
    return "Width (pixels): Must be between"


@pytest.mark.parametrize(
    "refuse",
    [
        refuse_the_login, refuse_the_sign_up, refuse_the_password_change, refuse_the_email_change,
        refuse_the_webhook_url, refuse_the_roll, refuse_the_job,
    ],
)  # fmt: skip
def test_a_refused_form_takes_the_focus_to_an_alert_that_says_what_is_wrong(account, live_server, refuse):
    # The page came back with the focus at its top and the errors silent: a screen reader heard the page's
    # title again, and a keyboard user tabbed through the whole menu to find the field.
    page = account
    problem = refuse(page, live_server.url)
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    assert summary.get_attribute("role") == "alert"
    assert problem in summary.inner_text()
    page.screenshot(path=f"{SCREENSHOTS}/refused-{refuse.__name__}.png")
    assert not page_problems(page)  # and each field names its own error


def test_the_live_price_is_read_whole_and_politely_and_leaves_the_focus_alone(account, live_server):
    # The price and its note change as two nodes: a screen reader read "2" or "credits for this job." alone.
    page = account
    page.goto(f"{live_server.url}/generate/")
    page.get_by_label("Model").select_option("local-image")
    page.get_by_label("Prompt:", exact=True).fill("A lighthouse")
    width = page.get_by_label("Width (pixels)")
    width.fill("2048")
    page.get_by_label("Height (pixels)").fill("2048")
    page.get_by_label("Height (pixels)").press("Tab")
    expect(page.locator("#price-note")).to_have_text("credits for this job.")
    live = page.locator("#price-box")
    assert (live.get_attribute("aria-live"), live.get_attribute("aria-atomic")) == ("polite", "true")
    expect(page.get_by_label("Steps:")).to_be_focused()  # the quote did not take the focus
