"""``comity agreement``: draft, propose, sign, amend, suspend, resume, withdraw, list, show."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from comity.agreements import services
from comity.clikit import DataDir, JsonOut, console, fail, open_node, print_json
from comity.db import session_scope
from comity.node import Node
from comity.problems import Problem

__all__ = ["app"]

app = typer.Typer(help="Cooperation agreements between this node and its peers.",
                  no_args_is_help=True)


def _run(node: Node, action: Callable[[Any], services.AgreementView]) -> dict[str, Any]:
    try:
        with session_scope(node.sessions) as session:
            return action(session).to_dict(node.clock.now())
    except Problem as e:
        raise fail(e) from e


def _summary(view: dict[str, Any]) -> None:
    latest = view["versions"][-1]
    console.print(f"Agreement [bold]{latest['document']['title']}[/bold] ({view['id']}): "
                  f"{view['status']}; version {latest['version']} {latest['status']}, "
                  f"signed by {len(latest['signed_by'])} of "
                  f"{len(latest['document']['parties'])} parties")


@app.command("draft")
def draft(
    data_dir: DataDir,
    title: Annotated[str, typer.Option(help="Title of the agreement.")],
    party: Annotated[list[str], typer.Option("--party", help="Another party's node id.")],
    scope_file: Annotated[Path | None, typer.Option("--scope", help="Scope as a JSON file.")]
    = None,
    valid_days: Annotated[int | None, typer.Option(help="Validity in days (default: open).")]
    = None,
    as_json: JsonOut = False,
) -> None:
    """Draft version 1 of a new agreement (local until proposed)."""
    node = open_node(data_dir)
    scope = orjson.loads(scope_file.read_bytes()) if scope_file else {}
    now = node.clock.now()
    until = now + dt.timedelta(days=valid_days) if valid_days else None
    view = _run(node, lambda s: services.create_draft(
        s, node.local, title=title, parties=party, scope=scope, valid_from=now,
        valid_until=until))
    print_json(view) if as_json else _summary(view)


def _act(name: str, doc: str) -> None:
    def command(data_dir: DataDir, agreement_id: str,
                reason: Annotated[str, typer.Option(help="Reason, sent to the parties.")] = "",
                as_json: JsonOut = False) -> None:
        node = open_node(data_dir)
        fn = getattr(services, name)
        if name in ("propose", "sign"):
            view = _run(node, lambda s: fn(s, node.local, node.federation, agreement_id,
                                           now=node.clock.now()))
        else:
            view = _run(node, lambda s: fn(s, node.local, node.federation, agreement_id,
                                           reason=reason, now=node.clock.now()))
        print_json(view) if as_json else _summary(view)

    command.__doc__ = doc
    app.command(name)(command)


_act("propose", "Sign the draft and send it to every other party.")
_act("sign", "Sign the proposed version and tell the other parties.")
_act("suspend", "Suspend the agreement until this node resumes it.")
_act("resume", "Lift this node's suspension.")
_act("withdraw", "Withdraw from the agreement (ends a bilateral one).")


@app.command("amend")
def amend(
    data_dir: DataDir, agreement_id: str,
    title: Annotated[str | None, typer.Option(help="New title.")] = None,
    scope_file: Annotated[Path | None, typer.Option("--scope", help="New scope (JSON).")]
    = None,
    as_json: JsonOut = False,
) -> None:
    """Draft the next version of a signed agreement; propose it to have all sign again."""
    node = open_node(data_dir)
    scope = orjson.loads(scope_file.read_bytes()) if scope_file else None
    view = _run(node, lambda s: services.amend(s, node.local, agreement_id,
                                               now=node.clock.now(), title=title, scope=scope))
    print_json(view) if as_json else _summary(view)


@app.command("list")
def list_(data_dir: DataDir, as_json: JsonOut = False) -> None:
    """List agreements and their status."""
    node = open_node(data_dir)
    now = node.clock.now()
    with session_scope(node.sessions) as session:
        views = [v.to_dict(now) for v in services.list_agreements(session)]
    if as_json:
        print_json(views)
        return
    table = Table("id", "title", "status", "version", "parties")
    for v in views:
        doc = v["versions"][-1]["document"]
        table.add_row(v["id"], doc["title"], v["status"], str(doc["version"]),
                      str(len(v["active_parties"])))
    console.print(table)


@app.command("show")
def show(data_dir: DataDir, agreement_id: str) -> None:
    """Show one agreement with every version, as JSON."""
    node = open_node(data_dir)
    print_json(_run(node, lambda s: services.get_agreement(s, agreement_id)))
