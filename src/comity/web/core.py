"""What every page and action of the UI stands on: who is asking, may they, and the answer.

* :func:`view` and :func:`action` are FastAPI dependencies. A view needs a live
  session and one of its roles; an action needs that and the session's CSRF
  token (a form field ``csrf`` or an ``X-CSRF-Token`` header, which htmx
  sends). A refused action is answered 403 and written to the audit trail.
* :func:`render` answers with a template in the actor's language, with
  headers that forbid framing, sniffing, caching and any script or style not
  served by the node itself.
* :func:`problem_page` turns a :class:`~comity.problems.Problem` raised under
  ``/ui/`` into an HTML page with the same status.

Trust assumptions: the session cookie is HttpOnly and SameSite=Strict, and
Secure whenever the node is reached over HTTPS; over plain HTTP (a loopback
demo) it cannot be Secure. Every value rendered is escaped by Jinja's
autoescaping; nothing from a user or a peer is ever marked safe.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

import comity
from comity.db import read_scope, session_scope
from comity.http import get_node
from comity.node import Node
from comity.problems import Problem
from comity.web.accounts import LANGUAGES, Actor, Role, audit, resume_session, touch_session
from comity.web.i18n import format_when, translations
from comity.web.vocabulary import LABELS

__all__ = ["Act", "Forbidden", "NotSignedIn", "ServerTiming", "action", "cookie_name",
           "partial", "problem_page", "redirect", "render", "view"]

TEMPLATES = Path(__file__).parent / "templates"
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class NotSignedIn(Problem):
    slug = "not-signed-in"
    status = 401
    title = "Please sign in"


class Forbidden(Problem):
    slug = "forbidden"
    status = 403
    title = "Not allowed"


@dataclass
class Act:
    """An authorised action: its actor and its form (already CSRF-checked)."""

    actor: Actor
    form: FormData
    node: Node
    address: str
    done: list[str] = field(default_factory=list)

    def text(self, name: str, *, limit: int = 20_000) -> str:
        """A form field as stripped text ('' when absent or not text)."""
        value = self.form.get(name)
        return value.strip()[:limit] if isinstance(value, str) else ""

    def record(self, name: str, target: str, *, outcome: str = "done", detail: str = "",
               session: Session | None = None) -> None:
        """Write this act to the audit trail.

        Pass the act's own ``session``: the entry then commits with the act or not at
        all, so no act is done unaudited even if the process dies. Without one (a
        refusal, which changes nothing else), it is written in its own transaction.
        """
        if session is not None:
            audit(session, at=self.node.clock.now(), username=self.actor.username,
                  action=name, target=target, outcome=outcome, detail=detail,
                  address=self.address)
            return
        with session_scope(self.node.sessions) as own:
            self.record(name, target, outcome=outcome, detail=detail, session=own)


class ServerTiming:
    """ASGI middleware: every ``/ui/`` answer says how long the node took to make it.

    The ``Server-Timing: app;dur=<ms>`` header is measured from the request's
    arrival to the start of the answer, so it covers routing, the session
    check, the database and rendering (what a benchmark of the UI measures).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/ui/"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Any) -> None:
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - started) * 1000
                message["headers"] = [*(h for h in message.get("headers", [])
                                        if h[0].lower() != b"server-timing"),
                                      (b"server-timing", f"app;dur={took:.2f}".encode())]
            await send(message)

        await self.app(scope, receive, timed)


def cookie_name(node: Node) -> str:
    """The session cookie's name, distinct per node: browsers share cookies across ports."""
    return f"comity_ui_{node.local.node_id[:12]}"


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _actor(request: Request) -> Actor | None:
    cached: Actor | None = getattr(request.state, "actor", None)
    if cached is not None:
        return cached
    node = get_node(request)
    token = request.cookies.get(cookie_name(node))
    if not token:
        return None
    with read_scope(node.sessions) as session:
        actor = resume_session(session, token, clock=node.clock)
    if actor is not None and actor.idle:
        with session_scope(node.sessions) as session:
            touch_session(session, token, clock=node.clock)
    request.state.actor = actor
    return actor


def _need(request: Request, roles: Iterable[Role]) -> Actor:
    actor = _actor(request)
    if actor is None:
        raise NotSignedIn("your session has ended or you have not signed in")
    wanted = tuple(roles)
    if wanted and not actor.has(*wanted):
        raise Forbidden(f"this needs the role {' or '.join(r.value for r in wanted)}",
                        roles=[r.value for r in wanted])
    return actor


def view(*roles: Role) -> Callable[[Request], Awaitable[Actor]]:
    """Dependency of a page: a signed-in actor with one of ``roles`` (any, if none)."""

    async def dependency(request: Request) -> Actor:
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(_need, request, roles)

    return dependency


def action(name: str, *roles: Role) -> Callable[[Request], AsyncIterator[Act]]:
    """Dependency of an action: role and CSRF checked, refusals audited.

    ``name`` is the action's name in the audit trail; every action must name
    at least one role except an actor's own preferences and signing out.
    """

    async def dependency(request: Request) -> AsyncIterator[Act]:
        from starlette.concurrency import run_in_threadpool

        node = get_node(request)
        form = await request.form(max_part_size=64 << 10)
        address = _client(request)

        def check() -> Act:
            actor = _need(request, ()) if not roles else None
            if actor is None:
                try:
                    actor = _need(request, roles)
                except Forbidden as e:
                    refused = _actor(request)
                    if refused is not None:
                        Act(refused, form, node, address).record(
                            name, request.url.path, outcome="refused", detail=e.detail)
                    raise
            sent = request.headers.get("x-csrf-token") or form.get("csrf")
            if not isinstance(sent, str) or not hmac.compare_digest(sent, actor.csrf):
                Act(actor, form, node, address).record(name, request.url.path,
                                                       outcome="refused",
                                                       detail="missing or wrong CSRF token")
                raise Forbidden("this form has expired or did not come from this node's "
                                "pages (CSRF token missing or wrong); reload the page and "
                                "try again")
            return Act(actor, form, node, address)

        try:
            yield await run_in_threadpool(check)
        finally:
            # Uploaded files spool to temporary files: remove them once answered.
            await form.close()

    dependency.comity_action = (name, roles)  # type: ignore[attr-defined]
    return dependency


@cache
def _environment(language: str) -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(),
                      undefined=StrictUndefined, extensions=["jinja2.ext.i18n"],
                      trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    catalog = translations(language)
    env.install_gettext_translations(catalog, newstyle=True)  # type: ignore[attr-defined]

    def term(value: object) -> str:
        """A stored identifier (state, act, role, status) in the reader's words."""
        text = str(value)
        return catalog.gettext(LABELS.get(text, text.replace("_", " ")))

    env.globals["term"] = term
    env.globals["version"] = comity.__version__
    env.globals["languages"] = LANGUAGES
    env.globals["Role"] = Role
    env.filters["urlquote"] = lambda v: quote(str(v), safe="")
    return env


def render(request: Request, template: str, *, actor: Actor | None, status: int = 200,
           headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """The page ``template`` in the actor's language (the browser's if signed out)."""
    language = actor.language if actor else _browser_language(request)
    timezone = actor.timezone if actor else "UTC"
    node = get_node(request)

    def when(value: dt.datetime | str | None, style: str = "medium") -> str:
        return format_when(value, language, timezone, style=style)

    body = _environment(language).get_template(template).render(
        request=request, actor=actor, lang=language, when=when, node_name=node.local.card.name,
        node_id=node.local.node_id, path=request.url.path, **context)
    response = HTMLResponse(body, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    response.headers["content-language"] = language
    response.headers["vary"] = "HX-Request, Accept-Language, Cookie"
    if headers:
        response.headers.update(headers)
    return response


def _browser_language(request: Request) -> str:
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return LANGUAGES[0]


def partial(request: Request) -> bool:
    """Whether htmx asked for a part of a page (not a whole page: a history restore
    asks with the same header, and gets the whole page)."""
    return (request.headers.get("hx-request") == "true"
            and request.headers.get("hx-history-restore-request") != "true")


def redirect(url: str) -> Response:
    """After an action: go (back) to a page, the POST/redirect/GET way."""
    return RedirectResponse(url, status_code=303)


def problem_page(request: Request, exc: Problem) -> Response:
    """The HTML answer to an error under ``/ui/``."""
    if isinstance(exc, NotSignedIn) and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", 303)
    actor = getattr(request.state, "actor", None)
    errors = exc.extra.get("errors") if isinstance(exc.extra.get("errors"), list) else []
    referer = urlsplit(request.headers.get("referer", ""))
    back = (referer.path + (f"?{referer.query}" if referer.query else "")
            if referer.netloc == request.url.netloc and referer.path.startswith("/ui/")
            else None)
    return render(request, "error.html", actor=actor, status=exc.status, title=exc.title,
                  detail=exc.detail, errors=errors, back=back)


def login_csrf() -> str:
    return secrets.token_urlsafe(24)


def read_only(node: Node) -> Any:
    """A read-only transaction on the node's database (for pages)."""
    return read_scope(node.sessions)
