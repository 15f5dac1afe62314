"""Every page a user reaches, checked for what a screen reader and a keyboard need: a title that says where
you are, the page's language, one h1 and headings in order, a label for every control, help and errors tied
to their fields, text alternatives for images and names for table columns."""

import re

import pytest

from billing.services import wallet_adjust
from generation.models import AiModel, Job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

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
    page.get_by_role("button", name="Create API Key").click()
    yield "api keys, refused"
    page.get_by_role("link", name="Roll").click()
    yield "roll a key"
    page.goto(f"{base}/settings/api-keys/")
    page.get_by_role("link", name="Revoke").click()
    yield "revoke a key"
    page.goto(f"{base}/settings/api-keys/")
    page.get_by_label("Name:", exact=True).fill("CI")
    page.get_by_role("button", name="Create API Key").click()
    yield "new key"
    page.goto(f"{base}/settings/webhooks/")
    yield "webhooks"
    page.get_by_label("Endpoint URL:", exact=True).fill(receiver.url)
    page.get_by_role("button", name="Set URL").click()
    yield "webhook secret"
    page.goto(f"{base}/settings/webhooks/remove/")
    yield "remove the webhook"
    page.context.clear_cookies(name="csrftoken")  # as when the form sat open past the session's end
    page.get_by_role("button", name="Remove endpoint").click()
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
