"""Helpers for the web UI's tests: a signed-in page client over a node's TestClient."""

from __future__ import annotations

import re
from typing import Any

from comity.db import session_scope
from comity.web.accounts import Role, add_user
from tests.support import PeerNode

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def make_user(tn: PeerNode, username: str, *roles: Role, language: str = "en",
              timezone: str = "UTC") -> None:
    with session_scope(tn.node.sessions) as session:
        add_user(session, username=username, password=PASSWORD, roles=frozenset(roles),
                 clock=tn.node.clock, language=language, timezone=timezone)


class Ui:
    """One person's browser session on one node (cookies kept by the TestClient)."""

    def __init__(self, tn: PeerNode, username: str) -> None:
        from starlette.testclient import TestClient

        self.tn = tn
        self.client = TestClient(tn.client.app, base_url=str(tn.client.base_url),
                                 follow_redirects=False)
        page = self.client.get("/ui/login")
        assert page.status_code == 200, page.text
        resp = self.client.post("/ui/login", data={
            "username": username, "password": PASSWORD, "csrf": csrf_of(page.text),
            "next": "/ui/"})
        assert resp.status_code == 303, resp.text
        self.csrf = csrf_of(self.client.get("/ui/settings").text)

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True,
             **kw: Any) -> Any:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf", self.csrf)
        return self.client.post(path, data=form, **kw)

    def close(self) -> None:
        self.client.close()
