"""Benchmark: an evidence package between two nodes, against a raw HTTP upload of the same bytes.

Two central authorities (``comity node serve`` processes, SQLite) on loopback
under an agreement; the requester sends an MLA request, the requested party
executes it with one file of ``--size-mib`` MiB (default 1 GiB). Measured in
one run:

1. **package**: ``comity requests act ... execute --evidence FILE`` (read,
   hash, encrypt to the requester, sign; then the act), wall time and the
   peak memory of that process;
2. **transfer**: from the act's commit until the requester holds every byte
   with its SHA-256 checked against the signed manifest (the node streams,
   the receiver hashes while writing, fsyncs, logs custody, signs a receipt);
3. **verify**: the requester decrypts and checks every byte
   (``POST /api/evidence/{id}/verify``);
4. **raw**: the same ciphertext PUT to a bare endpoint that streams it to
   disk (``bench.raw_upload``), with the same client and chunk size.

Peak memory (VmHWM) of both node processes and of the raw server is read
from /proc at the end. Prints one JSON object; ``--out FILE`` keeps it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench import write_results
from comity.clock import parse_ts
from comity.localnet import LocalNode, agree, comity_command, free_port, introduce, spawn, wait_for

SCOPE = {"request_types": ["mla-stored-data"], "offence_categories": ["illegal-access"],
         "data_categories": ["traffic"], "languages": ["en"], "instruments": ["budapest"]}
MLA = {"type": "mla-stored-data", "reference": "BENCH-1", "language": "en",
       "offence": "illegal-access", "data_categories": ["traffic"],
       "fields": {"requesting_authority": "Bench authority", "proceedings": "Case 1",
                  "summary_of_facts": "Facts.", "assistance_sought": "Stored data.",
                  "purpose": "Evidence."}}
MIB = 1 << 20


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def write_file(path: Path, size: int) -> None:
    block = os.urandom(MIB)
    with open(path, "wb") as f:
        for _ in range(size // MIB):
            f.write(block)
        f.write(block[: size % MIB])


def chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(MIB):
            yield block


def state(node: LocalNode, rid: str) -> str | None:
    r = node.client.get(f"{node.url}/api/requests/{rid}",
                        headers={"authorization": f"Bearer {node.token}"})
    return r.json()["state"] if r.status_code == 200 else None


def run(root: Path, size: int) -> dict[str, Any]:
    env = {"COMITY_POLL_INTERVAL_SECONDS": "0.05"}
    req = spawn(root, "requester", env=env, kind="central-authority")
    resp = spawn(root, "responder", env=env, kind="central-authority", jurisdiction="KE")
    raw_proc = None
    try:
        introduce([req, resp])
        aid = agree(req, [resp], title="Bench", scope=SCOPE)
        rid = req.api("POST", "/api/requests", json={"to": resp.node_id, "agreement": aid,
                                                      "request": MLA, "by": "a"})["id"]
        for step in ("submit", "approve", "send"):
            req.api("POST", f"/api/requests/{rid}/{step}", json={"by": step})
        wait_for("request received", lambda: state(resp, rid) == "sent")
        resp.api("POST", f"/api/requests/{rid}/events",
                 json={"event": "acknowledge", "data": {"reference": "R-1"}})
        wait_for("acknowledged", lambda: state(req, rid) == "acknowledged")
        source = root / "evidence.bin"
        write_file(source, size)
        t0 = time.perf_counter()
        done = subprocess.run(comity_command(
            "requests", "act", rid, "execute", "--set", "summary=bench", "--evidence",
            str(source), "--data-dir", str(resp.data_dir), "--json"),
            capture_output=True, check=True)
        t_packaged = time.perf_counter()
        cli_peak = _children_peak_mib()
        shown = json.loads(done.stdout)
        package = shown["evidence"][0]["id"]

        def received() -> bool:
            r = req.api("GET", f"/api/evidence/{package}")
            return bool(r["status"] == "received")

        wait_for("package received", received, timeout=3600, interval=0.02)
        t_received = time.perf_counter()
        req.api("POST", f"/api/evidence/{package}/verify", json={})
        t_verified = time.perf_counter()
        # The transfer runs from the act's commit (the sender's "packaged"
        # custody event) to the receiver's "received" event: both stamped by
        # the one clock of this machine, and free of the CLI's start-up time.
        sent = resp.api("GET", f"/api/evidence/{package}")["custody"]
        got = req.api("GET", f"/api/evidence/{package}")["custody"]
        transfer_s = (parse_ts(next(e["at"] for e in got if e["event"] == "received"))
                      - parse_ts(next(e["at"] for e in sent if e["event"] == "packaged"))
                      ).total_seconds()
        cipher = resp.data_dir / "evidence" / "out" / package / "0000.enc"
        cipher_size = cipher.stat().st_size
        node_peaks = {"requester": peak_rss_mib(req.process.pid),  # type: ignore[union-attr]
                      "responder": peak_rss_mib(resp.process.pid)}  # type: ignore[union-attr]
        # The raw baseline: the same bytes, the same client, a bare endpoint.
        raw_dir = root / "raw"
        raw_dir.mkdir()
        port = free_port()
        raw_proc = subprocess.Popen([sys.executable, "-m", "bench.raw_upload",
                                     str(raw_dir), str(port)])
        with httpx.Client(timeout=600, trust_env=False) as client:
            wait_for("raw server", lambda: _up(client, port))
            t1 = time.perf_counter()
            r = client.put(f"http://127.0.0.1:{port}/upload/x", content=chunks(cipher),
                           headers={"content-length": str(cipher_size)})
            raw_s = time.perf_counter() - t1
            assert r.json()["received"] == cipher_size
        raw_peak = peak_rss_mib(raw_proc.pid)
    finally:
        for n in (req, resp):
            n.close()
        if raw_proc is not None:
            raw_proc.terminate()
            raw_proc.wait(10)
    return {
        "bytes": size, "cipher_bytes": cipher_size,
        "package_s": round(t_packaged - t0, 3),
        "package_mb_s": round(size / MIB / (t_packaged - t0), 1),
        "transfer_s": round(transfer_s, 3),
        "transfer_mb_s": round(cipher_size / MIB / transfer_s, 1),
        "verify_s": round(t_verified - t_received, 3),
        "act_to_receiver_observed_s": round(t_received - t_packaged, 3),
        "verify_mb_s": round(size / MIB / (t_verified - t_received), 1),
        "raw_upload_s": round(raw_s, 3),
        "raw_upload_mb_s": round(cipher_size / MIB / raw_s, 1),
        "transfer_vs_raw": round(raw_s / transfer_s, 3),
        "end_to_end_mb_s": round(size / MIB / (t_verified - t0), 1),
        "peak_rss_mib": {**{k: round(v, 1) for k, v in node_peaks.items()},
                         "packaging_cli": round(cli_peak, 1), "raw_server": round(raw_peak, 1)},
    }


def _up(client: httpx.Client, port: int) -> bool:
    try:
        return client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def _children_peak_mib() -> float:
    import resource

    # Linux reports kilobytes: the largest waited-for child (the packaging CLI).
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--out", type=Path, help="write the result here as JSON")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="comity-bench-evidence-") as tmp:
        result = {"benchmark": "evidence", **run(Path(tmp), args.size_mib * MIB)}
    print(json.dumps(result))
    write_results(args.out, result)


if __name__ == "__main__":
    main()
