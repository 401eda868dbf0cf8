"""``comity log``: the node's transparency log — status, proofs, verification, audits.

``verify-receipt`` needs no node at all: it checks a proof file offline, as a
court or an auditor would, and prints the node ids whose keys the file proves
signed it, for comparison with ids known out of band.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from comity.clikit import DataDir, JsonOut, console, err, fail, open_node, print_json
from comity.db import read_scope
from comity.ledger.audit import AuditError, audit_peer, prove_entry, prove_receipt
from comity.ledger.proofs import ProofBundleError, verify_entry_proof
from comity.ledger.verify import verify_log
from comity.ledger.witness import list_alarms, log_status

__all__ = ["app"]

app = typer.Typer(help="The node's transparency log: proofs, verification, audits.",
                  no_args_is_help=True)

OutFile = Annotated[Path | None, typer.Option("--out", help="Write the proof here "
                                              "(default: standard output).")]
MinCosignatures = Annotated[int, typer.Option(
    "--min-cosignatures", min=0, help="Witness cosignatures the checkpoint must carry.")]


@contextmanager
def _progress(label: str) -> Iterator[Progress]:
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        yield bar


def _write(data: bytes, out: Path | None) -> None:
    if out is None:
        typer.echo(data.decode(), nl=False)
    else:
        out.write_bytes(data)
        err.print(f"Proof written to {out}.")


@app.command("status")
def status(data_dir: DataDir, as_json: JsonOut = False) -> None:
    """Size, root, who cosigned our latest checkpoints, whose logs we witness."""
    node = open_node(data_dir)
    with read_scope(node.sessions) as session:
        info = log_status(session, node.ledger)
    if as_json:
        print_json(info)
        return
    console.print(f"Log [bold]{info['origin']}[/bold]: {info['size']} entries, "
                  f"root {info['root'][:16]}…, {info['alarms']} alarm(s).")
    table = Table("witness (partner)", "cosigned size")
    for peer, size in sorted(info["cosigned_by"].items()):
        table.add_row(peer, str(size))
    console.print(table)


@app.command("alarms")
def alarms(data_dir: DataDir, as_json: JsonOut = False) -> None:
    """Evidence of forked, rolled-back or inconsistent logs, newest first."""
    node = open_node(data_dir)
    with read_scope(node.sessions) as session:
        found = list_alarms(session)
    if as_json:
        print_json(found)
        return
    if not found:
        console.print("No alarms.")
        return
    table = Table("id", "raised", "log of", "kind", "detail")
    for a in found:
        table.add_row(str(a["id"]), a["raised_at"][:19], (a["peer"] or "this node")[:12],
                      a["kind"], a["detail"])
    console.print(table)


@app.command("verify")
def verify(data_dir: DataDir, as_json: JsonOut = False) -> None:
    """Recompute every tile, checkpoint, cosignature and opening of this node's log.

    Exits with status 1 and names each damaged item if anything differs.
    """
    node = open_node(data_dir)
    with _progress("verifying") as bar:
        task = bar.add_task("verify", total=None)
        report = verify_log(node, progress=lambda done, total: bar.update(
            task, completed=done, total=total))
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        console.print(f"Log verified: {report.size} entries, {report.checked_tiles} tiles, "
                      f"{report.checked_checkpoints} checkpoints, "
                      f"{report.checked_cosignatures} cosignatures, "
                      f"{report.checked_openings} openings.")
    else:
        for problem in report.problems:
            err.print(f"[red]damaged:[/red] {problem}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("prove")
def prove(data_dir: DataDir,
          entry: Annotated[int, typer.Argument(help="Index of the entry in this node's log.")],
          out: OutFile = None, min_cosignatures: MinCosignatures = 1) -> None:
    """Export a proof that an entry is in this log (with its receipt, if it has one)."""
    node = open_node(data_dir)
    try:
        _write(prove_entry(node, entry, min_cosignatures=min_cosignatures), out)
    except AuditError as e:
        raise fail(e) from e


@app.command("prove-receipt")
def prove_receipt_cmd(
    data_dir: DataDir,
    message: Annotated[str, typer.Argument(help="Id of a message this node sent.")],
    out: OutFile = None,
) -> None:
    """Export a proof that the receiver of one of our messages logged its receipt."""
    node = open_node(data_dir)
    try:
        with httpx.Client(timeout=node.settings.delivery_timeout_seconds) as client:
            _write(prove_receipt(node, client, message), out)
    except AuditError as e:
        raise fail(e) from e


@app.command("audit")
def audit(data_dir: DataDir,
          peer: Annotated[str, typer.Argument(help="Node id of the partner to audit.")],
          as_json: JsonOut = False) -> None:
    """Fetch a partner's tiles, recompute its log, check every checkpoint we hold."""
    node = open_node(data_dir)
    try:
        with httpx.Client(timeout=node.settings.delivery_timeout_seconds) as client, \
                _progress("fetching tiles") as bar:
            task = bar.add_task("audit", total=None)
            report = audit_peer(node, client, peer, progress=lambda done, total: bar.update(
                task, completed=done, total=total))
    except AuditError as e:
        raise fail(e) from e
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        console.print(f"Log of {peer} audited: {report.size} entries, consistent with the "
                      f"{report.checked_checkpoints} checkpoint(s) we cosigned.")
    else:
        for problem in report.problems:
            err.print(f"[red]audit:[/red] {problem}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("verify-receipt")
def verify_receipt(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                         help="A .tlog-proof file.")],
    min_cosignatures: MinCosignatures = 1,
    entry_only: Annotated[bool, typer.Option(
        "--entry-only", help="Accept a proof of an entry that carries no receipt.")] = False,
    as_json: JsonOut = False,
) -> None:
    """Check a receipt proof offline: signatures, cosignatures, inclusion, opening."""
    try:
        verified = verify_entry_proof(file.read_bytes(), min_cosignatures=min_cosignatures,
                                      require_receipt=not entry_only)
    except (ProofBundleError, OSError) as e:
        raise fail(e) from e
    if as_json:
        print_json({"ok": True, **verified.to_dict()})
        return
    what = verified.opening.kind
    console.print(f"[green]Valid.[/green] Entry {verified.index} ({what}) is in the log "
                  f"{verified.origin} of node {verified.log_node} ({verified.log_name}), "
                  f"checkpoint of size {verified.tree_size}, root {verified.root[:16]}…")
    if verified.message_id is not None:
        console.print(f"Node {verified.log_node} received message {verified.message_id} "
                      f"(hash {verified.message_hash}) from node {verified.sender} at "
                      f"{verified.received}.")
    for witness, ts in sorted(verified.cosigned_by.items()):
        console.print(f"Cosigned by witness node {witness} (time {ts}).")
