"""The main job: ``comity demo`` as ``make run`` starts it, and its ``--check`` scenario."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def test_demo_check_runs_every_step() -> None:
    done = subprocess.run([sys.executable, "-m", "comity", "demo", "--check"],
                          capture_output=True, text=True, timeout=300, check=False)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # A string, which pytest shows whole (it shortens the repr of anything else).
    assert done.returncode == 0, (f"failed at {report.get('failed_step')!r}: "
                                  f"{report.get('error')}\n{done.stderr[-6000:]}")
    assert report["ok"] is True
    assert report["nodes"] == 3
    assert report["agreements_in_force"] == 2
    assert report["messages_delivered"] == 15
    assert report["refused_at_border"] == ["no-agreement", "out-of-scope"]
    requests = report["requests"]
    assert requests["refused_incomplete"]["status"] == 422
    assert requests["refused_incomplete"]["field"] == "fields.necessity"
    assert "Budapest Art. 29(2)(e)" in requests["refused_incomplete"]["error"]
    preservation = requests["preservation"]
    assert preservation["state_when_preserved"] == "preserved"
    assert preservation["expiry_days"] == 60
    assert preservation["deadline"]["kind"] == "preservation-expiry"
    assert "Budapest Art. 29(7)" in preservation["deadline"]["basis"]
    assert preservation["state_after_mla"] == "superseded_by_mla"
    assert requests["mla"]["references"] == [preservation["id"]]
    assert requests["mla"]["state"] == "executed"
    evidence = requests["evidence"]
    assert evidence["status"] == "verified"
    assert evidence["custody_sender"] == ["collected", "packaged", "sent"]
    assert evidence["custody_requester"] == ["received", "verified"]
    assert evidence["receipt_signed"] is True
    sharing = report["sharing"]
    assert sharing["indicators_at"] == {"ke-poc": 3, "fr-moj": 2}
    assert sharing["red_stayed_home"] is True
    assert sharing["amber_strict_not_reshared"] is True
    assert sharing["green_reached_community"] is True
    assert sharing["revocation_propagated"] is True
    registry = report["registry"]
    assert registry["stages"] == ["discussion", "voting", "last-call", "adopted"]
    assert registry["tally"] == {"yes": 2, "no": 0, "abstain": 1, "quorum": 2,
                                 "majority": "simple", "passed": True}
    assert len(registry["ballots_signed_by"]) == 3
    assert registry["digests_agree"] is True
    assert all(len(entries) == 4 for entries in registry["decisions_logged"].values())
    assert {r["handle"] for r in registry["rdap"].values()} == {"45.64.1.0/24"}
    ledger = report["ledger"]
    assert all(n > 15 for n in ledger["entries"].values())
    assert ledger["cosigned_by_all_partners"] is True
    assert ledger["verified"] == {"fr-moj": True, "ke-poc": True, "cn-cert": True}
    receipt = ledger["receipt_verified_offline"]
    assert len(receipt["cosigned_by"]) == 2
    assert receipt["receiver"] not in receipt["cosigned_by"]
    assert ledger["forged_checkpoint_detected"] == {"witness": "ke-poc", "alarm": "fork",
                                                    "status": 422}


def test_demo_runs_until_sigterm_and_restarts_the_same_nodes(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    for attempt in range(2):
        proc = subprocess.Popen([sys.executable, "-m", "comity", "demo", "--dir", str(root)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert proc.stdout is not None
        deadline = time.monotonic() + 240
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Stop with Ctrl-C" in line or not line:
                break
        assert any("running" in ln for ln in lines), "".join(lines)
        manifest = json.loads((root / "federation.json").read_text())
        assert len(manifest["nodes"]) == 3
        assert oct((root / "federation.json").stat().st_mode & 0o777) == "0o600"
        for node in manifest["nodes"]:
            discovery = httpx.get(node["taxii"].rsplit("/comity/", 1)[0] + "/", trust_env=False,
                                  headers={"authorization": f"Bearer {node['token']}",
                                           "accept": "application/taxii+json;version=2.1"})
            assert discovery.json()["api_roots"] == [node["taxii"]]
            checkpoint = httpx.get(f"{node['log']}/checkpoint", trust_env=False)
            assert checkpoint.status_code == 200
            assert checkpoint.text.startswith(node["url"].split("://", 1)[1] + "/log\n")
            resp = httpx.get(f"{node['api']}/agreements", trust_env=False,
                             headers={"authorization": f"Bearer {node['token']}"})
            assert resp.status_code == 200
            # bilateral FR–KE, trilateral, and the numbers council
            assert len(resp.json()) == (3 if node["key"] != "cn-cert" else 2)
            rdap = httpx.get(f"{node['rdap']}ip/45.64.1.77", trust_env=False)
            assert rdap.status_code == 200
            assert rdap.json()["handle"] == "45.64.1.0/24"
            _check_ui_accounts(node, "".join(lines))
        if attempt == 1:
            assert any("Restarting" in ln for ln in lines)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        proc.stdout.close()
        for node in manifest["nodes"]:
            try:
                httpx.get(f"{node['url']}/healthz", trust_env=False, timeout=2)
                raise AssertionError(f"{node['key']} still answers after shutdown")
            except httpx.HTTPError:
                pass


UI_LANGUAGE = {"fr-moj": "fr", "ke-poc": "en", "cn-cert": "zh"}


def _check_ui_accounts(node: dict[str, Any], banner: str) -> None:
    """One account per role, listed in the banner, that signs in and reads its language."""
    ui = node["ui"]
    assert ui["url"] == f"{node['url']}/ui/"
    accounts = {a["username"]: a for a in ui["accounts"]}
    roles = ["officer", "supervisor", "analyst", "delegate", "administrator"]
    assert sorted(accounts) == sorted(roles)
    for role in roles:
        assert accounts[role]["roles"] == [role]
        assert len(accounts[role]["password"]) >= 12
        assert accounts[role]["password"] in banner
    assert ui["url"] in banner
    with httpx.Client(base_url=node["url"], trust_env=False) as client:
        page = client.get("/ui/login")
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found
        resp = client.post("/ui/login", data={
            "username": "officer", "password": accounts["officer"]["password"],
            "csrf": found.group(1), "next": "/ui/"})
        assert resp.status_code == 303, resp.text
        home = client.get("/ui/")
        assert home.status_code == 200
        assert f'<html lang="{UI_LANGUAGE[node["key"]]}">' in home.text


def test_a_failed_check_names_the_step_and_shows_the_servers_last_words(
        tmp_path: Path, capsys: Any) -> None:
    from comity.demo import Federation, _explain_failure
    from comity.localnet import LocalNode

    fed = Federation(tmp_path)
    node = LocalNode(key="ke-poc", data_dir=tmp_path / "ke-poc", url="http://127.0.0.1:1")
    node.data_dir.mkdir()
    (node.data_dir / "server.log").write_text("".join(f"line {i}\n" for i in range(40)))
    fed.nodes.append(node)
    fed.nodes.append(LocalNode(key="fr-moj", data_dir=tmp_path / "gone", url="http://x"))
    _explain_failure(fed, {"ok": False, "failed_step": "forged checkpoint",
                           "error": "KE answered 409"})
    err = capsys.readouterr().err
    assert err.startswith("FAILED at step 'forged checkpoint': KE answered 409\n")
    assert "--- ke-poc: end of" in err
    assert "line 39" in err
    assert "line 25" in err
    assert "line 24\n" not in err  # only the end of the log
    assert "fr-moj" not in err  # a node without a log is passed over
