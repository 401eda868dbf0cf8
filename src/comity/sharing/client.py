"""A TAXII 2.1 client that authenticates as this node (RFC 9421 signatures by its node key).

Used by ``comity sharing sync`` to read a partner's collections, and by tests
to act as a peer. Every request is signed over method, target URI, authority
and (for bodies) the content digest, with the signing time.

Trust assumptions: answers are untrusted; callers validate what they store.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from comity.clock import Clock
from comity.hazmat.httpsig import sign_request
from comity.identity.services import IdentityHolder
from comity.sharing.taxii import TAXII_MEDIA_TYPE

__all__ = ["TAXII_MEDIA_TYPE", "PeerTaxiiClient"]



class PeerTaxiiClient:
    """Signed TAXII requests from this node to a partner's server."""

    def __init__(self, identity: IdentityHolder, http: httpx.Client, clock: Clock) -> None:
        self.identity = identity
        self.http = http
        self.clock = clock

    def request(self, method: str, url: str, *, params: dict[str, Any] | None = None,
                body: Any = None, accept: str = TAXII_MEDIA_TYPE) -> httpx.Response:
        """Send one signed request; the query string is part of what is signed."""
        full = str(httpx.URL(url, params=params)) if params else url
        raw = None if body is None else orjson.dumps(body)
        headers = {"accept": accept}
        if raw is not None:
            headers["content-type"] = TAXII_MEDIA_TYPE
        local = self.identity.get()
        headers.update(sign_request(
            local.signing_key, key_id=local.node_id, method=method, url=full,
            headers=headers, body=raw, created=int(self.clock.now().timestamp())))
        return self.http.request(method, full, content=raw, headers=headers)

    def get(self, url: str, **params: Any) -> httpx.Response:
        return self.request("GET", url, params={k: v for k, v in params.items()
                                                if v is not None} or None)

    def post(self, url: str, body: Any) -> httpx.Response:
        return self.request("POST", url, body=body)
