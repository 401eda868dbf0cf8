"""Benchmark: RDAP lookups over HTTP on a registry of a million delegations, and how the
cost of a lookup grows with the table, against a bare SQLite query.

Method:

1. **Load.** One node (``comity node init``, SQLite) is created as
   ``comity.localnet.LocalNode`` does. Its registry gets three pools of the
   council ``bench`` (IPv4 ``32.0.0.0/4``, IPv6 ``2a00::/12``, AS numbers
   ``AS100000000-AS199999999``) through ``Registry.add_pool``, 1,000 holder
   entities, and then delegations written straight into the node's SQLite
   file with :class:`comity.db.BulkInsert` (50,000 rows a transaction), in
   stages up to ``--delegations`` (default 1,000,000). Delegation ``i`` is
   fixed by ``i`` alone (:func:`delegation`): half IPv4 (every other one a
   non-power-of-two range of 24 addresses, so ``cidr0_cidrs`` has two
   prefixes), three tenths IPv6 ``/48``s, a fifth single AS numbers; none
   overlap, each lies in its pool, with gaps between them (which belong to
   the pool); a quarter name a council decision (so their answers carry the
   decision links). After each stage the WAL is checkpointed.
2. **Growth** (``--sizes``, default 1k, 10k, 100k, 1M): at each size,
   ``--lookups`` queries, each a random address (or AS number) inside a
   random delegation loaded so far, timed in four ways:
   - ``raw_sqlite``: the delegation seek as a bare SQLite query (``sqlite3``,
     no SQLAlchemy, no server) on the same table: the floor;
   - ``registry_lookup`` (``Registry.lookup``, ORM) and ``rdap_find`` (the
     RDAP fast path: one statement of two seeks on the driver) in this
     process, inside open read-only sessions (batches of 500, emptied after
     every lookup, untimed, so small tables are not flattered by objects
     already loaded);
   - ``rdap_find_own_transaction``: ``rdap.find`` in a ``read_scope`` of its
     own, as a request pays for it;
   - ``http``: ``GET /rdap/ip/<address>`` (``--http-lookups``, IP only) one
     at a time on one keep-alive connection to the running server: p50, p95.
   ``vs_raw`` gives each as a multiple of the raw seek; ``growth``, per step
   of 10x in size, the ratio of per-lookup times (a B-tree seek grows with
   the logarithm: near 1, far below 10).
3. **Throughput** at the largest size: ``--concurrency`` (default 1, 8, 16, 32)
   client processes, each on its own keep-alive connection, each for
   ``--throughput-s`` seconds, GETting ``/rdap/ip/<address>`` for random
   addresses inside delegations (IPv4 and IPv6) and checking that each
   answer is 200 and names the expected delegation's handle. Lookups/s over
   the wall time of the slowest client, latency, and the CPU time the server
   process and the clients spent per request (the server's from /proc). The
   client is a minimal HTTP/1.1 one (:class:`RawClient`), so that as much of
   the two cores as possible is left to the server. The clients connect
   first and start together (a barrier), so all of them are in flight for
   the whole window. One server process (uvicorn: one event loop and its
   thread pool, one core's worth under the GIL) does best with several
   requests in flight: alone, every request wakes idle threads; together,
   their lookups share a hop to the thread pool and a transaction.

The server is one ``comity node serve`` process (uvicorn, one worker) on
loopback; the clients share the machine's cores with it. Every loop stops at
a count or a time budget (``--budget-s`` per phase, ``--http-timeout`` per
request); the server and the temporary directory are removed even on failure.

Target: >= 2,000 lookups/s over HTTP at 1,000,000 delegations. Prints one
JSON object; ``--out FILE`` also writes it.

Run ``python -m bench.rdap``; ``--delegations 100000 --sizes 1000,100000`` for
a quick run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import multiprocessing
import os
import random
import signal
import socket
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from bench import write_results
from bench.federation import percentile
from comity.db import BulkInsert, read_scope, session_scope
from comity.localnet import LocalNode, free_port
from comity.node import Node
from comity.registry import rdap
from comity.registry.models import Delegation, RegistryEntity
from comity.registry.resources import Block, Kind
from comity.registry.services import handle_for

COUNCIL = "bench"
HOLDERS = 1000
BATCH = 50_000
_WHEN = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_V4_POOL = Block(Kind.IPV4, 32 << 24, (48 << 24) - 1)  # 32.0.0.0/4
_V6_POOL = Block(Kind.IPV6, 0x2A00 << 112, ((0x2A00 | 0xF) << 112) | ((1 << 112) - 1))
_ASN_POOL = Block(Kind.ASN, 100_000_000, 199_999_999)
_COLUMNS = ("handle", "authority", "kind", "start_key", "end_key", "holder", "country",
            "status", "name", "registered_at", "changed_at", "proposal", "decision_seq",
            "log_index")
_COUNTRIES = ("KE", "FR", "BR", "JP", "NG", "DE", "IN", "CL")


def note(message: str) -> None:
    print(f"[bench.rdap] {message}", file=sys.stderr, flush=True)


# --- The synthetic registry ---------------------------------------------------------------

def delegation_block(i: int) -> Block:
    """Delegation ``i``'s block: kinds interleaved 5:3:2, each kind's blocks ascending."""
    r, q = i % 10, i // 10
    if r < 5:
        j = q * 5 + r
        first = _V4_POOL.first + j * 32
        return Block(Kind.IPV4, first, first + (16 if j % 2 == 0 else 24) - 1)
    if r < 8:
        j = q * 3 + r - 5
        first = _V6_POOL.first + (j << 81)  # a /48 every other /48
        return Block(Kind.IPV6, first, first + (1 << 80) - 1)
    j = q * 2 + r - 8
    return Block(Kind.ASN, _ASN_POOL.first + 2 * j, _ASN_POOL.first + 2 * j)


def delegation(i: int) -> tuple[Any, ...]:
    """The row of delegation ``i`` in ``_COLUMNS`` order."""
    block = delegation_block(i)
    decided = i % 4 == 0
    return (handle_for(block), COUNCIL, block.kind.value, block.start_key, block.end_key,
            f"ORG-BENCH-{i % HOLDERS}", _COUNTRIES[i % len(_COUNTRIES)],
            "reserved" if i % 7 == 0 else "allocated", f"BENCH-NET-{i}", _WHEN, _WHEN,
            f"00000000-0000-4000-8000-{i:012d}" if decided else None,
            i if decided else None, i if decided else None)


def max_delegations() -> int:
    """The most delegations the pools hold (IPv4 runs out first)."""
    return (_V4_POOL.size // 32) * 2


def seed(node: Node) -> None:
    """Pools (through the registry's checks) and holder entities."""
    with session_scope(node.sessions) as session:
        for block, name in ((_V4_POOL, "IPv4"), (_V6_POOL, "IPv6"), (_ASN_POOL, "AS numbers")):
            node.registry.add_pool(session, registry=COUNCIL, block=block,
                                   name=f"Bench {name}", now=_WHEN)
    insert = BulkInsert(RegistryEntity.__table__, ("handle", "name", "country", "authority",
                                                   "created_at"))
    with node.engine.begin() as conn:
        insert(conn, [(f"ORG-BENCH-{k}", f"Bench holder {k}", _COUNTRIES[k % len(_COUNTRIES)],
                       COUNCIL, _WHEN) for k in range(HOLDERS)])


def load(node: Node, db: Path, start: int, stop: int, deadline: float) -> dict[str, Any]:
    """Delegations ``start..stop-1`` in transactions of ``BATCH``; then a WAL checkpoint."""
    insert = BulkInsert(Delegation.__table__, _COLUMNS)
    t = time.perf_counter()
    done = start
    for lo in range(start, stop, BATCH):
        if time.monotonic() > deadline:
            break
        hi = min(stop, lo + BATCH)
        rows = [delegation(i) for i in range(lo, hi)]
        with node.engine.begin() as conn:
            insert(conn, rows)
        done = hi
    seconds = time.perf_counter() - t
    # Outside any transaction (the engine's connections always open one): lookups then
    # read the table from the database file, not through a long WAL.
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return {"from": start, "to": done, "seconds": round(seconds, 2),
            "rows_per_s": round((done - start) / seconds) if seconds else None,
            "completed": done == stop}


# --- Queries ------------------------------------------------------------------------------

def address_in(i: int, rng: random.Random) -> Block:
    """A random single address (or the AS number) inside delegation ``i``."""
    block = delegation_block(i)
    x = rng.randint(block.first, block.last)
    return Block(block.kind, x, x)


def ip_queries(n_loaded: int, count: int, rng: random.Random) -> list[tuple[str, bytes]]:
    """``count`` (path, expected handle) pairs: addresses inside IP delegations."""
    out: list[tuple[str, bytes]] = []
    while len(out) < count:
        i = rng.randrange(n_loaded)
        if i % 10 >= 8:
            continue  # AS numbers are not /ip queries
        a = address_in(i, rng)
        out.append((f"/rdap/ip/{a.start_address}",
                    b'"handle":' + json.dumps(handle_for(delegation_block(i))).encode()))
    return out


def _stats(times: list[float]) -> dict[str, Any]:
    if not times:
        return {"lookups": 0}
    return {"lookups": len(times), "mean_us": round(sum(times) / len(times), 1),
            "p50_us": round(percentile(times, 50), 1)}


def per_lookup_us(fn: Callable[[Block], Any], blocks: list[Block], deadline: float
                  ) -> dict[str, Any]:
    """Mean and p50 of ``fn`` over ``blocks`` (stopping at ``deadline``), in µs."""
    times: list[float] = []
    for b in blocks:
        if time.monotonic() > deadline:
            break
        t = time.perf_counter()
        fn(b)
        times.append((time.perf_counter() - t) * 1e6)
    return _stats(times)


_RAW_SQL = ("SELECT handle, end_key FROM registry_delegations WHERE kind = ? AND start_key <= ? "
            "ORDER BY start_key DESC LIMIT 1")


def raw_lookups(db: Path, blocks: list[Block], deadline: float) -> dict[str, Any]:
    """The delegation seek as a bare SQLite query: the floor for any server."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        def one(b: Block) -> Any:
            row = conn.execute(_RAW_SQL, (b.kind.value, b.start_key)).fetchone()
            return row if row is not None and row[1] >= b.end_key else None
        return per_lookup_us(one, blocks, deadline)
    finally:
        conn.close()


def in_session(node: Node, fn: Callable[[Session, Block], Any], blocks: list[Block],
               deadline: float, batch: int = 500) -> dict[str, Any]:
    """``fn`` timed alone, in read-only sessions of ``batch`` lookups each.

    The session is emptied after every lookup, untimed, so that no lookup
    finds the objects of an earlier one already loaded (which would flatter
    the small tables, where the same rows come up again).
    """
    times: list[float] = []
    for lo in range(0, len(blocks), batch):
        if time.monotonic() > deadline:
            break
        with read_scope(node.sessions) as session:
            for b in blocks[lo:lo + batch]:
                t = time.perf_counter()
                fn(session, b)
                times.append((time.perf_counter() - t) * 1e6)
                session.expunge_all()
    return _stats(times)


def in_process(node: Node, blocks: list[Block], deadline: float) -> dict[str, Any]:
    """The lookup in this process: ``Registry.lookup`` (ORM) and ``rdap.find`` (the
    RDAP fast path), and ``rdap.find`` in a read-only transaction of its own, as a
    request pays for it."""
    def own_scope(b: Block) -> Any:
        with read_scope(node.sessions) as session:
            return rdap.find(session, b)

    return {"registry_lookup": in_session(node, node.registry.lookup, blocks, deadline),
            "rdap_find": in_session(node, rdap.find, blocks, deadline),
            "rdap_find_own_transaction": per_lookup_us(own_scope, blocks, deadline)}


class RawClient:
    """A minimal HTTP/1.1 keep-alive client: GET only, bodies with a Content-Length.

    The stdlib's ``http.client`` parses every response's headers with the
    ``email`` package, which costs a good part of what the server spends on
    the request; on a machine of two cores that CPU is taken from the server.
    This client does the least a client must.

    Raises:
        OSError, ConnectionError: the connection failed or closed.
        ValueError: an answer without a Content-Length.
    """

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.head = (b" HTTP/1.1\r\nHost: " + f"{host}:{port}".encode()
                     + b"\r\nAccept: application/rdap+json\r\n\r\n")
        self.buf = b""

    def get(self, path: str) -> tuple[int, bytes]:
        self.sock.sendall(b"GET " + path.encode() + self.head)
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._recv()
        head, self.buf = self.buf[:end].lower(), self.buf[end + 4:]
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            raise ValueError("an answer without a content-length")
        stop = head.find(b"\r\n", at + 2)
        size = int(head[at + 17:stop if stop >= 0 else None])
        while len(self.buf) < size:
            self._recv()
        body, self.buf = self.buf[:size], self.buf[size:]
        return int(head[9:12]), body

    def _recv(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buf += chunk

    def close(self) -> None:
        self.sock.close()


def http_sequential(url: str, queries: list[tuple[str, bytes]], timeout: float,
                    deadline: float) -> dict[str, Any]:
    """One request at a time on one keep-alive connection: p50/p95 latency."""
    client = RawClient(url, timeout)
    ms: list[float] = []
    bad = 0
    try:
        for path, expect in queries:
            if time.monotonic() > deadline:
                break
            t = time.perf_counter()
            status, body = client.get(path)
            ms.append((time.perf_counter() - t) * 1000)
            bad += status != 200 or expect not in body
    finally:
        client.close()
    if not ms:
        return {"requests": 0}
    return {"requests": len(ms), "wrong_answers": bad, "p50_ms": round(percentile(ms, 50), 3),
            "p95_ms": round(percentile(ms, 95), 3), "max_ms": round(max(ms), 3)}


# --- Throughput (client processes) --------------------------------------------------------

def client_worker(url: str, queries: list[tuple[str, bytes]], seconds: float, timeout: float,
                  barrier: Any, out: Any) -> None:
    """One client process: connect, wait for every other client at ``barrier``, then GET
    the queries round-robin for ``seconds`` on its one connection."""
    ok = bad = 0
    lat: list[float] = []
    start = end = 0.0
    client: RawClient | None = None
    try:
        client = RawClient(url, timeout)
        barrier.wait(timeout=120)
        cpu = time.process_time()
        start = time.time()
        stop = time.perf_counter() + seconds
        k = 0
        while True:
            t = time.perf_counter()
            if t >= stop:
                break
            path, expect = queries[k % len(queries)]
            k += 1
            status, body = client.get(path)
            lat.append(time.perf_counter() - t)
            if status == 200 and expect in body:
                ok += 1
            else:
                bad += 1
        end = time.time()
        out.put({"ok": ok, "bad": bad, "start": start, "end": end, "latency_s": lat,
                 "client_cpu_s": time.process_time() - cpu})
    except Exception as e:  # reported, not lost: the parent waits for every client
        out.put({"ok": ok, "bad": bad, "start": start, "end": end or time.time(),
                 "latency_s": lat, "client_cpu_s": 0.0, "error": f"{type(e).__name__}: {e}"})
    finally:
        if client is not None:
            client.close()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(url: str, server_pid: int, n_loaded: int, concurrency: int, seconds: float,
               timeout: float, rng: random.Random) -> dict[str, Any]:
    """``concurrency`` client processes for ``seconds``, started together: lookups/s over
    the wall time from the first client's start to the last one's end, latency, and the
    CPU the server and the clients spent per request."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    barrier = ctx.Barrier(concurrency + 1)
    procs = [ctx.Process(target=client_worker, args=(
        url, ip_queries(n_loaded, 20_000, rng), seconds, timeout, barrier, out))
        for _ in range(concurrency)]
    for p in procs:
        p.start()
    results = []
    try:
        barrier.wait(timeout=120)  # every client connected: go
        server_cpu = cpu_seconds(server_pid)
        for _ in procs:
            results.append(out.get(timeout=seconds + timeout + 60))
        server_cpu = cpu_seconds(server_pid) - server_cpu
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join()
    ok = sum(r["ok"] for r in results)
    started = [r["start"] for r in results if r["start"]]
    wall = (max(r["end"] for r in results) - min(started)) if started else 0.0
    lat = [x * 1000 for r in results for x in r["latency_s"]]
    errors = [r["error"] for r in results if "error" in r]
    return {"concurrency": concurrency, "requests_ok": ok,
            "wrong_answers": sum(r["bad"] for r in results), "seconds": round(wall, 2),
            "start_spread_ms": round((max(started) - min(started)) * 1000, 1)
            if started else None,
            "lookups_per_s": round(ok / wall, 1) if wall > 0 else None,
            "p50_ms": round(percentile(lat, 50), 3) if lat else None,
            "p95_ms": round(percentile(lat, 95), 3) if lat else None,
            "server_cpu_us_per_request": round(server_cpu / ok * 1e6, 1) if ok else None,
            "client_cpu_us_per_request": round(sum(r["client_cpu_s"] for r in results)
                                               / ok * 1e6, 1) if ok else None,
            **({"errors": errors} if errors else {})}


# --- The run --------------------------------------------------------------------------------

def _ratio(a: float | None, b: float | None) -> float | None:
    return float(f"{a / b:.3g}") if a is not None and b else None


def stage(node: Node, db: Path, url: str, n: int, args: argparse.Namespace,
          rng: random.Random) -> dict[str, Any]:
    """Lookup cost at the current table size ``n``: raw, in-process, over HTTP."""
    deadline = time.monotonic() + args.budget_s
    blocks = [address_in(i, rng) for i in (rng.randrange(n) for _ in range(args.lookups))]
    # One pass first, untimed: the pages the lookups touch are then in the OS cache
    # for every contender alike.
    raw_lookups(db, blocks, deadline)
    out: dict[str, Any] = {"delegations": n, "raw_sqlite": raw_lookups(db, blocks, deadline),
                           **in_process(node, blocks, deadline)}
    out["http"] = http_sequential(url, ip_queries(n, args.http_lookups, rng),
                                  args.http_timeout, deadline)
    raw = out["raw_sqlite"].get("mean_us")
    out["vs_raw"] = {name: _ratio(out[name].get("mean_us"), raw) for name in (
        "registry_lookup", "rdap_find", "rdap_find_own_transaction")}
    out["vs_raw"]["http_p50"] = _ratio(out["http"].get("p50_ms", 0) * 1000, raw)
    return out


def growth(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per step between sizes: how much each per-lookup time grew (x10 in size: a
    B-tree seek should grow by a level at most, far from x10)."""
    steps = []
    for a, b in itertools.pairwise(stages):
        step: dict[str, Any] = {"from": a["delegations"], "to": b["delegations"],
                                "size_x": b["delegations"] / a["delegations"]}
        for name in ("raw_sqlite", "registry_lookup", "rdap_find",
                     "rdap_find_own_transaction"):
            step[f"{name}_x"] = _ratio(b[name].get("mean_us"), a[name].get("mean_us"))
        step["http_p50_x"] = _ratio(b["http"].get("p50_ms"), a["http"].get("p50_ms"))
        steps.append(step)
    return steps


def sizes(args: argparse.Namespace) -> list[int]:
    wanted = sorted({int(s) for s in args.sizes.split(",") if s.strip()} | {args.delegations})
    return [s for s in wanted if s <= args.delegations]


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    # The machine may be shared: its load says how far the figures can be trusted.
    load_start = list(os.getloadavg())
    server = LocalNode(key="rdap", data_dir=tmp / "rdap", url=f"http://127.0.0.1:{free_port()}")
    node: Node | None = None
    try:
        server.init(name="Node rdap", kind="cert", jurisdiction="FR", languages=["en"])
        node = server.open_node()
        seed(node)
        db = Path(node.settings.resolved_database_url.removeprefix("sqlite:///"))
        loads, stages, loaded = [], [], 0
        for n in sizes(args):
            note(f"load delegations {loaded}..{n}")
            loads.append(load(node, db, loaded, n, time.monotonic() + args.budget_s))
            loaded = loads[-1]["to"]
            if not loads[-1]["completed"]:
                break
            if not server.running():
                server.start()  # after the first load: the rest goes in while it runs
            note(f"lookups at {n}")
            stages.append(stage(node, db, server.url, n, args, rng))
        runs = []
        for c in args.concurrency:
            note(f"throughput at {loaded}, {c} client(s)")
            assert server.process is not None
            runs.append(throughput(server.url, server.process.pid, loaded, c,
                                   args.throughput_s, args.http_timeout, rng))
        best = max((r["lookups_per_s"] or 0 for r in runs), default=0)
        return {"server": "comity node serve (SQLite, one uvicorn worker)",
                "machine": {"cpus": os.cpu_count(), "load_average_at_start": load_start,
                            "load_average_at_end": list(os.getloadavg())},
                "delegations": loaded, "load": loads, "stages": stages,
                "growth": growth(stages), "throughput": runs,
                "best_lookups_per_s": best,
                "targets": {"http>=2000/s_at_1M": best >= 2000 if loaded >= 1_000_000
                            else None}}
    finally:
        if node is not None:
            node.close()
        server.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--delegations", type=int, default=1_000_000)
    ap.add_argument("--sizes", default="1000,10000,100000,1000000",
                    help="table sizes at which lookup cost is measured")
    ap.add_argument("--lookups", type=int, default=20_000, help="per size, raw and in-process")
    ap.add_argument("--http-lookups", type=int, default=3_000, help="per size, sequential")
    ap.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")],
                    default=[1, 8, 16, 32], help="client processes, e.g. 1,8,16,32")
    ap.add_argument("--throughput-s", type=float, default=15)
    ap.add_argument("--budget-s", type=float, default=900, help="per phase")
    ap.add_argument("--http-timeout", type=float, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, help="write the result here as JSON")
    args = ap.parse_args()
    if args.delegations > max_delegations():
        ap.error(f"the pools hold at most {max_delegations()} delegations")
    # SIGTERM unwinds like Ctrl-C, so the server and the temporary directory go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: dict[str, Any] = {"benchmark": "rdap"}
    failed = False
    with tempfile.TemporaryDirectory(prefix="comity-bench-rdap-") as tmp:
        try:
            results.update(run(args, Path(tmp)))
        except Exception as e:
            failed = True
            results["error"] = f"{type(e).__name__}: {e}"
            results["traceback"] = traceback.format_exc(limit=8)
            note(f"failed: {e}")
    print(json.dumps(results), flush=True)
    write_results(args.out, results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
