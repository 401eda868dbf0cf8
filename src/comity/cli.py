"""The ``comity`` command line: node, peers, agreements, messages, demo.

Commands act on a node's data directory (``--data-dir`` or
``COMITY_DATA_DIR``) directly, so they work whether or not the node's server
is running: a message queued here is delivered by the server's workers within
their poll interval. Every listing has ``--json`` for scripts.

Example::

    comity node init --data-dir ./fr --name "Ministry of Justice" \\
        --kind central-authority --jurisdiction FR --url http://127.0.0.1:8701
    comity node serve --data-dir ./fr
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from comity.agreements.cli import app as agreement_app
from comity.clikit import (
    DataDir,
    JsonOut,
    console,
    fail,
    open_node,
    print_json,
    settings_for,
)
from comity.clock import SystemClock
from comity.db import make_engine, session_scope, upgrade
from comity.demo import demo
from comity.evidence.cli import app as evidence_app
from comity.federation.cli import app as message_app
from comity.governance.cli import app as council_app
from comity.identity.errors import IdentityError
from comity.identity.schemas import NodeKind
from comity.ledger.cli import app as log_app
from comity.node import Node
from comity.problems import Problem
from comity.registry.cli import app as registry_app
from comity.reports.cli import app as report_app
from comity.requests.cli import app as requests_app
from comity.sharing.cli import app as sharing_app
from comity.web.cli import app as user_app

__all__ = ["app", "main"]

app = typer.Typer(help="Comity: cooperation on Internet security and cybercrime between "
                       "sovereign nodes.", no_args_is_help=True)
node_app = typer.Typer(help="This node: identity, keys, server.", no_args_is_help=True)
peer_app = typer.Typer(help="Peers this node trusts.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(node_app, name="node")
app.add_typer(peer_app, name="peer")
app.add_typer(db_app, name="db")

@node_app.command("init")
def node_init(
    data_dir: DataDir,
    name: Annotated[str, typer.Option(help="Participant name, e.g. 'Ministry of Justice'.")],
    kind: Annotated[NodeKind, typer.Option(help="Kind of participant.")],
    jurisdiction: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2 country code.")],
    url: Annotated[str, typer.Option(help="Base URL peers reach this node at.")],
    language: Annotated[list[str] | None, typer.Option(
        "--language", help="Working language (repeatable).")] = None,
) -> None:
    """Create the node's keys, its self-signed card, its database and an admin API token."""
    from comity.auth.services import issue_token
    from comity.hazmat.keys import write_private_file
    from comity.identity.services import init_node

    clock = SystemClock()
    try:
        local = init_node(data_dir, name=name, kind=kind, jurisdiction=jurisdiction, url=url,
                          languages=language or ["en"], clock=clock)
    except (IdentityError, Problem) as e:
        raise fail(e) from e
    settings = settings_for(data_dir)
    engine = make_engine(settings)
    upgrade(engine)
    node = Node.open(settings, migrate=False)
    with session_scope(node.sessions) as session:
        token = issue_token(session, name="admin", clock=clock)
    write_private_file(data_dir / "admin.token", token.encode() + b"\n")
    node.close()
    engine.dispose()
    console.print(f"Node [bold]{local.card.name}[/bold] created: id {local.node_id}")
    console.print(f"  card:        comity node card --data-dir {data_dir}")
    console.print(f"  admin token: {data_dir / 'admin.token'} (mode 0600)")


@node_app.command("card")
def node_card(
    data_dir: DataDir,
    chain: Annotated[bool, typer.Option(help="Print the whole card chain (after rotations).")]
    = False,
) -> None:
    """Print this node's signed card (JSON), to hand to peers out of band."""
    from comity.identity.services import LocalIdentity

    try:
        local = LocalIdentity.load(data_dir)
    except IdentityError as e:
        raise fail(e) from e
    data = [c.doc for c in local.chain] if chain else local.card.doc
    print_json(data)


@node_app.command("rotate-keys")
def node_rotate(data_dir: DataDir) -> None:
    """Issue a new card with fresh keys, signed by the old key; peers follow automatically."""
    from comity.identity.services import rotate_keys

    try:
        local = rotate_keys(data_dir, clock=SystemClock())
    except IdentityError as e:
        raise fail(e) from e
    console.print(f"Keys rotated: card serial {local.serial}, signing key "
                  f"{local.card.signing_key.key_id()}. The old signing key is deleted; the old "
                  "encryption key is kept to read what was sealed to it.")


@node_app.command("token")
def node_token(data_dir: DataDir,
               name: Annotated[str, typer.Option(help="Who or what the token is for.")],
               expires_days: Annotated[float | None, typer.Option(
                   help="Valid for this many days (default: until revoked).", min=0.001)]
               = None) -> None:
    """Issue a new API token (printed once)."""
    import datetime as dt

    from comity.auth.services import issue_token

    node = open_node(data_dir)
    span = None if expires_days is None else dt.timedelta(days=expires_days)
    with session_scope(node.sessions) as session:
        token = issue_token(session, name=name, clock=node.clock, expires_in=span)
    sys.stdout.write(token + "\n")


@node_app.command("tokens")
def node_tokens(data_dir: DataDir, as_json: JsonOut = False) -> None:
    """This node's API tokens (ids, names, expiry, revocation; never the tokens)."""
    from comity.auth.services import list_tokens
    from comity.clock import format_ts

    node = open_node(data_dir)
    with session_scope(node.sessions) as session:
        rows: list[dict[str, str | None]] = [
            {"id": r.token_id, "name": r.name, "created_at": format_ts(r.created_at),
             "expires_at": None if r.expires_at is None else format_ts(r.expires_at),
             "revoked_at": None if r.revoked_at is None else format_ts(r.revoked_at)}
            for r in list_tokens(session)]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "created", "expires", "revoked")
    for r in rows:
        table.add_row(r["id"], r["name"], r["created_at"], r["expires_at"] or "never",
                      r["revoked_at"] or "")
    console.print(table)


@node_app.command("revoke-token")
def node_revoke_token(data_dir: DataDir, token_id: Annotated[str, typer.Argument(
        help="The token's id, as `comity node tokens` shows it.")]) -> None:
    """Revoke an API token (a running server stops accepting it within 30 s)."""
    from comity.auth.services import revoke_token

    node = open_node(data_dir)
    try:
        with session_scope(node.sessions) as session:
            row = revoke_token(session, token_id, clock=node.clock)
            name = row.name
    except Problem as e:
        raise fail(e) from e
    console.print(f"Revoked API token {token_id} ({name}).")


@node_app.command("serve")
def node_serve(
    data_dir: DataDir,
    host: Annotated[str | None, typer.Option(help="Bind address (default: from the card URL).")]
    = None,
    port: Annotated[int | None, typer.Option(help="Port (default: from the card URL).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Run the node: REST API, peer inbox and delivery workers."""
    from urllib.parse import urlsplit

    import uvicorn

    from comity.app import create_app

    node = open_node(data_dir)
    parts = urlsplit(node.local.card.url)
    bind_host = host or node.settings.host or parts.hostname or "127.0.0.1"
    bind_port = port or node.settings.port or parts.port or 8700
    console.print(f"Serving {node.local.card.name} ({node.local.node_id}) on "
                  f"http://{bind_host}:{bind_port}")
    uvicorn.run(create_app(node), host=bind_host, port=bind_port, log_level=log_level,
                access_log=False, timeout_graceful_shutdown=10)
    node.close()


@peer_app.command("add")
def peer_add(data_dir: DataDir,
             card_file: Annotated[Path, typer.Argument(help="A card or card chain (JSON).")],
             ) -> None:
    """Verify a peer's card (or card chain) and trust that node."""
    from comity.identity.services import import_cards

    node = open_node(data_dir)
    try:
        doc = orjson.loads(card_file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as e:
        raise fail(ValueError(f"{card_file}: {e}")) from e
    try:
        with session_scope(node.sessions) as session:
            peer, added = import_cards(session, doc, local_node_id=node.local.node_id,
                                       clock=node.clock)
            name, node_id, serial = peer.name, peer.node_id, peer.serial
    except Problem as e:
        raise fail(e) from e
    what = f"{added} new card(s) accepted" if added else "already up to date"
    console.print(f"Peer [bold]{name}[/bold] ({node_id}), card serial {serial}: {what}")


@peer_app.command("list")
def peer_list(data_dir: DataDir, as_json: JsonOut = False) -> None:
    """List known peers."""
    from comity.identity.api import peer_view
    from comity.identity.services import list_peers

    node = open_node(data_dir)
    with session_scope(node.sessions) as session:
        peers = [peer_view(p) for p in list_peers(session)]
    if as_json:
        print_json(peers)
        return
    table = Table("node id", "name", "kind", "country", "url", "card")
    for p in peers:
        table.add_row(p["node_id"], p["name"], p["kind"], p["jurisdiction"], p["url"],
                      str(p["serial"]))
    console.print(table)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir) -> None:
    """Apply pending database migrations."""
    engine = make_engine(settings_for(data_dir))
    upgrade(engine)
    engine.dispose()
    console.print("Database is up to date.")


app.add_typer(agreement_app, name="agreement")
app.add_typer(message_app, name="message")
app.add_typer(log_app, name="log")
app.add_typer(requests_app, name="requests")
app.add_typer(evidence_app, name="evidence")
app.add_typer(report_app, name="report")
app.add_typer(sharing_app, name="sharing")
app.add_typer(registry_app, name="registry")
app.add_typer(council_app, name="council")
app.add_typer(user_app, name="user")
app.command("demo")(demo)


def main() -> None:
    """Entry point of the ``comity`` script."""
    app()
