"""``comity requests``, ``comity evidence`` and ``comity report`` as an officer uses them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from comity.cli import app
from tests.requests.support import PRESERVATION_FIELDS, preservation, two_authorities
from tests.support import LocalFederation, PeerNode


def comity(node: PeerNode, *args: str, code: int = 0) -> str:
    env = {"COMITY_DATABASE_URL": node.node.settings.database_url} if (
        node.node.settings.database_url) else {}
    result = CliRunner().invoke(app, [*args, "--data-dir", str(node.node.settings.data_dir)],
                                env=env)
    assert result.exit_code == code, result.output
    return result.output


def as_json(node: PeerNode, *args: str) -> Any:
    return json.loads(comity(node, *args, "--json"))


def test_an_officer_drafts_sends_and_follows_a_request(fed: LocalFederation,
                                                       tmp_path: Path) -> None:
    fr, ke, aid = two_authorities(fed)
    incomplete = preservation()
    del incomplete["fields"]["necessity"]
    del incomplete["fields"]["custodian_or_location"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(incomplete, allow_unicode=True))
    out = " ".join(comity(fr, "requests", "create", "--to", ke.id, "--agreement", aid,
                          "--file", str(bad), code=1).split())
    assert "2 problem(s)" in out
    assert "Budapest Art. 29(2)(d)" in out
    assert "Budapest Art. 29(2)(e)" in out
    assert as_json(fr, "requests", "list")["items"] == []

    good = tmp_path / "request.yaml"
    good.write_text(yaml.safe_dump(preservation(), allow_unicode=True))
    rid = as_json(fr, "requests", "create", "--to", ke.id, "--agreement", aid,
                  "--file", str(good), "--by", "dupont")["id"]
    comity(fr, "requests", "submit", rid, "--by", "dupont")
    out = comity(fr, "requests", "approve", rid, "--by", "dupont", code=1)
    assert "someone other than" in " ".join(out.split())
    comity(fr, "requests", "approve", rid, "--by", "martin")
    assert as_json(fr, "requests", "send", rid)["state"] == "sent"
    fed.pump()
    incoming = as_json(ke, "requests", "list", "--direction", "in")["items"]
    assert [r["id"] for r in incoming] == [rid]
    assert incoming[0]["due"]["kind"] == "response"
    assert [r["id"] for r in as_json(ke, "requests", "due", "--within", "30d")] == [rid]
    out = comity(ke, "requests", "act", rid, "execute", "--set", "summary=x", code=1)
    assert "illegal-transition" in out or "cannot" in out
    comity(ke, "requests", "act", rid, "acknowledge", "--set", "reference=KE-9")
    fed.pump()
    shown = as_json(fr, "requests", "show", rid)
    assert shown["state"] == "acknowledged"
    assert shown["recipient_reference"] == "KE-9"
    text = " ".join(comity(fr, "requests", "show", rid).split())
    assert "acknowledged" in text
    assert "Budapest Art. 29" in text
    assert shown["document"]["fields"] == PRESERVATION_FIELDS


def test_evidence_from_the_command_line(fed: LocalFederation, tmp_path: Path) -> None:
    from tests.requests.support import mla, send_request

    fr, ke, aid = two_authorities(fed)
    rid = send_request(fed, fr, ke, aid, mla([]))
    comity(ke, "requests", "act", rid, "acknowledge", "--set", "reference=K")
    fed.pump()
    evidence = tmp_path / "log.txt"
    evidence.write_bytes(b"2026-11-20 10:00 login from 198.51.100.7\n" * 1000)
    shown = as_json(ke, "requests", "act", rid, "execute", "--set", "summary=Logs",
                    "--evidence", str(evidence))
    pkg = shown["evidence"][0]["id"]
    fed.pump()
    # The CLI ran on the wall clock; the nodes here on the test's fixed clock.
    fed.clock.advance(60)
    for pid in ke.node.evidence.due_uploads():
        ke.node.evidence.upload(pid, fed.http)
    verified = " ".join(comity(fr, "evidence", "verify", pkg, "--by", "analyst").split())
    assert "verified" in verified
    out_dir = tmp_path / "opened"
    comity(fr, "evidence", "open", pkg, "--out", str(out_dir))
    assert (out_dir / "log.txt").read_bytes() == evidence.read_bytes()
    chain = [e["event"] for e in as_json(fr, "evidence", "show", pkg)["custody"]]
    assert chain == ["received", "verified", "opened"]
    csv = comity(fr, "report", "requests", "--group-by", "type", "--format", "csv")
    assert csv.splitlines()[1].startswith("mla-stored-data,1,1,1,")


def test_a_failed_act_leaves_no_package_behind(fed: LocalFederation, tmp_path: Path) -> None:
    fr, ke, aid = two_authorities(fed)
    rid = (fr.api("POST", "/api/requests", json={"to": ke.id, "agreement": aid,
                                                  "request": preservation()}))["id"]
    for step in ("submit", "approve", "send"):
        fr.api("POST", f"/api/requests/{rid}/{step}", json={"by": step})
    fed.pump()
    evidence = tmp_path / "x.bin"
    evidence.write_bytes(b"x" * 100)
    # Executing a preservation is not one of its outcomes: refused, package discarded.
    comity(ke, "requests", "act", rid, "execute", "--set", "summary=x", "--evidence",
           str(evidence), code=1)
    assert not any((ke.node.settings.data_dir / "evidence" / "out").glob("*"))


def test_an_officer_is_asked_for_each_element(fed: LocalFederation) -> None:
    fr, ke, aid = two_authorities(fed)
    fields = PRESERVATION_FIELDS
    answers = ["expedited-preservation", "budapest", "FR-ASKED", "en", "illegal-access",
               "traffic", "y", "n", *(fields[k] for k in (
                   "requesting_authority", "summary_of_facts", "data_to_preserve",
                   "relationship_to_offence", "custodian_or_location", "necessity",
                   "mla_intention"))]
    env = {"COMITY_DATABASE_URL": fr.node.settings.database_url} if (
        fr.node.settings.database_url) else {}
    result = CliRunner().invoke(app, ["requests", "create", "--to", ke.id, "--agreement", aid,
                                      "--data-dir", str(fr.node.settings.data_dir)],
                                input="\n".join(answers) + "\n", env=env)
    assert result.exit_code == 0, result.output
    assert "Budapest Art. 29(2)(e)" in result.output  # each prompt names its article
    [item] = as_json(fr, "requests", "list")["items"]
    assert item["reference"] == "FR-ASKED"
    assert item["urgent"] is True
    shown = as_json(fr, "requests", "show", item["id"])
    assert shown["document"]["fields"] == fields
