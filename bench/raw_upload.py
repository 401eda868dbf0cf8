"""The raw baseline for ``bench.evidence``: an endpoint that streams a PUT body to a file.

No authentication, no hashing, no database: the body is written to disk in
the chunks the server receives and fsynced at the end, which is the least
any receiver of evidence must do. Run: ``python -m bench.raw_upload DIR PORT``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def make_app(root: Path) -> Starlette:
    async def put(request: Request) -> JSONResponse:
        target = root / request.path_params["name"]
        size = 0
        with open(target, "wb") as f:
            buf = bytearray()
            async for piece in request.stream():
                buf += piece
                if len(buf) >= 1 << 20:
                    await run_in_threadpool(f.write, bytes(buf))
                    size += len(buf)
                    buf = bytearray()
            if buf:
                await run_in_threadpool(f.write, bytes(buf))
                size += len(buf)
            await run_in_threadpool(os.fsync, f.fileno())
        return JSONResponse({"received": size})

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/upload/{name}", put, methods=["PUT"]),
                             Route("/healthz", health)])


if __name__ == "__main__":
    uvicorn.run(make_app(Path(sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]),
                log_level="warning")
