"""The command reference in docs/cli.md is the one the code generates (``make docs``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_cli_reference_is_current(tmp_path: Path) -> None:
    out = tmp_path / "cli.md"
    typer = Path(sys.executable).with_name("typer")
    subprocess.run([str(typer), "comity.cli", "utils", "docs", "--name", "comity",
                    "--title", "The comity command line", "--output", str(out)],
                   check=True, capture_output=True)
    assert out.read_text() == (ROOT / "docs" / "cli.md").read_text(), (
        "docs/cli.md is out of date: run `make docs`")


def test_readme_opens_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```sh") + 1:lines.index("```sh") + 3]
    assert block[0].startswith("make run")
    assert block[1].startswith("make test")
