"""``comity sharing``: collections, importing and exporting STIX bundles of any size."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress
from rich.table import Table

from comity.clikit import DataDir, JsonOut, console, fail, open_node, print_json
from comity.db import read_scope, session_scope
from comity.problems import Problem
from comity.sharing.bundles import iter_objects, write_bundle
from comity.sharing.policy import Requester
from comity.sharing.services import export_objects
from comity.sharing.stix import StixError

__all__ = ["app"]

app = typer.Typer(help="Sharing STIX 2.1 over TAXII 2.1: collections, import, export.",
                  no_args_is_help=True)


@app.command("collections")
def collections(data_dir: DataDir, as_json: JsonOut = False) -> None:
    """This node's collections."""
    node = open_node(data_dir)
    with read_scope(node.sessions) as session:
        items = node.sharing.collections(session)
        counts = node.sharing.stats(session)
    if as_json:
        print_json(items)
        return
    table = Table("id", "name", "title", "peers may write")
    for c in items:
        table.add_row(c["id"], c["name"], c["title"], "yes" if c["peers_can_write"] else "no")
    console.print(table)
    console.print(f"{counts['objects']} object versions held")


@app.command("create-collection")
def create_collection(
    data_dir: DataDir,
    name: Annotated[str, typer.Option(help="The name agreements share it by (a slug).")],
    title: Annotated[str, typer.Option(help="Title shown to TAXII clients.")],
    description: Annotated[str | None, typer.Option(help="Description.")] = None,
    peers_can_write: Annotated[bool, typer.Option(help="Partners may add objects.")] = False,
    as_json: JsonOut = False,
) -> None:
    """Create a collection (share it with partners by naming it in an agreement's scope)."""
    node = open_node(data_dir)
    try:
        with session_scope(node.sessions) as session:
            c = node.sharing.create_collection(session, name=name, title=title,
                                               description=description,
                                               peers_can_write=peers_can_write)
    except Problem as e:
        raise fail(e) from e
    print_json(c) if as_json else console.print(f"Created collection {c['name']} ({c['id']})")


@app.command("import")
def import_(
    data_dir: DataDir,
    file: Annotated[Path, typer.Argument(help="A STIX 2.1 bundle or TAXII envelope (JSON).")],
    collection: Annotated[str, typer.Option(help="Collection id.")],
    recipient: Annotated[list[str] | None, typer.Option(
        "--recipient", help="A node a TLP:RED object may go to (repeatable).")] = None,
    batch: Annotated[int, typer.Option(min=1, max=10_000)] = 500,
    as_json: JsonOut = False,
) -> None:
    """Import a bundle of any size, streamed, with progress; bad objects are listed."""
    node = open_node(data_dir)
    total = ok = 0
    failures: list[dict[str, str]] = []
    size = file.stat().st_size
    try:
        with open(file, encoding="utf-8") as fp, Progress(
                "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                console=console, transient=True, disable=as_json) as bar:
            task = bar.add_task("importing", total=size)
            pending: list[object] = []

            def flush() -> None:
                nonlocal total, ok
                status = node.sharing.add_objects(collection, pending, Requester(None),
                                                  recipients=recipient or ())
                total += status["total_count"]
                ok += status["success_count"]
                failures.extend(status["failures"])
                pending.clear()
                bar.update(task, completed=fp.tell() if fp.seekable() else 0)

            for obj in iter_objects(fp):
                pending.append(obj)
                if len(pending) >= batch:
                    flush()
            if pending:
                flush()
    except (Problem, StixError, OSError, UnicodeDecodeError) as e:
        console.print(f"imported {ok} of {total} objects before the error")
        raise fail(e) from e
    summary = {"total": total, "imported": ok, "failed": len(failures), "failures": failures}
    if as_json:
        print_json(summary)
        return
    console.print(f"{ok} of {total} objects imported, {len(failures)} refused")
    for f in failures[:20]:
        console.print(f"  • {f.get('id') or '(no id)'}: {f['message']}")
    if len(failures) > 20:
        console.print(f"  … and {len(failures) - 20} more (see --json)")


@app.command("export")
def export(
    data_dir: DataDir,
    collection: Annotated[str, typer.Option(help="Collection id.")],
    for_peer: Annotated[str | None, typer.Option(
        "--for", help="Export only what this peer may receive (TLP and agreements).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="File (default: stdout).")] = None,
) -> None:
    """Write the latest version of each object as a STIX bundle, streamed."""
    node = open_node(data_dir)
    requester = Requester(for_peer)
    try:
        if out is None:
            n = write_bundle(sys.stdout.buffer, export_objects(node.sharing, collection,
                                                               requester))
            sys.stdout.buffer.write(b"\n")
        else:
            tmp = out.with_name(out.name + ".partial")
            with open(tmp, "wb") as f:
                n = write_bundle(f, export_objects(node.sharing, collection, requester))
            tmp.replace(out)
            console.print(f"{n} objects written to {out}")
    except Problem as e:
        raise fail(e) from e


@app.command("sync")
def sync(
    data_dir: DataDir,
    peer: Annotated[str, typer.Argument(help="The partner's node id.")],
    as_json: JsonOut = False,
) -> None:
    """Pull what a partner shares with us: new versions, revocations, deletions."""
    import httpx

    from comity.identity.errors import UnknownPeerError
    from comity.sharing.sync import SyncError, sync_peer

    node = open_node(data_dir)
    seen: dict[str, int] = {}
    with Progress("[progress.description]{task.description}", "{task.completed} changes",
                  console=console, transient=True, disable=as_json) as bar:
        tasks: dict[str, object] = {}

        def progress(name: str, n: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(f"syncing {name}", total=None)
            seen[name] = seen.get(name, 0) + n
            bar.update(tasks[name], completed=seen[name])  # type: ignore[arg-type]

        try:
            with httpx.Client(timeout=node.settings.delivery_timeout_seconds) as http:
                result = sync_peer(node, peer, http, progress=progress)
        except (SyncError, UnknownPeerError) as e:
            raise fail(e) from e
    if as_json:
        print_json([s.to_dict() for s in result])
        return
    if not result:
        console.print("The partner shares no collection with this node under an agreement "
                      "in force.")
    for s in result:
        console.print(f"{s.name}: {s.added} new version(s), {s.already_held} already held, "
                      f"{s.deleted} deleted, {len(s.refused)} refused")
        for f in s.refused[:10]:
            console.print(f"  • {f.get('id') or '(no id)'}: {f['message']}")
