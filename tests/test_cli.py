"""The command line, as an operator uses it: init, card, peers, agreements, messages.

Runs on both backends: each node's database URL is given the way an operator
gives it, through ``COMITY_DATABASE_URL``, chosen per data directory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from comity.cli import app


class Cli:
    """Runs ``comity`` commands with the database of the data directory they name."""

    def __init__(self, db_url: Callable[[str], str]) -> None:
        self.db_url = db_url
        self.urls: dict[str, str] = {}
        self.runner = CliRunner()

    def run(self, *args: str, code: int = 0) -> str:
        env: dict[str, str] = {}
        if "--data-dir" in args:
            data_dir = args[args.index("--data-dir") + 1]
            url = self.urls.setdefault(data_dir, self.db_url(data_dir))
            if url:
                env["COMITY_DATABASE_URL"] = url
        result = self.runner.invoke(app, list(args), env=env)
        assert result.exit_code == code, result.output
        return result.output

    def say(self, *args: str, code: int = 0) -> str:
        """Human-readable output, with the terminal's line wrapping undone."""
        return " ".join(self.run(*args, code=code).split())

    def init(self, tmp_path: Path, name: str, cc: str) -> Path:
        data = tmp_path / name
        out = self.run("node", "init", "--data-dir", str(data), "--name", f"Node {name}",
                       "--kind", "cert", "--jurisdiction", cc, "--url", f"http://{name}.test")
        assert "created" in out
        assert (data / "admin.token").stat().st_mode & 0o777 == 0o600
        return data


@pytest.fixture
def cli(db_url_factory: Callable[[str], str]) -> Cli:
    return Cli(db_url_factory)


def test_operator_workflow(tmp_path: Path, cli: Cli) -> None:
    fr, ke = cli.init(tmp_path, "fr", "FR"), cli.init(tmp_path, "ke", "KE")
    card_fr = tmp_path / "fr.json"
    card_fr.write_text(cli.run("node", "card", "--data-dir", str(fr)))
    card_ke = tmp_path / "ke.json"
    card_ke.write_text(cli.run("node", "card", "--data-dir", str(ke)))
    ke_id = json.loads(card_ke.read_text())["node_id"]
    assert "1 new card" in cli.say("peer", "add", "--data-dir", str(fr), str(card_ke))
    assert "up to date" in cli.say("peer", "add", "--data-dir", str(fr), str(card_ke))
    peers = json.loads(cli.run("peer", "list", "--data-dir", str(fr), "--json"))
    assert [p["node_id"] for p in peers] == [ke_id]
    scope = tmp_path / "scope.json"
    scope.write_text(json.dumps({"request_types": ["expedited-preservation"],
                                 "languages": ["en"]}))
    view = json.loads(cli.run("agreement", "draft", "--data-dir", str(fr), "--title", "FR-KE",
                          "--party", ke_id, "--scope", str(scope), "--json"))
    aid = view["id"]
    assert view["status"] == "draft"
    out = cli.say("agreement", "propose", "--data-dir", str(fr), aid)
    assert "proposed" in out
    listed = json.loads(cli.run("agreement", "list", "--data-dir", str(fr), "--json"))
    assert listed[0]["id"] == aid
    # Not in force yet: sending is refused with the reason, nothing queued.
    err = cli.say("message", "send", "--data-dir", str(fr), "--to", ke_id, "--agreement", aid,
              "--subject", "s", "--text", "t", code=1)
    assert "agreement-not-in-force" in err
    queued = json.loads(cli.run("message", "list", "--data-dir", str(fr), "--json"))
    assert [m["type"] for m in queued] == ["agreement.propose"]
    rotated = cli.say("node", "rotate-keys", "--data-dir", str(fr))
    assert "serial 2" in rotated
    chain = json.loads(cli.run("node", "card", "--data-dir", str(fr), "--chain"))
    assert [c["serial"] for c in chain] == [1, 2]


def test_errors_are_clear(tmp_path: Path, cli: Cli) -> None:
    out = cli.say("node", "card", "--data-dir", str(tmp_path / "missing"), code=1)
    assert "comity node init" in out
    data = cli.init(tmp_path, "fr", "FR")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "error" in cli.say("peer", "add", "--data-dir", str(data), str(bad), code=1)
    forged = json.loads(cli.run("node", "card", "--data-dir", str(data)))
    other = cli.init(tmp_path, "ke", "KE")
    forged["name"] = "Someone else"
    bad.write_text(json.dumps(forged))
    assert "card-signature" in cli.say("peer", "add", "--data-dir", str(other), str(bad), code=1)
    cli.run("node", "init", "--data-dir", str(data), "--name", "x", "--kind", "cert",
        "--jurisdiction", "FR", "--url", "http://x.test", code=1)
    cli.run("node", "init", "--data-dir", str(tmp_path / "x"), "--name", "x", "--kind", "cert",
        "--jurisdiction", "France", "--url", "http://x.test", code=1)
