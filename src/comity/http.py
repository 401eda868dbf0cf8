"""HTTP plumbing shared by every router: problem+json answers, auth, body limits.

Every :class:`~comity.problems.Problem` raised by a handler becomes an RFC 9457
``application/problem+json`` answer with its own status; anything else is a
500 whose details go to the log only. Request bodies are read with a hard cap
before anything parses them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from comity.auth.services import TokenCache, cache_for, check_token
from comity.db import read_scope
from comity.federation.errors import PayloadTooLargeError
from comity.node import Node
from comity.problems import PROBLEM_MEDIA_TYPE, Problem, problem_type

__all__ = [
    "BodyLimitMiddleware",
    "get_node",
    "install_error_handlers",
    "json_response",
    "plain_route",
    "problem_response",
    "require_token",
]

log = logging.getLogger(__name__)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def problem_response(doc: dict[str, Any], status: int) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type=PROBLEM_MEDIA_TYPE)


def get_node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


Endpoint = Callable[[Request], Awaitable[Response]]


def plain_route(router: APIRouter, path: str, summary: str, *,
                methods: Sequence[str] = ("GET",)) -> Callable[[Endpoint], Endpoint]:
    """Serve ``path`` (under the router's prefix) with the endpoint on a plain Starlette route.

    For the hottest endpoints. They take the request alone, so FastAPI's
    handling of a route (dependencies, parameter validation) has nothing to
    do, yet it measured a sixth of the server's time for an RDAP lookup. The
    FastAPI route added after the plain one is never reached (the plain one
    matches first): it only describes the endpoint in the OpenAPI document,
    with the first method alone (HEAD would repeat a GET's operation).
    """
    def register(endpoint: Endpoint) -> Endpoint:
        router.add_route(f"{router.prefix}{path}", endpoint, methods=list(methods),
                         include_in_schema=False)
        router.add_api_route(path, endpoint, methods=[methods[0]], summary=summary)
        return endpoint
    return register


async def require_token(request: Request) -> None:
    """FastAPI dependency: a valid ``Authorization: Bearer`` token.

    Async so that a token found in the cache costs no trip to the thread
    pool; only a cache miss reads the database (in the pool).

    Raises:
        InvalidTokenError: (401) otherwise.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    candidate = token.strip() if scheme.lower() == "bearer" else None
    await check_bearer(request, candidate)


async def check_bearer(request: Request, candidate: str | None) -> None:
    """Accept ``candidate`` if it is a valid, unexpired, unrevoked token of this node.

    Raises:
        InvalidTokenError
    """
    node = get_node(request)
    cache: TokenCache = request.app.state.tokens
    if cache.known(candidate):
        return

    def lookup() -> None:
        now = node.clock.now()
        with read_scope(node.sessions) as session:
            row = check_token(session, candidate, now)
            valid_for = cache_for(row, now, cache.ttl)
        cache.remember(candidate, valid_for)

    await run_in_threadpool(lookup)


def _page(request: Request, exc: Problem) -> Response | None:
    """The web UI's HTML answer for an error under ``/ui/`` (None elsewhere)."""
    hook = getattr(request.app.state, "problem_page", None)
    if hook is None or not request.url.path.startswith("/ui/"):
        return None
    page: Response = hook(request, exc)
    return page


class _Invalid(Problem):
    slug = "invalid-request"
    status = 422
    title = "Request is not valid"


class _HttpError(Problem):
    title = "Not found"


def install_error_handlers(app: Any) -> None:
    """Map every error to problem+json (to an HTML page under ``/ui/``)."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        page = _page(request, exc)
        if page is not None:
            return page
        return problem_response(exc.to_dict(), exc.status)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")}
                  for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(x) for x in first["loc"])
        page = _page(request, _Invalid(f"{where}: {first['msg']}"))
        if page is not None:
            return page
        return problem_response({
            "type": problem_type("invalid-request"), "title": "Request is not valid",
            "status": 422, "detail": f"{where}: {first['msg']}", "errors": errors}, 422)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        error = _HttpError(str(exc.detail))
        error.status = exc.status_code  # type: ignore[misc]
        error.title = str(exc.detail)  # type: ignore[misc]
        page = _page(request, error)
        if page is not None:
            return page
        return problem_response({"type": problem_type(slug), "title": str(exc.detail),
                                 "status": exc.status_code, "detail": str(exc.detail)},
                                exc.status_code)

    async def on_error(_: Request, exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc)
        return problem_response({"type": problem_type("internal-error"),
                                 "title": "Internal error", "status": 500,
                                 "detail": "the node could not process this request; "
                                           "see its log"}, 500)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_error)


class BodyLimitMiddleware:
    """Refuse request bodies over the limit of their path prefix (413).

    ``limits`` are (prefix, bytes) pairs; the first prefix that matches
    applies, so list the longer ones first. Checks the declared length
    before anything is read and counts streamed bytes as well, so a chunked
    upload cannot get past the limit either.
    """

    def __init__(self, app: Any, *, limits: list[tuple[str, int]]) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        limit = next((n for prefix, n in self.limits
                      if scope["type"] == "http" and scope["path"].startswith(prefix)), None)
        if limit is None:
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._refuse(send, limit)
                return
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLargeError(f"body exceeds the limit of {limit} bytes")
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, send: Any, limit: int) -> None:
        err = PayloadTooLargeError(f"body exceeds the limit of {limit} bytes")
        body = orjson.dumps(err.to_dict())
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
