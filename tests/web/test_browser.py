"""The web UI in a real browser, between two real nodes.

Two node processes on loopback (a French central authority and the Kenyan
24/7 point of contact), introduced and bound by an agreement, their accounts
made with ``comity user add``. In Chromium: an FR officer drafts an expedited
preservation request and submits it, is refused the supervisor's approval
(403), an FR supervisor approves and sends it, a KE officer finds it in the
inbox, acknowledges it and executes it partially with an evidence file, and
the FR officer watches the state and the evidence arrive on the request's
page and verifies every byte. Separately: signing in with the keyboard alone,
and switching the pages to French.

Full-page screenshots of the key pages go to ``$COMITY_SCREENSHOTS`` (default
``build/screenshots/``). Every wait is bounded; every process is stopped in
the fixture's teardown.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from comity.demo import SCOPE
from comity.localnet import LocalNode, agree, comity_command, introduce, spawn

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PASSWORD = "correct horse battery staple"
REFERENCE = "FR-BEPI-2026-0501"
PARTIAL = "Partially executed (Budapest Art. 27(6))"
WAIT_MS = 90_000  # for what crosses the federation: delivery, evidence upload
PNG = b"\x89PNG\r\n\x1a\n"
ELEMENTS = {
    "requesting_authority": "Parquet de Paris — section J3 cybercriminalité",
    "summary_of_facts": "Intrusion into a hospital network; ransomware deployed from a "
                        "server rented in Nairobi.",
    "data_to_preserve": "Connection logs and traffic data of server 41.x",
    "relationship_to_offence": "The server relayed the attackers' commands.",
    "custodian_or_location": "ExampleHost Ltd, Nairobi data centre",
    "necessity": "The logs are overwritten after 30 days.",
    "mla_intention": "A request for mutual assistance will follow.",
}


@dataclass
class Pair:
    """The two nodes, and where the screenshots go."""

    fr: LocalNode
    ke: LocalNode
    shots: Path


def _add_users(accounts: list[tuple[LocalNode, str, str]], password_file: Path) -> None:
    """``comity user add`` for every (node, username, role), all at once."""
    running = []
    for node, username, role in accounts:
        cmd = comity_command("user", "add", username, "--data-dir", str(node.data_dir),
                             "--role", role, "--password-file", str(password_file))
        running.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        env={**os.environ, **node.env}))
    try:
        for proc in running:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    finally:
        for proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _screenshot_dir() -> Path:
    default = Path(__file__).resolve().parents[2] / "build" / "screenshots"
    path = Path(os.environ.get("COMITY_SCREENSHOTS") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """FR and KE as processes, introduced, under an agreement in force, with accounts."""
    root = tmp_path_factory.mktemp("browser")
    nodes: list[LocalNode] = []
    try:
        with ThreadPoolExecutor(2) as pool:  # the pool waits for both
            started = [pool.submit(spawn, root, "fr", jurisdiction="FR",
                                   kind="central-authority"),
                       pool.submit(spawn, root, "ke", jurisdiction="KE",
                                   kind="point-of-contact-24-7")]
        nodes.extend(f.result() for f in started if f.exception() is None)
        for future in started:
            future.result()  # the first failure, if any, after keeping what started
        fr, ke = nodes
        introduce(nodes)
        agree(fr, [ke], title="FR–KE cooperation on cybercrime", scope=SCOPE, timeout=60)
        secret = root / "password"
        secret.write_text(PASSWORD + "\n")
        secret.chmod(0o600)
        _add_users([(fr, "officer", "officer"), (fr, "supervisor", "supervisor"),
                    (fr, "clerk", "analyst"), (ke, "officer", "officer")], secret)
        yield Pair(fr, ke, _screenshot_dir())
    finally:
        for node in nodes:
            node.close()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[Callable[[], BrowserContext]]:
    """A fresh browser context per person (own cookies), all closed afterwards."""
    made: list[BrowserContext] = []

    def new() -> BrowserContext:
        context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
        context.set_default_timeout(20_000)
        made.append(context)
        return context

    try:
        yield new
    finally:
        for context in made:
            context.close()


def _shot(page: Page, pair: Pair, name: str) -> Path:
    path = pair.shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _assert_pngs(paths: list[Path]) -> None:
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG), path
        assert len(data) > 1000, path


def _sign_in(context: BrowserContext, node: LocalNode, username: str) -> Page:
    page = context.new_page()
    page.goto(f"{node.url}/ui/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{node.url}/ui/")
    return page


def _reload_until(page: Page, ready: Callable[[], bool], *, what: str,
                  timeout: float = WAIT_MS / 1000) -> None:
    """Reload ``page`` until ``ready()``, for pages that do not refresh themselves."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, f"{what}: not after {timeout:.0f} s"
        page.wait_for_timeout(300)
        page.reload()


def _draft(page: Page, pair: Pair) -> str:
    """The FR officer drafts the preservation request and submits it; returns its id."""
    page.goto(f"{pair.fr.url}/ui/requests/new?type=expedited-preservation")
    target = page.locator("#target option").first.get_attribute("value") or ""
    assert "|" in target, "no agreement in force to choose"
    page.select_option("#target", target)
    page.fill("#reference", REFERENCE)
    page.select_option("#offence", "illegal-access")
    page.check("#dc-traffic")
    page.check("#urgent")
    for name, value in ELEMENTS.items():
        page.fill(f"#field_{name}", value)
    _shot(page, pair, "03-fr-new-request")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.locator("#request-state")).to_have_attribute("data-state", "pending_approval")
    found = re.search(r"/ui/requests/([^/?#]+)$", page.url)
    assert found, page.url
    return found.group(1)


def _refused_approval(page: Page, pair: Pair, rid: str) -> None:
    """The officer cannot approve: no button, and a crafted form is answered 403."""
    expect(page.get_by_role("button", name="Approve and send")).to_have_count(0)
    csrf = page.locator("input[name=csrf]").first.input_value()
    resp = page.request.post(f"{pair.fr.url}/ui/requests/{rid}/approve", form={"csrf": csrf})
    assert resp.status == 403, resp.text()[:500]
    body = resp.text()
    assert "Not allowed" in body
    assert "needs the role supervisor" in body
    page.reload()
    expect(page.locator("#request-state")).to_have_attribute("data-state", "pending_approval")


def _approve(context: BrowserContext, pair: Pair, rid: str) -> None:
    page = _sign_in(context, pair.fr, "supervisor")
    page.goto(f"{pair.fr.url}/ui/requests/{rid}")
    page.get_by_role("button", name="Approve and send").click()
    expect(page.locator("#request-state")).to_have_attribute("data-state", "sent")
    _shot(page, pair, "04-fr-request-sent")


def _open_incoming(page: Page, pair: Pair) -> None:
    page.goto(f"{pair.ke.url}/ui/requests?direction=in")
    link = page.get_by_role("link", name=REFERENCE)
    _reload_until(page, lambda: link.count() == 1, what="the request reaches KE's inbox")
    _shot(page, pair, "05-ke-inbox")
    link.click()
    expect(page.locator("#request-state")).to_have_attribute("data-state", "sent")


def _answer(page: Page, pair: Pair, evidence: Path) -> None:
    """The KE officer acknowledges, then executes partially with an evidence file."""
    ack = page.locator("details.act").filter(
        has=page.locator("form[action$='/events/acknowledge']"))
    ack.locator("summary").click()
    ack.locator("#acknowledge-reference").fill("KE-247-2026-101")
    ack.locator("button[type=submit]").click()
    expect(page.locator("#request-state")).to_have_attribute("data-state", "acknowledged")
    partial = page.locator("details.act").filter(
        has=page.locator("summary", has_text=PARTIAL))
    partial.locator("summary").click()
    partial.locator("#execute_partially-summary").fill("Traffic data preserved and returned.")
    partial.locator("#execute_partially-not_executed").fill(
        "Content data: not held by the provider.")
    partial.locator("input[type=file][name=evidence]").set_input_files(str(evidence))
    _shot(page, pair, "06-ke-request-answering")
    partial.get_by_role("button", name=PARTIAL).click()
    expect(page.locator("#request-state")).to_have_attribute("data-state",
                                                             "executed_partially")
    expect(page.locator(".evidence-status")).to_have_count(1)
    _shot(page, pair, "07-ke-request-executed")


def _verify(page: Page, pair: Pair) -> None:
    """On FR's page (which polls its live part): the new state, the evidence, verified."""
    expect(page.locator("#request-state")).to_have_attribute(
        "data-state", "executed_partially", timeout=WAIT_MS)
    expect(page.locator(".evidence-status")).to_have_attribute(
        "data-status", "received", timeout=WAIT_MS)
    page.reload()  # a fresh page: no poll swaps the button away while it is clicked
    _shot(page, pair, "08-fr-evidence-received")
    page.get_by_role("button", name="Verify every byte").click()
    expect(page.locator(".evidence-status")).to_have_attribute("data-status", "verified")
    expect(page.get_by_role("button", name="Verify every byte")).to_have_count(0)
    _shot(page, pair, "09-fr-evidence-verified")


def test_preservation_request_between_two_nodes(
        pair: Pair, contexts: Callable[[], BrowserContext], tmp_path: Path) -> None:
    officer = _sign_in(contexts(), pair.fr, "officer")
    rid = _draft(officer, pair)
    _refused_approval(officer, pair, rid)
    _approve(contexts(), pair, rid)
    ke = _sign_in(contexts(), pair.ke, "officer")
    _open_incoming(ke, pair)
    evidence = tmp_path / "server-41-traffic.log"
    evidence.write_bytes(b"2026-11-20T03:14:07Z 41.0.0.7 -> 203.0.113.9:443 1420 bytes\n" * 64)
    _answer(ke, pair, evidence)
    officer.goto(f"{pair.fr.url}/ui/requests/{rid}")
    _verify(officer, pair)
    files = officer.locator(".package li").first
    expect(files).to_contain_text(evidence.name)
    _assert_pngs([pair.shots / f"{n}.png" for n in (
        "03-fr-new-request", "04-fr-request-sent", "05-ke-inbox", "06-ke-request-answering",
        "07-ke-request-executed", "08-fr-evidence-received", "09-fr-evidence-verified")])


def _keyboard_sign_in(page: Page, username: str) -> None:
    """Tab to the username field, type, Tab to the password, type, Enter: no mouse."""
    for _ in range(10):
        if page.evaluate("document.activeElement && document.activeElement.id") == "username":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "username"
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")


def test_keyboard_sign_in_and_french_pages(
        pair: Pair, contexts: Callable[[], BrowserContext]) -> None:
    page = contexts().new_page()
    page.goto(f"{pair.fr.url}/ui/login")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    login = _shot(page, pair, "01-login")
    _keyboard_sign_in(page, "clerk")
    expect(page).to_have_url(f"{pair.fr.url}/ui/")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    dashboard = _shot(page, pair, "02-dashboard")
    page.goto(f"{pair.fr.url}/ui/settings")
    page.select_option("#language", "fr")
    page.locator("form[action='/ui/settings'] button[type=submit]").click()
    expect(page).to_have_url(f"{pair.fr.url}/ui/settings?saved=1")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("#language")).to_have_value("fr")
    page.goto(f"{pair.fr.url}/ui/")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("main h1, main h2").first).to_be_visible()
    french = _shot(page, pair, "10-dashboard-fr")
    _assert_pngs([login, dashboard, french])


def test_pages_fit_a_tablet(pair: Pair, browser: Browser) -> None:
    """At a tablet's width (768 px) no page needs sideways scrolling."""
    context = browser.new_context(locale="en-GB", viewport={"width": 768, "height": 1024})
    try:
        context.set_default_timeout(20_000)
        page = _sign_in(context, pair.fr, "officer")
        wide: dict[str, int] = {}
        for path in ("/ui/", "/ui/requests?direction=out",
                     "/ui/requests/new?type=expedited-preservation", "/ui/agreements",
                     "/ui/peers", "/ui/log", "/ui/registry", "/ui/reports", "/ui/settings"):
            page.goto(f"{pair.fr.url}{path}")
            overflow = int(page.evaluate(
                "document.documentElement.scrollWidth - window.innerWidth"))
            if overflow > 0:
                wide[path] = overflow
        tablet = _shot(page, pair, "11-tablet-settings")
        assert wide == {}
        _assert_pngs([tablet])
    finally:
        context.close()
