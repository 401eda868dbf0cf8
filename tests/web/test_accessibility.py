"""Every page, as a person holding every role sees it: semantic structure and labelled controls.

A crawler follows the UI's own links from the dashboard (bounded), and checks
each page: a language, one ``h1``, a ``main`` landmark, every form control
with a label (``<label for>`` or ``aria-label``), every table header scoped,
every image with a text alternative, and ids unique.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

from comity.web.accounts import Role
from tests.requests.support import two_authorities
from tests.support import LocalFederation
from tests.web.support import Ui, make_user
from tests.web.test_security import draft

_CONTROLS = {"input", "select", "textarea"}
_UNLABELLED_INPUTS = {"hidden", "submit", "button", "reset", "image"}


class PageCheck(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang = ""
        self.h1 = 0
        self.main = 0
        self.ids: list[str] = []
        self.label_for: set[str] = set()
        self.controls: list[tuple[str, str]] = []  # (tag, id or "")
        self.unscoped_th = 0
        self.bare_images = 0
        self.links: list[str] = []
        self._thead = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "html":
            self.lang = a.get("lang", "")
        elif tag == "h1":
            self.h1 += 1
        elif tag == "main":
            self.main += 1
        elif tag == "label" and a.get("for"):
            self.label_for.add(a["for"])
        elif tag in _CONTROLS:
            if tag == "input" and a.get("type", "text") in _UNLABELLED_INPUTS:
                return
            if a.get("aria-label") or a.get("aria-labelledby"):
                return
            self.controls.append((f"{tag} name={a.get('name', '')}", a.get("id", "")))
        elif tag == "th" and "scope" not in a:
            self.unscoped_th += 1
        elif tag == "img" and "alt" not in a:
            self.bare_images += 1
        elif tag == "a" and a.get("href", "").startswith("/ui/"):
            self.links.append(a["href"])

    def problems(self) -> list[str]:
        out = []
        if not self.lang:
            out.append("no lang on <html>")
        if self.h1 != 1:
            out.append(f"{self.h1} h1 elements")
        if self.main != 1:
            out.append(f"{self.main} main elements")
        out += [f"unlabelled {tag}" for tag, id_ in self.controls
                if not id_ or id_ not in self.label_for]
        if self.unscoped_th:
            out.append(f"{self.unscoped_th} th without scope")
        if self.bare_images:
            out.append(f"{self.bare_images} img without alt")
        dupes = sorted({i for i in self.ids if self.ids.count(i) > 1})
        if dupes:
            out.append(f"duplicate ids {dupes[:5]}")
        return out


def test_every_page_is_labelled_and_structured(fed: LocalFederation) -> None:
    fr, _, _ = two_authorities(fed)
    make_user(fr, "all", *Role)
    make_user(fr, "officer2", Role.OFFICER)
    ui = Ui(fr, "all")
    draft(Ui(fr, "officer2"), reference="FR-A11Y-1")
    seen: set[str] = set()
    queue = ["/ui/", "/ui/requests/new?type=expedited-preservation", "/ui/settings"]
    failures: dict[str, list[str]] = {}
    while queue and len(seen) < 60:
        path = queue.pop(0)
        key = re.sub(r"[0-9a-f-]{32,36}", "ID", urlsplit(path).path)
        if key in seen or "/static/" in path:
            continue
        seen.add(key)
        resp = ui.get(path)
        assert resp.status_code == 200, (path, resp.status_code)
        check = PageCheck()
        check.feed(resp.text)
        if check.problems():
            failures[path] = check.problems()
        queue += [link for link in check.links if link not in queue]
    assert failures == {}
    assert {"/ui/", "/ui/requests", "/ui/requests/ID", "/ui/settings",
            "/ui/admin/users"} <= seen
