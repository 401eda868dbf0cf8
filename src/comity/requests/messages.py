"""The request messages: ``request.submit`` (the request itself) and ``request.event`` (every act).

Both need an agreement in force that covers the request's type, offence,
data categories and language (checked by the federation with the
:class:`~comity.agreements.authorization.Purpose` returned here). What
receiving them changes is done by :class:`~comity.requests.services.Requests`,
which the node attaches to :class:`RequestHandlers` once it exists (the
message types are registered before the services that handle them). Both
travel sealed to the recipient (:mod:`comity.federation.sealing`): requests
carry personal data and the facts of investigations.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from comity.agreements.authorization import Purpose
from comity.federation.errors import InvalidBodyError
from comity.federation.registry import MessageType, MessageTypes, ReceiveContext
from comity.requests.catalog import Catalog
from comity.requests.errors import RequestError
from comity.requests.lifecycle import EVENTS
from comity.requests.schemas import parse_request

if TYPE_CHECKING:
    from comity.requests.services import Requests

__all__ = ["RequestHandlers", "register"]


class RequestHandlers:
    """Late binding between the message types and the requests service."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.service: Requests | None = None

    def _svc(self) -> Requests:
        if self.service is None:  # pragma: no cover - wiring error
            raise RuntimeError("requests service not attached")
        return self.service

    def validate_submit(self, body: dict[str, Any]) -> Purpose:
        try:
            doc = parse_request(body, self.catalog, strict_form=True)
        except RequestError as e:
            raise InvalidBodyError(f"request: {e.detail}") from e
        return Purpose(request_type=doc.type, offence_category=doc.offence,
                       data_categories=doc.data_categories, language=doc.language)

    @staticmethod
    def validate_event(body: dict[str, Any]) -> Purpose:
        if set(body) != {"request", "event", "data", "n", "seen"}:
            raise InvalidBodyError("body must be {request, event, data, n, seen}")
        for name, low in (("n", 1), ("seen", 0)):
            v = body[name]
            if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= 100_000:
                raise InvalidBodyError(f"{name} must be an event count from {low}")
        try:
            if str(uuid.UUID(body["request"])) != body["request"]:
                raise ValueError
        except (ValueError, TypeError, AttributeError):
            raise InvalidBodyError("request must be a request id") from None
        if body["event"] not in EVENTS:
            raise InvalidBodyError(f"unknown request event {body['event']!r}")
        if not isinstance(body["data"], dict):
            raise InvalidBodyError("data must be an object")
        return Purpose()

    def on_submit(self, ctx: ReceiveContext) -> None:
        self._svc().on_submit(ctx)

    def on_event(self, ctx: ReceiveContext) -> None:
        self._svc().on_event(ctx)


def register(types: MessageTypes, handlers: RequestHandlers) -> None:
    """Register the request message types."""
    types.register(MessageType("request.submit", handlers.validate_submit,
                               on_receive=handlers.on_submit, sealed=True))
    types.register(MessageType("request.event", handlers.validate_event,
                               on_receive=handlers.on_event, sealed=True))
