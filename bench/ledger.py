"""Benchmark: the node's log against pymerkle's SqliteTree, side by side.

- **appends**: N 32-byte commitments assigned in transactions of ``--batch``
  entries and integrated by the sequencer (hash blocks, entry bundles, the
  consistency check and a signed checkpoint per integration), on SQLite with
  ``synchronous=FULL``; entries per second, all durable.
- **inclusion proofs**: proofs per second served for random indexes in the
  tree, generated from storage with the block cache starting cold; every
  50th proof is verified.
- **reference**: pymerkle 7's ``SqliteTree`` appending the same entries
  (which stores leaves and computes no roots) and proving inclusion.

- **cosignature round trip**: one entry appended, integrated (a new signed
  checkpoint) and sent to a partner node's witness over loopback HTTP, which
  checks the consistency proof, moves its view by compare-and-swap, cosigns,
  and the cosignature is verified and stored; p50/p99 over ``--rounds``,
  beside the plain HTTP round trip to the same server (``/healthz``).

Run ``python -m bench.ledger`` (1,000,000 entries; ``--entries`` to change;
``--proof-entries`` grows the tree further before the proof test). Prints one
JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import write_results
from comity.clock import SystemClock
from comity.config import Settings
from comity.db import read_scope, session_scope
from comity.hazmat import merkle
from comity.identity.schemas import NodeKind
from comity.identity.services import init_node
from comity.node import Node


def commitments(n: int, start: int = 0) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(start, start + n)]


def comity_appends(node: Node, n: int, batch: int) -> dict[str, Any]:
    ledger = node.ledger
    t0 = time.perf_counter()
    done = 0
    while done < n:
        k = min(batch, n - done)
        data = commitments(k, done)
        with session_scope(node.sessions) as s:
            ledger.assign_many(s, data)
        while ledger.integrate():
            pass
        done += k
    elapsed = time.perf_counter() - t0
    return {"entries": n, "seconds": round(elapsed, 2), "per_s": round(n / elapsed)}


def grow(node: Node, start: int, end: int, batch: int) -> None:
    """Append more entries (untimed) so proofs are measured on a bigger tree."""
    done = start
    while done < end:
        k = min(batch, end - done)
        with session_scope(node.sessions) as s:
            node.ledger.assign_many(s, commitments(k, done))
        while node.ledger.integrate():
            pass
        done += k


def _timed_proofs(node: Node, idx: list[int], batch: int) -> float:
    """Seconds to generate inclusion proofs for ``idx``, ``batch`` at a time."""
    head = node.ledger.head()
    t0 = time.perf_counter()
    with read_scope(node.sessions) as s:
        reader = node.ledger.reader(s)
        for k in range(0, len(idx), batch):
            chunk = idx[k:k + batch]
            if batch > 1:
                reader.prefetch(chunk, head.size)
            proofs = [merkle.inclusion_proof(i, head.size, reader) for i in chunk]
    elapsed = time.perf_counter() - t0
    # Serving is what is timed; some proofs are verified, to be sure the
    # figure is for correct proofs.
    for i, proof in list(zip(idx[-len(proofs):], proofs, strict=True))[::50]:
        merkle.verify_inclusion(merkle.leaf_hash(commitments(1, i)[0]), i, head.size, proof,
                                head.root)
    return elapsed


def comity_proofs(node: Node, count: int) -> dict[str, Any]:
    """Proofs for random entries: one by one from a cold cache, batched, then warm."""
    size = node.ledger.head().size
    rng = random.Random(7)
    out: dict[str, Any] = {"tree_size": size, "proofs": count}
    node.ledger.cache.clear()
    idx = [rng.randrange(size) for _ in range(count)]
    out["per_s"] = round(count / _timed_proofs(node, idx, 1))
    node.ledger.cache.clear()
    idx = [rng.randrange(size) for _ in range(count)]
    out["batched_1000_cold_per_s"] = round(count / _timed_proofs(node, idx, 1000))
    with read_scope(node.sessions) as s:  # every tile in memory: a long-running server
        node.ledger.reader(s).prefetch(range(0, size, 256), size)
    idx = [rng.randrange(size) for _ in range(count)]
    out["warm_per_s"] = round(count / _timed_proofs(node, idx, 1))
    out["note"] = ("per_s: one proof at a time, cache cold at start; batched: 1,000 "
                   "proofs per call with their tiles prefetched, cold; warm: every tile "
                   "cached")
    return out


def cosign_round_trip(root: Path, rounds: int) -> dict[str, Any]:
    import httpx

    from comity.localnet import introduce, spawn

    a, b = spawn(root, "log-node"), spawn(root, "witness-node", jurisdiction="KE")
    try:
        introduce([a, b])
        a.stop()  # the log works in this process, so nothing else integrates
        node = a.open_node()
        publisher = node.publisher()
        rtt: list[float] = []
        plain: list[float] = []
        with httpx.Client(trust_env=False, timeout=30) as client:
            for i in range(rounds):
                with session_scope(node.sessions) as s:
                    node.ledger.assign(s, commitments(1, i)[0])
                t0 = time.perf_counter()
                node.ledger.integrate()
                outcome = publisher._publish_to(client, b.node_id)
                rtt.append(time.perf_counter() - t0)
                if outcome != "cosigned":
                    raise RuntimeError(f"round {i}: {outcome}")
                t0 = time.perf_counter()
                client.get(f"{b.url}/healthz").raise_for_status()
                plain.append(time.perf_counter() - t0)
        node.close()
    finally:
        a.close()
        b.close()
    rtt.sort()
    plain.sort()

    def ms(xs: list[float], q: float) -> float:
        return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 2)

    return {"rounds": rounds, "p50_ms": ms(rtt, 0.5), "p99_ms": ms(rtt, 0.99),
            "plain_http_p50_ms": ms(plain, 0.5),
            "ratio_to_plain_http": round(ms(rtt, 0.5) / max(ms(plain, 0.5), 0.01), 1)}


def pymerkle_reference(path: Path, n: int, proofs: int) -> dict[str, Any]:
    from pymerkle import SqliteTree

    tree = SqliteTree(str(path))
    t0 = time.perf_counter()
    tree.append_entries(commitments(n))
    append_s = time.perf_counter() - t0
    rng = random.Random(7)
    size = tree.get_size()
    t0 = time.perf_counter()
    for _ in range(proofs):
        tree.prove_inclusion(rng.randrange(size) + 1, size)  # pymerkle counts from 1
    # Timed the same way as ours: generating proofs, not verifying them.
    proof_s = time.perf_counter() - t0
    tree.close()
    return {"entries": n, "appends_per_s": round(n / append_s),
            "proofs": proofs, "proofs_per_s": round(proofs / proof_s),
            "note": "appends store leaves only; no roots are computed"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--proofs", type=int, default=20_000)
    ap.add_argument("--reference-entries", type=int, default=100_000,
                    help="pymerkle tree size (its proofs slow down steeply with size)")
    ap.add_argument("--proof-entries", type=int, default=0,
                    help="grow the tree to this size before the proof test (e.g. 10000000)")
    ap.add_argument("--rounds", type=int, default=200, help="cosignature round trips")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="comity-bench-ledger-") as tmp:
        root = Path(tmp)
        init_node(root / "node", name="Bench", kind=NodeKind.CERT, jurisdiction="FR",
                  url="http://127.0.0.1:1", languages=["en"], clock=SystemClock())
        # A cache big enough for every tile of 10,000,000 entries (about 640 MiB).
        node = Node.open(Settings(data_dir=root / "node", ledger_cache_tiles=65_536))
        try:
            appends = comity_appends(node, args.entries, args.batch)
            if args.proof_entries > args.entries:
                grow(node, args.entries, args.proof_entries, args.batch)
            proofs = comity_proofs(node, args.proofs)
        finally:
            node.close()
        ref = pymerkle_reference(root / "pymerkle.db", args.reference_entries,
                                 min(args.proofs, 2_000))
        cosign = cosign_round_trip(root / "cosign", args.rounds)
    result = {"benchmark": "ledger", "backend": "sqlite", "appends": appends,
              "inclusion": proofs, "pymerkle": ref,
              "cosignature_round_trip": cosign,
              "targets": {"appends_per_s>=50000": appends["per_s"] >= 50_000,
                          "proofs_per_s>=20000_at_10M": (proofs["per_s"] >= 20_000
                                                         if proofs["tree_size"] >= 10_000_000
                                                         else None)}}
    print(json.dumps(result), flush=True)
    write_results(args.out, result)


if __name__ == "__main__":
    main()
