"""Benchmark: signed federation messages with receipts, against a raw insert baseline.

Two nodes (``comity node serve`` processes) on loopback with a bilateral
agreement in force. Three measurements, side by side in one run:

1. **throughput**: 10,000 messages queued at the sender in one transaction;
   time until the last signed receipt is stored back at the sender.
2. **latency**: messages offered through the sender's API at a fixed rate
   (200/s); per message, the time from being queued to its receipt being
   stored (p50, p99).
3. **raw baseline**: the same 10,000 signed envelopes POSTed to a minimal
   endpoint that only inserts them (``bench.raw_server``): once in batches of
   the size the delivery worker uses, once one per request.

Run ``python -m bench.federation`` (SQLite) or with ``--postgres`` as well.
Prints one JSON object per backend, and a summary; ``--out FILE`` keeps them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import func, select

from bench import write_results
from comity.db import session_scope
from comity.federation.models import OutboxMessage
from comity.localnet import LocalNode, agree, free_port, introduce, spawn, wait_for
from comity.node import Node
from comity.pgcluster import Cluster

SCOPE = {"request_types": ["expedited-preservation"], "languages": ["en"]}
BODY = {"subject": "Expedited preservation of stored computer data",
        "text": "Please preserve the subscriber and traffic data of the account described "
                "in the attached request, pending a request for mutual assistance. " * 2,
        "language": "en", "request_type": "expedited-preservation"}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def start_pair(root: Path, db_urls: tuple[str, str], batch: int) -> tuple[LocalNode, LocalNode]:
    env = {"COMITY_POLL_INTERVAL_SECONDS": "0.05", "COMITY_DELIVERY_BATCH_SIZE": str(batch)}
    nodes = [spawn(root, key, env=env, database_url=url)
             for key, url in zip(("sender", "receiver"), db_urls, strict=True)]
    introduce(nodes)
    return nodes[0], nodes[1]


def pending(db: Node) -> int:
    with session_scope(db.sessions) as s:
        return int(s.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status == "pending")) or 0)


def offer_open_loop(offer: Callable[[], Any], rate: float, n: int,
                    workers: int) -> tuple[list[Any], float]:
    """Call ``offer`` ``n`` times at ``rate`` per second from a thread pool.

    Open loop: a slow answer never delays the next offer, so the offered rate
    is the one asked for. Returns the results in order and the rate achieved.
    """
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = []
        for i in range(n):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(offer))
        offered = n / (time.monotonic() - start)
        return [f.result() for f in futures], offered


def delivery_latency(db: Node, ids: list[str], offered: float) -> dict[str, Any]:
    """Wait for ``ids`` to be delivered; queue-to-receipt latency figures."""
    wait_for("latency: all delivered", lambda: pending(db) == 0, timeout=120)
    with session_scope(db.sessions) as s:
        rows = s.execute(select(OutboxMessage.created_at, OutboxMessage.delivered_at).where(
            OutboxMessage.message_id.in_(ids))).all()
    lat = [(d - c).total_seconds() * 1000 for c, d in rows]
    return {"messages": len(ids), "offered_per_s": round(offered, 1),
            "p50_ms": round(percentile(lat, 50), 2), "p99_ms": round(percentile(lat, 99), 2),
            "max_ms": round(max(lat), 2), "mean_ms": round(statistics.fmean(lat), 2)}


def throughput(sender: LocalNode, receiver: LocalNode, aid: str, n: int) -> dict[str, Any]:
    db = sender.open_node()
    try:
        with session_scope(db.sessions) as s:
            rows = [db.federation.send(s, to=receiver.node_id, type="correspondence",
                                       body=BODY, agreement_id=aid) for _ in range(n)]
        t0 = time.monotonic()
        wait_for("throughput: all delivered", lambda: pending(db) == 0, timeout=600,
                 interval=0.02)
        elapsed = time.monotonic() - t0
        ids = [r.message_id for r in rows]
        with session_scope(db.sessions) as s:
            envs = [orjson.loads(e) for e in s.scalars(select(OutboxMessage.envelope).where(
                OutboxMessage.message_id.in_(ids)))]
    finally:
        db.close()
    return {"messages": n, "seconds": round(elapsed, 3),
            "messages_per_s": round(n / elapsed, 1), "envelopes": envs}


def latency(sender: LocalNode, receiver: LocalNode, aid: str, rate: float,
            n: int) -> dict[str, Any]:
    """Open loop: messages are offered at ``rate`` whatever the answer times."""
    client = httpx.Client(trust_env=False, timeout=30,
                          limits=httpx.Limits(max_connections=32))
    headers = {"authorization": f"Bearer {sender.token}"}
    payload = {"to": receiver.node_id, "agreement": aid, "type": "correspondence",
               "body": BODY}

    def offer() -> tuple[str, float]:
        t = time.perf_counter()
        resp = client.post(f"{sender.url}/api/messages", headers=headers, json=payload)
        resp.raise_for_status()
        return str(resp.json()["id"]), (time.perf_counter() - t) * 1000

    answers, offered = offer_open_loop(offer, rate, n, workers=16)
    client.close()
    api_ms = [a[1] for a in answers]
    db = sender.open_node()
    try:
        result = delivery_latency(db, [a[0] for a in answers], offered)
    finally:
        db.close()
    result.update(api_p50_ms=round(percentile(api_ms, 50), 2),
                  api_p99_ms=round(percentile(api_ms, 99), 2))
    return result


def latency_in_process(sender: LocalNode, receiver: LocalNode, aid: str, rate: float,
                       n: int) -> dict[str, Any]:
    """Federation latency: messages queued by the sender node's own code.

    The sender runs in this process (its server and delivery workers in a
    thread), and messages are queued at ``rate`` through ``Federation.send``,
    each in its own transaction, the way a domain queues a message as part of
    a business change. Latency is from that commit to the receiver's signed
    receipt being stored at the sender.
    """
    import threading

    import uvicorn

    from comity.app import create_app

    sender.stop()
    node = sender.open_node()
    port = int(sender.url.rsplit(":", 1)[1])
    server = uvicorn.Server(uvicorn.Config(create_app(node), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for("in-process sender starts", lambda: server.started, timeout=30)
    def offer() -> str:
        with session_scope(node.sessions) as s:
            return node.federation.send(s, to=receiver.node_id, type="correspondence",
                                        body=BODY, agreement_id=aid).message_id

    try:
        ids, offered = offer_open_loop(offer, rate, n, workers=8)
        return delivery_latency(node, ids, offered)
    finally:
        server.should_exit = True
        thread.join(30)
        node.close()


def raw_baseline(db_url: str, envelopes: list[Any], batch: int) -> dict[str, Any]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.raw_server", db_url, str(port)])
    client = httpx.Client(trust_env=False, timeout=60)
    url = f"http://127.0.0.1:{port}/ingest"
    try:
        def up() -> bool:
            try:
                client.post(url, content=b"[]")
                return True
            except httpx.HTTPError:
                return False

        wait_for("raw server starts", up, timeout=30)
        out: dict[str, Any] = {}
        for name, size in (("batched", batch), ("single", 1)):
            t0 = time.monotonic()
            for i in range(0, len(envelopes), size):
                resp = client.post(url, content=orjson.dumps(envelopes[i:i + size]),
                                   headers={"content-type": "application/json"})
                resp.raise_for_status()
            elapsed = time.monotonic() - t0
            out[name] = {"messages_per_s": round(len(envelopes) / elapsed, 1),
                         "seconds": round(elapsed, 3), "batch": size}
        return out
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


def run_backend(backend: str, cluster: Cluster | None, n: int, rate: float, lat_n: int,
                batch: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"comity-bench-{backend}-") as tmp:
        root = Path(tmp)
        if cluster is None:
            urls = ("", "")
            raw_url = f"sqlite:///{root / 'raw.db'}"
        else:
            urls = (cluster.new_database(), cluster.new_database())
            raw_url = cluster.new_database()
        sender, receiver = start_pair(root, urls, batch)
        try:
            aid = agree(sender, [receiver], title="Benchmark", scope=SCOPE)
            tp = throughput(sender, receiver, aid, n)
            lat_api = latency(sender, receiver, aid, rate, lat_n)
            lat = latency_in_process(sender, receiver, aid, rate, lat_n)
        finally:
            sender.close()
            receiver.close()
        envelopes = tp.pop("envelopes")
        raw = raw_baseline(raw_url, envelopes, batch)
    # The baseline: the same payloads POSTed to a minimal endpoint that
    # only inserts, one payload per request. The batched variant is reported
    # beside it as an upper bound no signature-checking path can approach.
    ratio = tp["messages_per_s"] / raw["single"]["messages_per_s"]
    return {
        "benchmark": "federation", "backend": backend, "batch_size": batch,
        "throughput": tp, "latency": lat, "latency_via_api": lat_api, "raw": raw,
        "ratio_vs_raw": round(ratio, 3),
        "ratio_vs_raw_batched": round(tp["messages_per_s"] / raw["batched"]["messages_per_s"],
                                      3),
        "targets": {
            "messages_per_s>=1000": tp["messages_per_s"] >= 1000,
            "ratio_vs_raw>=0.5": ratio >= 0.5,
            "p99_ms<50_at_200_per_s": lat["p99_ms"] < 50,
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=200.0, help="offered rate for latency")
    ap.add_argument("--latency-messages", type=int, default=2_000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--postgres", action="store_true", help="also run on PostgreSQL")
    ap.add_argument("--only-postgres", action="store_true")
    ap.add_argument("--out", type=Path, help="write the results here as JSON")
    args = ap.parse_args()
    results = []
    if not args.only_postgres:
        results.append(run_backend("sqlite", None, args.messages, args.rate,
                                   args.latency_messages, args.batch))
        print(json.dumps(results[-1]), flush=True)
    if args.postgres or args.only_postgres:
        cluster = Cluster()
        cluster.start()
        try:
            results.append(run_backend("postgresql", cluster, args.messages, args.rate,
                                       args.latency_messages, args.batch))
            print(json.dumps(results[-1]), flush=True)
        finally:
            cluster.stop()
    write_results(args.out, results)


if __name__ == "__main__":
    main()
