"""The UI's security decisions: sign-in, sessions, roles on every action, CSRF, escaping, audit.

Each test would fail if its decision flipped: an action that stopped checking
its role, a form accepted without its token, a string rendered raw.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from sqlalchemy import func, select

from comity.db import read_scope, session_scope
from comity.requests.models import Request as RequestRow
from comity.web.accounts import Role, update_user
from comity.web.core import cookie_name
from comity.web.models import AuditEntry, UiSession
from tests.requests.support import PRESERVATION_FIELDS, two_authorities
from tests.support import LocalFederation, PeerNode
from tests.web.support import PASSWORD, Ui, csrf_of, make_user

# Actions any signed-in person may take on their own account.
OWN_ACTIONS = {"/ui/logout", "/ui/settings", "/ui/settings/password"}


@pytest.fixture
def nodes(fed: LocalFederation) -> tuple[PeerNode, PeerNode, str]:
    fr, ke, aid = two_authorities(fed)
    make_user(fr, "officer", Role.OFFICER)
    make_user(fr, "supervisor", Role.SUPERVISOR)
    make_user(fr, "nobody")
    return fr, ke, aid


def _target(html: str) -> str:
    found = re.findall(r'<option value="([0-9a-f]{32}\|[0-9a-f-]{36})"', html)
    assert found, "no agreement to choose"
    return found[0]


def draft(ui: Ui, *, reference: str = "FR-UI-1", submit: bool = True,
          fields: dict[str, str] | None = None) -> str:
    """Draft a preservation request through the form; returns its id."""
    page = ui.get("/ui/requests/new?type=expedited-preservation")
    assert page.status_code == 200
    data: dict[str, Any] = {"type": "expedited-preservation", "target": _target(page.text),
                            "reference": reference, "language": "en",
                            "offence": "illegal-access", "data_categories": "traffic",
                            "submit": "1" if submit else "0"}
    for name, value in (fields or PRESERVATION_FIELDS).items():
        data[f"field_{name}"] = value
    resp = ui.post("/ui/requests", data)
    assert resp.status_code == 303, resp.text
    return str(resp.headers["location"]).rsplit("/", 1)[1]


def _routes(routes: list[Any]) -> Iterator[Any]:
    """Every route, inside included routers too (FastAPI includes them lazily)."""
    for r in routes:
        if hasattr(r, "effective_route_contexts"):
            yield from r.effective_route_contexts()
        else:
            yield r


def sign_in_attempt(tn: PeerNode, username: str, password: str) -> Any:
    """One sign-in through the form, as a browser would send it."""
    page = tn.client.get("/ui/login")
    return tn.client.post("/ui/login", data={"username": username, "password": password,
                                              "csrf": csrf_of(page.text)},
                          follow_redirects=False)


def _post_routes(tn: PeerNode) -> list[Any]:
    return [r for r in _routes(tn.client.app.routes)  # type: ignore[attr-defined]
            if getattr(r, "path", "").startswith("/ui/")
            and "POST" in (getattr(r, "methods", None) or ()) and r.path != "/ui/login"]


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x-1", path)


def test_every_action_names_a_role(nodes: tuple[PeerNode, PeerNode, str]) -> None:
    """Each POST under /ui/ is an action() with roles, but one's own account and sign-out."""
    fr, _, _ = nodes
    routes = _post_routes(fr)
    assert len(routes) >= 8
    for route in routes:
        declared = [getattr(d.call, "comity_action", None)
                    for d in route.dependant.dependencies]  # type: ignore[attr-defined]
        actions = [a for a in declared if a is not None]
        assert actions, f"{route.path} is not an action"
        _, roles = actions[0]
        assert bool(roles) == (route.path not in OWN_ACTIONS), route.path


def test_user_without_the_role_gets_403_for_every_action(
        nodes: tuple[PeerNode, PeerNode, str]) -> None:
    fr, _, _ = nodes
    nobody = Ui(fr, "nobody")
    checked = 0
    for route in _post_routes(fr):
        if route.path in OWN_ACTIONS:
            continue
        resp = nobody.post(_concrete(route.path), {"reference": "x", "summary": "y"})
        assert resp.status_code == 403, (route.path, resp.status_code)
        assert "needs the role" in resp.text
        checked += 1
    assert checked >= 8
    with read_scope(fr.node.sessions) as session:
        refused = session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.username == "nobody", AuditEntry.outcome == "refused"))
    assert refused == checked
    # Pages are role-checked too.
    assert nobody.get("/ui/requests").status_code == 403
    assert nobody.get("/ui/admin/users").status_code == 403


def test_action_without_or_with_a_wrong_csrf_token_is_refused(
        nodes: tuple[PeerNode, PeerNode, str]) -> None:
    fr, _, _ = nodes
    officer = Ui(fr, "officer")
    rid = draft(officer, submit=False)
    supervisor = Ui(fr, "supervisor")
    altered = officer.csrf[:-1] + ("B" if officer.csrf.endswith("A") else "A")
    for csrf in (None, "", supervisor.csrf, altered):
        data = {} if csrf is None else {"csrf": csrf}
        resp = officer.post(f"/ui/requests/{rid}/submit", data, csrf=False)
        assert resp.status_code == 403, csrf
        assert "CSRF" in resp.text
    with read_scope(fr.node.sessions) as session:
        assert session.scalar(select(RequestRow.state).where(
            RequestRow.request_id == rid)) == "draft"
    # The header htmx sends is accepted in place of the field.
    resp = officer.post(f"/ui/requests/{rid}/submit", {}, csrf=False,
                        headers={"x-csrf-token": officer.csrf})
    assert resp.status_code == 303


def test_supervisor_cannot_approve_own_request(fed: LocalFederation) -> None:
    fr, _, _ = two_authorities(fed)
    make_user(fr, "both", Role.OFFICER, Role.SUPERVISOR)
    ui = Ui(fr, "both")
    rid = draft(ui)
    resp = ui.post(f"/ui/requests/{rid}/approve")
    assert resp.status_code == 409
    assert "someone other than" in resp.text


def test_user_supplied_strings_are_escaped(nodes: tuple[PeerNode, PeerNode, str]) -> None:
    fr, _ke, _ = nodes
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    officer = Ui(fr, "officer")
    rid = draft(officer, reference="R<b>1</b>", fields={
        **PRESERVATION_FIELDS, "summary_of_facts": evil})
    supervisor = Ui(fr, "supervisor")
    assert supervisor.post(f"/ui/requests/{rid}/approve").status_code == 303
    for ui, path in ((officer, f"/ui/requests/{rid}"), (officer, "/ui/requests"),
                     (supervisor, "/ui/")):
        html = ui.get(path).text
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "<b>1</b>" not in html
        assert "R&lt;b&gt;1&lt;/b&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in officer.get(f"/ui/requests/{rid}").text


def test_sign_in_failures_look_alike_and_lock_the_account(
        nodes: tuple[PeerNode, PeerNode, str]) -> None:
    fr, _, _ = nodes
    attempt = partial(sign_in_attempt, fr)
    unknown, wrong = attempt("ghost", "whatever-password"), attempt("officer", "not-it-at-all")
    assert unknown.status_code == wrong.status_code == 401
    assert "wrong username or password" in unknown.text
    assert "wrong username or password" in wrong.text
    for _ in range(3):
        assert attempt("officer", "not-it-at-all").status_code == 401
    assert attempt("officer", PASSWORD).status_code == 303  # four failures: not yet locked
    for _ in range(5):
        assert attempt("officer", "not-it-at-all").status_code == 401
    locked = attempt("officer", PASSWORD)  # the fifth failure in a row locked it
    assert locked.status_code == 401
    assert "locked" in locked.text
    fr.node.clock.at += dt.timedelta(minutes=16)  # type: ignore[attr-defined]
    assert attempt("officer", PASSWORD).status_code == 303


def test_sign_in_needs_the_form_token_and_never_redirects_away(
        nodes: tuple[PeerNode, PeerNode, str]) -> None:
    fr, _, _ = nodes
    client = fr.client
    client.cookies.clear()
    resp = client.post("/ui/login", data={"username": "officer", "password": PASSWORD,
                                           "csrf": "forged"}, follow_redirects=False)
    assert resp.status_code == 401
    assert "expired" in resp.text
    for target in ("https://evil.example/", "//evil.example/ui/", "/api/requests",
                   "/ui/\\evil"):
        page = client.get("/ui/login")
        resp = client.post("/ui/login", data={"username": "officer", "password": PASSWORD,
                                               "csrf": csrf_of(page.text), "next": target},
                           follow_redirects=False)
        assert resp.status_code == 303
        assert resp.headers["location"] == "/ui/", target


def test_session_cookie_flags_and_security_headers(
        nodes: tuple[PeerNode, PeerNode, str]) -> None:
    fr, _, _ = nodes
    client = fr.client
    page = client.get("/ui/login")
    resp = client.post("/ui/login", data={"username": "officer", "password": PASSWORD,
                                           "csrf": csrf_of(page.text)}, follow_redirects=False)
    cookie = next(v for k, v in resp.headers.multi_items() if k == "set-cookie"
                  and v.startswith(cookie_name(fr.node)))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    dash = client.get("/ui/")
    assert "frame-ancestors 'none'" in dash.headers["content-security-policy"]
    assert "script-src 'self'" in dash.headers["content-security-policy"]
    assert dash.headers["x-frame-options"] == "DENY"
    assert dash.headers["cache-control"] == "no-store"


def test_sessions_end_on_sign_out_idle_time_and_disabling(
        nodes: tuple[PeerNode, PeerNode, str]) -> None:
    fr, _, _ = nodes
    officer = Ui(fr, "officer")
    assert officer.get("/ui/").status_code == 200
    # Sign-out: the old cookie no longer opens anything.
    token = officer.client.cookies.get(cookie_name(fr.node))
    assert officer.post("/ui/logout").status_code == 303
    officer.client.cookies.set(cookie_name(fr.node), token or "")
    resp = officer.get("/ui/requests")
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/ui/login?next=")
    # Use restarts the idle time (recorded at most once a minute, outside the page's read).
    officer = Ui(fr, "officer")
    fr.node.clock.at += dt.timedelta(hours=1, minutes=30)  # type: ignore[attr-defined]
    assert officer.get("/ui/").status_code == 200
    fr.node.clock.at += dt.timedelta(hours=1)  # type: ignore[attr-defined]
    assert officer.get("/ui/").status_code == 200
    # Idle for more than two hours.
    fr.node.clock.at += dt.timedelta(hours=2, minutes=1)  # type: ignore[attr-defined]
    assert officer.get("/ui/").status_code == 303
    # Disabled by an administrator: every session ends at once.
    officer = Ui(fr, "officer")
    with session_scope(fr.node.sessions) as session:
        update_user(session, "officer", disabled=True)
    assert officer.get("/ui/").status_code == 303
    with read_scope(fr.node.sessions) as session:
        assert session.scalar(select(func.count()).select_from(UiSession).where(
            UiSession.username == "officer")) == 0


def test_actions_are_audited_with_their_author(nodes: tuple[PeerNode, PeerNode, str]) -> None:
    fr, _, _ = nodes
    officer = Ui(fr, "officer")
    rid = draft(officer)
    supervisor = Ui(fr, "supervisor")
    supervisor.post(f"/ui/requests/{rid}/approve")
    with read_scope(fr.node.sessions) as session:
        rows = [(a.username, a.action, a.target, a.outcome) for a in session.scalars(
            select(AuditEntry).where(AuditEntry.target == rid).order_by(AuditEntry.seq))]
    assert rows == [("officer", "draft-request", rid, "done"),
                    ("supervisor", "approve-request", rid, "done")]
    # An act that fails leaves no entry claiming it was done: the entry commits with the act.
    assert supervisor.post(f"/ui/requests/{rid}/approve").status_code == 409
    with read_scope(fr.node.sessions) as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.target == rid)) == 2
    make_user(fr, "admin", Role.ADMINISTRATOR)
    trail = Ui(fr, "admin").get("/ui/admin/audit?user=supervisor")
    assert trail.status_code == 200
    assert "approve-request" in trail.text


def test_administrator_manages_accounts_but_not_requests(
        nodes: tuple[PeerNode, PeerNode, str]) -> None:
    fr, _, _ = nodes
    make_user(fr, "admin", Role.ADMINISTRATOR)
    admin = Ui(fr, "admin")
    resp = admin.post("/ui/admin/users", {"username": "analyst1", "password": "long enough pw",
                                          "roles": "analyst", "language": "fr"})
    assert resp.status_code == 303
    short = admin.post("/ui/admin/users", {"username": "weak", "password": "short",
                                           "roles": "analyst"})
    assert short.status_code == 422
    assert "12 characters" in short.text
    assert admin.get("/ui/requests").status_code == 403
    # An administrator cannot lock themselves out.
    resp = admin.post("/ui/admin/users/admin", {"roles": "officer"})
    assert resp.status_code == 422


def test_cookies_are_secure_when_the_node_is_told_so(fed: LocalFederation) -> None:
    fr = fed.add("fr", ui_secure_cookies="always")
    make_user(fr, "officer", Role.OFFICER)
    page = fr.client.get("/ui/login")
    assert "; secure" in page.headers["set-cookie"].lower()
    # Over plain HTTP a client keeps a Secure cookie to itself: hand it over as a proxy would.
    fr.client.cookies.clear()
    token = csrf_of(page.text)
    resp = fr.client.post("/ui/login", data={"username": "officer", "password": PASSWORD,
                                              "csrf": token},
                          headers={"cookie": f"comity_login_csrf={token}"},
                          follow_redirects=False)
    assert resp.status_code == 303
    session_cookie = next(v for k, v in resp.headers.multi_items() if k == "set-cookie"
                          and v.startswith(cookie_name(fr.node)))
    assert "; secure" in session_cookie.lower()


def test_history_restore_gets_the_whole_page(nodes: tuple[PeerNode, PeerNode, str]) -> None:
    fr, _, _ = nodes
    officer = Ui(fr, "officer")
    part = officer.get("/ui/requests", headers={"hx-request": "true"}).text
    assert "<html" not in part
    whole = officer.get("/ui/requests", headers={"hx-request": "true",
                                                 "hx-history-restore-request": "true"}).text
    assert "<html" in whole


def test_an_address_that_fails_too_often_is_refused(
        nodes: tuple[PeerNode, PeerNode, str]) -> None:
    """Guessing across accounts from one address is stopped, not only guessing one account."""
    fr, _, _ = nodes
    attempt = partial(sign_in_attempt, fr)
    for i in range(20):  # four tries each on five names: no account reaches its own lock
        assert attempt(f"guess{i % 5}", "not-the-password").status_code == 401
    throttled = attempt("officer", PASSWORD)
    assert throttled.status_code == 429
    assert "too many failed sign-ins from your address" in throttled.text
    fr.node.clock.at += dt.timedelta(minutes=16)  # type: ignore[attr-defined]
    assert attempt("officer", PASSWORD).status_code == 303
