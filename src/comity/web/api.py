"""The UI's routes: signing in and out, the dashboard, settings, accounts and the audit trail.

The other pages live with their subject (``requests_pages``, ``domain_pages``)
and are gathered into :data:`router` here. Every route under ``/ui/`` other
than the sign-in page and the static files needs a session; every POST is an
:func:`~comity.web.core.action`.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select
from starlette.responses import FileResponse, Response

from comity.db import read_scope, session_scope
from comity.federation.models import OutboxMessage
from comity.http import get_node
from comity.ledger.witness import list_alarms
from comity.requests.deadlines import Period
from comity.requests.models import Request as RequestRow
from comity.web.accounts import (
    LANGUAGES,
    AccountError,
    Actor,
    AddressThrottle,
    Role,
    SignInError,
    add_user,
    audit,
    end_session,
    list_users,
    open_session,
    parse_roles,
    set_password,
    sign_in,
    update_user,
    user_roles,
)
from comity.web.core import Act, action, cookie_name, partial, redirect, render, view
from comity.web.domain_pages import router as domain_router
from comity.web.models import AuditEntry
from comity.web.requests_pages import router as requests_router

__all__ = ["router"]

router = APIRouter(prefix="/ui", include_in_schema=False)
STATIC = Path(__file__).parent / "static"
_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
LOGIN_COOKIE = "comity_login_csrf"
REQUEST_ROLES = (Role.OFFICER, Role.SUPERVISOR)


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The UI's own scripts and styles (never from a third party)."""
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        return Response(status_code=404)
    return FileResponse(path, media_type=_STATIC_TYPES.get(path.suffix, "application/octet-stream"),
                        headers={"cache-control": "public, max-age=3600",
                                 "x-content-type-options": "nosniff"})


def _safe_next(target: str | None) -> str:
    """Only a path of this UI: a sign-in link must not send anyone elsewhere."""
    if not target:
        return "/ui/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui/") or "\\" in target:
        return "/ui/"
    return target


def _secure(request: Request) -> bool:
    """Whether cookies must be Secure: over HTTPS, or always if the node is told so."""
    return (request.url.scheme == "https"
            or get_node(request).settings.ui_secure_cookies == "always")


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", actor=None, csrf=token, next=_safe_next(next),
                      error=None)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/ui/",
                        secure=_secure(request), max_age=3600)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    """Sign in. The form carries a token equal to a cookie set with the form (login CSRF)."""
    from starlette.concurrency import run_in_threadpool

    form = await request.form(max_part_size=8 << 10)
    node = get_node(request)
    username = str(form.get("username") or "").strip().lower()[:64]
    password = str(form.get("password") or "")[:1024]
    target = _safe_next(str(form.get("next") or ""))
    sent, expected = str(form.get("csrf") or ""), request.cookies.get(LOGIN_COOKIE, "")
    address = request.client.host if request.client else ""

    throttle: AddressThrottle = request.app.state.sign_in_throttle

    def attempt() -> str:
        if not expected or not hmac.compare_digest(sent, expected):
            raise SignInError("this sign-in form has expired; please try again")
        throttle.check(address, node.clock.now())
        # The failure is caught inside the transaction so that its count (towards
        # locking the account) is committed, not rolled back with the error.
        with session_scope(node.sessions) as session:
            try:
                user = sign_in(session, username, password, clock=node.clock)
            except SignInError as e:
                failure = e
                throttle.failed(address, node.clock.now())
                audit(session, at=node.clock.now(), username=username or "-",
                      action="sign-in", outcome="refused", detail=e.detail, address=address)
            else:
                audit(session, at=node.clock.now(), username=user.username, action="sign-in",
                      address=address)
                return open_session(session, user, clock=node.clock)
        raise failure

    try:
        token = await run_in_threadpool(attempt)
    except SignInError as e:
        fresh = secrets.token_urlsafe(24)
        page = render(request, "login.html", actor=None, csrf=fresh, next=target,
                      error=e.detail, status=e.status)
        page.set_cookie(LOGIN_COOKIE, fresh, httponly=True, samesite="strict",
                        path="/ui/", secure=_secure(request), max_age=3600)
        return page
    response = redirect(target)
    response.set_cookie(cookie_name(node), token, httponly=True, samesite="strict",
                        path="/", secure=_secure(request))
    response.delete_cookie(LOGIN_COOKIE, path="/ui/")
    return response


@router.post("/logout")
def logout(request: Request, act: Annotated[Act, Depends(action("sign-out"))]) -> Response:
    node = get_node(request)
    with session_scope(node.sessions) as session:
        end_session(session, request.cookies.get(cookie_name(node)))
        act.record("sign-out", "", session=session)
    response = redirect("/ui/login")
    response.delete_cookie(cookie_name(node), path="/")
    return response


@router.get("/")
def dashboard(request: Request, actor: Annotated[Actor, Depends(view())]) -> Response:
    """What needs the actor now: deadlines, approvals, alarms, failed deliveries."""
    node = get_node(request)
    due: list[dict[str, object]] = []
    pending: list[RequestRow] = []
    alarms: list[dict[str, object]] = []
    failed = 0
    with read_scope(node.sessions) as session:
        if actor.has(*REQUEST_ROLES):
            due = node.requests.due(session, within=Period.parse("7d"))[:50]
        if actor.has(Role.SUPERVISOR):
            pending = list(session.scalars(select(RequestRow).where(
                RequestRow.state == "pending_approval").order_by(RequestRow.seq.desc())
                .limit(50)))
        alarms = list_alarms(session)[:20]
        failed = session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status == "failed")) or 0
    template = "_dashboard.html" if partial(request) else "dashboard.html"
    return render(request, template, actor=actor, due=due, pending=pending, alarms=alarms,
                  failed=failed)


@router.get("/settings")
def settings_page(request: Request, actor: Annotated[Actor, Depends(view())]) -> Response:
    from zoneinfo import available_timezones

    return render(request, "settings.html", actor=actor, zones=sorted(available_timezones()),
                  saved=request.query_params.get("saved") == "1")


@router.post("/settings")
def save_settings(act: Annotated[Act, Depends(action("settings"))]) -> Response:
    """An actor's own language and time zone (no role needed: it is their own)."""
    node = act.node
    with session_scope(node.sessions) as session:
        update_user(session, act.actor.username, language=act.text("language") or None,
                    timezone=act.text("timezone") or None)
        act.record("settings", act.actor.username,
                   detail=f"language={act.text('language')} timezone={act.text('timezone')}",
                   session=session)
    return redirect("/ui/settings?saved=1")


@router.post("/settings/password")
def change_password(act: Annotated[Act, Depends(action("password"))]) -> Response:
    """An actor's own password, given the current one; ends all their sessions."""
    node = act.node
    current = str(act.form.get("current") or "")
    wrong = False
    with session_scope(node.sessions) as session:
        try:
            sign_in(session, act.actor.username, current, clock=node.clock)
        except SignInError:
            wrong = True  # committed: a wrong guess here counts towards the lock too
    if wrong:
        act.record("password", act.actor.username, outcome="refused", detail="wrong password")
        raise AccountError("the current password is wrong")
    with session_scope(node.sessions) as session:
        set_password(session, act.actor.username, str(act.form.get("new") or ""))
        act.record("password", act.actor.username, session=session)
    return redirect("/ui/login")


@router.get("/admin/users")
def users_page(request: Request,
               actor: Annotated[Actor, Depends(view(Role.ADMINISTRATOR))]) -> Response:
    node = get_node(request)
    with read_scope(node.sessions) as session:
        users = [(u, sorted(r.value for r in user_roles(u))) for u in list_users(session)]
    return render(request, "users.html", actor=actor, users=users, roles=list(Role),
                  created=request.query_params.get("created"))


@router.post("/admin/users")
def create_user(act: Annotated[Act, Depends(action("add-user", Role.ADMINISTRATOR))]
                ) -> Response:
    node = act.node
    username = act.text("username", limit=64).lower()
    roles = parse_roles([str(r) for r in act.form.getlist("roles")])
    language = act.text("language") or LANGUAGES[0]
    with session_scope(node.sessions) as session:
        add_user(session, username=username, password=str(act.form.get("password") or ""),
                 roles=roles, clock=node.clock, display_name=act.text("display_name"),
                 language=language, timezone=act.text("timezone") or "UTC")
        act.record("add-user", username, detail=" ".join(sorted(r.value for r in roles)),
                   session=session)
    return redirect(f"/ui/admin/users?created={username}")


@router.post("/admin/users/{username}")
def change_user(username: str,
                act: Annotated[Act, Depends(action("change-user", Role.ADMINISTRATOR))]
                ) -> Response:
    node = act.node
    roles = parse_roles([str(r) for r in act.form.getlist("roles")])
    disabled = act.text("disabled") == "1"
    if username == act.actor.username and (disabled or Role.ADMINISTRATOR not in roles):
        raise AccountError("you cannot disable yourself or drop your own administrator role; "
                           "ask another administrator")
    with session_scope(node.sessions) as session:
        update_user(session, username, roles=roles, disabled=disabled)
        if act.text("password"):
            set_password(session, username, act.text("password", limit=1024))
        act.record("change-user", username,
                   detail=f"roles={' '.join(sorted(r.value for r in roles))} disabled={disabled}",
                   session=session)
    return redirect("/ui/admin/users")


@router.get("/admin/audit")
def audit_page(request: Request, actor: Annotated[Actor, Depends(view(Role.ADMINISTRATOR))],
               user: str | None = None, before: int | None = None) -> Response:
    """The audit trail, newest first, 100 a page."""
    node = get_node(request)
    q = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(101)
    if user:
        q = q.where(AuditEntry.username == user[:64])
    if before is not None:
        q = q.where(AuditEntry.seq < before)
    with read_scope(node.sessions) as session:
        rows = list(session.scalars(q))
    more = len(rows) > 100
    rows = rows[:100]
    return render(request, "audit.html", actor=actor, rows=rows, user=user or "",
                  next_before=rows[-1].seq if more and rows else None)


router.include_router(requests_router)
router.include_router(domain_router)
