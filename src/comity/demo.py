"""``comity demo``: a local federation of three nodes, set up and exercised end to end.

Three participants of different kinds and jurisdictions each get a data
directory, a SQLite database and a server process on loopback. The scenario
exchanges their cards, signs one bilateral and one trilateral agreement over
the federation, and exchanges signed messages, checking every step. Then a
preservation request, acknowledged and preserved for 60 days, superseded by
an MLA request executed with an evidence package the requester verifies (and
an incomplete request refused with the article it misses). Then sharing: the
CERT's indicators pulled by KE and from KE by FR, TLP enforced at each hop,
a revocation following them. Then the ledger:
every node's checkpoint cosigned by its partners, each log verified,
one receipt proven to a third party offline, and one forged checkpoint caught
by the witness it was shown to.

Each node also gets one web UI account per role (``officer``, ``supervisor``,
``analyst``, ``delegate``, ``administrator``) with a random password, reading
the pages in the node's language; the banner and ``federation.json`` (mode
0600) list them, and nothing else does.

``comity demo --dir DIR`` leaves the federation running (and on a second run
restarts the same nodes); ``comity demo --check`` runs the scenario in a
temporary directory, prints one JSON object as its last line, and exits 1
naming the first failing step.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from comity.governance.scenario import registry_scenario
from comity.localnet import (
    LocalNode,
    StepFailed,
    agree,
    comity_command,
    free_port,
    introduce,
    wait_for,
)
from comity.requests.scenario import requests_scenario
from comity.sharing.scenario import sharing_scenario

__all__ = ["Federation", "demo"]

# Lines of each node's server log shown when the check fails.
_LOG_LINES = 15

PARTICIPANTS: list[dict[str, Any]] = [
    {"key": "fr-moj", "name": "Ministère de la Justice — Bureau de l'entraide pénale",
     "kind": "central-authority", "jurisdiction": "FR", "languages": ["fr", "en"],
     "timezone": "Europe/Paris"},
    {"key": "ke-poc", "name": "Kenya 24/7 Cybercrime Point of Contact",
     "kind": "point-of-contact-24-7", "jurisdiction": "KE", "languages": ["en", "sw"],
     "timezone": "Africa/Nairobi"},
    {"key": "cn-cert", "name": "国家计算机网络应急技术处理协调中心 (National CERT)",
     "kind": "cert", "jurisdiction": "CN", "languages": ["zh", "en"],
     "timezone": "Asia/Shanghai"},
]

SCOPE = {
    "request_types": ["expedited-preservation", "subscriber-information",
                      "mla-stored-data", "spontaneous-information"],
    "offence_categories": ["illegal-access", "computer-related-fraud", "csam"],
    "data_categories": ["subscriber", "traffic", "content"],
    "collections": [{"name": "indicators", "tlp_ceiling": "red"}],
    "default_deadlines": {"expedited-preservation": 1, "subscriber-information": 30},
    "languages": ["en", "fr", "zh"],
    "instruments": ["budapest", "untoc"],
}


def _seed_accounts(node: LocalNode, languages: list[str], timezone: str
                   ) -> list[dict[str, Any]]:
    """One web UI account per role on ``node`` (not running yet), each with a random password.

    The accounts read the pages in the node's first language the UI speaks.
    Returns them as the manifest lists them, passwords included.
    """
    from comity.db import session_scope
    from comity.web.accounts import LANGUAGES, Role, add_user

    language = next((lang for lang in languages if lang in LANGUAGES), LANGUAGES[0])
    accounts: list[dict[str, Any]] = []
    opened = node.open_node()
    try:
        with session_scope(opened.sessions) as session:
            for role in Role:
                password = secrets.token_urlsafe(12)
                add_user(session, username=role.value, password=password,
                         roles=frozenset({role}), clock=opened.clock, language=language,
                         timezone=timezone)
                accounts.append({"username": role.value, "password": password,
                                 "roles": [role.value], "language": language})
    finally:
        opened.close()
    return accounts


class Federation:
    """Three demo nodes as child processes, with the web UI accounts seeded on each."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes: list[LocalNode] = []
        # Per node key: the seeded UI accounts, passwords included (kept only in the
        # 0600 manifest and shown in the banner).
        self.accounts: dict[str, list[dict[str, Any]]] = {}

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for p in PARTICIPANTS:
            node = LocalNode(key=p["key"], data_dir=self.root / p["key"],
                             url=f"http://127.0.0.1:{free_port()}")
            node.init(name=p["name"], kind=p["kind"], jurisdiction=p["jurisdiction"],
                      languages=p["languages"])
            self.accounts[node.key] = _seed_accounts(node, p["languages"], p["timezone"])
            self.nodes.append(node)

    def load(self) -> None:
        doc = json.loads((self.root / "federation.json").read_text())
        for n in doc["nodes"]:
            self.nodes.append(LocalNode(key=n["key"], data_dir=Path(n["data_dir"]),
                                        url=n["url"]))
            self.accounts[n["key"]] = list(n.get("ui", {}).get("accounts", []))

    def start(self) -> None:
        for node in self.nodes:
            node.start(wait=False)
        for node in self.nodes:
            node.wait_healthy()

    def stop(self) -> None:
        for node in self.nodes:
            if node.running():
                assert node.process is not None
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            node.close()

    def write_manifest(self) -> Path:
        path = self.root / "federation.json"
        doc = {"nodes": [{"key": n.key, "name": n.name, "node_id": n.node_id,
                          "data_dir": str(n.data_dir), "url": n.url, "api": f"{n.url}/api",
                          "openapi": f"{n.url}/openapi.json", "log": f"{n.url}/log",
                          "taxii": f"{n.url}/taxii2/comity/",
                          "rdap": f"{n.url}/rdap/",
                          "token": n.token,
                          "ui": {"url": f"{n.url}/ui/",
                                 "accounts": self.accounts.get(n.key, [])}}
                         for n in self.nodes]}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        return path


def _delivered(node: LocalNode, message_id: str) -> bool:
    return bool(node.api("GET", f"/api/messages/{message_id}")["status"] == "delivered")


def run_scenario(fed: Federation, report: dict[str, Any],
                 progress: Callable[[str], None]) -> None:
    fr, ke, cn = fed.nodes
    progress("exchanging node cards")
    introduce(fed.nodes)
    for node in fed.nodes:
        if len(node.api("GET", "/api/peers")) != 2:
            raise StepFailed("exchange cards", f"{node.key} does not know both peers")
    report["peers_per_node"] = 2
    progress("signing the bilateral agreement (FR–KE)")
    bilateral = agree(fr, [ke], title="FR–KE cooperation on cybercrime", scope=SCOPE,
                      step="bilateral")
    progress("signing the trilateral agreement (FR–KE–CN)")
    trilateral = agree(ke, [fr, cn], title="Tripartite framework on Internet security",
                       scope=SCOPE, step="trilateral")
    report["agreements"] = {"bilateral": bilateral, "trilateral": trilateral}
    report["agreements_in_force"] = sum(
        1 for aid in (bilateral, trilateral)
        if all(n.agreement_status(aid) == "in_force" for n in fed.nodes
               if aid == trilateral or n is not cn))
    progress("exchanging signed messages")
    plan = [(fr, ke, bilateral, "fr", "Demande de conservation rapide"),
            (ke, cn, trilateral, "en", "Indicators of an ongoing intrusion"),
            (cn, fr, trilateral, "zh", "关于网络攻击的通报")]
    sent: list[tuple[LocalNode, str]] = []
    for sender, to, aid, lang, subject in plan:
        for i in range(5):
            m = sender.api("POST", "/api/messages", json={
                "to": to.node_id, "agreement": aid, "type": "correspondence",
                "body": {"subject": f"{subject} ({i + 1})", "text": f"Message {i + 1}",
                         "language": lang}})
            sent.append((sender, m["id"]))
    for sender, mid in sent:
        wait_for("messages delivered", partial(_delivered, sender, mid))
    for sender, mid in sent:
        m = sender.api("GET", f"/api/messages/{mid}")
        if not m["receipt"] or not any(e["id"] == mid for e in m["receipt"]["entries"]):
            raise StepFailed("receipts", f"message {mid} has no receipt naming it")
    report["messages_delivered"] = len(sent)
    # Deny by default, at the border, before anything is queued.
    refusals = [
        (cn, fr, bilateral, {}, "no-agreement"),
        (fr, ke, bilateral, {"request_type": "joint-investigation"}, "out-of-scope"),
    ]
    for sender, to, aid, extra, expected in refusals:
        resp = sender.client.post(
            f"{sender.url}/api/messages", headers={"authorization": f"Bearer {sender.token}"},
            json={"to": to.node_id, "agreement": aid, "type": "correspondence",
                  "body": {"subject": "x", "text": "x", "language": "en", **extra}})
        if resp.status_code != 403 or not resp.json()["type"].endswith(expected):
            raise StepFailed(f"refused: {expected}", f"got HTTP {resp.status_code} {resp.text}")
    report["refused_at_border"] = [r[-1] for r in refusals]
    progress("requests: preservation, MLA superseding it, evidence returned and verified")
    report["requests"] = requests_scenario(fr, ke, bilateral, fed.root)
    report["sharing"] = sharing_scenario(fr, ke, cn, progress)
    report["registry"] = registry_scenario(fr, ke, cn, progress)
    progress("witnessing the logs, proving a receipt offline, catching a forged checkpoint")
    report["ledger"] = ledger_scenario(fed, receipt_of=sent[0])


def _partners(fed: Federation) -> dict[str, set[str]]:
    """Who witnesses whom: every pair of nodes sharing an agreement in force."""
    fr, ke, cn = fed.nodes
    pairs = [(fr, ke), (ke, cn), (cn, fr)]
    out: dict[str, set[str]] = {n.node_id: set() for n in fed.nodes}
    for x, y in pairs:
        out[x.node_id].add(y.node_id)
        out[y.node_id].add(x.node_id)
    return out


def _all_cosigned(fed: Federation, partners: dict[str, set[str]]) -> bool:
    for node in fed.nodes:
        status = node.api("GET", "/api/ledger")
        cosigned = status["cosigned_by"]
        if status["size"] == 0 or set(cosigned) != partners[node.node_id] or any(
                size != status["size"] for size in cosigned.values()):
            return False
    return True


def _run_cli(*args: str) -> dict[str, Any]:
    done = subprocess.run(comity_command(*args), capture_output=True,  # noqa: S603
                          check=False)
    if done.returncode != 0:
        raise StepFailed(f"comity {' '.join(args[:2])}",
                         done.stderr.decode(errors="replace")[-2000:])
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _prove_receipt(proof_file: Path, sender: LocalNode, message_id: str) -> dict[str, Any]:
    """The sender proves a receipt into ``proof_file``; what checking it offline finds."""
    done = subprocess.run(comity_command(  # noqa: S603
        "log", "prove-receipt", message_id, "--data-dir", str(sender.data_dir),
        "--out", str(proof_file)), capture_output=True, check=False)
    if done.returncode != 0:
        raise StepFailed("prove a receipt", done.stderr.decode(errors="replace")[-2000:])
    return _run_cli("log", "verify-receipt", str(proof_file), "--json")


def ledger_scenario(fed: Federation, *, receipt_of: tuple[LocalNode, str]) -> dict[str, Any]:
    """Cosigned checkpoints everywhere, one receipt proven offline, one forgery caught."""
    from comity.hazmat.note import Checkpoint, NoteSigner, sign_note
    from comity.ledger.witness import encode_add_checkpoint

    partners = _partners(fed)
    wait_for("every checkpoint cosigned by the node's partners",
             partial(_all_cosigned, fed, partners), timeout=120)
    statuses = {n.key: n.api("GET", "/api/ledger") for n in fed.nodes}
    verified = {n.key: _run_cli("log", "verify", "--data-dir", str(n.data_dir), "--json")["ok"]
                for n in fed.nodes}
    # The sender proves, from the receiver's public log, that the receiver
    # logged our message; a third party checks the file with nothing else.
    sender, message_id = receipt_of
    proofs: list[dict[str, Any]] = []

    def proven_to_all() -> bool:
        # The receiver's newest checkpoint carries the proof's cosignatures:
        # if its log grew since the wait above, its witnesses cosign anew.
        proofs.append(_prove_receipt(fed.root / "receipt.tlog-proof", sender, message_id))
        return len(proofs[-1]["cosigned_by"]) == len(partners[proofs[-1]["log_node"]])

    wait_for("a receipt proof cosigned by every witness of the receiver", proven_to_all,
             timeout=60, interval=1)
    offline = proofs[-1]
    # A log that lies: FR signs a second checkpoint of the size KE cosigned,
    # with another root. KE refuses it and keeps both as evidence.
    fr, ke, _ = fed.nodes
    # The size KE cosigned (FR's log may have grown since: a late entry is
    # integrated whenever its batch closes).
    held = statuses["ke-poc"]["witnessing"][fr.node_id]["size"]
    node = fr.open_node()
    try:
        signer = NoteSigner(node.ledger.origin, node.local.signing_key.to_cryptography())
        forged = sign_note(Checkpoint(node.ledger.origin, held, b"\x00" * 32).to_text(),
                           [signer])
    finally:
        node.close()
    resp = ke.client.post(f"{ke.url}/log/add-checkpoint",
                          content=encode_add_checkpoint(held, [], forged))
    alarms = ke.api("GET", "/api/ledger/alarms")
    if resp.status_code != 422 or not any(
            a["kind"] == "fork" and a["peer"] == fr.node_id for a in alarms):
        raise StepFailed("forged checkpoint", f"KE answered {resp.status_code}, alarms {alarms}")
    return {
        "entries": {k: v["size"] for k, v in statuses.items()},
        "cosigned_by_all_partners": True,
        "verified": verified,
        "receipt_verified_offline": {
            "message": offline["message_id"], "receiver": offline["log_node"],
            "entry": offline["index"], "cosigned_by": sorted(offline["cosigned_by"])},
        "forged_checkpoint_detected": {"witness": ke.key, "alarm": "fork",
                                       "status": resp.status_code},
    }


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    def handler(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _print_banner(fed: Federation, manifest: Path) -> None:
    print("\nComity demo federation is running. Open:")
    for n in fed.nodes:
        print(f"  {n.name}\n    API: {n.url}/api  (OpenAPI: {n.url}/openapi.json)  "
              f"node id {n.node_id}")
        accounts = fed.accounts.get(n.key, [])
        if accounts:
            print(f"    Web UI: {n.url}/ui/  sign in as (username / password):")
            for a in accounts:
                print(f"      {a['username']:<14} {a['password']}")
    print(f"The web UI accounts (one per role, each node its own) are also in {manifest}")
    cli = Path(sys.executable).parent / "comity"
    print(f"API calls need the node's token (Authorization: Bearer …) from {manifest}")
    print(f"Try:  {cli} agreement list --data-dir {fed.nodes[0].data_dir}")
    print("Stop with Ctrl-C.", flush=True)


def demo(
    dir: Annotated[Path, typer.Option("--dir", help="Where the demo nodes live.")]
    = Path("comity-demo"),
    check: Annotated[bool, typer.Option(help="Run the scenario once in a temporary directory, "
                                              "verify every step, print JSON and exit.")] = False,
) -> None:
    """Run a local federation of three nodes (what `make run` starts)."""
    with _signals_raise():
        if check:
            with tempfile.TemporaryDirectory(prefix="comity-demo-") as tmp:
                ok = _check(Path(tmp))
            raise typer.Exit(0 if ok else 1)
        _run(dir)


def _check(root: Path) -> bool:
    fed = Federation(root)
    report: dict[str, Any] = {"ok": False, "nodes": 0}
    step = "create nodes"
    try:
        fed.create()
        step = "start nodes"
        fed.start()
        report["nodes"] = len(fed.nodes)
        fed.write_manifest()
        step = "scenario"
        run_scenario(fed, report, lambda s: print(f"- {s}", file=sys.stderr))
        report["ok"] = True
    except StepFailed as e:
        report.update(failed_step=e.step, error=e.detail)
    except Exception as e:
        report.update(failed_step=step, error=f"{type(e).__name__}: {e}")
    finally:
        fed.stop()
    if not report["ok"]:
        _explain_failure(fed, report)
    print(json.dumps(report, ensure_ascii=False))
    return bool(report["ok"])


def _explain_failure(fed: Federation, report: dict[str, Any]) -> None:
    """Name the failed step on stderr, with the end of each node's server log.

    The temporary directory is gone once the check exits, so what the
    servers said about the failure is shown now or never.
    """
    print(f"FAILED at step {report.get('failed_step')!r}: {report.get('error')}",
          file=sys.stderr)
    for node in fed.nodes:
        log_file = node.data_dir / "server.log"
        try:
            lines = log_file.read_text(errors="replace").splitlines()[-_LOG_LINES:]
        except OSError:
            continue
        print(f"--- {node.key}: end of {log_file}", file=sys.stderr)
        print("\n".join(lines), file=sys.stderr)


def _run(root: Path) -> None:
    fed = Federation(root)
    fresh = not (root / "federation.json").exists()
    try:
        if fresh:
            print(f"Creating three nodes in {root} ...", flush=True)
            fed.create()
        else:
            print(f"Restarting the demo nodes in {root} ...", flush=True)
            fed.load()
        fed.start()
        manifest = fed.write_manifest()
        if fresh:
            report: dict[str, Any] = {}
            run_scenario(fed, report, lambda s: print(f"- {s}", flush=True))
        _print_banner(fed, manifest)
        while all(n.process is not None and n.process.poll() is None for n in fed.nodes):
            time.sleep(0.5)
        print("A node stopped; shutting the demo down.", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nShutting down ...", flush=True)
    except StepFailed as e:
        print(f"demo step failed: {e}", file=sys.stderr)
        raise typer.Exit(1) from e
    finally:
        fed.stop()
