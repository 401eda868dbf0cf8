"""Benchmark: the web UI's inbox and request pages on a node holding 10,000 requests.

Method:

1. **A sample through the real code.** Two central authorities (``comity node
   serve`` processes on loopback, FR and KE) exchange cards and agree on a
   scope under the Budapest Convention and UNTOC. Over their REST APIs, as an
   operator's tools would, FR sends KE and KE sends FR one request of each of
   :data:`SCRIPTS` (seven types, deadlines asked for or not) and the two sides
   act on them round by round (acknowledge, assess, clarify, conditions,
   preserve and extend, postpone, execute, refuse, withdraw, close...) until
   every request has reached its script's state on both sides; FR also keeps
   a draft and one pending approval. Every act is a signed message delivered
   by the federation, so the rows are exactly what the code writes.
2. **Copied up to ``--requests``.** KE is stopped; FR's sample (request rows,
   timelines, and the outbox and inbox rows of their messages) is copied in
   bulk with fresh request and message ids and every date shifted (in the
   columns and inside the document and event bodies), oldest first: the
   node's history spans two years, older requests mostly ended, recent ones
   mostly open, so open requests past their deadline are overdue. Then
   ``ANALYZE``.
3. **Measured over HTTP.** FR's server restarts; an officer account signs in
   through ``/ui/login`` (httpx, cookies kept) and an API token is issued
   (``issue_token``). After a warm-up, ``--pages`` inbox pages (incoming,
   newest first: round-robin over the first page, a state filter, overdue,
   all directions, and pages reached by cursor) and ``--pages`` pages of
   random requests are fetched, one at a time on one keep-alive connection,
   each followed by its JSON API equivalent with the bearer token
   (``GET /api/requests?direction=in&limit=50...``, ``GET /api/requests/{id}``):
   the reference, side by side. Server time is the UI's ``Server-Timing``
   header (arrival to the start of the answer); client time is wall time.

Target: inbox and request page under 150 ms p95, server side. Prints one JSON
object per backend; ``--out FILE`` also writes them. Every loop is bounded; the
servers and the temporary directory are removed even on failure.

Run ``python -m bench.ui`` (about 2 minutes); ``--postgres`` also runs FR on
PostgreSQL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import re
import signal
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import func, insert, select, text

from bench import write_results
from bench.federation import percentile
from comity.auth.services import issue_token
from comity.clock import format_ts, parse_ts
from comity.db import session_scope
from comity.federation.models import InboxMessage, OutboxMessage
from comity.hazmat import canonical
from comity.localnet import LocalNode, agree, introduce, spawn, wait_for
from comity.node import Node
from comity.pgcluster import Cluster
from comity.requests.models import Request, RequestEvent
from comity.web.accounts import Role, add_user

TARGET_MS = 150
PASSWORD = "correct horse battery staple"
ENV = {"COMITY_POLL_INTERVAL_SECONDS": "0.05"}
SCOPE: dict[str, Any] = {
    "request_types": ["expedited-preservation", "mla-stored-data", "mla-general",
                      "subscriber-information", "spontaneous-information",
                      "supplementary-information"],
    "offence_categories": ["illegal-access", "computer-related-fraud", "csam",
                           "data-interference"],
    "data_categories": ["subscriber", "traffic", "content"],
    "default_deadlines": {"mla-stored-data": 45},
    "languages": ["en", "fr"],
    "instruments": ["budapest", "untoc"],
}
FIELDS: dict[str, dict[str, str]] = {
    "expedited-preservation": {
        "requesting_authority": "Prosecutor's office, cybercrime section",
        "summary_of_facts": "Intrusion into a hospital network; ransom note left on 40 hosts.",
        "data_to_preserve": "Traffic data and stored logs of account 'x9' at the host.",
        "relationship_to_offence": "The account hosted the command-and-control server.",
        "custodian_or_location": "ExampleHost Ltd, data centre in the capital.",
        "necessity": "Logs are overwritten after 30 days.",
        "mla_intention": "An MLA request for disclosure will follow."},
    "mla-stored-data": {
        "requesting_authority": "Ministry of Justice, international assistance office",
        "proceedings": "Criminal investigation no. 2026/1234 by the public prosecutor.",
        "summary_of_facts": "Fraudulent transfers through compromised bank accounts.",
        "assistance_sought": "Disclosure of the preserved traffic data and logs.",
        "purpose": "To identify the perpetrators.",
        "persons_or_accounts": "Accounts 'x9' and 'mallory' at ExampleHost Ltd."},
    "subscriber-information": {
        "requesting_authority": "National police, cybercrime unit",
        "provider": "ExampleMail Ltd",
        "persons_or_accounts": "The holder of the address mallory@example.net",
        "summary_of_facts": "Phishing campaign against a ministry's staff."},
    "spontaneous-information": {
        "requesting_authority": "National CERT liaison at the central authority",
        "information": "Indicators of a botnet's command servers in your jurisdiction."},
}
FIELDS["mla-general"] = FIELDS["mla-stored-data"]
CATEGORIES = {"expedited-preservation": ["traffic"], "mla-stored-data": ["traffic", "content"],
              "mla-general": ["traffic"], "subscriber-information": ["subscriber"],
              "spontaneous-information": ["traffic"]}

# (type, asks a deadline, acts in order: (side, event)). R: the requesting party, P: the
# requested one. The elements of each act come from :func:`elements`.
SCRIPTS: list[tuple[str, bool, list[tuple[str, str]]]] = [
    ("mla-stored-data", False, []),
    ("mla-stored-data", True, [("P", "acknowledge")]),
    ("mla-general", False, [("P", "acknowledge"), ("P", "assess")]),
    ("mla-stored-data", False, [("P", "acknowledge"), ("P", "assess"),
                                ("P", "request_clarification")]),
    ("mla-stored-data", True, [("P", "acknowledge"), ("P", "assess"),
                               ("P", "request_clarification"), ("R", "answer_clarification"),
                               ("P", "start_execution"), ("P", "execute"), ("R", "close")]),
    ("mla-general", False, [("P", "acknowledge"), ("P", "propose_conditions"),
                            ("R", "accept_conditions"), ("P", "start_execution"),
                            ("P", "notify_delay")]),
    ("mla-general", False, [("P", "acknowledge"), ("P", "assess"), ("P", "refuse"),
                            ("R", "close")]),
    ("expedited-preservation", False, [("P", "acknowledge"), ("P", "preserve"),
                                       ("R", "request_extension"), ("P", "extend")]),
    ("expedited-preservation", False, [("P", "acknowledge"), ("P", "preserve"),
                                       ("R", "lift"), ("R", "close")]),
    ("mla-stored-data", False, [("P", "acknowledge"), ("P", "start_execution"),
                                ("P", "execute_partially"), ("R", "close")]),
    ("subscriber-information", False, [("P", "acknowledge"), ("R", "withdraw")]),
    ("mla-stored-data", False, [("P", "acknowledge"), ("P", "assess"), ("P", "postpone")]),
    ("mla-general", True, [("P", "acknowledge"), ("P", "assess"),
                           ("P", "declare_impossible"), ("R", "close")]),
    ("mla-stored-data", False, [("P", "refer"), ("P", "acknowledge"), ("P", "assess"),
                                ("P", "start_execution")]),
    ("subscriber-information", True, [("P", "acknowledge"), ("P", "start_execution"),
                                      ("P", "execute")]),
    ("expedited-preservation", False, [("P", "acknowledge"), ("P", "preserve")]),
    ("spontaneous-information", False, [("P", "acknowledge"), ("P", "execute"),
                                        ("R", "close")]),
]
# Where the draft and the request pending approval stop (FR only: local steps).
LOCAL_STEPS = (("mla-general", ()), ("subscriber-information", ("submit",)))


def note(message: str) -> None:
    print(f"[bench.ui] {message}", file=sys.stderr, flush=True)


# --- 1. The sample, through the real code -------------------------------------------------

def document(rtype: str, reference: str, deadline: bool, now: dt.datetime) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": rtype, "reference": reference, "language": "en", "offence": "illegal-access",
        "data_categories": CATEGORIES[rtype], "fields": dict(FIELDS[rtype]),
        "flags": {"urgent": rtype == "expedited-preservation"}}
    if deadline:
        doc["requested_deadline"] = {
            "due": format_ts(now + dt.timedelta(days=12)),
            "reason": "The suspect is held in custody until the date of the hearing."}
    return doc


def elements(event: str, k: int, now: dt.datetime) -> dict[str, Any]:
    """The elements of one act (``k`` makes references distinct)."""
    def ts(days: int) -> str:
        return format_ts(now + dt.timedelta(days=days))

    table: dict[str, dict[str, Any]] = {
        "acknowledge": {"reference": f"RCV-2026-{k:05d}"},
        "refer": {"referred_to": "The regional prosecutor's office", "reasons": "Competence."},
        "request_clarification": {"questions": "Which accounts, and over which period?"},
        "answer_clarification": {"answers": "Accounts x9 and mallory, March to May."},
        "propose_conditions": {"conditions": "Use limited to the proceedings named."},
        "postpone": {"reasons": "Domestic proceedings would be prejudiced.", "until": ts(40)},
        "notify_delay": {"reasons": "The provider needs a court order first."},
        "preserve": {"preserved_at": ts(0), "until": ts(61)},
        "request_extension": {"until": ts(120), "reasons": "The MLA request is on its way."},
        "extend": {"until": ts(120)},
        "refuse": {"grounds": ["essential-interests"], "reasons": "Essential interests."},
        "declare_impossible": {"reasons": "The provider deleted the data before the order."},
        "withdraw": {"reasons": "The suspect was identified by other means."},
        "execute": {"summary": "The data was handed over through the agreed channel."},
        "execute_partially": {"summary": "Logs for March handed over.",
                              "not_executed": "April and May were already overwritten."},
        "lift": {"reasons": "No longer needed."},
    }
    return table.get(event, {})


def _state(node: LocalNode, rid: str) -> str | None:
    resp = node.client.get(f"{node.url}/api/requests/{rid}",
                           headers={"authorization": f"Bearer {node.token}"})
    return str(resp.json()["state"]) if resp.status_code == 200 else None


def _all_agree(pairs: list[tuple[LocalNode, str, str]]) -> bool:
    return all(_state(node, rid) == want for node, rid, want in pairs)


def _create(sender: LocalNode, to: LocalNode, aid: str, doc: dict[str, Any],
            steps: tuple[str, ...]) -> str:
    r = sender.api("POST", "/api/requests", json={"to": to.node_id, "agreement": aid,
                                                   "request": doc, "by": "officer.a"})
    rid = str(r["id"])
    for step in steps:
        sender.api("POST", f"/api/requests/{rid}/{step}",
                   json={"by": "supervisor.b" if step == "approve" else "officer.a"})
    return rid


def sample(fr: LocalNode, ke: LocalNode, aid: str) -> int:
    """Every script in both directions (plus FR's local ones); returns how many requests."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    live: list[tuple[LocalNode, LocalNode, str, list[tuple[str, str]]]] = []
    k = 0
    for sender, to in ((fr, ke), (ke, fr)):
        for rtype, deadline, acts in SCRIPTS:
            k += 1
            doc = document(rtype, f"{sender.key.upper()}-2026-{k:05d}", deadline, now)
            rid = _create(sender, to, aid, doc, ("submit", "approve", "send"))
            live.append((sender, to, rid, acts))
    for rtype, steps in LOCAL_STEPS:
        k += 1
        _create(fr, ke, aid, document(rtype, f"FR-2026-{k:05d}", False, now), steps)
    wait_for("sample sent", partial(_all_agree, [(to, rid, "sent") for _, to, rid, _ in live]),
             timeout=120)
    for step in range(max(len(acts) for *_, acts in live)):
        pairs = []
        for sender, to, rid, acts in live:
            if step >= len(acts):
                continue
            side, event = acts[step]
            actor, other = (sender, to) if side == "R" else (to, sender)
            k += 1
            done = actor.api("POST", f"/api/requests/{rid}/events", json={
                "event": event, "data": elements(event, k, now), "by": "officer.c"})
            pairs.append((other, rid, str(done["state"])))
        wait_for(f"sample round {step + 1}", partial(_all_agree, pairs), timeout=120)
    return len(live) + len(LOCAL_STEPS)


def _outbox_settled(node: Node) -> bool:
    with node.engine.connect() as conn:
        return not conn.scalar(text("SELECT count(*) FROM outbox WHERE status <> 'delivered'"))


# --- 2. Copied up to the size wanted --------------------------------------------------------

_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _shift_json(value: Any, delta: dt.timedelta) -> Any:
    """Every timestamp string inside ``value`` moved by ``delta``."""
    if isinstance(value, str) and _TS.match(value):
        return format_ts(parse_ts(value) + delta)
    if isinstance(value, dict):
        return {k: _shift_json(v, delta) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift_json(v, delta) for v in value]
    return value


def _shift_row(row: dict[str, Any], delta: dt.timedelta) -> dict[str, Any]:
    out = {k: v + delta if isinstance(v, dt.datetime) else v for k, v in row.items()}
    out.pop("seq", None)
    return out


class Templates:
    """FR's sample, read once: requests, their events, and their messages' rows."""

    def __init__(self, node: Node) -> None:
        with node.engine.connect() as conn:
            self.requests = [dict(r) for r in conn.execute(
                select(Request.__table__).order_by(Request.seq)).mappings()]
            events = [dict(r) for r in conn.execute(
                select(RequestEvent.__table__).order_by(RequestEvent.seq)).mappings()]
            self.outbox = {r["message_id"]: dict(r) for r in conn.execute(
                select(OutboxMessage.__table__)).mappings()}
            self.inbox = {r["message_id"]: dict(r) for r in conn.execute(
                select(InboxMessage.__table__)).mappings()}
        self.events: dict[str, list[dict[str, Any]]] = {}
        for e in events:
            self.events.setdefault(e["request_id"], []).append(e)
        ended = {"closed", "executed", "refused", "withdrawn", "lifted", "impossible"}
        self.local = [r for r in self.requests if r["state"] in ("draft", "pending_approval")]
        self.open = [r for r in self.requests if r["state"] not in ended and r not in self.local]
        self.ended = [r for r in self.requests if r["state"] in ended]

    def pick(self, age_days: float, rng: random.Random) -> dict[str, Any]:
        """A template for a request ``age_days`` old: old ones have mostly ended."""
        if age_days < 20 and rng.random() < 0.05:
            return rng.choice(self.local)
        p_open = 0.08 + 0.8 * math.exp(-age_days / 45)
        return rng.choice(self.open if rng.random() < p_open else self.ended)


def copy(t: Templates, tpl: dict[str, Any], created: dt.datetime, k: int,
         rows: dict[str, list[dict[str, Any]]]) -> None:
    """One copy of request ``tpl`` created at ``created``: its rows appended to ``rows``."""
    delta = created - tpl["created_at"]
    rid = str(uuid.uuid4())
    ids: dict[str, str] = {}

    def new_id(old: str | None) -> str | None:
        return None if old is None else ids.setdefault(old, str(uuid.uuid4()))

    req = _shift_row(tpl, delta)
    doc = _shift_json(orjson.loads(tpl["document"]), delta)
    doc.update(id=rid, reference=f"{tpl['reference'][:2]}-{created.year}-{k:06d}")
    req.update(request_id=rid, reference=doc["reference"],
               document=canonical.dumps(doc).decode(),
               submit_message_id=new_id(tpl["submit_message_id"]))
    rows["requests"].append(req)
    for e in t.events.get(tpl["request_id"], []):
        ev = _shift_row(e, delta)
        ev.update(request_id=rid, message_id=new_id(e["message_id"]),
                  body=orjson.dumps(_shift_json(orjson.loads(e["body"]), delta)).decode())
        rows["events"].append(ev)
    for old, new in ids.items():
        for table, source in (("outbox", t.outbox), ("inbox", t.inbox)):
            if old in source:
                rows[table].append({**_shift_row(source[old], delta), "message_id": new})


def fill(node: Node, n: int, years: float = 2.0, seed: int = 7) -> dict[str, Any]:
    """Copies of the sample, oldest first, until the node holds ``n`` requests."""
    t = Templates(node)
    have = len(t.requests)
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    span = dt.timedelta(days=365 * years)
    tables: dict[str, Any] = {"requests": Request, "events": RequestEvent,
                              "outbox": OutboxMessage, "inbox": InboxMessage}
    counts = dict.fromkeys(tables, 0)
    # The sample is the newest: the copies come before it, one every span / n.
    copies = n - have
    for lo in range(0, copies, 2000):
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in tables}
        for i in range(lo, min(copies, lo + 2000)):
            created = now - span + span * (i / n) + dt.timedelta(seconds=rng.randint(0, 600))
            age = (now - created).total_seconds() / 86400
            copy(t, t.pick(age, rng), created, i, rows)
        with node.engine.begin() as conn:
            for name, table in tables.items():
                if rows[name]:
                    conn.execute(insert(table), rows[name])
                    counts[name] += len(rows[name])
    with node.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return {"sample_requests": have, "copied": counts}


def population(node: Node) -> dict[str, Any]:
    """What the node holds: by direction and state, with deadlines, overdue."""
    now = dt.datetime.now(dt.UTC)
    with node.engine.connect() as conn:
        def count(*where: Any, table: Any = Request) -> int:
            return int(conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)

        states = {state: n for state, n in conn.execute(select(
            Request.state, func.count()).group_by(Request.state).order_by(func.count().desc()))}
        return {"requests": count(), "incoming": count(Request.direction == "in"),
                "events": count(table=RequestEvent),
                "with_deadline": count(Request.due_at.is_not(None)),
                "overdue": count(Request.due_at < now),
                "overdue_incoming": count(Request.due_at < now, Request.direction == "in"),
                "by_state": states}


# --- 3. Measured over HTTP ------------------------------------------------------------------

_TIMING = re.compile(r"app;dur=([0-9.]+)")
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def sign_in(url: str, username: str, timeout: float) -> httpx.Client:
    """A browser's session: the login form's CSRF token, then the form, cookies kept.

    Raises:
        RuntimeError: the sign-in did not succeed.
    """
    client = httpx.Client(base_url=url, trust_env=False, timeout=timeout,
                          follow_redirects=False)
    page = client.get("/ui/login")
    found = _CSRF.search(page.text)
    if page.status_code != 200 or not found:
        client.close()
        raise RuntimeError(f"login page: HTTP {page.status_code}")
    resp = client.post("/ui/login", data={"username": username, "password": PASSWORD,
                                          "csrf": found.group(1), "next": "/ui/"})
    if resp.status_code != 303:
        client.close()
        raise RuntimeError(f"sign-in refused: HTTP {resp.status_code}")
    return client


class Series:
    """Times of one kind of page: client side (wall) and, for the UI, server side."""

    def __init__(self) -> None:
        self.client: list[float] = []
        self.server: list[float] = []
        self.bad = 0

    def get(self, client: httpx.Client, path: str, params: dict[str, Any],
            expect: str = "") -> httpx.Response:
        t = time.perf_counter()
        resp = client.get(path, params=params)
        self.client.append((time.perf_counter() - t) * 1000)
        if found := _TIMING.search(resp.headers.get("server-timing", "")):
            self.server.append(float(found.group(1)))
        self.bad += resp.status_code != 200 or expect not in resp.text
        return resp


def pooled(parts: list[Series]) -> Series:
    out = Series()
    for part in parts:
        out.client += part.client
        out.server += part.server
        out.bad += part.bad
    return out


def stats(ms: list[float]) -> dict[str, Any]:
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 2),
            "p95_ms": round(percentile(ms, 95), 2), "p99_ms": round(percentile(ms, 99), 2),
            "max_ms": round(max(ms), 2)}


def _ratio(a: dict[str, Any], b: dict[str, Any], key: str) -> float | None:
    return round(a[key] / b[key], 2) if key in a and b.get(key) else None


def compare(ui: Series, api: Series) -> dict[str, Any]:
    out = {"ui_server": stats(ui.server), "ui_client": stats(ui.client),
           "api_client": stats(api.client), "wrong_answers": {"ui": ui.bad, "api": api.bad}}
    out["ratio_ui_api_client"] = {k: _ratio(out["ui_client"], out["api_client"], k)
                                  for k in ("p50_ms", "p95_ms", "p99_ms")}
    return out


def cursors(api: httpx.Client, pages: int) -> list[str]:
    """The cursors of the incoming list's next ``pages`` pages (followed through the API)."""
    found: list[str] = []
    params: dict[str, Any] = {"direction": "in", "limit": 50}
    for _ in range(pages):
        nxt = api.get("/api/requests", params=params).json()["next"]
        if not nxt:
            break
        found.append(nxt)
        params["cursor"] = nxt
    return found


def inbox_filters(cursor_list: list[str]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, UI query, API query): the same page through each."""
    return [
        ("incoming", {"direction": "in"}, {"direction": "in", "limit": 50}),
        ("incoming_acknowledged", {"direction": "in", "state": "acknowledged"},
         {"direction": "in", "state": "acknowledged", "limit": 50}),
        ("incoming_overdue", {"direction": "in", "overdue": "1"},
         {"direction": "in", "overdue": "true", "limit": 50}),
        ("all_directions", {}, {"limit": 50}),
        *((f"incoming_cursor_{i}", {"direction": "in", "cursor": c},
           {"direction": "in", "cursor": c, "limit": 50}) for i, c in enumerate(cursor_list)),
    ]


def _rounds(n: int, deadline: float) -> Iterator[int]:
    for i in range(n):
        if time.monotonic() > deadline:
            return
        yield i


def measure_inbox(ui: httpx.Client, api: httpx.Client, pages: int, warmup: int,
                  deadline: float) -> dict[str, Any]:
    cursor_list = cursors(api, 20)
    filters = inbox_filters(cursor_list)
    # The cursor pages share one slot of the round-robin: filters, then cursors in turn.
    fixed, paged = filters[:4], filters[4:]

    def pick(i: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
        slot = i % (len(fixed) + 1)
        if slot < len(fixed) or not paged:
            return fixed[slot % len(fixed)]
        _, u, a = paged[(i // (len(fixed) + 1)) % len(paged)]
        return "incoming_cursor", u, a

    for i in range(warmup):
        _, u, a = pick(i)
        ui.get("/ui/requests", params=u)
        api.get("/api/requests", params=a)
    by: dict[str, tuple[Series, Series]] = {}
    for i in _rounds(pages, deadline):
        name, u, a = pick(i)
        ui_s, api_s = by.setdefault(name, (Series(), Series()))
        ui_s.get(ui, "/ui/requests", u, expect="</html>")
        api_s.get(api, "/api/requests", a, expect='"items"')
    out = compare(pooled([p[0] for p in by.values()]), pooled([p[1] for p in by.values()]))
    out["by_filter"] = {name: compare(*pair) for name, pair in by.items()}
    out["cursor_pages"] = len(cursor_list)
    worst = max((v["ui_server"].get("p95_ms", math.inf) for v in out["by_filter"].values()),
                default=math.inf)
    out.update(target_ms=TARGET_MS, worst_filter_p95_ms=worst,
               met=out["ui_server"].get("p95_ms", math.inf) < TARGET_MS and worst < TARGET_MS)
    return out


def measure_pages(ui: httpx.Client, api: httpx.Client, ids: list[str], warmup: int,
                  deadline: float) -> dict[str, Any]:
    """Request pages of ``ids`` in turn, each followed by its API equivalent."""
    for rid in ids[:warmup]:
        ui.get(f"/ui/requests/{rid}")
        api.get(f"/api/requests/{rid}")
    ui_s, api_s = Series(), Series()
    events: list[int] = []
    for i in _rounds(len(ids) - warmup, deadline):
        rid = ids[warmup + i]
        ui_s.get(ui, f"/ui/requests/{rid}", {}, expect=rid)
        resp = api_s.get(api, f"/api/requests/{rid}", {}, expect=rid)
        if resp.status_code == 200:
            events.append(len(resp.json()["timeline"]))
    out = compare(ui_s, api_s)
    out["timeline_events"] = {"mean": round(sum(events) / len(events), 1) if events else None,
                              "max": max(events, default=None)}
    out.update(target_ms=TARGET_MS,
               met=out["ui_server"].get("p95_ms", math.inf) < TARGET_MS)
    return out


def prepare(node: Node) -> tuple[str, list[str]]:
    """An officer account and an API token; every request id."""
    with session_scope(node.sessions) as session:
        add_user(session, username="officer", password=PASSWORD,
                 roles=frozenset({Role.OFFICER}), clock=node.clock)
        token = issue_token(session, name="bench-ui", clock=node.clock)
    with node.engine.connect() as conn:
        ids = list(conn.scalars(select(Request.request_id).order_by(Request.seq)))
    return token, ids


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - t, 2)


def build(root: Path, url: str, n: int) -> tuple[LocalNode, dict[str, Any]]:
    """FR (stopped) holding ``n`` requests, and how they came to be."""
    fr = spawn(root, "fr", env=ENV, database_url=url, kind="central-authority")
    ke = spawn(root, "ke", env=ENV, jurisdiction="KE", kind="central-authority")
    try:
        introduce([fr, ke])
        aid = agree(fr, [ke], title="Bench: mutual assistance", scope=SCOPE)
        note("sample through the API")
        count, sample_s = timed(partial(sample, fr, ke, aid))
        db = fr.open_node()
        try:
            wait_for("FR's outbox delivered", partial(_outbox_settled, db), timeout=120)
            ke.close()
            fr.stop()
            note(f"copy up to {n} requests")
            filled, fill_s = timed(partial(fill, db, n))
            info = {"sample": {"requests": count, "seconds": sample_s},
                    "fill": {**filled, "seconds": fill_s}, "population": population(db)}
        finally:
            db.close()
    except BaseException:
        fr.close()
        raise
    finally:
        ke.close()
    return fr, info


def run(backend: str, cluster: Cluster | None, args: argparse.Namespace) -> dict[str, Any]:
    load_start = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix=f"comity-bench-ui-{backend}-") as tmp:
        fr, info = build(Path(tmp), cluster.new_database() if cluster else "", args.requests)
        try:
            db = fr.open_node()
            try:
                token, ids = prepare(db)
            finally:
                db.close()
            fr.start()
            deadline = time.monotonic() + args.budget_s
            rng = random.Random(args.seed)
            ui = sign_in(fr.url, "officer", args.http_timeout)
            api = httpx.Client(base_url=fr.url, trust_env=False, timeout=args.http_timeout,
                               headers={"authorization": f"Bearer {token}"})
            try:
                note("inbox pages")
                inbox = measure_inbox(ui, api, args.pages, args.warmup, deadline)
                note("request pages")
                pages = measure_pages(ui, api, rng.sample(ids, min(len(ids), args.pages
                                                                   + args.warmup)),
                                      args.warmup, deadline)
            finally:
                ui.close()
                api.close()
        finally:
            fr.close()
    return {"benchmark": "ui", "backend": backend,
            "server": "comity node serve (one uvicorn worker)",
            "machine": {"cpus": os.cpu_count(), "load_average_at_start": load_start,
                        "load_average_at_end": list(os.getloadavg())},
            **info, "pages_each": args.pages, "inbox": inbox, "request_page": pages,
            "targets": {f"inbox_p95_ms<{TARGET_MS}": inbox["met"],
                        f"request_page_p95_ms<{TARGET_MS}": pages["met"]}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--pages", type=int, default=500, help="of each kind, UI and API")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--postgres", action="store_true", help="also run on PostgreSQL")
    ap.add_argument("--budget-s", type=float, default=600, help="per backend, measuring")
    ap.add_argument("--http-timeout", type=float, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, help="write the results here as JSON")
    args = ap.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the servers and the temporary directory go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: list[dict[str, Any]] = []
    failed = False
    cluster: Cluster | None = None
    for backend in ("sqlite", "postgresql") if args.postgres else ("sqlite",):
        try:
            if backend == "postgresql":
                cluster = Cluster()
                cluster.start()
            results.append(run(backend, cluster, args))
        except Exception as e:
            failed = True
            results.append({"benchmark": "ui", "backend": backend,
                            "error": f"{type(e).__name__}: {e}",
                            "traceback": traceback.format_exc(limit=8)})
            note(f"{backend} failed: {e}")
        print(json.dumps(results[-1]), flush=True)
    if cluster is not None:
        cluster.stop()
    write_results(args.out, results)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
