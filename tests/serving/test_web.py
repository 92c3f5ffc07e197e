"""The demo web page: served by the app (TestClient) and used in a real browser.

The browser tests drive Debian's Chromium through Playwright against the real service
(``cinerec serve`` in a subprocess). Without Chromium or Playwright they skip locally and
fail under CI, which installs both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi.testclient import TestClient

from cinerec.serving.web import ASSETS, WEB_DIR
from tests.services import skip_or_fail
from tests.serving.server import running_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 20_000  # generous: the first answers of a cold server on a 2-core machine
USER = "u7"  # a user of the test bundle, with training history


# ----- served by the app ----------------------------------------------------------------------


def test_the_page_is_served_as_html_with_its_script(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script src="/web/app.js"' in response.text
    assert 'href="/web/style.css"' in response.text
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_assets_are_served_with_their_content_types(client: TestClient) -> None:
    script = client.get("/web/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "/v1/recommendations" in script.text
    style = client.get("/web/style.css")
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")
    for name in ("index.html", "nope.js", "..%2Fweb.py"):
        missing = client.get(f"/web/{name}")
        assert missing.status_code == 404 and missing.json()["detail"]


def test_the_page_is_not_part_of_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(path.startswith("/web") for path in paths)
    assert "/v1/recommendations" in paths


def test_the_page_loads_nothing_from_elsewhere_and_never_parses_api_data_as_html() -> None:
    files = {name: (WEB_DIR / name).read_text() for name in ("index.html", *ASSETS)}
    for name, text in files.items():
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), name
    script = files["app.js"]
    assert not re.search(r"\.(inner|outer)HTML\b|insertAdjacentHTML|document\.write", script)


# ----- in a browser -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(bundle_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a real ``cinerec serve`` over the test bundle (its own SQLite log)."""
    tmp = tmp_path_factory.mktemp("web")
    env = {
        "CINEREC_BUNDLE": str(bundle_folder),
        "CINEREC_DATABASE_URL": f"sqlite:///{tmp / 'events.db'}",
    }
    with running_server(env, cwd=tmp) as (_, base):
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium driven by Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        skip_or_fail(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture()
def page(browser: Browser, server: str) -> Iterator[Page]:
    """A fresh page on the demo; fails the test if the page logs an error (CSP, JS)."""
    context = browser.new_context(base_url=server)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    opened.on(
        "console",
        lambda msg: (
            problems.append(f"console: {msg.text}")
            if msg.type == "error" and "the server responded with a status of" not in msg.text
            else None
        ),
    )
    opened.goto("/")
    try:
        yield opened
        assert not problems, problems
    finally:
        context.close()


def _idle(page: Page) -> None:
    """Wait until no request of the page is in flight (a selector: the CSP forbids eval)."""
    page.locator("body:not([data-busy])").wait_for(state="attached", timeout=WAIT_MS)


def _ask(page: Page, user_id: str, k: str) -> None:
    page.get_by_test_id("user-id").fill(user_id)
    page.get_by_test_id("k").fill(k)
    page.get_by_test_id("load").click()
    _idle(page)


def _card_ids(page: Page) -> list[str]:
    return [c.get_attribute("data-item-id") or "" for c in page.get_by_test_id("card").all()]


@pytest.mark.integration
def test_recommend_skip_and_more_like_this_in_a_browser(page: Page, server: str) -> None:
    from playwright.sync_api import expect

    cards = page.get_by_test_id("card")
    expect(cards.first).to_be_visible(timeout=WAIT_MS)  # the default user's list on load
    _ask(page, USER, "5")
    expect(cards).to_have_count(5, timeout=WAIT_MS)
    expect(page.get_by_test_id("message")).to_be_hidden()
    api = httpx.get(f"{server}/v1/recommendations", params={"user_id": USER, "k": 5}).json()
    assert _card_ids(page) == [item["item_id"] for item in api["items"]]
    assert cards.get_by_test_id("card-title").all_text_contents() == [
        item["title"] for item in api["items"]
    ]
    assert cards.get_by_test_id("card-reason").all_text_contents() == [
        item["reason"]["text"] for item in api["items"]
    ]
    assert cards.get_by_test_id("card-rank").all_text_contents() == [f"#{n}" for n in range(1, 6)]
    for n, item in enumerate(api["items"]):
        sources = cards.nth(n).get_by_test_id("card-sources").locator("li")
        assert sources.all_text_contents() == item["sources"]
    meta = page.get_by_test_id("meta")
    expect(meta).to_contain_text(api["model_version"])
    expect(meta).to_contain_text(api["config_hash"])
    expect(page.get_by_test_id("history-entry").first).to_be_visible()

    skipped = _card_ids(page)[0]
    cards.first.get_by_test_id("skip").click()
    expect(page.locator(f'[data-testid="card"][data-item-id="{skipped}"]')).to_have_count(
        0, timeout=WAIT_MS
    )
    _idle(page)
    expect(cards).to_have_count(5)
    expect(page.get_by_test_id("message")).to_be_hidden()
    newest = page.get_by_test_id("history-entry").first
    expect(newest).to_have_attribute("data-item-id", skipped)
    expect(newest).to_have_attribute("data-action", "skip")
    history = httpx.get(f"{server}/v1/users/{USER}/history").json()
    assert history[-1]["item_id"] == skipped and history[-1]["action"] == "skip"
    assert history[-1]["source"] == "online"

    anchor = _card_ids(page)[0]
    cards.first.get_by_test_id("more-like-this").click()
    similar = page.get_by_test_id("similar-entry")
    expect(similar).to_have_count(5, timeout=WAIT_MS)
    expect(page.get_by_test_id("similar-panel")).to_be_visible()
    shown = [s.get_attribute("data-item-id") for s in similar.all()]
    expected = httpx.get(f"{server}/v1/items/{anchor}/similar", params={"k": 5}).json()
    assert shown == [s["item_id"] for s in expected] and anchor not in shown


@pytest.mark.integration
def test_api_errors_are_shown_in_the_page(page: Page) -> None:
    from playwright.sync_api import expect

    message = page.get_by_test_id("message")
    cards = page.get_by_test_id("card")
    expect(cards.first).to_be_visible(timeout=WAIT_MS)
    _ask(page, USER, "0")
    expect(message).to_be_visible()
    expect(message).to_contain_text("422")
    expect(message).to_contain_text("greater than or equal to 1")
    expect(cards).to_have_count(0)

    _ask(page, USER, "3")  # a good query clears the message
    expect(cards).to_have_count(3)
    expect(message).to_be_hidden()

    _ask(page, "visitor-never-seen", "3")  # unknown user: the new-visitor path, no history
    expect(cards).to_have_count(3)
    expect(page.get_by_test_id("history-empty")).to_be_visible()
    expect(page.get_by_test_id("history-entry")).to_have_count(0)
    expect(page.get_by_test_id("meta")).to_contain_text("new-visitor")
    expect(message).to_be_hidden()

    _ask(page, "", "3")  # anonymous: a list, but feedback needs a user id (API says so)
    expect(cards).to_have_count(3)
    cards.first.get_by_test_id("like").click()
    _idle(page)
    expect(message).to_contain_text("422")
    expect(message).to_contain_text("user_id")


@pytest.mark.integration
def test_api_data_is_shown_as_text_and_a_404_reaches_the_message(page: Page) -> None:
    from playwright.sync_api import expect

    hostile = '<img src="x" data-testid="injected"> & <b>bold</b>'

    def rewrite(route: Route) -> None:
        answer = route.fetch()
        body: dict[str, Any] = answer.json()
        body["items"][0]["item_id"] = "no-such-item"
        body["items"][0]["title"] = hostile
        body["items"][0]["reason"]["text"] = hostile
        route.fulfill(response=answer, body=json.dumps(body))

    cards = page.get_by_test_id("card")
    expect(cards.first).to_be_visible(timeout=WAIT_MS)
    page.route(re.compile(r"/v1/recommendations\?"), rewrite)
    _ask(page, USER, "4")
    expect(cards).to_have_count(4)
    expect(cards.first.get_by_test_id("card-title")).to_have_text(hostile)
    expect(cards.first.get_by_test_id("card-reason")).to_have_text(hostile)
    expect(page.get_by_test_id("injected")).to_have_count(0)
    expect(page.locator(".card b")).to_have_count(0)

    cards.first.get_by_test_id("more-like-this").click()  # the real API: unknown item
    _idle(page)
    message = page.get_by_test_id("message")
    expect(message).to_be_visible()
    expect(message).to_contain_text("404")
    expect(message).to_contain_text("unknown item 'no-such-item'")
    expect(page.get_by_test_id("similar-panel")).to_be_hidden()
