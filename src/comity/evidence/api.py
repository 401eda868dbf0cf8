"""Evidence routes: the peer transfer endpoint (``/federation/evidence``) and ``/api/evidence``.

``PUT /federation/evidence/{package}/{index}`` receives one file's ciphertext
as a stream: it is hashed and written in chunks (never held whole), refused
past the size the signed manifest gives, and kept only if its SHA-256
matches. An interrupted upload resumes at the offset ``GET`` reports. The
transfer is authenticated by the peer's node key (see
:meth:`~comity.evidence.services.Evidence.authenticate`); bytes are accepted
only for packages a verified message announced.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from comity.evidence.errors import TamperedError
from comity.evidence.package import CipherSink, FileEntry, cipher_file_name, fsync_dir
from comity.evidence.services import PackageNotFoundError, PackageStateError
from comity.http import get_node, json_response, require_token
from comity.problems import Problem

__all__ = ["BusyError", "OffsetError", "PackageStateError", "api_router", "peer_router"]

peer_router = APIRouter(prefix="/federation/evidence", tags=["federation"])
api_router = APIRouter(prefix="/api", tags=["evidence"], dependencies=[Depends(require_token)])


class OffsetError(Problem):
    slug = "evidence-offset"
    status = 409
    title = "Upload does not continue where the receiver stands"


class BusyError(Problem):
    slug = "evidence-busy"
    status = 409
    title = "This file is already being uploaded"


@peer_router.get("/{package_id}", summary="How much of a package this node holds")
async def status(request: Request, package_id: str) -> Response:
    node = get_node(request)
    ev = node.evidence
    peer, _ = await run_in_threadpool(ev.authenticate, "GET", request.url.path, request.headers)
    pkg, manifest = await run_in_threadpool(ev.incoming, package_id, peer)
    files = [{"index": p.index, "received": p.received, "complete": p.complete}
             for p in ev.progress(pkg, manifest)]
    receipt = await run_in_threadpool(ev.complete_if_whole, pkg, manifest)
    return json_response({"status": pkg.status, "files": files, "receipt": receipt})


def _rehash(sink: CipherSink, part: Path, chunk: int) -> None:
    with open(part, "rb") as f:
        while block := f.read(chunk):
            sink.append(block)


def _write(sink: CipherSink, f: Any, data: bytes) -> None:
    sink.append(data)
    f.write(data)


def _seal_file(sink: CipherSink, f: Any, part: Path, final: Path) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()
    sink.finish()
    os.replace(part, final)
    fsync_dir(final.parent)


@peer_router.put("/{package_id}/{index}", summary="Upload one file's ciphertext (resumable)")
async def put_file(request: Request, package_id: str, index: int) -> Response:
    node = get_node(request)
    ev = node.evidence
    peer, offset = await run_in_threadpool(ev.authenticate, "PUT", request.url.path,
                                           request.headers)
    pkg, manifest = await run_in_threadpool(ev.incoming, package_id, peer)
    if not 0 <= index < len(manifest.files):
        raise PackageNotFoundError(f"package {package_id} has no file {index}")
    entry: FileEntry = manifest.files[index]
    d = ev.in_dir(package_id)
    final = d / cipher_file_name(index)
    part = final.with_name(final.name + ".part")
    if final.exists() or pkg.status != "announced":
        receipt = await run_in_threadpool(ev.complete_if_whole, pkg, manifest)
        return json_response({"index": index, "received": entry.cipher_size,
                              "complete": True, "receipt": receipt})
    locks: set[tuple[str, int]] = request.app.state.evidence_uploads
    if (package_id, index) in locks:
        raise BusyError(f"file {index} of package {package_id} is being received already")
    locks.add((package_id, index))
    try:
        d.mkdir(parents=True, exist_ok=True)
        current = part.stat().st_size if part.exists() else 0
        if offset != current:
            raise OffsetError(f"this node holds {current} bytes of file {index}; resume there",
                              received=current)
        sink = CipherSink(entry)
        chunk = node.settings.evidence_chunk_bytes
        if current:
            await run_in_threadpool(_rehash, sink, part, chunk)
        f = open(part, "ab")  # noqa: SIM115 - closed by _seal_file or below
        try:
            buf = bytearray()
            try:
                async for piece in request.stream():
                    buf += piece
                    if len(buf) >= chunk:
                        data, buf = bytes(buf), bytearray()
                        await run_in_threadpool(_write, sink, f, data)
                if buf:
                    await run_in_threadpool(_write, sink, f, bytes(buf))
            except ClientDisconnect:
                # Keep what arrived (flushed) for a resumed upload.
                f.flush()
                return Response(status_code=400)
            if sink.received < entry.cipher_size:
                f.flush()
                os.fsync(f.fileno())
                return json_response({"index": index, "received": sink.received,
                                      "complete": False, "receipt": None})
            await run_in_threadpool(_seal_file, sink, f, part, final)
        except TamperedError:
            # Bytes that do not match the signed manifest are never kept.
            f.close()
            part.unlink(missing_ok=True)
            raise
        finally:
            if not f.closed:
                f.close()
    finally:
        locks.discard((package_id, index))
    receipt = await run_in_threadpool(ev.complete_if_whole, pkg, manifest)
    return json_response({"index": index, "received": entry.cipher_size, "complete": True,
                          "receipt": receipt})


# -- the operator's API ---------------------------------------------------------

class VerifyBody(BaseModel):
    by: Annotated[str | None, Field(max_length=200)] = None


@api_router.get("/evidence/{package_id}", summary="A package: files, transfer, custody chain")
def show(request: Request, package_id: str) -> Response:
    return json_response(get_node(request).evidence.show(package_id))


@api_router.get("/requests/{request_id}/evidence", summary="The packages of a request")
def for_request(request: Request, request_id: str) -> Response:
    from comity.db import read_scope

    node = get_node(request)
    with read_scope(node.sessions) as session:
        node.requests.get_row(session, request_id)
        return json_response(node.evidence.for_request(session, request_id))


@api_router.post("/evidence/{package_id}/verify",
                 summary="Decrypt and check every byte of a received package")
def verify(request: Request, package_id: str, body: VerifyBody) -> Response:
    return json_response(get_node(request).evidence.verify(package_id, by=body.by))


@api_router.post("/evidence/packages", status_code=201,
                 summary="Package one uploaded file as evidence for a request's peer")
async def package_upload(
    request: Request,
    request_id: Annotated[str, Query(alias="request", min_length=36, max_length=36)],
    name: Annotated[str, Query(min_length=1, max_length=255)],
) -> Response:
    """The body is the file itself (streamed to a private temporary file, then
    encrypted for the peer and deleted); the answer is the signed manifest to
    put in the ``evidence`` of an ``execute`` or ``execute_partially`` act."""
    node = get_node(request)
    with node.evidence.staged(name) as path:
        with open(path, "wb") as f:
            async for piece in request.stream():
                await run_in_threadpool(f.write, piece)
        signed = await run_in_threadpool(node.evidence.prepare, node.sessions, request_id,
                                         [path])
    return json_response(signed.to_dict(), 201)

