"""``comity log`` as an operator and a third party use it."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from comity.cli import app
from comity.db import read_scope
from comity.federation.models import InboxMessage
from tests.ledger.test_audit import exchange
from tests.support import LocalFederation, PeerNode


def run(node: PeerNode | None, *args: str, code: int = 0) -> str:
    env = {}
    extra: list[str] = []
    if node is not None:
        env["COMITY_DATABASE_URL"] = node.node.settings.database_url
        extra = ["--data-dir", str(node.node.settings.data_dir)]
    result = CliRunner().invoke(app, [*args, *extra], env=env)
    assert result.exit_code == code, result.output
    return result.output


def test_prove_verify_and_inspect_from_the_command_line(fed: LocalFederation,
                                                         tmp_path: Path) -> None:
    a, b, ids = exchange(fed)
    fed.witness()
    status = json.loads(run(b, "log", "status", "--json"))
    assert status["size"] == b.node.ledger.head().size
    assert status["cosigned_by"] == {a.id: status["size"]}
    with read_scope(b.node.sessions) as s:
        index = s.scalar(select(InboxMessage.log_index).where(InboxMessage.message_id == ids[0]))
    proof = tmp_path / "receipt.tlog-proof"
    run(b, "log", "prove", str(index), "--out", str(proof))
    assert proof.read_bytes().startswith(b"c2sp.org/tlog-proof@v1\n")
    # A third party: no node, no database, only the file.
    verified = json.loads(run(None, "log", "verify-receipt", str(proof), "--json"))
    assert verified["ok"] is True
    assert (verified["log_node"], verified["message_id"], verified["sender"]) == (
        b.id, ids[0], a.id)
    text = " ".join(run(None, "log", "verify-receipt", str(proof)).split())
    assert f"received message {ids[0]}" in text
    # One changed byte anywhere in the file and it is refused.
    data = bytearray(proof.read_bytes())
    data[len(data) // 2] ^= 0x01
    proof.write_bytes(bytes(data))
    out = run(None, "log", "verify-receipt", str(proof), code=1)
    assert "error" in out
    report = json.loads(run(b, "log", "verify", "--json"))
    assert report["ok"] is True
    assert json.loads(run(b, "log", "alarms", "--json")) == []
    assert "No alarms" in run(b, "log", "alarms")
    # An entry that is not a receipt needs --entry-only to be accepted.
    sent_proof = tmp_path / "entry.tlog-proof"
    run(b, "log", "prove", "0", "--out", str(sent_proof))
    run(None, "log", "verify-receipt", str(sent_proof), code=1)
    assert json.loads(run(None, "log", "verify-receipt", str(sent_proof), "--entry-only",
                          "--json"))["index"] == 0
    run(b, "log", "prove", "999999", code=1)
