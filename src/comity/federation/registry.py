"""Message types: what each federation message means and who may send it.

Every domain registers the message types it sends and receives. A type says
how to validate a body (returning the :class:`~comity.agreements.services.Purpose`
that is checked against the agreement's scope), whether it is a *control*
type, and what receiving it changes.

Control types are the only ones that may travel between peers that have
exchanged cards but have no agreement in force: proposing, signing,
withdrawing from, suspending and resuming agreements. Everything else must be
authorised by an agreement in force, in both directions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from comity.agreements.authorization import Purpose
from comity.federation.envelope import Message
from comity.federation.errors import UnknownMessageTypeError
from comity.identity.models import Peer
from comity.identity.services import LocalIdentity

__all__ = ["MessageType", "MessageTypes", "ReceiveContext", "SignatureCheck"]

SignatureCheck = Callable[[str, int, bytes, bytes], None]


@dataclass(frozen=True)
class ReceiveContext:
    """What a receive handler may use, inside the receive transaction."""

    session: Session
    message: Message
    local: LocalIdentity
    peer: Peer
    now: dt.datetime
    # verify(party, card_serial, signature, data): a party's signature under
    # the key of that party's card at that serial; raises BadSignatureError.
    verify_party: SignatureCheck


@dataclass(frozen=True)
class MessageType:
    """One kind of federation message."""

    name: str
    validate: Callable[[dict[str, Any]], Purpose]
    control: bool = False
    on_receive: Callable[[ReceiveContext], None] | None = None
    # Bodies travel sealed to the recipient (see comity.federation.sealing).
    sealed: bool = False


class MessageTypes:
    """The registry of message types a node speaks."""

    def __init__(self) -> None:
        self._types: dict[str, MessageType] = {}

    def register(self, mt: MessageType) -> None:
        """Add a type. Registering a name twice is a programming error."""
        if mt.name in self._types:
            raise ValueError(f"message type {mt.name!r} registered twice")
        self._types[mt.name] = mt

    def get(self, name: str) -> MessageType:
        """Raises: UnknownMessageTypeError for types this node does not speak."""
        try:
            return self._types[name]
        except KeyError:
            raise UnknownMessageTypeError(f"message type {name!r} is not accepted here") from None

    def names(self) -> list[str]:
        return sorted(self._types)
