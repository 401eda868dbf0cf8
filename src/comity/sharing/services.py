"""The sharing store: collections, object versions, TAXII queries, and the release check.

Writes (:meth:`Sharing.add_objects`) validate each object on its own — a bad
object is a failure in the status resource, never a failed request — and
take the collection's row lock, so that ``seq`` is assigned and committed in
order per collection. Reads (:meth:`Sharing.page`) walk one index by
``seq`` with the filters as SQL conditions, and pass every row through
:func:`comity.sharing.policy.may_release` for the requester before it is
emitted; rows are served as the bytes stored, never re-encoded.

Paging uses a stateless ``next`` token: the collection, the last ``seq``
served and a digest of the filters, authenticated with a key derived from the
node's signing key, so any process of the node (behind a load balancer)
accepts it, nobody can forge one, and ties in ``date_added`` cannot skip or
repeat an object.

Trust assumptions: requesters are authenticated by the TAXII layer (API
token: this node; HTTP message signature: a peer); objects from peers are
untrusted until each passes :func:`comity.sharing.stix.check_object`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from sqlalchemy import Integer, Select, Table, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from comity.agreements.authorization import Purpose, authorize
from comity.agreements.cache import AgreementCache
from comity.agreements.errors import AuthorizationError
from comity.agreements.schemas import TLP
from comity.agreements.services import list_agreements
from comity.clock import Clock, format_ts
from comity.config import Settings
from comity.db import BulkInsert, PreparedSelect, session_scope, snapshot_scope
from comity.hazmat.keys import b64d, b64e
from comity.identity.services import IdentityHolder
from comity.sharing.errors import (
    BadFilterError,
    CollectionNotFoundError,
    DuplicateCollectionError,
    ObjectNotFoundError,
    TaxiiForbiddenError,
)
from comity.sharing.models import IS_OBJECT, SharingCollection, StixObject, TaxiiStatus
from comity.sharing.policy import Holding, Requester, level_order, may_release
from comity.sharing.stix import StixError, check_object

__all__ = ["Access", "Filters", "Page", "Sharing"]

_CURSOR_DOMAIN = b"comity.taxii.cursor.v1"
_PURGE_EVERY = dt.timedelta(minutes=1)
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"


@dataclass(frozen=True)
class Filters:
    """The TAXII filters of one query (``match[...]``, ``added_after``)."""

    added_after: dt.datetime | None = None
    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    versions: tuple[str, ...] = ("last",)
    spec_versions: tuple[str, ...] = ()

    def digest(self) -> str:
        raw = orjson.dumps([None if self.added_after is None else format_ts(self.added_after),
                            self.ids, self.types, self.versions, self.spec_versions])
        return hashlib.sha256(raw).hexdigest()[:32]


@dataclass(frozen=True)
class Access:
    """What one requester may do with one collection."""

    collection_id: str
    name: str
    can_read: bool
    can_write: bool
    ceiling: TLP | None  # None: the local operator, no ceiling
    agreement_id: str | None


@dataclass
class Page:
    rows: list[Any]
    more: bool
    next: str | None
    first_added: dt.datetime | None = None
    last_added: dt.datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _CollectionKey:
    """What access to a collection depends on; none of it ever changes."""

    collection_id: str
    name: str
    peers_can_write: bool


@dataclass(slots=True)
class _NewVersion:
    """A checked object version on its way into ``stix_objects``."""

    object_id: str
    type: str
    spec_version: str
    version: str
    version_at: dt.datetime
    versionless: bool
    revoked: bool
    tlp: str | None
    body: bytes
    latest: bool = True
    first: bool = True


@dataclass(slots=True)
class _HeldVersion:
    """A version of an object being added to: stored (``seq``) or in this batch (``new``)."""

    version_at: dt.datetime
    body: bytes
    latest: bool
    first: bool
    seq: int | None
    new: _NewVersion | None = None


_INSERT_VERSIONS = BulkInsert(cast(Table, StixObject.__table__), (
    "collection_id", "kind", "object_id", "type", "spec_version", "version", "version_at",
    "date_added", "latest", "first", "deleted", "revoked", "tlp", "origin", "received_under",
    "recipients", "size", "body", "provenance"))


def _coll_dict(c: SharingCollection) -> dict[str, Any]:
    return {"id": c.collection_id, "name": c.name, "title": c.title,
            "description": c.description, "peers_can_write": c.peers_can_write,
            "created_at": format_ts(c.created_at)}


class Sharing:
    """One node's collections and what they hold."""

    def __init__(self, settings: Settings, identity: IdentityHolder,
                 sessions: sessionmaker[Session], clock: Clock,
                 agreements: AgreementCache) -> None:
        self.settings = settings
        self.identity = identity
        self.sessions = sessions
        self.clock = clock
        self.agreements = agreements
        self.default_tlp = TLP(settings.sharing_default_tlp)
        self._cursor_secret: tuple[int, bytes] | None = None
        self._purged_at: dt.datetime | None = None
        self._collections: dict[str, _CollectionKey] = {}

    # -- collections -----------------------------------------------------------

    def create_collection(self, session: Session, *, name: str, title: str,
                          description: str | None = None,
                          peers_can_write: bool = False) -> dict[str, Any]:
        """A new collection; agreements share it by ``name``.

        Raises:
            DuplicateCollectionError
        """
        if session.scalar(select(SharingCollection.seq).where(
                SharingCollection.name == name)) is not None:
            raise DuplicateCollectionError(f"a collection named {name!r} exists")
        c = SharingCollection(collection_id=str(uuid.uuid4()), name=name, title=title,
                              description=description, peers_can_write=peers_can_write,
                              created_at=self.clock.now(), writes=0)
        session.add(c)
        session.flush()
        return _coll_dict(c)

    def collections(self, session: Session) -> list[dict[str, Any]]:
        return [_coll_dict(c) for c in session.scalars(
            select(SharingCollection).order_by(SharingCollection.collection_id))]

    def _collection(self, session: Session, collection_id: str) -> _CollectionKey:
        # A collection's id, name and write policy never change once it is
        # made (nothing updates or deletes them), so every process may keep
        # what it read; only collections that exist are remembered.
        c = self._collections.get(collection_id)
        if c is None:
            row = session.execute(select(
                SharingCollection.collection_id, SharingCollection.name,
                SharingCollection.peers_can_write).where(
                SharingCollection.collection_id == collection_id)).first()
            if row is None:
                raise CollectionNotFoundError(f"no collection {collection_id}")
            c = self._collections[collection_id] = _CollectionKey(*row)
        return c

    def access(self, session: Session, requester: Requester, collection_id: str) -> Access:
        """What ``requester`` may do with the collection.

        Raises:
            CollectionNotFoundError: it does not exist, or the peer may not
                even know of it (no agreement in force shares it with them).
        """
        c = self._collection(session, collection_id)
        acc = self.access_for(session, requester, c)
        if acc is None:
            raise CollectionNotFoundError(f"no collection {collection_id}")
        return acc

    def access_for(self, session: Session, requester: Requester,
                   c: SharingCollection | _CollectionKey) -> Access | None:
        if requester.local:
            return Access(c.collection_id, c.name, True, True, None, None)
        assert requester.node_id is not None
        best: tuple[TLP, str] | None = None
        local_id = self.identity.get().node_id
        now = self.clock.now()
        for view in list_agreements(session):
            doc = view.effective
            if doc is None or requester.node_id not in doc.parties:
                continue
            shared = [s for s in doc.scope.collections if s.name == c.name]
            if not shared:
                continue
            try:
                authorize(session, agreement_id=view.agreement_id, local_id=local_id,
                          peer_id=requester.node_id, purpose=Purpose(collection=c.name),
                          at=now, load=self.agreements.get)
            except AuthorizationError:
                continue
            if best is None or level_order(shared[0].tlp_ceiling) > level_order(best[0]):
                best = (shared[0].tlp_ceiling, view.agreement_id)
        if best is None:
            return None
        return Access(c.collection_id, c.name, True, c.peers_can_write, best[0], best[1])

    def visible(self, session: Session, requester: Requester) -> list[tuple[dict[str, Any],
                                                                            Access]]:
        """The collections ``requester`` may know of, sorted by id."""
        out = []
        for c in session.scalars(select(SharingCollection).order_by(
                SharingCollection.collection_id)):
            acc = self.access_for(session, requester, c)
            if acc is not None:
                out.append((_coll_dict(c), acc))
        return out

    # -- writing ---------------------------------------------------------------

    def add_objects(self, collection_id: str, objects: Sequence[object], requester: Requester,
                    *, recipients: Iterable[str] = ()) -> dict[str, Any]:
        """Store each valid object; returns the TAXII status resource (complete).

        Raises:
            CollectionNotFoundError, TaxiiForbiddenError
        """
        now = self.clock.now()
        with session_scope(self.sessions) as session:
            acc = self.access(session, requester, collection_id)
            if not acc.can_write:
                raise TaxiiForbiddenError("this collection does not accept objects from you")
            successes, failures = self.ingest(session, acc, requester, objects,
                                              recipients=recipients)
            status_id = str(uuid.uuid4())
            session.add(TaxiiStatus(
                status_id=status_id, collection_id=collection_id,
                owner=requester.node_id or "local", request_timestamp=now, completed_at=now,
                total=len(objects), successes=orjson.dumps(successes).decode(),
                failures=orjson.dumps(failures).decode()))
            self._purge_statuses(session, now)
        return status_view(status_id, now, len(objects), successes, failures)

    def ingest(self, session: Session, acc: Access, requester: Requester,
               objects: Sequence[object], *, recipients: Iterable[str] = (),
               provenance: int | None = None
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Validate and store ``objects`` as coming from ``requester`` under ``acc``.

        Objects from a peer are stored with it as their origin and the
        agreement of ``acc`` as the one they came under. Returns the
        successes and failures of the status resource, one per object.
        """
        now = self.clock.now()
        rcpt = sorted(set(recipients))
        successes: list[dict[str, Any]] = []
        failures: list[dict[str, Any]] = []
        checked: list[_NewVersion] = []
        for obj in objects:
            version = self._checked(obj, acc, now, failures)
            if version is not None:
                checked.append(version)
        # The collection's row lock: writers of one collection commit in
        # seq order, so no reader's cursor can pass a row still in flight.
        session.execute(update(SharingCollection).where(
            SharingCollection.collection_id == acc.collection_id).values(
            writes=SharingCollection.writes + 1))
        # The arrival time is read under that lock, so it grows in commit order
        # too: a time read before it could be older than a commit that got the
        # lock first, and a client polling with added_after would skip it.
        added = self.clock.now()
        for v in checked:
            if v.versionless:  # an SCO's version is when the collection got it
                v.version, v.version_at = format_ts(added), added
        new = self._new_versions(session, acc.collection_id, checked, successes, failures)
        rcpt_json = orjson.dumps(rcpt).decode() if rcpt else None
        _INSERT_VERSIONS(session.connection(), [
            (v.object_id, v.type, v.spec_version, v.version, v.version_at, v.latest, v.first,
             v.revoked, v.tlp, len(v.body), v.body) for v in new],
            shared={"collection_id": acc.collection_id, "kind": "object", "date_added": added,
                    "deleted": False, "origin": requester.node_id,
                    "received_under": acc.agreement_id, "recipients": rcpt_json,
                    "provenance": provenance})
        return successes, failures

    def _checked(self, obj: object, acc: Access, now: dt.datetime,
                 failures: list[dict[str, Any]]) -> _NewVersion | None:
        try:
            meta = check_object(obj)
        except StixError as e:
            oid = obj.get("id") if isinstance(obj, dict) else None
            failures.append({"id": oid if isinstance(oid, str) else "",
                             "message": str(e)})
            return None
        version = meta.version or format_ts(now)
        level = meta.tlp or self.default_tlp
        if acc.ceiling is not None and level_order(level) > level_order(acc.ceiling):
            failures.append({"id": meta.id, "version": version, "message":
                             f"TLP:{level.value.upper()} is above this collection's ceiling "
                             f"TLP:{acc.ceiling.value.upper()}"})
            return None
        return _NewVersion(
            object_id=meta.id, type=meta.type, spec_version=meta.spec_version or "2.1",
            version=version,
            version_at=meta.version_at or parse_rfc3339(version),
            versionless=meta.version is None, revoked=meta.revoked,
            tlp=None if meta.tlp is None else meta.tlp.value, body=orjson.dumps(obj))

    def _new_versions(self, session: Session, collection_id: str, checked: list[_NewVersion],
                      successes: list[dict[str, Any]], failures: list[dict[str, Any]]
                      ) -> list[_NewVersion]:
        """The versions of ``checked`` to insert, with ``latest`` and ``first`` set.

        An exact duplicate of a held version is a success, a different object
        with a held id and version a failure. Held versions whose ``latest``
        or ``first`` changes are updated here.
        """
        if not checked:
            return []
        ids = sorted({v.object_id for v in checked})
        held: dict[str, list[_HeldVersion]] = {}
        conn = session.connection()
        for start in range(0, len(ids), 512):
            chunk = _padded(ids[start:start + 512])
            params = {f"id{i}": oid for i, oid in enumerate(chunk)}
            params["cid"] = collection_id
            for seq, oid, at, body, latest, first in _HELD.rows(conn, len(chunk), params):
                held.setdefault(oid, []).append(_HeldVersion(at, body, latest, first, seq))
        new: list[_NewVersion] = []
        several: set[str] = set()  # ids with more than one version now: latest/first to set
        fresh: dict[str, _NewVersion] = {}  # ids first seen in this batch, one version so far
        for v in checked:
            versions = held.get(v.object_id)
            if versions is None:
                seen = fresh.get(v.object_id)
                if seen is None:  # the usual case: an id first seen here
                    fresh[v.object_id] = v
                    new.append(v)
                    successes.append({"id": v.object_id, "version": v.version})
                    continue
                versions = held[v.object_id] = [
                    _HeldVersion(seen.version_at, seen.body, True, True, None, seen)]
            # An observable (SCO) has no versions: whatever was first stored is it.
            same = [h for h in versions if v.versionless or h.version_at == v.version_at]
            if same:
                if same[0].body == v.body or orjson.loads(same[0].body) == orjson.loads(v.body):
                    # TAXII 2.1 §5.5: an exact duplicate is not an error.
                    successes.append({"id": v.object_id, "version": v.version,
                                      "message": "already added"})
                else:
                    failures.append({"id": v.object_id, "version": v.version,
                                     "message": "another object with this id and version "
                                                "is held"})
                continue
            versions.append(_HeldVersion(v.version_at, v.body, True, True, None, v))
            several.add(v.object_id)
            new.append(v)
            successes.append({"id": v.object_id, "version": v.version})
        for oid in several:
            versions = held[oid]
            top = max(h.version_at for h in versions)
            bottom = min(h.version_at for h in versions)
            for h in versions:
                latest, first = h.version_at == top, h.version_at == bottom
                if h.new is not None:
                    h.new.latest, h.new.first = latest, first
                elif (latest, first) != (h.latest, h.first):
                    session.execute(update(StixObject).where(StixObject.seq == h.seq).values(
                        latest=latest, first=first))
        return new

    def _purge_statuses(self, session: Session, now: dt.datetime) -> None:
        # Once a minute per process is enough: statuses are kept at least the
        # retention period, never exactly that long.
        if self._purged_at is not None and now - self._purged_at < _PURGE_EVERY:
            return
        keep = dt.timedelta(seconds=self.settings.taxii_status_retention_seconds)
        session.execute(delete(TaxiiStatus).where(TaxiiStatus.completed_at < now - keep))
        self._purged_at = now

    def delete_object(self, collection_id: str, object_id: str, requester: Requester,
                      versions: tuple[str, ...], *, check_access: bool = True) -> int:
        """Delete the matching versions of an object; returns how many.

        A peer may delete only versions it wrote itself. Deletions are kept
        as ``kind = 'delete'`` rows, so partners that sync see them.

        Raises:
            ObjectNotFoundError, TaxiiForbiddenError
        """
        with session_scope(self.sessions) as session:
            if check_access:
                acc = self.access(session, requester, collection_id)
                if not acc.can_write:
                    raise TaxiiForbiddenError("you may not delete from this collection")
            session.execute(update(SharingCollection).where(
                SharingCollection.collection_id == collection_id).values(
                writes=SharingCollection.writes + 1))
            now = self.clock.now()  # under the collection's lock, as in ingest
            q = select(StixObject).where(
                StixObject.collection_id == collection_id, IS_OBJECT,
                StixObject.deleted.is_(False), StixObject.object_id == object_id)
            versions = versions or ("all",)
            q = _version_filter(q, versions, _named_instants(versions))
            rows = list(session.scalars(q))
            if not requester.local:
                rows = [r for r in rows if r.origin == requester.node_id]
            if not rows:
                raise ObjectNotFoundError(f"no object {object_id} matches")
            for r in rows:
                r.deleted = True
                session.add(StixObject(
                    collection_id=collection_id, kind="delete", object_id=r.object_id,
                    type=r.type, spec_version=r.spec_version, version=r.version,
                    version_at=r.version_at, date_added=now, latest=False, first=False,
                    deleted=True, revoked=r.revoked, tlp=r.tlp, origin=r.origin,
                    received_under=r.received_under, recipients=r.recipients, size=0,
                    body=b"", provenance=r.provenance))
            session.flush()
            rest = list(session.scalars(select(StixObject).where(
                StixObject.collection_id == collection_id, IS_OBJECT,
                StixObject.deleted.is_(False), StixObject.object_id == object_id)))
            if rest:
                top = max(r.version_at for r in rest)
                bottom = min(r.version_at for r in rest)
                for r in rest:
                    r.latest, r.first = r.version_at == top, r.version_at == bottom
            return len(rows)

    # -- reading ---------------------------------------------------------------

    def _cursor_key(self) -> bytes:
        # Ed25519 signatures are deterministic: every process holding the node
        # key derives the same secret, and nothing more is stored. Derived once
        # per card serial, not once per page.
        local = self.identity.get()
        if self._cursor_secret is None or self._cursor_secret[0] != local.serial:
            sig = local.signing_key.sign(_CURSOR_DOMAIN)
            self._cursor_secret = (local.serial, hashlib.sha256(_CURSOR_DOMAIN + sig).digest())
        return self._cursor_secret[1]

    def make_cursor(self, collection_id: str, seq: int, filters: Filters) -> str:
        payload = orjson.dumps({"c": collection_id, "s": seq, "f": filters.digest()})
        tag = hmac.new(self._cursor_key(), payload, hashlib.sha256).digest()[:16]
        return f"{b64e(payload)}.{b64e(tag)}"

    def read_cursor(self, token: str, collection_id: str, filters: Filters) -> int:
        """The ``seq`` a ``next`` token continues after.

        Raises:
            BadFilterError: forged, for another collection, or for other filters.
        """
        try:
            raw, tag = token.split(".", 1)
            payload, mac = b64d(raw), b64d(tag)
        except (ValueError, TypeError) as e:
            raise BadFilterError("next is not a token this server issued") from e
        good = hmac.new(self._cursor_key(), payload, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(good, mac):
            raise BadFilterError("next is not a token this server issued")
        doc = orjson.loads(payload)
        if doc["c"] != collection_id:
            raise BadFilterError("next belongs to another collection")
        if doc["f"] != filters.digest():
            raise BadFilterError("next must be sent with the same filters as the page it "
                                 "came with")
        return int(doc["s"])

    def page(self, session: Session, acc: Access, requester: Requester, filters: Filters, *,
             limit: int, next_token: str | None, object_id: str | None = None,
             columns: Sequence[Any] = ()) -> Page:
        """One page of object versions the requester may receive, in ``seq`` order.

        ``page.rows`` are tuples ``(seq, *columns)``.
        """
        after = (self.read_cursor(next_token, acc.collection_id, filters)
                 if next_token else None)
        # The release policy's inputs are read only when there is a policy to
        # apply: the local operator sees everything.
        shape, params = _page_query(requester.local, tuple(c.key for c in columns),
                                    object_id, filters, after)
        params.update(cid=acc.collection_id, limit=limit + 1)
        conn = session.connection()
        fetched = _PAGE.rows(conn, shape, params)
        more = len(fetched) > limit
        fetched = fetched[:limit]
        if requester.local:
            released = fetched
        else:
            released = [(r[0], *r[5:]) for r in fetched
                        if self._releasable(session, r[1:5], requester, acc)]
        page = Page(released, more, self.make_cursor(acc.collection_id, fetched[-1][0], filters)
                    if more else None)
        if released:
            # date_added is read for the first and last rows only: converting it
            # for every row was a third of the cost of a page.
            ends = dict(_ENDS.rows(conn, None, {"first": released[0][0],
                                                "last": released[-1][0]}))
            page.first_added, page.last_added = ends[released[0][0]], ends[released[-1][0]]
        return page

    def changes(self, session: Session, acc: Access, requester: Requester, *, limit: int,
                next_token: str | None) -> Page:
        """Additions and deletions in ``seq`` order (what partners sync by), releasable only.

        ``page.extra["cursor"]`` continues after the last row looked at, even
        when there is no more: a syncing partner keeps it for its next round.
        """
        marker = Filters(versions=("x-comity-changes",))
        after = self.read_cursor(next_token, acc.collection_id, marker) if next_token else 0
        q = select(StixObject.seq, StixObject.kind, StixObject.object_id, StixObject.version,
                   StixObject.date_added, StixObject.tlp, StixObject.origin,
                   StixObject.received_under, StixObject.recipients).where(
            StixObject.collection_id == acc.collection_id, StixObject.seq > after,
            or_(StixObject.kind == "delete", StixObject.deleted.is_(False)))
        raw = list(session.execute(q.order_by(StixObject.seq).limit(limit + 1)))
        more = len(raw) > limit
        raw = raw[:limit]
        released = [r for r in raw if self._releasable(
            session, (r.tlp, r.origin, r.received_under, r.recipients), requester, acc)]
        last = raw[-1].seq if raw else after
        page = Page(released, more, self.make_cursor(acc.collection_id, last, marker)
                    if more else None)
        page.extra["cursor"] = self.make_cursor(acc.collection_id, last, marker)
        if released:
            page.first_added, page.last_added = released[0].date_added, released[-1].date_added
        return page

    def _releasable(self, session: Session, policy: Sequence[Any], requester: Requester,
                    acc: Access) -> bool:
        """Whether a stored version may go to ``requester``.

        ``policy`` is the row's ``(tlp, origin, received_under, recipients)``.
        """
        if requester.local:
            return True
        tlp, origin, received_under, recipients = policy
        parties: tuple[str, ...] = ()
        if origin is not None and tlp == TLP.GREEN.value and received_under:
            parties = self._parties(session, received_under)
        holding = Holding(
            tlp=None if tlp is None else TLP(tlp), origin=origin,
            received_under_parties=parties,
            recipients=tuple(orjson.loads(recipients)) if recipients else ())
        return may_release(holding, requester, default=self.default_tlp, ceiling=acc.ceiling)

    def _parties(self, session: Session, agreement_id: str) -> tuple[str, ...]:
        try:
            return self.agreements.get(session, agreement_id).active_parties
        except Exception:  # an agreement no longer held: no community to share with
            return ()

    def status(self, session: Session, status_id: str, requester: Requester) -> dict[str, Any]:
        row = session.get(TaxiiStatus, status_id)
        if row is None or row.owner != (requester.node_id or "local"):
            raise ObjectNotFoundError(f"no status {status_id}")
        return status_view(row.status_id, row.request_timestamp, row.total,
                           orjson.loads(row.successes), orjson.loads(row.failures))

    def stats(self, session: Session) -> dict[str, int]:
        from sqlalchemy import func

        n = session.scalar(select(func.count()).select_from(StixObject).where(
            IS_OBJECT, StixObject.deleted.is_(False)))
        return {"objects": int(n or 0)}


def _version_filter(q: Select[Any], versions: tuple[str, ...], stamps: Sequence[Any]
                    ) -> Select[Any]:
    """``q`` keeping the versions ``versions`` names ("all", "first", "last") and those
    whose instant is one of ``stamps`` (datetimes, or bindparams for them)."""
    if "all" in versions:
        return q
    conds = []
    if "last" in versions:
        conds.append(StixObject.latest.is_(True))
    if "first" in versions:
        conds.append(StixObject.first.is_(True))
    if stamps:
        conds.append(StixObject.version_at.in_(stamps))
    return q.where(or_(*conds))


def _named_instants(versions: tuple[str, ...]) -> list[dt.datetime]:
    """The versions ``match[version]`` names by their timestamp (not "all", "first", "last").

    Raises:
        BadFilterError: one of them is no RFC 3339 UTC timestamp.
    """
    return [parse_rfc3339(v) for v in versions if v not in ("all", "first", "last")]


def _padded(values: Sequence[str]) -> tuple[str, ...]:
    """``values`` with its last repeated up to a power of two: an ``IN`` list of
    few distinct lengths, so of few prepared statements (repeats match nothing more)."""
    size = 1 << max(len(values) - 1, 0).bit_length()
    return (*values, *[values[-1]] * (size - len(values))) if values else ()


def _page_query(local: bool, columns: tuple[str, ...], object_id: str | None,
                filters: Filters, after: int | None) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The shape of a page's statement (see :func:`_page_select`) and its values."""
    params: dict[str, Any] = {}
    lists = {"id": _padded(filters.ids), "type": _padded(filters.types),
             "spec": _padded(filters.spec_versions)}
    for prefix, values in lists.items():
        params.update((f"{prefix}{i}", v) for i, v in enumerate(values))
    versions: tuple[str, ...] = ("all",) if "all" in filters.versions else ()
    if not versions:
        stamps = _named_instants(filters.versions)
        versions = tuple(v for v in ("first", "last") if v in filters.versions)
        versions += ("at",) * len(stamps)
        params.update((f"at{i}", at) for i, at in enumerate(stamps))
    if object_id is not None:
        params["oid"] = object_id
    if filters.added_after is not None:
        params["added_after"] = filters.added_after
    if after is not None:
        params["after"] = after
    shape = (local, columns, object_id is not None, len(lists["id"]), len(lists["type"]),
             len(lists["spec"]), filters.added_after is not None, after is not None, versions)
    return shape, params


def _page_select(shape: tuple[Any, ...]) -> Select[Any]:
    """A page's statement: ``seq``, the policy's columns unless local, then ``columns``."""
    local, columns, one_object, n_ids, n_types, n_specs, added_after, after, versions = shape
    policy: list[Any] = [] if local else [StixObject.tlp, StixObject.origin,
                                          StixObject.received_under, StixObject.recipients]
    q = select(StixObject.seq, *policy, *(getattr(StixObject, c) for c in columns)).where(
        StixObject.collection_id == bindparam("cid"), IS_OBJECT, StixObject.deleted.is_(False))
    if one_object:
        q = q.where(StixObject.object_id == bindparam("oid"))
    for column, prefix, n in ((StixObject.object_id, "id", n_ids), (StixObject.type, "type",
                              n_types), (StixObject.spec_version, "spec", n_specs)):
        if n:
            q = q.where(column.in_([bindparam(f"{prefix}{i}") for i in range(n)]))
    if added_after:
        q = q.where(StixObject.date_added > bindparam("added_after"))
    if after:
        q = q.where(StixObject.seq > bindparam("after"))
    at = StixObject.version_at.type  # an IN's bindparams do not take the column's type
    q = _version_filter(q, versions, [bindparam(f"at{i}", type_=at)
                                      for i in range(versions.count("at"))])
    return q.order_by(StixObject.seq).limit(bindparam("limit", type_=Integer))


_PAGE = PreparedSelect(_page_select)
_HELD = PreparedSelect(lambda n: select(
    StixObject.seq, StixObject.object_id, StixObject.version_at, StixObject.body,
    StixObject.latest, StixObject.first).where(
    StixObject.collection_id == bindparam("cid"), IS_OBJECT, StixObject.deleted.is_(False),
    StixObject.object_id.in_([bindparam(f"id{i}") for i in range(n)])))
_ENDS = PreparedSelect(lambda _: select(StixObject.seq, StixObject.date_added).where(
    StixObject.seq.in_([bindparam("first"), bindparam("last")])))


# [0-9], never \d: \d also matches other scripts' digits, which int() accepts.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?Z")


def parse_rfc3339(text: str) -> dt.datetime:
    """A STIX/TAXII timestamp (``Z``, any fraction) as an aware datetime, to the microsecond.

    Raises:
        BadFilterError: not such a timestamp.
    """
    when = _rfc3339(text) if isinstance(text, str) else None
    if when is None:
        raise BadFilterError(f"not an RFC 3339 UTC timestamp: {text!r}")
    return when


@functools.lru_cache(maxsize=65536)
def _rfc3339(text: str) -> dt.datetime | None:
    # Cached: pages of one walk repeat the same added_after and version filters.
    m = _RFC3339.fullmatch(text)
    if m is None:
        return None
    try:
        micro = int((m[7] or "0")[:6].ljust(6, "0"))
        return dt.datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]),
                           micro, tzinfo=dt.UTC)
    except ValueError:
        return None


def taxii_ts(when: dt.datetime) -> str:
    """RFC 3339 with microseconds and ``Z``, as TAXII headers and resources use."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def status_view(status_id: str, at: dt.datetime, total: int,
                successes: list[dict[str, Any]], failures: list[dict[str, Any]]
                ) -> dict[str, Any]:
    return {"id": status_id, "status": "complete", "request_timestamp": taxii_ts(at),
            "total_count": total, "success_count": len(successes), "successes": successes,
            "failure_count": len(failures), "failures": failures, "pending_count": 0,
            "pendings": []}


def export_objects(sharing: Sharing, collection_id: str, requester: Requester, *,
                   page_size: int = 1000) -> Iterable[bytes]:
    """The latest version of every object the requester may have, page by page (streamed).

    All pages come from one snapshot: a version added or deleted meanwhile
    would otherwise put an object in the export twice, or leave it out.
    """
    token: str | None = None
    filters = Filters()
    with snapshot_scope(sharing.sessions) as session:
        acc = sharing.access(session, requester, collection_id)
        while True:
            page = sharing.page(session, acc, requester, filters, limit=page_size,
                                next_token=token, columns=[StixObject.body])
            for _, body in page.rows:
                yield bytes(body)
            if not page.more:
                return
            token = page.next
