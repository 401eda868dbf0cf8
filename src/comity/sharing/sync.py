"""Pulling partners' collections: incremental, manifest first, signed, idempotent.

For each collection a partner shares with us (its TAXII collections list, as
it answers our signed request), ``sync_peer``:

1. reads the partner's change feed (``…/changes/``: additions and deletions
   in its ``seq`` order) from the cursor kept after the last round;
2. fetches only the versions this node does not hold (``match[id]`` with
   ``match[version]=all``, in batches) and stores them in the local
   collection of the same name, with the partner as origin and the
   agreement in force that shares the collection as the one they came under
   (so the release policy knows what they may never be re-shared beyond);
3. applies deletions of versions that partner gave us (never of anything
   else); revocations are new versions and travel like any other;
4. verifies the partner's signature over every answer and keeps it
   (``sharing_provenance``), linked from each object it brought.

Applying twice changes nothing: versions are keyed by (id, version).

Trust assumptions: the partner is authenticated by its pinned card key over
every answer; objects are validated like any other write and refused above
the ceiling our own agreement sets for the collection.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from sqlalchemy import select

from comity.agreements.schemas import TLP
from comity.db import read_scope, session_scope
from comity.hazmat.keys import BadSignature, KeyFormatError, b64d
from comity.identity.models import PeerCard
from comity.identity.services import get_peer, stored_card
from comity.ledger.sequencer import BackgroundLoop
from comity.node import Node
from comity.sharing.client import PeerTaxiiClient
from comity.sharing.models import (
    IS_OBJECT,
    SharingCollection,
    SharingCursor,
    SharingProvenance,
    StixObject,
)
from comity.sharing.policy import Requester
from comity.sharing.services import Access
from comity.sharing.taxii import response_signing_bytes

__all__ = ["CollectionSummary", "SyncError", "SyncService", "sync_peer"]

log = logging.getLogger(__name__)
FETCH_BATCH = 100


class SyncError(Exception):
    """The partner's answer cannot be used (unsigned, forged, malformed, refused)."""


@dataclass
class CollectionSummary:
    remote: str
    local: str
    name: str
    added: int = 0
    already_held: int = 0
    deleted: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"remote": self.remote, "local": self.local, "name": self.name,
                "added": self.added, "already_held": self.already_held,
                "deleted": self.deleted, "refused": self.refused}


def _verified(node: Node, peer_id: str, resp: httpx.Response) -> int:
    """Check the partner's signature on an answer; store it; returns the provenance id."""
    if resp.status_code != 200:
        raise SyncError(f"{resp.request.method} {resp.request.url}: HTTP {resp.status_code} "
                        f"{resp.text[:300]}")
    header = resp.headers.get("x-comity-signature", "")
    serial_text, _, sig_text = header.partition(":")
    target = resp.request.url.raw_path.decode()
    with read_scope(node.sessions) as session:
        try:
            card = session.get(PeerCard, (peer_id, int(serial_text)))
            if card is None:
                raise SyncError(f"the answer is signed under card {serial_text}, which was "
                                "never accepted here")
            key = stored_card(card.card).signing_key
            key.verify(b64d(sig_text, length=64), response_signing_bytes(
                resp.request.method, target, resp.content))
        except (ValueError, KeyFormatError, BadSignature) as e:
            raise SyncError(f"the answer to {target} is not signed by the partner") from e
        with session_scope(node.sessions) as write:
            row = SharingProvenance(
                peer_id=peer_id, url=str(resp.request.url),
                body_sha256=hashlib.sha256(resp.content).hexdigest(),
                signature=sig_text, signer_serial=int(serial_text),
                fetched_at=node.clock.now())
            write.add(row)
            write.flush()
            return int(row.seq)


def _agreement_for(node: Node, peer_id: str, name: str) -> tuple[str, TLP] | None:
    """Our agreement in force with the partner that shares ``name`` (highest ceiling)."""
    with read_scope(node.sessions) as session:
        c = session.scalar(select(SharingCollection).where(SharingCollection.name == name))
        if c is None:
            return None
        acc = node.sharing.access_for(session, Requester(peer_id), c)
    if acc is None or acc.agreement_id is None or acc.ceiling is None:
        return None
    return acc.agreement_id, acc.ceiling


def _local_collection(node: Node, name: str, title: str) -> str:
    with session_scope(node.sessions) as session:
        c = session.scalar(select(SharingCollection).where(SharingCollection.name == name))
        if c is not None:
            return c.collection_id
        return str(node.sharing.create_collection(session, name=name, title=title)["id"])


def sync_peer(node: Node, peer_id: str, http: httpx.Client, *,
              progress: Callable[[str, int], None] | None = None,
              page_size: int = 1000) -> list[CollectionSummary]:
    """Pull every collection the partner shares with us; returns what changed in each.

    Raises:
        SyncError: the partner cannot be reached or its answers cannot be trusted
            (nothing of the failing page is stored).
        UnknownPeerError
    """
    with read_scope(node.sessions) as session:
        base = get_peer(session, peer_id).url.rstrip("/")
    client = PeerTaxiiClient(node.identity, http, node.clock)
    try:
        disc = client.get(f"{base}/taxii2/")
        _verified(node, peer_id, disc)
        root = disc.json()["api_roots"][0]
        listing = client.get(f"{root}collections/")
        _verified(node, peer_id, listing)
        remotes = listing.json().get("collections", [])
    except (httpx.HTTPError, KeyError, IndexError, ValueError) as e:
        raise SyncError(f"cannot read the partner's collections: {e}") from e
    out = []
    for rc in remotes:
        name = rc.get("alias")
        if not isinstance(name, str) or not rc.get("can_read"):
            continue
        # Our own agreement must also share this collection with the partner;
        # otherwise nothing of it is taken in.
        local_id = _local_collection(node, name, rc.get("title") or name)
        found = _agreement_for(node, peer_id, name)
        if found is None:
            continue
        summary = CollectionSummary(rc["id"], local_id, name)
        _sync_collection(node, client, peer_id, root, rc["id"], local_id, found, summary,
                         progress, page_size)
        out.append(summary)
    return out


def _sync_collection(node: Node, client: PeerTaxiiClient, peer_id: str, root: str,
                     remote: str, local_id: str, agreement: tuple[str, TLP],
                     summary: CollectionSummary,
                     progress: Callable[[str, int], None] | None, page_size: int) -> None:
    with read_scope(node.sessions) as session:
        row = session.get(SharingCursor, (peer_id, remote))
        cursor = row.cursor if row is not None else None
    acc = Access(local_id, summary.name, True, True, agreement[1], agreement[0])
    url = f"{root}collections/{remote}/"
    while True:
        try:
            resp = client.get(f"{url}changes/", limit=page_size, next=cursor)
            prov = _verified(node, peer_id, resp)
            page = resp.json()
            changes = page.get("changes", [])
        except (httpx.HTTPError, ValueError) as e:
            raise SyncError(f"cannot read the changes of {summary.name}: {e}") from e
        adds = [(c["id"], c["version"]) for c in changes if c["op"] == "add"]
        dels = [(c["id"], c["version"]) for c in changes if c["op"] == "delete"]
        wanted = _lacking(node, local_id, adds)
        summary.already_held += len(adds) - len(wanted)
        fetched = _fetch(node, client, peer_id, url, wanted) if wanted else ([], prov)
        objects, fetch_prov = fetched
        with session_scope(node.sessions) as session:
            successes, failures = node.sharing.ingest(session, acc, Requester(peer_id),
                                                      objects, provenance=fetch_prov)
            summary.added += sum(1 for s in successes if "message" not in s)
            summary.refused += failures
            session.merge(SharingCursor(peer_id=peer_id, remote_collection=remote,
                                        local_collection=local_id, cursor=page["cursor"],
                                        synced_at=node.clock.now()))
        for oid, version in dels:
            summary.deleted += _delete_theirs(node, local_id, peer_id, oid, version)
        if progress is not None:
            progress(summary.name, len(changes))
        cursor = page["cursor"]
        if not page.get("more"):
            return


def _lacking(node: Node, local_id: str, adds: list[tuple[str, str]]) -> list[tuple[str, str]]:
    if not adds:
        return []
    ids = sorted({a[0] for a in adds})
    held: set[tuple[str, str]] = set()
    with read_scope(node.sessions) as session:
        for start in range(0, len(ids), 500):
            held.update((oid, version) for oid, version in session.execute(
                select(StixObject.object_id, StixObject.version).where(
                    StixObject.collection_id == local_id, IS_OBJECT,
                    StixObject.deleted.is_(False),
                    StixObject.object_id.in_(ids[start:start + 500]))))
    return [a for a in adds if a not in held]


def _fetch(node: Node, client: PeerTaxiiClient, peer_id: str, url: str,
           wanted: list[tuple[str, str]]) -> tuple[list[Any], int | None]:
    want = set(wanted)
    ids = sorted({w[0] for w in wanted})
    objects: list[Any] = []
    prov: int | None = None
    for start in range(0, len(ids), FETCH_BATCH):
        batch = ",".join(ids[start:start + FETCH_BATCH])
        nxt: str | None = None
        while True:
            resp = client.get(f"{url}objects/", **{"match[id]": batch, "match[version]": "all",
                                                   "limit": 1000, "next": nxt})
            prov = _verified(node, peer_id, resp)
            page = orjson.loads(resp.content)
            for obj in page.get("objects", []):
                version = obj.get("modified") or obj.get("created")
                if (obj.get("id"), version) in want or version is None:
                    objects.append(obj)
            nxt = page.get("next")
            if not page.get("more"):
                break
    return objects, prov


def _delete_theirs(node: Node, local_id: str, peer_id: str, oid: str, version: str) -> int:
    from comity.sharing.errors import ObjectNotFoundError

    try:
        return node.sharing.delete_object(local_id, oid, Requester(peer_id), (version,),
                                          check_access=False)
    except ObjectNotFoundError:
        return 0  # never held, or not theirs to delete


class SyncService(BackgroundLoop):
    """Syncs every partner now and then (``COMITY_SHARING_SYNC_SECONDS``; 0: never)."""

    def __init__(self, node: Node, *, interval: float) -> None:
        super().__init__("comity-sharing-sync", poll_seconds=interval)
        self.node = node

    def _run(self) -> None:
        with httpx.Client(timeout=self.node.settings.delivery_timeout_seconds) as http:
            while not self._stop.wait(self.poll_seconds):
                for peer_id in _partners(self.node):
                    try:
                        sync_peer(self.node, peer_id, http)
                    except Exception:  # one partner down must not stop the others
                        log.exception("sharing sync with %s failed", peer_id)


def _partners(node: Node) -> list[str]:
    from comity.agreements.services import list_agreements

    me = node.local.node_id
    out: set[str] = set()
    with read_scope(node.sessions) as session:
        for view in list_agreements(session):
            doc = view.effective
            if doc is not None and doc.scope.collections and me in doc.parties:
                out.update(p for p in doc.parties if p != me)
    return sorted(out)

