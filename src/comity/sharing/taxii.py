"""The TAXII 2.1 server of a node, under ``/taxii2/``.

Discovery, one API root (``/taxii2/comity/``), collections, objects (GET,
POST, DELETE), object by id, versions, manifest and status, with every
filter of the spec (``added_after``, ``limit``, ``next``, ``match[id|type|
version|spec_version]``), the ``X-TAXII-Date-Added-First/Last`` headers, its
media types and its error resource (401/403/404/406/413/415/422).

Who asks decides what comes back: an API token of this node is the local
operator; a peer signs its request with its node key (RFC 9421 HTTP Message
Signatures, Ed25519, ``keyid`` = its node id), and sees only the collections
its agreements in force share with it, and in them only the objects the
release policy lets it have (:mod:`comity.sharing.policy`).

Trust assumptions: nothing in a request is trusted before the token or the
signature is checked; the signature covers method, target URI, authority and
(for bodies) the content digest, and must be fresh.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from comity.db import read_scope
from comity.hazmat.httpsig import SignatureError, verify_request
from comity.hazmat.keys import VerifyKey, b64e
from comity.http import check_bearer, get_node, plain_route
from comity.identity.models import Peer
from comity.problems import Problem
from comity.sharing.errors import (
    BadFilterError,
    NotAcceptableError,
    TaxiiUnauthorizedError,
    UnsupportedContentTypeError,
)
from comity.sharing.models import StixObject
from comity.sharing.policy import Requester
from comity.sharing.services import STIX_MEDIA_TYPE, Filters, Page, parse_rfc3339, taxii_ts
from comity.sharing.stix import StixError, check_envelope

__all__ = ["API_ROOT", "TAXII_MEDIA_TYPE", "router"]

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
API_ROOT = "comity"
MAX_PAGE = 10_000
router = APIRouter(prefix="/taxii2", tags=["taxii"])
_MEDIA_TYPE_NAME = "application/taxii+json"
_FILTERS = {"objects": {"id", "type", "version", "spec_version"},
            "manifest": {"id", "type", "version", "spec_version"},
            "object": {"version", "spec_version"}, "versions": {"spec_version"}}


def _taxii(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = data if isinstance(data, bytes) else orjson.dumps(data)
    return Response(body, status_code=status, media_type=TAXII_MEDIA_TYPE, headers=headers)


def _error(e: Problem) -> Response:
    doc = {"title": e.title, "description": e.detail, "http_status": str(e.status),
           "error_code": e.slug}
    headers = {"WWW-Authenticate": 'Bearer, Signature realm="comity"'} if e.status == 401 else None
    return _taxii(doc, e.status, headers)


def _media(value: str) -> tuple[str, dict[str, str]]:
    """A media range or type and its parameters (names lowercased, quotes removed)."""
    kind, *params = value.split(";")
    out: dict[str, str] = {}
    for p in params:
        name, _, v = p.partition("=")
        out[name.strip().lower()] = v.strip().strip('"')
    return kind.strip().lower(), out


def _is_taxii(kind: str, params: dict[str, str], *, ranges: bool) -> bool:
    wild = ranges and kind in ("*/*", "application/*")
    return (kind == _MEDIA_TYPE_NAME or wild) and params.get("version", "2.1") == "2.1"


def _accepts(request: Request) -> None:
    accept = request.headers.get("accept")
    if accept is None:
        return
    for part in accept.split(","):
        kind, params = _media(part)
        try:
            wanted = float(params.get("q", "1")) > 0
        except ValueError:
            wanted = False
        if wanted and _is_taxii(kind, params, ranges=True):
            return
    raise NotAcceptableError(f"this server speaks {TAXII_MEDIA_TYPE}, not {accept}")


async def _requester(request: Request, body: bytes | None) -> Requester:
    node = get_node(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        try:
            await check_bearer(request, token.strip())
        except Problem as e:
            raise TaxiiUnauthorizedError(e.detail) from e
        return Requester(None)
    if "signature-input" in request.headers:
        def verify() -> Requester:
            with read_scope(node.sessions) as session:
                def key_for(node_id: str) -> VerifyKey:
                    peer = session.get(Peer, node_id)
                    if peer is None:
                        raise KeyError(node_id)
                    return VerifyKey(peer.signing_key)
                now = int(node.clock.now().timestamp())
                try:
                    got = verify_request(method=request.method, url=str(request.url),
                                         headers=request.headers, body=body, key_for=key_for,
                                         now=now, max_age=node.settings.clock_skew_seconds)
                except SignatureError as e:
                    raise TaxiiUnauthorizedError(f"request signature refused: {e}") from e
            return Requester(got.key_id)
        return await run_in_threadpool(verify)
    raise TaxiiUnauthorizedError("authenticate with this node's API token (Bearer) or, for a "
                                 "peer, an HTTP message signature by its node key")


Handler = Callable[[Request, Requester], Awaitable[Response]]


async def _serve(request: Request, handler: Handler, *, body: bool = False) -> Response:
    try:
        _accepts(request)
        raw = None
        if body:
            ctype = request.headers.get("content-type", "")
            if not _is_taxii(*_media(ctype), ranges=False):
                raise UnsupportedContentTypeError(f"send {TAXII_MEDIA_TYPE}, not {ctype!r}")
            raw = await request.body()
        who = await _requester(request, raw)
        if "root" in request.path_params:
            _root(request.path_params["root"])
        request.state.taxii_body = raw
        response = await handler(request, who)
    except Problem as e:
        return _error(e)
    if not who.local:
        # What a partner receives is signed, so it can keep it as provenance.
        node = get_node(request)
        local = node.local
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        sig = local.signing_key.sign(response_signing_bytes(
            request.method, target, bytes(response.body)))
        response.headers["X-Comity-Signature"] = f"{local.serial}:{b64e(sig)}"
    return response


def response_signing_bytes(method: str, target: str, body: bytes) -> bytes:
    """What a node signs over each TAXII answer to a partner (``X-Comity-Signature``)."""
    return (b"comity.taxii.response.v1\0" + method.encode() + b" " + target.encode() + b"\0"
            + hashlib.sha256(body).digest())


def _filters(request: Request, endpoint: str) -> tuple[Filters, int, str | None]:
    q = request.query_params
    allowed = _FILTERS[endpoint]
    match: dict[str, tuple[str, ...]] = {}
    for key in q:
        m = re.fullmatch(r"match\[([a-z_]+)\]", key)
        if m:
            if m.group(1) not in allowed:
                raise BadFilterError(f"match[{m.group(1)}] is not a filter of this endpoint")
            values = tuple(v.strip() for raw in q.getlist(key) for v in raw.split(",")
                           if v.strip())
            match[m.group(1)] = values
        elif key not in ("added_after", "limit", "next"):
            raise BadFilterError(f"unknown query parameter {key!r}")
    for v in match.get("version", ()):
        if v not in ("first", "last", "all"):
            parse_rfc3339(v)
    added_after = q.get("added_after")
    limit = _limit(request)
    f = Filters(added_after=parse_rfc3339(added_after) if added_after else None,
                ids=match.get("id", ()), types=match.get("type", ()),
                # Every version is listed by the versions endpoint; elsewhere the last.
                versions=("all",) if endpoint == "versions" else (
                    match.get("version", ("last",)) or ("last",)),
                spec_versions=match.get("spec_version", ()))
    return f, limit, q.get("next")


def _limit(request: Request) -> int:
    """The page size asked for (default 1000), at most MAX_PAGE."""
    try:
        limit = int(request.query_params.get("limit", "1000"))
    except ValueError:
        raise BadFilterError("limit must be a positive integer") from None
    if limit < 1:
        raise BadFilterError("limit must be a positive integer")
    return min(limit, MAX_PAGE)


def _root(root: str) -> None:
    if root != API_ROOT:
        from comity.sharing.errors import ObjectNotFoundError

        raise ObjectNotFoundError(f"no API root {root!r} here")


def _date_headers(page: Page) -> dict[str, str]:
    if page.first_added is None or page.last_added is None:
        return {}  # an empty page has no first or last (never a placeholder)
    return {"X-TAXII-Date-Added-First": taxii_ts(page.first_added),
            "X-TAXII-Date-Added-Last": taxii_ts(page.last_added)}


def _paged(page: Page, key: str, items: list[bytes]) -> bytes:
    parts = [b'{"more":', b"true" if page.more else b"false"]
    if page.next:
        parts += [b',"next":', orjson.dumps(page.next)]
    if items:
        parts += [b',"', key.encode(), b'":[', b",".join(items), b"]"]
    parts.append(b"}")
    return b"".join(parts)


# -- discovery and API root ---------------------------------------------------------------

@router.get("/", summary="TAXII discovery")
async def discovery(request: Request) -> Response:
    async def handle(_: Request, __: Requester) -> Response:
        node = get_node(request)
        base = node.local.card.url.rstrip("/")
        return _taxii({"title": f"Comity node {node.local.card.name}",
                       "description": "STIX 2.1 shared under agreements, TLP enforced",
                       "default": f"{base}/taxii2/{API_ROOT}/",
                       "api_roots": [f"{base}/taxii2/{API_ROOT}/"]})
    return await _serve(request, handle)


@router.get("/{root}/", summary="TAXII API root")
async def api_root(request: Request, root: str) -> Response:
    async def handle(_: Request, __: Requester) -> Response:
        node = get_node(request)
        return _taxii({"title": "Comity collections", "versions": [TAXII_MEDIA_TYPE],
                       "max_content_length": node.settings.taxii_max_content_length})
    return await _serve(request, handle)


@plain_route(router, "/{root}/status/{status_id}/", "TAXII status resource")
async def status(request: Request) -> Response:
    status_id: str = request.path_params["status_id"]

    async def handle(_: Request, who: Requester) -> Response:
        node = get_node(request)

        def work() -> dict[str, Any]:
            with read_scope(node.sessions) as session:
                return node.sharing.status(session, status_id, who)
        return _taxii(await run_in_threadpool(work))
    return await _serve(request, handle)


# -- collections --------------------------------------------------------------------------

def _collection_doc(c: dict[str, Any], can_read: bool, can_write: bool) -> dict[str, Any]:
    doc = {"id": c["id"], "title": c["title"], "alias": c["name"], "can_read": can_read,
           "can_write": can_write, "media_types": [STIX_MEDIA_TYPE]}
    if c["description"]:
        doc["description"] = c["description"]
    return doc


@router.get("/{root}/collections/", summary="TAXII collections")
async def collections(request: Request, root: str) -> Response:
    async def handle(_: Request, who: Requester) -> Response:
        node = get_node(request)

        def work() -> list[dict[str, Any]]:
            with read_scope(node.sessions) as session:
                return [_collection_doc(c, a.can_read, a.can_write)
                        for c, a in node.sharing.visible(session, who)]
        items = await run_in_threadpool(work)
        return _taxii({"collections": items} if items else {})
    return await _serve(request, handle)


@router.get("/{root}/collections/{cid}/", summary="TAXII collection")
async def collection(request: Request, root: str, cid: str) -> Response:
    async def handle(_: Request, who: Requester) -> Response:
        node = get_node(request)

        def work() -> dict[str, Any]:
            with read_scope(node.sessions) as session:
                acc = node.sharing.access(session, who, cid)
                c = next(c for c in node.sharing.collections(session) if c["id"] == cid)
                return _collection_doc(c, acc.can_read, acc.can_write)
        return _taxii(await run_in_threadpool(work))
    return await _serve(request, handle)


# -- objects ------------------------------------------------------------------------------

async def _objects_page(request: Request, who: Requester, cid: str, endpoint: str,
                        object_id: str | None = None) -> Response:
    node = get_node(request)
    filters, limit, nxt = _filters(request, endpoint)

    def work() -> Response:
        with read_scope(node.sessions) as session:
            acc = node.sharing.access(session, who, cid)
            cols: list[Any]
            if endpoint == "manifest":
                cols = [StixObject.object_id, StixObject.version, StixObject.date_added]
            elif endpoint == "versions":
                cols = [StixObject.version]
            else:
                cols = [StixObject.body]
            page = node.sharing.page(session, acc, who, filters, limit=limit,
                                     next_token=nxt, object_id=object_id, columns=cols)
        if object_id is not None and not page.rows and not page.more and not nxt:
            from comity.sharing.errors import ObjectNotFoundError

            raise ObjectNotFoundError(f"no object {object_id} here")
        if endpoint == "manifest":
            items = [orjson.dumps({"id": oid, "date_added": taxii_ts(added),
                                   "version": version, "media_type": STIX_MEDIA_TYPE})
                     for _, oid, version, added in page.rows]
            body = _paged(page, "objects", items)
        elif endpoint == "versions":
            body = _paged(page, "versions", [orjson.dumps(v) for _, v in page.rows])
        else:
            body = _paged(page, "objects", [b for _, b in page.rows])
        return _taxii(body, headers=_date_headers(page))
    return await run_in_threadpool(work)


@plain_route(router, "/{root}/collections/{cid}/objects/", "TAXII get objects")
async def get_objects(request: Request) -> Response:
    async def handle(_: Request, who: Requester) -> Response:
        return await _objects_page(request, who, request.path_params["cid"], "objects")
    return await _serve(request, handle)


@plain_route(router, "/{root}/collections/{cid}/manifest/", "TAXII manifest")
async def manifest(request: Request) -> Response:
    async def handle(_: Request, who: Requester) -> Response:
        return await _objects_page(request, who, request.path_params["cid"], "manifest")
    return await _serve(request, handle)


@router.get("/{root}/collections/{cid}/objects/{oid}/", summary="TAXII get an object")
async def get_object(request: Request, root: str, cid: str, oid: str) -> Response:
    async def handle(_: Request, who: Requester) -> Response:
        return await _objects_page(request, who, cid, "object", oid)
    return await _serve(request, handle)


@router.get("/{root}/collections/{cid}/objects/{oid}/versions/",
            summary="TAXII versions of an object")
async def versions(request: Request, root: str, cid: str, oid: str) -> Response:
    async def handle(_: Request, who: Requester) -> Response:
        return await _objects_page(request, who, cid, "versions", oid)
    return await _serve(request, handle)


@router.get("/{root}/collections/{cid}/changes/",
            summary="Comity extension: additions and deletions in order, for syncing partners")
async def changes(request: Request, root: str, cid: str) -> Response:
    async def handle(_: Request, who: Requester) -> Response:
        node = get_node(request)
        q = request.query_params
        for key in q:
            if key not in ("limit", "next"):
                raise BadFilterError(f"unknown query parameter {key!r}")
        limit = _limit(request)

        def work() -> Response:
            with read_scope(node.sessions) as session:
                acc = node.sharing.access(session, who, cid)
                page = node.sharing.changes(session, acc, who, limit=limit,
                                            next_token=q.get("next"))
            doc: dict[str, Any] = {"more": page.more, "cursor": page.extra["cursor"],
                                   "changes": [{"id": r.object_id, "version": r.version,
                                                "date_added": taxii_ts(r.date_added),
                                                "op": "delete" if r.kind == "delete"
                                                else "add"} for r in page.rows]}
            if page.next:
                doc["next"] = page.next
            return _taxii(doc, headers=_date_headers(page))
        return await run_in_threadpool(work)
    return await _serve(request, handle)


@plain_route(router, "/{root}/collections/{cid}/objects/", "TAXII add objects",
             methods=("POST",))
async def add_objects(request: Request) -> Response:
    cid: str = request.path_params["cid"]

    async def handle(req: Request, who: Requester) -> Response:
        node = get_node(request)
        raw: bytes = req.state.taxii_body

        def work() -> dict[str, Any]:
            try:
                doc = orjson.loads(raw)
                objects = check_envelope(doc, max_objects=node.settings.taxii_max_objects)
            except (orjson.JSONDecodeError, StixError) as e:
                raise _Unprocessable(f"not a TAXII envelope: {e}") from e
            return node.sharing.add_objects(cid, objects, who)
        return _taxii(await run_in_threadpool(work), 202)
    return await _serve(request, handle, body=True)


@router.delete("/{root}/collections/{cid}/objects/{oid}/", summary="TAXII delete an object")
async def delete_object(request: Request, root: str, cid: str, oid: str) -> Response:
    async def handle(_: Request, who: Requester) -> Response:
        node = get_node(request)
        _filters(request, "object")  # refuses unknown parameters
        versions = tuple(request.query_params.get("match[version]", "all").split(","))

        def work() -> None:
            node.sharing.delete_object(cid, oid, who, versions)
        await run_in_threadpool(work)
        return Response(status_code=200)
    return await _serve(request, handle)


class _Unprocessable(Problem):
    slug = "taxii-unprocessable"
    status = 422
    title = "Unprocessable content"

