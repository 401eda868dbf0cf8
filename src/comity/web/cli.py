"""``comity user``: the web UI's accounts, from the node's host.

Whoever can run this on the host is an administrator (the command reads and
writes the node's database directly; the server need not run). Passwords are
read from a prompt, or from a file with ``--password-file`` for scripts, and
never from the command line, where other users of the host could read them.

Example::

    comity user add amina --data-dir ./ke --role officer --role supervisor
    comity user list --data-dir ./ke
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from comity.clikit import DataDir, JsonOut, console, fail, open_node, print_json
from comity.clock import format_ts
from comity.db import read_scope, session_scope
from comity.problems import Problem
from comity.web.accounts import (
    LANGUAGES,
    Role,
    add_user,
    list_users,
    parse_roles,
    set_password,
    update_user,
    user_roles,
)
from comity.web.models import AuditEntry

__all__ = ["app"]

app = typer.Typer(help="Accounts of the web UI (officers, supervisors, analysts, delegates, "
                       "administrators).", no_args_is_help=True)

Roles = Annotated[list[str] | None, typer.Option(
    "--role", help=f"A role (repeatable): {', '.join(r.value for r in Role)}.")]
PasswordFile = Annotated[Path | None, typer.Option(
    "--password-file", help="Read the password from this file's first line, not a prompt.")]


def _password(path: Path | None) -> str:
    if path is not None:
        try:
            lines = path.read_text().splitlines()
        except OSError as e:
            raise typer.BadParameter(str(e), param_hint="--password-file") from e
        return lines[0] if lines else ""
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="Sign-in name: lowercase letters, digits, "
                                                 ". - _")],
    data_dir: DataDir,
    role: Roles = None,
    name: Annotated[str, typer.Option(help="Name shown on pages and in the audit trail.")] = "",
    language: Annotated[str, typer.Option(help=f"One of {', '.join(LANGUAGES)}.")] = "en",
    timezone: Annotated[str, typer.Option(help="IANA time zone for dates.")] = "UTC",
    password_file: PasswordFile = None,
) -> None:
    """Create an account with its roles."""
    node = open_node(data_dir)
    try:
        roles = parse_roles(role or [])
        password = _password(password_file)
        with session_scope(node.sessions) as session:
            add_user(session, username=username, password=password, roles=roles,
                     clock=node.clock, display_name=name, language=language,
                     timezone=timezone)
    except Problem as e:
        raise fail(e) from e
    console.print(f"Account [bold]{username}[/bold] created with roles: "
                  f"{', '.join(sorted(r.value for r in roles)) or 'none'}.")


@app.command("list")
def list_(data_dir: DataDir, as_json: JsonOut = False) -> None:
    """Every account, its roles and whether it is enabled."""
    node = open_node(data_dir)
    with read_scope(node.sessions) as session:
        rows: list[dict[str, Any]] = [{
            "username": u.username, "name": u.display_name,
            "roles": sorted(r.value for r in user_roles(u)), "language": u.language,
            "timezone": u.timezone, "disabled": u.disabled,
            "created_at": format_ts(u.created_at)} for u in list_users(session)]
    if as_json:
        print_json(rows)
        return
    table = Table("username", "name", "roles", "language", "time zone", "status")
    for r in rows:
        table.add_row(r["username"], r["name"], ", ".join(r["roles"]), r["language"],
                      r["timezone"], "disabled" if r["disabled"] else "active")
    console.print(table)


@app.command("set")
def set_(
    username: str,
    data_dir: DataDir,
    role: Roles = None,
    disable: Annotated[bool | None, typer.Option(
        "--disable/--enable", help="Disable (ending its sessions) or enable the account.")
    ] = None,
    language: Annotated[str | None, typer.Option(help="Language of the pages.")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA time zone for dates.")] = None,
) -> None:
    """Change an account: its roles (replacing them), state, language or time zone."""
    node = open_node(data_dir)
    try:
        with session_scope(node.sessions) as session:
            update_user(session, username, roles=parse_roles(role) if role else None,
                        disabled=disable, language=language, timezone=timezone)
    except Problem as e:
        raise fail(e) from e
    console.print(f"Account [bold]{username}[/bold] updated.")


@app.command("password")
def password(username: str, data_dir: DataDir, password_file: PasswordFile = None) -> None:
    """Set an account's password (ending its sessions, lifting any lock)."""
    node = open_node(data_dir)
    try:
        secret = _password(password_file)
        with session_scope(node.sessions) as session:
            set_password(session, username, secret)
    except Problem as e:
        raise fail(e) from e
    console.print(f"Password of [bold]{username}[/bold] changed.")


@app.command("audit")
def audit_trail(
    data_dir: DataDir,
    user: Annotated[str | None, typer.Option(help="Only this account's acts.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonOut = False,
) -> None:
    """The audit trail of the web UI, newest first: who did what, on what, with what outcome."""
    node = open_node(data_dir)
    q = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
    if user:
        q = q.where(AuditEntry.username == user)
    with read_scope(node.sessions) as session:
        rows = [{"at": format_ts(a.at), "user": a.username, "action": a.action,
                 "target": a.target, "outcome": a.outcome, "detail": a.detail,
                 "address": a.address} for a in session.scalars(q)]
    if as_json:
        print_json(rows)
        return
    table = Table("at", "user", "action", "target", "outcome", "detail")
    for r in rows:
        table.add_row(r["at"], r["user"], r["action"], r["target"], r["outcome"], r["detail"])
    console.print(table)
