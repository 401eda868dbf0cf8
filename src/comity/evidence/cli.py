"""``comity evidence``: a package's files, transfer and custody chain; verify and open."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from comity.clikit import DataDir, JsonOut, console, fail, open_node, print_json
from comity.db import read_scope
from comity.problems import Problem

__all__ = ["app", "byte_progress"]

app = typer.Typer(help="Evidence packages: custody chain, verification, opening.",
                  no_args_is_help=True)
By = Annotated[str | None, typer.Option("--by", help="Who acts (recorded in custody).")]


@contextmanager
def byte_progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar over ``total`` bytes; yields the callback that advances it."""
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _print(pkg: dict[str, Any]) -> None:
    console.print(f"Package [bold]{pkg['id']}[/bold] ({pkg['direction']}, request "
                  f"{pkg['request']}): [bold]{pkg['status']}[/bold], {pkg['total_size']} bytes")
    files = Table("file", "size", "sha256", "type")
    for f in pkg["files"]:
        files.add_row(f["name"], str(f["size"]), f["sha256"], f["media_type"])
    console.print(files)
    chain = Table("at", "custody event", "actor", "by", "log entry")
    for e in pkg["custody"]:
        chain.add_row(e["at"], e["event"], e["actor"], e["by"] or "", str(e["log_index"]))
    console.print(chain)
    if pkg["last_error"]:
        console.print(f"last transfer error: {pkg['last_error']}")


@app.command("show")
def show(data_dir: DataDir, package_id: str, as_json: JsonOut = False) -> None:
    """A package: its files, transfer status, receipt and chain of custody."""
    node = open_node(data_dir)
    try:
        pkg = node.evidence.show(package_id)
    except Problem as e:
        raise fail(e) from e
    print_json(pkg) if as_json else _print(pkg)


@app.command("list")
def list_packages(data_dir: DataDir, request_id: Annotated[str, typer.Option(
        "--request", help="The request whose packages to list.")],
        as_json: JsonOut = False) -> None:
    """The evidence packages of a request."""
    node = open_node(data_dir)
    with read_scope(node.sessions) as session:
        pkgs = node.evidence.for_request(session, request_id)
    if as_json:
        print_json(pkgs)
        return
    for pkg in pkgs:
        _print(pkg)


def _total(node: Any, package_id: str) -> int:
    return int(node.evidence.show(package_id)["total_size"])


@app.command("verify")
def verify(data_dir: DataDir, package_id: str, by: By = None, as_json: JsonOut = False
           ) -> None:
    """Decrypt and check every byte of a received package (nothing written)."""
    node = open_node(data_dir)
    try:
        with byte_progress("verifying", _total(node, package_id)) as advance:
            pkg = node.evidence.verify(package_id, by=by, progress=advance)
    except Problem as e:
        raise fail(e) from e
    if as_json:
        print_json(pkg)
    else:
        console.print(f"[green]verified[/green]: {len(pkg['files'])} file(s), "
                      f"{pkg['total_size']} bytes, exactly as the sender signed")


@app.command("open")
def open_(
    data_dir: DataDir, package_id: str,
    out: Annotated[Path, typer.Option("--out", help="Directory for the plaintext files.")],
    by: By = None,
) -> None:
    """Write a received package's files into a directory, checking every byte first."""
    node = open_node(data_dir)
    try:
        with byte_progress("opening", _total(node, package_id)) as advance:
            paths = node.evidence.open(package_id, out, by=by, progress=advance)
    except (Problem, OSError) as e:
        raise fail(e) from e
    for p in paths:
        console.print(str(p))


def prepare_with_progress(node: Any, request_id: str, files: Sequence[Path]) -> dict[str, Any]:
    """Package ``files`` for the request's peer, with a progress bar; the signed manifest."""
    total = sum(f.stat().st_size for f in files if f.is_file())
    with byte_progress("packaging", total) as advance:
        signed = node.evidence.prepare(node.sessions, request_id, list(files),
                                       progress=advance)
    result: dict[str, Any] = signed.to_dict()
    return result
