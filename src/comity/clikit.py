"""Shared pieces of the ``comity`` command line: options, output, opening a node.

Every sub-command module imports from here (never from ``comity.cli``), so the
command tree can be assembled in ``comity.cli`` without import cycles.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from comity.config import Settings
from comity.identity.errors import IdentityError
from comity.node import Node
from comity.problems import Problem

__all__ = ["DataDir", "JsonOut", "console", "err", "fail", "open_node", "print_json",
           "settings_for"]

console = Console()
err = Console(stderr=True)

DataDir = Annotated[Path, typer.Option("--data-dir", envvar="COMITY_DATA_DIR",
                                       help="The node's data directory.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def settings_for(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


def open_node(data_dir: Path) -> Node:
    """Open the node in ``data_dir`` or exit with a clear message."""
    try:
        return Node.open(settings_for(data_dir))
    except IdentityError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from e


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def fail(e: Exception) -> typer.Exit:
    """Report a domain error the way an operator can act on it."""
    if isinstance(e, Problem):
        err.print(f"[red]error ({e.slug}):[/red] {e.detail}")
    else:
        err.print(f"[red]error:[/red] {e}")
    return typer.Exit(1)


