"""Benchmark: a TAXII 2.1 server's ingest, read-back and page latency, against two references.

Three targets, side by side in one run, driven by the same client (httpx,
orjson; no taxii2-client, whose object layer would dominate the figures):

1. **comity** (``--comity``): one node (``comity node serve``, SQLite, a
   CERT) started as ``comity.localnet.spawn`` does; a collection created
   through the node's API (:func:`comity_collection`); TAXII with the node's
   bearer token.
2. **medallion** (``--medallion``): medallion 3.0.0, the OASIS reference
   server, memory backend (``bench.medallion_server``). Its memory backend is
   quadratic in the collection size, so it gets ``--medallion-objects``
   (4,000: its first page of 8,000 takes over 10 minutes) and a time budget
   per phase (``--medallion-budget-s``) after which it stops and reports how
   far it got.
3. **raw** (``--raw``): the same envelopes parsed and inserted straight into
   SQLite, and read back by rowid, no server (``bench.taxii_raw``); then,
   reported apart as context, the same into a table with the indexes any TAXII
   collection needs (``raw.indexed``, ``comity_ingest_vs_raw_indexed``), and
   into a node's own STIX table with no checks (``raw.node``,
   ``comity_ingest_vs_raw_node``; ``raw_node_ingest_vs_raw`` is the share of
   the plain baseline that a node's storage layout alone leaves).

No mode flag runs all three. Per target:

- **ingest**: ``N`` STIX 2.1 indicators (deterministic, unique ids) POSTed in
  envelopes of 500 to ``…/collections/<id>/objects/``, each add waited for
  until its status resource says ``complete`` (polled when ``pending``):
  objects/s over the time spent in requests (making the envelopes is not
  timed).
- **read**: every object read back page by page (``limit`` = ``--page-size``,
  following ``next`` while the server gives one, else ``added_after`` =
  ``X-TAXII-Date-Added-Last``): objects/s over the time from each request to
  its whole body (the client's parsing is reported apart as
  ``client_parse_s``); every id must come back exactly once.
- **page latency** (comity only): p50/p95 of GET objects pages at two
  collection sizes, ``--small`` (10,000) and ``--large`` (1,000,000). Whole
  walks over the collection are repeated until ``--latency-pages`` pages were
  timed, so every part of the collection is sampled evenly.

Comity's phases, on one collection: ingest 10,000, latency there; ingest on
to ``--objects`` (100,000; the ingest figure covers both steps), read back;
ingest on to ``--large`` (its rate reported apart), latency there.

Every HTTP call has a timeout (never longer than what remains of its phase's
budget) and every phase a budget (``--budget-s``, ``--medallion-budget-s``).
Server processes and temporary directories are removed even on failure.

Targets: comity ingest ≥ 20,000 objects/s and ≥ 0.5× raw; comity read
≥ 200,000 objects/s; p95(1M) / p95(10k) ≤ 2. Prints one JSON object;
``--out FILE`` also writes it.

Run ``python -m bench.taxii`` (all three), or ``--comity``, ``--medallion``,
``--raw`` alone or together; ``--objects 2000 --medallion-objects 2000`` for
a quick run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import signal
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urljoin

import httpx
import orjson

from bench import write_results
from bench.federation import percentile
from bench.medallion_server import running_medallion
from bench.taxii_raw import LAYOUTS, layout, raw_baseline
from comity.localnet import LocalNode, free_port

TAXII = "application/taxii+json;version=2.1"
ENVELOPE = 500
_BASE_TIME = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
# The high 64 bits of every generated id (a UUIDv4: version and variant bits
# set), the low 62 bits being the object's index: ids are unique, valid, and
# map back to their index without a table.
_HIGH = uuid.UUID(int=int.from_bytes(hashlib.sha256(b"comity-bench-taxii").digest()[:8])
                  << 64, version=4).int >> 64
_LOW = (1 << 62) - 1


# --- STIX content ----------------------------------------------------------------------------

def indicator_id(i: int) -> str:
    return f"indicator--{uuid.UUID(int=(_HIGH << 64) | (2 << 62) | i)}"


def indicator(i: int) -> dict[str, Any]:
    """Indicator number ``i``: a valid STIX 2.1 object, the same in every run."""
    t = _BASE_TIME + dt.timedelta(milliseconds=i)
    ts = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
    ip = f"{11 + (i >> 24)}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
    return {"type": "indicator", "spec_version": "2.1", "id": indicator_id(i),
            "created": ts, "modified": ts, "name": f"Benchmark indicator {i}",
            "description": "A deterministic indicator generated by bench.taxii.",
            "indicator_types": ["malicious-activity"],
            "pattern": f"[ipv4-addr:value = '{ip}']", "pattern_type": "stix",
            "valid_from": ts}


def envelopes(start: int, stop: int, size: int = ENVELOPE) -> Iterator[bytes]:
    """TAXII envelopes of indicators ``start`` to ``stop - 1``, serialised, ``size`` each."""
    for lo in range(start, stop, size):
        yield orjson.dumps({"objects": [indicator(i) for i in range(lo, min(stop, lo + size))]})


class IdTally:
    """Counts how often each generated id of ``0..n-1`` was read back."""

    def __init__(self, n: int) -> None:
        self.counts = bytearray(n)
        self.unexpected = 0

    def page(self, objects: list[dict[str, Any]]) -> None:
        for obj in objects:
            try:
                value = uuid.UUID(obj["id"].removeprefix("indicator--")).int
            except (KeyError, ValueError, AttributeError):
                self.unexpected += 1
                continue
            i = value & _LOW
            if value >> 64 != _HIGH or i >= len(self.counts):
                self.unexpected += 1
            elif self.counts[i] < 255:
                self.counts[i] += 1

    def check(self, confirmed: int) -> dict[str, Any]:
        """Ids ``0..confirmed-1`` must each be there once; later ones (an add that
        timed out, perhaps stored) at most once; nothing else."""
        missing = self.counts[:confirmed].count(0)
        dups = len(self.counts) - self.counts.count(0) - self.counts.count(1)
        return {"expected": confirmed, "missing": missing, "duplicates": dups,
                "unexpected": self.unexpected,
                "exactly_once": missing == 0 and dups == 0 and self.unexpected == 0}


# --- The TAXII client --------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """A TAXII collection and how to reach it."""

    api_root: str  # absolute, ending in "/"
    collection_id: str
    headers: dict[str, str]

    @property
    def objects_url(self) -> str:
        return f"{self.api_root}collections/{self.collection_id}/objects/"


@dataclass
class Budget:
    """A phase's time allowance."""

    seconds: float
    start: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return self.seconds - (time.monotonic() - self.start)

    def expired(self) -> bool:
        return self.remaining() <= 0


class PhaseStopped(Exception):
    """A phase ran out of its budget (between requests or as a request's timeout)."""


class TaxiiError(Exception):
    """The server answered something a TAXII 2.1 server must not."""


class TaxiiClient:
    """GET pages and POST envelopes, each request bounded by its phase's budget."""

    def __init__(self, target: Target, http_timeout: float) -> None:
        self.target = target
        self.http_timeout = http_timeout
        self.http = httpx.Client(trust_env=False, headers={**target.headers, "accept": TAXII},
                                 timeout=http_timeout)

    def __enter__(self) -> TaxiiClient:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.http.close()

    def request(self, method: str, url: str, budget: Budget, **kw: Any) -> httpx.Response:
        left = budget.remaining()
        if left <= 0:
            raise PhaseStopped("budget")
        try:
            resp = self.http.request(method, url, timeout=min(self.http_timeout, left), **kw)
        except httpx.TimeoutException as e:
            raise PhaseStopped("timeout") from e
        if resp.status_code >= 400:
            raise TaxiiError(f"{method} {url}: {resp.status_code} {resp.text[:300]}")
        return resp

    def add(self, envelope: bytes, budget: Budget) -> dict[str, Any]:
        """POST one envelope; the status resource once it is ``complete``."""
        resp = self.request("POST", self.target.objects_url, budget, content=envelope,
                            headers={"content-type": TAXII})
        status = orjson.loads(resp.content)
        wait = 0.005
        while status.get("status") != "complete":
            if status.get("status") != "pending" or "id" not in status:
                raise TaxiiError(f"add objects answered {str(status)[:300]}")
            time.sleep(wait)
            wait = min(wait * 2, 0.2)
            url = f"{self.target.api_root}status/{status['id']}/"
            status = orjson.loads(self.request("GET", url, budget).content)
        return dict(status)

    def page(self, params: dict[str, Any], budget: Budget) -> httpx.Response:
        """One GET objects page, its body read in full."""
        return self.request("GET", self.target.objects_url, budget, params=params)


# --- Phases ------------------------------------------------------------------------------------

def stats(ms: list[float]) -> dict[str, Any]:
    if not ms:
        return {"pages": 0}
    return {"pages": len(ms), "p50_ms": round(percentile(ms, 50), 2),
            "p95_ms": round(percentile(ms, 95), 2), "max_ms": round(max(ms), 2)}


def _rate(n: int, seconds: float) -> float | None:
    return round(n / seconds, 1) if seconds > 0 else None


def ingest(client: TaxiiClient, start: int, stop: int, budget: Budget) -> dict[str, Any]:
    """Add indicators ``start..stop-1`` in envelopes; only request time is counted."""
    elapsed, confirmed, failures, stopped = 0.0, start, 0, None
    per_envelope: list[float] = []
    for envelope in envelopes(start, stop):
        n = min(ENVELOPE, stop - confirmed)
        t = time.perf_counter()
        try:
            status = client.add(envelope, budget)
        except PhaseStopped as e:
            stopped = str(e)
            elapsed += time.perf_counter() - t
            break
        per_envelope.append((time.perf_counter() - t) * 1000)
        elapsed += per_envelope[-1] / 1000
        failures += int(status.get("failure_count", 0))
        confirmed += n
    done = confirmed - start
    stored = done - failures
    # An add cut short may still be stored: its ids may come back, at most once.
    posted = confirmed if stopped is None else min(stop, confirmed + ENVELOPE)
    return {"objects": stored, "from": start, "to": confirmed, "posted": posted,
            "seconds": round(elapsed, 3), "objects_per_s": _rate(stored, elapsed),
            "completed": stopped is None, "stopped": stopped, "failures": failures,
            "envelope": stats(per_envelope)}


def _next_params(body: dict[str, Any], last: str | None, page_size: int,
                 previous: dict[str, Any]) -> dict[str, Any] | None:
    """The next page's query, or None at the end of the collection."""
    if body.get("next"):
        return {"limit": page_size, "next": body["next"]}
    if not body.get("objects") or body.get("more") is False:
        return None
    if not last:
        raise TaxiiError("a page with more to come, but neither next nor "
                         "X-TAXII-Date-Added-Last")
    if previous.get("added_after") == last:
        raise TaxiiError(f"added_after paging does not advance past {last}")
    return {"limit": page_size, "added_after": last}


def walk(client: TaxiiClient, page_size: int, budget: Budget,
         on_page: Callable[[list[dict[str, Any]]], None] | None = None,
         ) -> tuple[dict[str, Any], list[float]]:
    """Read the whole collection once, page by page: the figures and each page's time.

    A page's time runs from sending the request to having its whole body: the
    server's work and the transfer. Parsing the page (orjson, about 5 µs per
    indicator here, the same for every server) and ``on_page`` are timed apart.
    """
    params: dict[str, Any] | None = {"limit": page_size}
    ms: list[float] = []
    count, parse_s, cut = 0, 0.0, 0.0
    stopped: str | None = None
    paging: str | None = None
    while params is not None:
        t = time.perf_counter()
        try:
            resp = client.page(params, budget)
        except PhaseStopped as e:
            # The page given up on counts: a read stuck on one page reads 0/s.
            stopped, cut = str(e), time.perf_counter() - t
            break
        t1 = time.perf_counter()
        ms.append((t1 - t) * 1000)
        body = orjson.loads(resp.content) if resp.content else {}
        parse_s += time.perf_counter() - t1
        objects = body.get("objects", [])
        count += len(objects)
        if on_page is not None:
            on_page(objects)
        params = _next_params(body, resp.headers.get("x-taxii-date-added-last"), page_size,
                              params)
        if params is not None:
            paging = "next" if "next" in params else "added_after"
        elif paging is None:
            paging = "single page"
    seconds = sum(ms) / 1000 + cut
    return {"objects": count, "seconds": round(seconds, 3),
            "objects_per_s": _rate(count, seconds), "completed": stopped is None,
            "stopped": stopped, "paging": paging, "client_parse_s": round(parse_s, 3),
            "first_page_ms": round(ms[0], 2) if ms else None, "page": stats(ms)}, ms


def read_back(client: TaxiiClient, page_size: int, budget: Budget,
              added: dict[str, Any]) -> tuple[dict[str, Any], list[float]]:
    """One walk, checking that every id the ``added`` ingest confirmed comes back once."""
    tally = IdTally(added["posted"])
    result, ms = walk(client, page_size, budget, tally.page)
    result["check"] = tally.check(added["to"])
    return result, ms


def latency_at(client: TaxiiClient, added: dict[str, Any], page_size: int, min_pages: int,
               budget: Budget) -> dict[str, Any]:
    """Page latency at the collection's current size: whole walks (the first one
    checked) until ``min_pages`` pages were timed."""
    first, ms = read_back(client, page_size, budget, added)
    walks = 1
    while len(ms) < min_pages and first["completed"] and not budget.expired():
        more, more_ms = walk(client, page_size, budget)
        ms += more_ms
        walks += 1
        if not more["completed"]:
            break
    return {"collection_objects": added["to"], "walks": walks, "page": stats(ms),
            "completed": first["completed"] and len(ms) >= min_pages, "first_walk": first}


# --- Targets -----------------------------------------------------------------------------------

def note(message: str) -> None:
    print(f"[bench.taxii] {message}", file=sys.stderr, flush=True)


def comity_collection(node: LocalNode) -> tuple[str, str, dict[str, str]]:
    """The node's collection API: create the TAXII collection the benchmark fills.

    ``POST /api/sharing/collections`` with the node's admin token and
    ``{"title": "bench", "name": "bench"}`` creates the collection; the answer
    carries its ``id`` and the ``api_root`` serving it (absolute, or relative
    to the node's URL). Without an ``api_root`` in the answer, TAXII discovery
    (``GET /taxii2/``) names it: its ``default``, else the first of its
    ``api_roots``. TAXII requests authenticate with ``Authorization: Bearer``
    and the node's token.

    Returns:
        The API root's absolute URL (ending in "/"), the collection id, and the
        headers to send with every TAXII request.

    Raises:
        StepFailed: if the node refuses to create the collection.
        httpx.HTTPError: if discovery fails.
        TaxiiError: if neither the answer nor discovery names an API root.
    """
    headers = {"authorization": f"Bearer {node.token}"}
    made = node.api("POST", "/api/sharing/collections", json={"title": "bench", "name": "bench"})
    root, base = made.get("api_root"), f"{node.url}/"
    if not root:
        base = f"{node.url}/taxii2/"
        resp = node.client.get(base, headers={**headers, "accept": TAXII}, timeout=30)
        resp.raise_for_status()
        discovery = resp.json()
        root = discovery.get("default") or next(iter(discovery.get("api_roots") or []), None)
        if not root:
            raise TaxiiError(f"discovery names no API root: {discovery}")
    url = urljoin(base, str(root))
    return (url if url.endswith("/") else f"{url}/"), str(made["id"]), headers


def combine(*phases: dict[str, Any]) -> dict[str, Any]:
    """Ingest segments as one phase: objects and request time summed."""
    objects = sum(p["objects"] for p in phases)
    seconds = sum(p["seconds"] for p in phases)
    return {"objects": objects, "to": phases[-1]["to"], "posted": phases[-1]["posted"],
            "seconds": round(seconds, 3), "objects_per_s": _rate(objects, seconds),
            "completed": all(p["completed"] for p in phases),
            "failures": sum(p["failures"] for p in phases), "segments": list(phases)}


def comity_phases(client: TaxiiClient, args: argparse.Namespace) -> dict[str, Any]:
    budget, pages = args.budget_s, args.latency_pages
    note(f"comity: ingest {min(args.small, args.objects)}")
    first = ingest(client, 0, min(args.small, args.objects), Budget(budget))
    out: dict[str, Any] = {"latency_small": latency_at(client, first, args.page_size, pages,
                                                       Budget(budget))}
    rest = first
    if first["completed"] and args.objects > first["to"]:
        note(f"comity: ingest up to {args.objects}")
        rest = ingest(client, first["to"], args.objects, Budget(budget))
    out["ingest"] = combine(first, rest) if rest is not first else combine(first)
    note("comity: read back")
    out["read"], _ = read_back(client, args.page_size, Budget(budget), out["ingest"])
    if out["ingest"]["completed"] and args.large > out["ingest"]["to"]:
        note(f"comity: ingest up to {args.large}")
        out["ingest_large"] = ingest(client, out["ingest"]["to"], args.large, Budget(budget))
        note("comity: page latency at the large size")
        out["latency_large"] = latency_at(client, out["ingest_large"], args.page_size, pages,
                                          Budget(budget))
    return out


def run_comity(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="comity-bench-taxii-") as tmp:
        # What ``spawn(root, "taxii", kind="cert")`` does, but with the node in
        # hand before it starts: a node that never gets healthy is stopped too.
        node = LocalNode(key="taxii", data_dir=Path(tmp) / "taxii",
                         url=f"http://127.0.0.1:{free_port()}")
        try:
            node.init(name="Node taxii", kind="cert", jurisdiction="FR", languages=["en"])
            node.start()
            target = Target(*comity_collection(node))
            with TaxiiClient(target, args.http_timeout) as client:
                result = comity_phases(client, args)
        finally:
            node.close()
    return {"server": "comity node serve (SQLite)", "objects": args.objects,
            "large": args.large, **result}


def run_medallion(args: argparse.Namespace) -> dict[str, Any]:
    budget = args.medallion_budget_s
    with running_medallion(page_size=args.page_size) as srv:
        target = Target(srv.api_root, srv.collection_id, srv.headers)
        # medallion's first page of a collection is quadratic in its size
        # (minutes at a few thousand objects): only the phase budget bounds a call.
        with TaxiiClient(target, budget) as client:
            note(f"medallion: ingest {args.medallion_objects}")
            added = ingest(client, 0, args.medallion_objects, Budget(budget))
            note("medallion: read back")
            read, _ = read_back(client, args.page_size, Budget(budget), added)
        return {"server": f"medallion {version('medallion')} memory backend",
                "wsgi_server": srv.wsgi_server, "objects": args.medallion_objects,
                "ingest": added, "read": read}


def run_raw(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"objects": args.objects}
    for name in LAYOUTS:
        note(f"raw ({name}): ingest and read {args.objects}")
        tally = IdTally(args.objects)
        result = raw_baseline(envelopes(0, args.objects), args.page_size, args.budget_s,
                              tally.page, table=layout(name))
        result["read"]["check"] = tally.check(result["ingest"]["objects"])
        if name == "plain":
            out.update(result)
        else:
            out[name] = result  # context only: the targets compare with the plain table
    return out


RUNNERS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "comity": run_comity, "medallion": run_medallion, "raw": run_raw}


# --- Summary -----------------------------------------------------------------------------------

def _get(results: dict[str, Any], *path: str) -> Any:
    value: Any = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _ratio(a: float | None, b: float | None) -> float | None:
    return float(f"{a / b:.3g}") if a is not None and b else None


def _at_least(value: float | None, bound: float | None) -> bool | None:
    return None if value is None or bound is None else value >= bound


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """The ratios the targets need, and the targets (None: not measured)."""
    ci, cr = _get(results, "comity", "ingest", "objects_per_s"), _get(
        results, "comity", "read", "objects_per_s")
    ri, rr = _get(results, "raw", "ingest", "objects_per_s"), _get(
        results, "raw", "read", "objects_per_s")
    mi, mr = _get(results, "medallion", "ingest", "objects_per_s"), _get(
        results, "medallion", "read", "objects_per_s")
    small = _get(results, "comity", "latency_small", "page", "p95_ms")
    large = _get(results, "comity", "latency_large", "page", "p95_ms")
    growth = _ratio(large, small)
    checks = [_get(results, "comity", *p, "check", "exactly_once") for p in (
        ("read",), ("latency_small", "first_walk"), ("latency_large", "first_walk"))]
    ratios = {"comity_ingest_vs_raw": _ratio(ci, ri), "comity_read_vs_raw": _ratio(cr, rr),
              "comity_ingest_vs_medallion": _ratio(ci, mi),
              "comity_read_vs_medallion": _ratio(cr, mr),
              "medallion_ingest_vs_raw": _ratio(mi, ri), "medallion_read_vs_raw": _ratio(mr, rr),
              "comity_ingest_vs_raw_indexed": _ratio(
                  ci, _get(results, "raw", "indexed", "ingest", "objects_per_s")),
              "comity_ingest_vs_raw_node": _ratio(
                  ci, _get(results, "raw", "node", "ingest", "objects_per_s")),
              "raw_node_ingest_vs_raw": _ratio(
                  _get(results, "raw", "node", "ingest", "objects_per_s"), ri),
              "p95_large_over_small": growth}
    targets = {"comity_ingest>=20000/s": _at_least(ci, 20_000),
               "comity_ingest>=0.5x_raw": _at_least(ci, ri / 2 if ri else None),
               "comity_read>=200000/s": _at_least(cr, 200_000),
               "p95_large/p95_small<=2": None if growth is None else growth <= 2,
               "comity_reads_exactly_once": None if "comity" not in results or checks[0] is None
               else all(c is not False for c in checks)}
    return {"ratios": ratios, "targets": targets}


def check_stix() -> None:
    """The generated indicators are valid STIX 2.1 (stix2, strict: no custom content).

    Raises:
        stix2.exceptions.STIXError: if they are not.
    """
    import stix2  # type: ignore[import-untyped]

    for i in (0, 1, 123_456, 2_000_000):
        stix2.parse(indicator(i), allow_custom=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name in RUNNERS:
        ap.add_argument(f"--{name}", action="store_true", help=f"run {name} (none: all three)")
    ap.add_argument("--objects", type=int, default=100_000, help="comity and raw")
    # medallion's first GET objects page costs O(n²) (a strptime per pair of
    # manifest entry and object): about 1 min at 2,000 objects here and over
    # 10 min at 8,000, so that its read-back finishes within its budget.
    ap.add_argument("--medallion-objects", type=int, default=4_000)
    ap.add_argument("--small", type=int, default=10_000, help="first page-latency size")
    ap.add_argument("--large", type=int, default=1_000_000, help="second page-latency size")
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--latency-pages", type=int, default=200, help="pages timed per size")
    ap.add_argument("--budget-s", type=float, default=1800, help="per phase, comity and raw")
    ap.add_argument("--medallion-budget-s", type=float, default=600, help="per phase")
    ap.add_argument("--http-timeout", type=float, default=120,
                    help="per HTTP call to comity (medallion's: its phase budget)")
    ap.add_argument("--out", type=Path, help="write the result here as JSON")
    args = ap.parse_args()
    # SIGTERM unwinds like Ctrl-C, so servers and temporary directories go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    check_stix()
    chosen = [n for n in RUNNERS if getattr(args, n)] or list(RUNNERS)
    results: dict[str, Any] = {"benchmark": "taxii", "envelope_objects": ENVELOPE,
                               "page_size": args.page_size}
    failed = False
    for name in chosen:
        try:
            results[name] = RUNNERS[name](args)
        except Exception as e:  # One target failing must not lose the others' figures.
            failed = True
            results[name] = {"error": f"{type(e).__name__}: {e}",
                             "traceback": traceback.format_exc(limit=8)}
            note(f"{name} failed: {e}")
    results.update(summarise(results))
    print(json.dumps(results), flush=True)
    write_results(args.out, results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
