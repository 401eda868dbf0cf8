"""``comity message``: send correspondence, list the outbox and inbox, show one message."""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from rich.table import Table
from sqlalchemy import select

from comity.clikit import DataDir, JsonOut, console, fail, open_node, print_json
from comity.db import session_scope
from comity.federation.api import inbox_view, outbox_view
from comity.federation.models import InboxMessage, OutboxMessage
from comity.problems import Problem

__all__ = ["app"]

app = typer.Typer(help="Signed messages between this node and its peers.",
                  no_args_is_help=True)


@app.command("send")
def send(
    data_dir: DataDir,
    to: Annotated[str, typer.Option(help="Recipient node id.")],
    agreement: Annotated[str, typer.Option(help="Agreement the message is sent under.")],
    subject: Annotated[str, typer.Option(help="Subject line.")],
    text: Annotated[str, typer.Option(help="Message text.")],
    language: Annotated[str, typer.Option(help="Language of the text.")] = "en",
) -> None:
    """Queue a correspondence message; the node's server delivers it."""
    node = open_node(data_dir)
    try:
        with session_scope(node.sessions) as session:
            row = node.federation.send(
                session, to=to, type="correspondence", agreement_id=agreement,
                body={"subject": subject, "text": text, "language": language})
            mid = row.message_id
    except Problem as e:
        raise fail(e) from e
    console.print(f"Queued message {mid} to {to}.")


@app.command("list")
def list_(
    data_dir: DataDir,
    box: Annotated[str, typer.Option(help="outbox or inbox.")] = "outbox",
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    as_json: JsonOut = False,
) -> None:
    """List sent (outbox) or received (inbox) messages."""
    node = open_node(data_dir)
    which: Literal["outbox", "inbox"] = "inbox" if box == "inbox" else "outbox"
    with session_scope(node.sessions) as session:
        if which == "outbox":
            rows = [outbox_view(r) for r in session.scalars(
                select(OutboxMessage).order_by(OutboxMessage.seq.desc()).limit(limit))]
        else:
            rows = [inbox_view(r) for r in session.scalars(
                select(InboxMessage).order_by(InboxMessage.seq.desc()).limit(limit))]
    if as_json:
        print_json(rows)
        return
    table = Table("seq", "id", "peer", "type", "status")
    for r in rows:
        peer = r.get("to") or r.get("from") or ""
        table.add_row(str(r["seq"]), r["id"], peer[:12], r["type"],
                      r.get("status", "received"))
    console.print(table)
