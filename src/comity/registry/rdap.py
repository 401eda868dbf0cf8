"""RDAP for the number registry, under ``/rdap`` (RFC 7480, RFC 9082, RFC 9083).

Lookups: ``/rdap/ip/<address>``, ``/rdap/ip/<prefix>/<length>``,
``/rdap/autnum/<n>``, ``/rdap/entity/<handle>`` and ``/rdap/help``, each for
``GET`` and ``HEAD``. The other query types RFC 9082 documents (``domain``,
``nameserver``, and the ``domains``, ``nameservers`` and ``entities``
searches) answer 501, as it requires of a server that does not implement them.

An IP or AS number query gets the most specific registration covering it
(:meth:`~comity.registry.services.Registry.lookup`'s rule, here with a fast
path of its own, :func:`find`: one statement of two index seeks, run on the
driver): the delegation containing the whole query, else the pool
containing it, else 404. Lookups run in the thread pool in read-only
transactions; those that arrive while others are being answered are
answered together, in one hop and one transaction (:class:`_Batches`).

A pool answer says that the space is not delegated: ``type`` ``POOL``,
status ``active`` (the pool is in use by its registry) and a remark naming
what was asked. Pools have no handle of their own; theirs is ``POOL-`` and
their block (``POOL-45.64.0.0/16``). Delegations are ``active`` (allocated,
assigned) or ``reserved``, with their status upper-cased as ``type``.

Every answer, errors included, is ``application/rdap+json`` with
``Access-Control-Allow-Origin: *`` (RFC 7480 §5.6). ``Accept`` is not
negotiated: clients asking for ``application/rdap+json``,
``application/json`` or ``*/*`` all get the one media type RDAP has. Errors
have the RFC 9083 §6 shape (``errorCode``, ``title``, ``description``,
``rdapConformance``), never the node's problem+json: malformed queries are
400, nothing found 404, anything unexpected 500 (details to the log only).
Unknown query parameters are ignored (RFC 7480 §4.2). Extensions used:
``cidr0`` (``cidr0_cidrs``, the prefixes making up an IP range, which need
not be one prefix). The NRO profile is not claimed: its entity and remark
requirements are not all met.

A delegation a council decided links to that decision
(``{base}/governance/proposals/<id>``) and to its log proof (``…/proof``),
from the object and from its ``registration`` event.

Trust assumptions: RDAP is public data, so no token is asked. Everything in
the request is untrusted: paths are parsed strictly (Python's
:mod:`ipaddress`, 32-bit AS numbers in asplain, bounded lengths) before any
query, and values from the database reach the client only through the JSON
encoder. Links are absolute, built from the URL the client used; a ``Host``
header that is not a plain host name or address (and port) is replaced by
the node's own URL, so links cannot be made to carry paths or markup.

Example::

    GET /rdap/ip/45.64.1.1
    200 {"objectClassName": "ip network", "handle": "45.64.1.0/24", ...}
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import ipaddress
import logging
import re
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from sqlalchemy import bindparam, literal, select, true
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from comity.clock import format_ts
from comity.db import PreparedSelect, read_scope
from comity.http import Endpoint, get_node, plain_route
from comity.node import Node
from comity.registry.errors import InvalidResourceError, NotFoundError, RegistryError
from comity.registry.models import Delegation, RegistryEntity, RegistryPool
from comity.registry.resources import Block, Kind

__all__ = ["CONFORMANCE", "RDAP_MEDIA_TYPE", "DelegationRow", "PoolRow", "find", "router"]

log = logging.getLogger(__name__)

RDAP_MEDIA_TYPE = "application/rdap+json"
CONFORMANCE = ("rdap_level_0", "cidr0")
router = APIRouter(prefix="/rdap", tags=["rdap"])

_LEVEL_0 = ["rdap_level_0"]
_ASN_MAX = 2**32 - 1
# Longer than any address, prefix length, AS number or handle this registry holds:
# such a query is refused before it is parsed.
_MAX_TEXT = 64
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](?::[0-9]{1,5})?")
_STATUS = {"allocated": "active", "assigned": "active", "reserved": "reserved"}
_TERMS = ("This is the public registration data of a Comity number registry: pools of "
          "Internet number resources and their delegations, local or decided by a council.",
          "It is provided as is, for lookups of who holds a resource; see /rdap/help.")


class DelegationRow(NamedTuple):
    """The columns of a delegation an answer shows, and its holder's name."""

    handle: str
    authority: str
    start_key: str
    end_key: str
    holder: str | None
    country: str | None
    status: str
    name: str | None
    registered_at: dt.datetime | None
    changed_at: dt.datetime
    proposal: str | None
    decision_seq: int | None
    log_index: int | None
    holder_name: str | None


class PoolRow(NamedTuple):
    """The columns of a pool an answer shows."""

    authority: str
    start_key: str
    end_key: str
    name: str
    created_at: dt.datetime


# The two seeks of a lookup in one statement, built once: one round trip, one snapshot
# (a single statement needs no transaction of its own to be consistent), and only the
# columns an answer shows. Rows never overlap, so the candidate covering a block is the
# row with the greatest start not after the block's start, if it reaches the block's end.
_D = Delegation.__table__.c
_P = RegistryPool.__table__.c
_E = RegistryEntity.__table__.c
_near_d = (select(_D.handle, _D.authority, _D.start_key, _D.end_key, _D.holder, _D.country,
                  _D.status, _D.name, _D.registered_at, _D.changed_at, _D.proposal,
                  _D.decision_seq, _D.log_index)
           .where(_D.kind == bindparam("kind"), _D.start_key <= bindparam("start"))
           .order_by(_D.start_key.desc()).limit(1).subquery("d"))
_near_p = (select(_P.authority, _P.start_key, _P.end_key, _P.name, _P.created_at)
           .where(_P.kind == bindparam("kind"), _P.start_key <= bindparam("start"))
           .order_by(_P.start_key.desc()).limit(1).subquery("p"))
_one = select(literal(1).label("one")).subquery("one")  # the row both seeks hang off
_LOOKUP_SELECT = (select(_near_d, _E.name.label("holder_name"), _near_p)
                  .select_from(_one.outerjoin(_near_d, true())
                               .outerjoin(RegistryEntity.__table__,
                                          _E.handle == _near_d.c.holder)
                               .outerjoin(_near_p, true())))
_LOOKUP = PreparedSelect(lambda _: _LOOKUP_SELECT)
_SPLIT = len(DelegationRow._fields)


# -- the lookup ---------------------------------------------------------------------------

def find(session: Session, block: Block) -> tuple[DelegationRow | None, PoolRow | None]:
    """The delegation containing ``block`` (or None) and the pool containing it.

    The same rule as :meth:`Registry.lookup`, which this must always agree
    with; the pool is looked up even when a delegation answers: it is the
    delegation's ``parentHandle``.

    Raises:
        NotFoundError: neither contains it.
    """
    rows = _LOOKUP.rows(session.connection(), None, {"kind": block.kind.value,
                                                    "start": block.start_key})
    row = rows[0]  # the one row of _one, always
    end = block.end_key
    d_end, p_end = row[3], row[_SPLIT + 2]
    d = DelegationRow._make(row[:_SPLIT]) if d_end is not None and d_end >= end else None
    p = PoolRow._make(row[_SPLIT:]) if p_end is not None and p_end >= end else None
    if d is None and p is None:
        raise NotFoundError(f"no registration contains {block}")
    return d, p


# -- parsing the query (untrusted) ----------------------------------------------------------

def _address(text: str) -> Block:
    if len(text) > _MAX_TEXT or "%" in text:  # no zone ids: they name no registry space
        raise InvalidResourceError(f"{text[:_MAX_TEXT]!r} is not an IP address")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidResourceError(f"{text!r} is not an IP address") from None
    kind = Kind.IPV4 if addr.version == 4 else Kind.IPV6
    return Block(kind, int(addr), int(addr))


def _prefix(text: str, length: str) -> Block:
    # Digits only: ipaddress would also take a netmask ("255.255.0.0") as the length.
    if len(text) > _MAX_TEXT or "%" in text or not (length.isascii() and length.isdigit()
                                                    and len(length) <= 3):
        raise InvalidResourceError(f"{text[:_MAX_TEXT]!r}/{length[:8]!r} is not a CIDR prefix")
    try:
        net = ipaddress.ip_network(f"{text}/{length}", strict=True)
    except ValueError as e:
        raise InvalidResourceError(f"{text}/{length} is not a CIDR prefix: {e}") from None
    return Block.from_network(net)


def _autnum(text: str) -> Block:
    # asplain only (RFC 9082 §3.1.2): no "AS" prefix, no sign, no spaces.
    if not (text.isascii() and text.isdigit() and len(text) <= 10) or int(text) > _ASN_MAX:
        raise InvalidResourceError(f"{text[:_MAX_TEXT]!r} is not an AS number "
                                   f"(asplain, 0 to {_ASN_MAX})")
    return Block(Kind.ASN, int(text), int(text))


# -- building answers -------------------------------------------------------------------------

def _base(request: Request) -> str:
    """The URL the client reached this node at, without a trailing slash."""
    scope = request.scope
    host = next((v for k, v in scope["headers"] if k == b"host"), b"").decode("latin-1")
    if not _HOST.fullmatch(host):
        return str(get_node(request).local.card.url).rstrip("/")
    return f"{scope['scheme']}://{host}{scope.get('root_path', '')}"


def _link(context: str, href: str, rel: str = "self", **extra: str) -> dict[str, str]:
    return {"value": context, "rel": rel, "href": href, "type": RDAP_MEDIA_TYPE, **extra}


# Dates repeat (every row of an import shares its time of writing): format each once.
_rfc3339 = functools.lru_cache(maxsize=4096)(format_ts)


def _notices(base: str) -> list[dict[str, Any]]:
    help_url = f"{base}/rdap/help"
    return [{"title": "Terms of use", "description": list(_TERMS),
             "links": [_link(help_url, help_url, "terms-of-service")]}]


def _event(action: str, when: dt.datetime, links: list[dict[str, str]] | None = None
           ) -> dict[str, Any]:
    event: dict[str, Any] = {"eventAction": action, "eventDate": _rfc3339(when)}
    if links:
        event["links"] = links
    return event


def _vcard(name: str) -> list[Any]:
    return ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", name],
                      ["kind", {}, "text", "org"]]]


def _holder(base: str, handle: str, name: str | None) -> dict[str, Any]:
    """The registrant; linked to its own object only when there is one (``name``)."""
    doc: dict[str, Any] = {"objectClassName": "entity", "handle": handle,
                           "roles": ["registrant"], "vcardArray": _vcard(name or handle)}
    if name is not None:
        url = f"{base}/rdap/entity/{quote(handle, safe='')}"
        doc["links"] = [_link(url, url)]
    return doc


def _resource(base: str, block: Block, handle: str, name: str | None
              ) -> tuple[dict[str, Any], str]:
    """The members an ip network and an autnum share (in RFC 9083's order), and the
    object's own URL."""
    if block.kind is Kind.ASN:
        doc: dict[str, Any] = {"objectClassName": "autnum", "handle": handle,
                               "startAutnum": block.first, "endAutnum": block.last}
        url = f"{base}/rdap/autnum/{block.first}"
    else:
        start = block.start_address
        length = block.prefix_length
        # Most blocks are one prefix: ipaddress's summarising is for the others.
        cidrs = ([(start, length)] if length is not None else
                 [(str(n.network_address), n.prefixlen) for n in block.networks()])
        family = "v4prefix" if block.kind is Kind.IPV4 else "v6prefix"
        doc = {"objectClassName": "ip network", "handle": handle, "startAddress": start,
               "endAddress": block.end_address,
               "ipVersion": "v4" if block.kind is Kind.IPV4 else "v6",
               "cidr0_cidrs": [{family: a, "length": n} for a, n in cidrs]}
        # The first prefix of a range lies inside it, so it leads back to this object.
        url = f"{base}/rdap/ip/{cidrs[0][0]}/{cidrs[0][1]}"
    if name:
        doc["name"] = name
    return doc, url


def _block(kind: Kind, start_key: str, end_key: str) -> Block:
    return Block(kind, int(start_key, 16), int(end_key, 16))


def _pool_handle(block: Block) -> str:
    return f"POOL-{block}"


def _delegation_doc(base: str, block: Block, d: DelegationRow, pool: Block | None
                    ) -> dict[str, Any]:
    doc, url = _resource(base, block, d.handle, d.name)
    doc["type"] = d.status.upper()
    if d.country:
        doc["country"] = d.country
    if pool is not None:
        doc["parentHandle"] = _pool_handle(pool)
    doc["status"] = [_STATUS.get(d.status, "active")]
    links = [_link(url, url)]
    decision: list[dict[str, str]] = []
    if d.proposal:
        target = f"{base}/governance/proposals/{quote(d.proposal, safe='')}"
        decision = [_link(url, target, "related", type="application/json",
                          title="Council decision"),
                    _link(url, f"{target}/proof", "related", type="application/json",
                          title="Log proof of the decision")]
        links += decision
        doc["remarks"] = [{"title": "Decision", "description": [
            f"Delegated by a decision of the council {d.authority} (decision "
            f"{d.decision_seq}, entry {d.log_index} of this node's log)."]}]
    # A council's delegation is registered when its decision is applied; without a
    # registration date of its own, that is the row's time of writing.
    registered = d.registered_at if d.registered_at is not None else (
        d.changed_at if d.proposal else None)
    events = [] if registered is None else [_event("registration", registered, decision)]
    events.append(_event("last changed", d.changed_at))
    doc["events"] = events
    if d.holder:
        doc["entities"] = [_holder(base, d.holder, d.holder_name)]
    doc["links"] = links
    return doc


def _pool_doc(base: str, block: Block, p: PoolRow, asked: Block) -> dict[str, Any]:
    doc, url = _resource(base, block, _pool_handle(block), p.name)
    doc["type"] = "POOL"
    doc["status"] = ["active"]
    doc["remarks"] = [{"title": "Not delegated", "description": [
        f"{asked} is not delegated: it lies in this pool of the registry {p.authority}."]}]
    doc["events"] = [_event("registration", p.created_at)]
    doc["links"] = [_link(url, url)]
    return doc


def _top(doc: dict[str, Any], base: str, conformance: list[str]) -> bytes:
    """The topmost object: the only one carrying ``rdapConformance`` and ``notices``."""
    doc["notices"] = _notices(base)
    doc["rdapConformance"] = conformance
    return orjson.dumps(doc)


def _error_body(status: int, title: str, description: str) -> bytes:
    return orjson.dumps({"errorCode": status, "title": title, "description": [description],
                         "rdapConformance": _LEVEL_0})


def _rdap(request: Request, body: bytes, status: int = 200,
          headers: dict[str, str] | None = None) -> Response:
    """An RDAP answer; to HEAD, the same status and headers with no body."""
    all_headers = {"access-control-allow-origin": "*", "content-length": str(len(body)),
                   **(headers or {})}
    if request.method == "HEAD":
        body = b""
    return Response(body, status_code=status, media_type=RDAP_MEDIA_TYPE, headers=all_headers)


_ERRORS: dict[type[RegistryError], tuple[int, str]] = {
    InvalidResourceError: (400, "Malformed query"), NotFoundError: (404, "Not found")}


def _refuse(request: Request, e: RegistryError) -> Response:
    status, title = _ERRORS.get(type(e), (400, "Malformed query"))
    return _rdap(request, _error_body(status, title, e.detail), status)


async def _serve(request: Request, answer: Awaitable[bytes]) -> Response:
    """Await the answer's bytes (read in the thread pool); every error as RDAP."""
    try:
        body = await answer
    except RegistryError as e:
        return _refuse(request, e)
    except Exception:
        # Anything else is a fault here: the client learns only that, the log the rest.
        log.exception("RDAP query %s failed", request.url.path)
        return _rdap(request, _error_body(500, "Internal error",
                                          "the query could not be answered"), 500)
    return _rdap(request, body)


# -- lookups, in batches ------------------------------------------------------------------------

class _Lookup(NamedTuple):
    node: Node
    base: str
    block: Block
    answer: asyncio.Future[bytes]


def _answer(session: Session, base: str, block: Block) -> bytes:
    """The serialised answer to an IP or AS number query.

    Raises:
        NotFoundError: nothing contains ``block``.
    """
    d, p = find(session, block)
    if d is not None:
        pool = None if p is None else _block(block.kind, p.start_key, p.end_key)
        doc = _delegation_doc(base, _block(block.kind, d.start_key, d.end_key), d, pool)
    else:
        assert p is not None  # find raised if neither contains the block
        doc = _pool_doc(base, _block(block.kind, p.start_key, p.end_key), p, block)
    return _top(doc, base, _LEVEL_0 if block.kind is Kind.ASN else list(CONFORMANCE))


def _answer_all(batch: list[_Lookup]) -> list[bytes | Exception]:
    """Each lookup's answer or error, in one read-only transaction per node (in the
    thread pool)."""
    out: dict[int, bytes | Exception] = {}
    for node in {id(x.node): x.node for x in batch}.values():
        mine = [(i, x) for i, x in enumerate(batch) if x.node is node]
        try:
            with read_scope(node.sessions) as session:
                for i, x in mine:
                    try:
                        out[i] = _answer(session, x.base, x.block)
                    except Exception as e:  # this lookup's own error, not the batch's
                        out[i] = e
        except Exception as e:  # the transaction failed: so did every lookup in it
            for i, _ in mine:
                out[i] = e
    return [out[i] for i in range(len(batch))]


class _Queue:
    """The lookups of one event loop waiting for a batch, and the task serving them."""

    def __init__(self) -> None:
        self.waiting: list[_Lookup] = []
        self.drainer: asyncio.Task[None] | None = None


class _Batches:
    """IP and AS number lookups waiting for the thread pool, served together.

    A lookup's own work (one statement, one answer) costs less than what
    surrounds it: the hop to the thread pool and the read-only transaction.
    And concurrent hops are worse than their sum: every worker thread then
    competes for the GIL with the event loop. So the lookups that arrive while
    a batch is being served wait for the next batch, which takes them all (up
    to ``MAX_BATCH``) in one hop and one transaction. A lookup that arrives
    alone is a batch of one and waits for nothing. One queue per event loop,
    as futures belong to theirs.
    """

    MAX_BATCH = 64

    def __init__(self) -> None:
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = (
            weakref.WeakKeyDictionary())

    async def answer(self, node: Node, base: str, block: Block) -> bytes:
        """The answer to ``block`` (raises as the lookup does)."""
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        lookup = _Lookup(node, base, block, loop.create_future())
        queue.waiting.append(lookup)
        if queue.drainer is None:
            queue.drainer = loop.create_task(self._drain(queue))
        return await lookup.answer

    async def _drain(self, queue: _Queue) -> None:
        batch: list[_Lookup] = []
        try:
            while queue.waiting:
                batch = queue.waiting[:self.MAX_BATCH]
                del queue.waiting[:self.MAX_BATCH]
                results = await run_in_threadpool(_answer_all, batch)
                for lookup, result in zip(batch, results, strict=True):
                    if lookup.answer.done():  # its request went away
                        continue
                    if isinstance(result, Exception):
                        lookup.answer.set_exception(result)
                    else:
                        lookup.answer.set_result(result)
                batch = []
        except asyncio.CancelledError:  # the loop is closing
            self._fail(batch, queue, RuntimeError("RDAP lookups were stopped"))
            raise
        except Exception as e:  # a fault here, not in a lookup: none may wait for ever
            log.exception("RDAP lookups failed")
            self._fail(batch, queue, e)
        finally:
            queue.drainer = None

    @staticmethod
    def _fail(batch: list[_Lookup], queue: _Queue, error: Exception) -> None:
        for lookup in [*batch, *queue.waiting]:
            if not lookup.answer.done():
                lookup.answer.set_exception(error)
        queue.waiting.clear()


_BATCHES = _Batches()


# -- routes -------------------------------------------------------------------------------------

async def _resource_query(request: Request, parse: Callable[[], Block]) -> Response:
    try:
        block = parse()  # malformed queries are refused without a trip to the pool
    except RegistryError as e:
        return _refuse(request, e)
    return await _serve(request, _BATCHES.answer(get_node(request), _base(request), block))


def _lookup(path: str, summary: str) -> Callable[[Endpoint], Endpoint]:
    return plain_route(router, path, summary, methods=("GET", "HEAD"))


@_lookup("/ip/{addr}", "RDAP IP network lookup")
async def ip(request: Request) -> Response:
    return await _resource_query(request, lambda: _address(request.path_params["addr"]))


@_lookup("/ip/{prefix}/{length}", "RDAP IP network lookup by CIDR prefix")
async def ip_prefix(request: Request) -> Response:
    params = request.path_params
    return await _resource_query(request, lambda: _prefix(params["prefix"], params["length"]))


@_lookup("/autnum/{n}", "RDAP autnum lookup")
async def autnum(request: Request) -> Response:
    return await _resource_query(request, lambda: _autnum(request.path_params["n"]))


@_lookup("/entity/{handle}", "RDAP entity lookup")
async def entity(request: Request) -> Response:
    node = get_node(request)
    base = _base(request)
    handle: str = request.path_params["handle"]

    def work() -> bytes:
        if len(handle) > _MAX_TEXT:  # longer than any handle stored
            raise NotFoundError(f"no entity {handle[:_MAX_TEXT]!r}...")
        with read_scope(node.sessions) as session:
            e = node.registry.entity(session, handle)
        url = f"{base}/rdap/entity/{quote(handle, safe='')}"
        return _top({"objectClassName": "entity", "handle": e.handle,
                     "vcardArray": _vcard(e.name),
                     "events": [_event("registration", e.created_at)],
                     "links": [_link(url, url)]}, base, _LEVEL_0)

    return await _serve(request, run_in_threadpool(work))


@_lookup("/help", "RDAP help")
async def help_(request: Request) -> Response:
    base = _base(request)
    doc: dict[str, Any] = {"notices": [*_notices(base), {"title": "Queries", "description": [
        "Lookups: /rdap/ip/<address>, /rdap/ip/<prefix>/<length>, /rdap/autnum/<n> "
        "(asplain), /rdap/entity/<handle>, /rdap/help.",
        "IP and AS number queries answer the most specific registration containing the "
        "query: its delegation, else the pool it lies in (type POOL: not delegated).",
        "Domain and nameserver queries and searches are not implemented (501)."]}],
        "rdapConformance": list(CONFORMANCE)}
    return _rdap(request, orjson.dumps(doc))


@router.api_route("/domain/{name:path}", methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route("/nameserver/{name:path}", methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route("/domains", methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route("/nameservers", methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route("/entities", methods=["GET", "HEAD"], include_in_schema=False)
async def unsupported(request: Request) -> Response:
    """Query types RFC 9082 documents that this registry does not serve: 501."""
    kind = request.url.path.partition("/rdap/")[2].split("/")[0]
    return _rdap(request, _error_body(501, "Not implemented",
                                      f"{kind} queries are not implemented by this server"),
                 501)


@router.api_route("/{rest:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                           "OPTIONS"], include_in_schema=False)
async def other(request: Request) -> Response:
    """Anything else under /rdap keeps the RDAP shape: CORS preflight, 405 or 400."""
    if request.method == "OPTIONS":
        return _rdap(request, b"", 204, {"access-control-allow-methods": "GET, HEAD",
                                         "access-control-allow-headers": "*"})
    if request.method not in ("GET", "HEAD"):
        return _rdap(request, _error_body(405, "Method not allowed", "RDAP is GET and HEAD"),
                     405, {"allow": "GET, HEAD"})
    return _rdap(request, _error_body(400, "Malformed query",
                                      f"{request.url.path[:200]} is not an RDAP query"), 400)
