"""Test support: several real nodes in one process, wired by an in-memory router.

Each :class:`PeerNode` is a complete node (own data directory, own database on
the chosen backend, own keys) with its real ASGI app behind a Starlette
``TestClient``. Federation traffic goes through :class:`Router`, an httpx
transport that hands each request to the app of the node whose URL it names,
so the tests exercise the real routes without sockets. Delivery is driven by
:meth:`LocalFederation.pump` instead of background threads, so every test is
deterministic. Time is a shared :class:`FixedClock` the tests can move.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from comity.app import create_app
from comity.auth.services import issue_token
from comity.clock import FixedClock
from comity.config import Settings
from comity.db import session_scope
from comity.identity.schemas import NodeKind
from comity.identity.services import import_cards, init_node
from comity.node import Node

with warnings.catch_warnings():
    # Starlette's TestClient prefers the httpx2 fork; the project uses httpx.
    warnings.filterwarnings("ignore", "Using `httpx` with", UserWarning)
    from starlette.testclient import TestClient

SCOPE: dict[str, Any] = {
    "request_types": ["expedited-preservation", "subscriber-information"],
    "offence_categories": ["illegal-access", "computer-related-fraud"],
    "data_categories": ["subscriber", "traffic"],
    "collections": [{"name": "indicators", "tlp_ceiling": "amber"}],
    "default_deadlines": {"expedited-preservation": 1},
    "languages": ["en", "fr"],
}


@dataclass
class PeerNode:
    name: str
    node: Node
    client: TestClient
    token: str

    @property
    def id(self) -> str:
        return self.node.local.node_id

    @property
    def url(self) -> str:
        return self.node.local.card.url

    def api(self, method: str, path: str, *, expect: int | None = None, **kw: Any) -> Any:
        resp = self.client.request(method, path,
                                   headers={"authorization": f"Bearer {self.token}"}, **kw)
        if expect is not None:
            assert resp.status_code == expect, resp.text
        elif resp.status_code >= 400:
            raise AssertionError(f"{method} {path}: {resp.status_code} {resp.text}")
        return resp.json()

    def agreement_status(self, agreement_id: str) -> str:
        return str(self.api("GET", f"/api/agreements/{agreement_id}")["status"])


class Router(httpx.BaseTransport):
    """Delivers each request to the test node whose URL it is addressed to."""

    def __init__(self) -> None:
        self.nodes: dict[str, PeerNode] = {}
        self.down: set[str] = set()
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host in self.down or host not in self.nodes:
            raise httpx.ConnectError(f"cannot reach {host}", request=request)
        self.requests += 1
        return self.nodes[host].client._transport.handle_request(request)


class LocalFederation:
    """Nodes in one process, each on the database backend under test."""

    def __init__(self, root: Path, db_url: Callable[[str], str]) -> None:
        self.root = root
        self.db_url = db_url
        self.clock = FixedClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
        self.router = Router()
        self.http = httpx.Client(transport=self.router)
        self.nodes: list[PeerNode] = []

    def add(self, name: str, *, kind: NodeKind = NodeKind.CERT, jurisdiction: str = "FR",
            languages: list[str] | None = None, **settings: Any) -> PeerNode:
        data_dir = self.root / name
        init_node(data_dir, name=f"Node {name}", kind=kind, jurisdiction=jurisdiction,
                  url=f"http://{name}.test", languages=languages or ["en"], clock=self.clock)
        cfg = Settings(data_dir=data_dir, database_url=self.db_url(name),
                       sqlite_synchronous="NORMAL", **settings)
        node = Node.open(cfg, clock=self.clock)
        with session_scope(node.sessions) as session:
            token = issue_token(session, name="test", clock=self.clock)
        client = TestClient(create_app(node, deliver=False), base_url=f"http://{name}.test")
        tn = PeerNode(name, node, client, token)
        self.router.nodes[f"{name}.test"] = tn
        self.nodes.append(tn)
        return tn

    def introduce(self, a: PeerNode, b: PeerNode) -> None:
        """Exchange cards between ``a`` and ``b`` out of band."""
        for x, y in ((a, b), (b, a)):
            with session_scope(y.node.sessions) as session:
                import_cards(session, [c.doc for c in x.node.local.chain],
                             local_node_id=y.id, clock=self.clock)

    def introduce_all(self) -> None:
        for i, a in enumerate(self.nodes):
            for b in self.nodes[i + 1:]:
                self.introduce(a, b)

    def pump(self, *, max_rounds: int = 200, advance: bool = True) -> int:
        """Deliver until nothing moves; returns how many messages were delivered.

        With ``advance``, the clock jumps to the next retry time when every
        queue is waiting on backoff.
        """
        delivered = 0
        for _ in range(max_rounds):
            progress = False
            waits: list[dt.datetime] = []
            for tn in self.nodes:
                for peer in tn.node.federation.pending_peers():
                    out = tn.node.federation.deliver_batch(peer, self.http)
                    delivered += out.delivered
                    progress = progress or bool(out.delivered or out.failed)
                    if out.retry_at is not None and not (out.delivered or out.failed):
                        waits.append(out.retry_at)
                    elif not out.idle and not (out.delivered or out.failed):
                        progress = True
            if progress:
                continue
            if not waits or not advance:
                return delivered
            nxt = min(waits)
            if nxt > self.clock.now():
                self.clock.at = nxt
        raise AssertionError("pump did not settle")

    def witness(self) -> dict[str, dict[str, str]]:
        """Integrate every log, then have each checkpoint cosigned by the node's partners."""
        for tn in self.nodes:
            while tn.node.ledger.integrate():
                pass
        return {tn.name: tn.node.publisher().publish(self.http) for tn in self.nodes}

    def agree(self, proposer: PeerNode, others: list[PeerNode],
              scope: dict[str, Any] | None = None, **fields: Any) -> str:
        """Draft, propose and have every party sign; returns the agreement id."""
        draft = proposer.api("POST", "/api/agreements", json={
            "title": fields.pop("title", "Test agreement"),
            "parties": [o.id for o in others], "scope": scope or SCOPE, **fields})
        aid = str(draft["id"])
        proposer.api("POST", f"/api/agreements/{aid}/propose")
        self.pump()
        for other in others:
            other.api("POST", f"/api/agreements/{aid}/sign")
        self.pump()
        return aid

    def close(self) -> None:
        for tn in self.nodes:
            tn.client.close()
            tn.node.close()
        self.http.close()


def letter(to: PeerNode, agreement: str | None, **body: Any) -> dict[str, Any]:
    """A correspondence send request."""
    return {"to": to.id, "agreement": agreement, "type": "correspondence",
            "body": {"subject": "Subject", "text": "Text", "language": "en", **body}}
