"""Signed messages, deliveries and receipts: the federation's wire formats.

A **message** is ``{"header": {...}, "body": {...}, "sig": "..."}``. The
signature is Ed25519 by the sender over the RFC 8785 encoding of
``{"header", "body"}``; the SHA-256 of those same bytes is the message hash,
which receipts and (later) the ledger refer to. Re-signing a message after a
key rotation therefore leaves its hash unchanged.

A **delivery** carries a batch of messages from one sender to one recipient
on one HTTP request. Its signature covers the sender, recipient, send time,
the sender's card serial and the list of message hashes, so the freshness of
a delivery is proven without re-signing stored messages, and a captured
delivery replayed later is stale.

A **receipt** is signed by the receiver and lists, for each message it
stored, the message id, hash, the receiver's inbox sequence number and the
index of the RECEIVED entry in the receiver's log. The header's ``salt``
(32 random bytes) hides both parties' log entries for the message (see
``comity.ledger.commitments``).

Only verified objects come out of the ``open_*``/``verify_*`` functions; the
``Unverified*`` types exist only between parsing and verification.

Example::

    sealed = seal_message(key, header, body)
    msg = parse_message(sealed.envelope, max_bytes=1 << 20)
    msg.verify(key.public)          # raises BadSignatureError
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson

from comity.clock import format_ts, parse_ts
from comity.federation.errors import (
    BadSignatureError,
    FutureTimestampError,
    MalformedMessageError,
    PayloadTooLargeError,
    StaleTimestampError,
)
from comity.hazmat import canonical
from comity.hazmat.keys import (
    BadSignature,
    KeyFormatError,
    SigningKey,
    VerifyKey,
    b64d,
    b64e,
)

__all__ = [
    "DELIVERY_TYPE",
    "RECEIPT_TYPE",
    "Message",
    "check_freshness",
    "new_message_id",
    "parse_delivery",
    "parse_message",
    "parse_receipt",
    "receipt_serial",
    "resign",
    "seal_delivery",
    "seal_delivery_of",
    "seal_message",
    "seal_receipt",
]

DELIVERY_TYPE = "comity.delivery"
RECEIPT_TYPE = "comity.receipt"
_UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_NODE = re.compile(r"\A[0-9a-f]{32}\Z")
_TYPE = re.compile(r"\A[a-z][a-z0-9.-]{0,63}\Z")
_HASH = re.compile(r"\A[0-9a-f]{64}\Z")
_HEADER_KEYS = frozenset({"v", "id", "from", "to", "agreement", "type", "created",
                          "in_reply_to", "salt"})


def new_message_id() -> str:
    """A fresh random message id (UUID version 4)."""
    return str(uuid.uuid4())


def _bad(message: str) -> MalformedMessageError:
    return MalformedMessageError(message)


def _is_uuid(v: object) -> bool:
    return isinstance(v, str) and bool(_UUID.match(v))


def _is_count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63


def _is_node(v: object) -> bool:
    return isinstance(v, str) and bool(_NODE.match(v))


@dataclass(frozen=True, slots=True)
class Message:
    """A message whose structure is checked; ``verify`` checks its signature."""

    header: dict[str, Any]
    body: dict[str, Any]
    sig: bytes
    signed_bytes: bytes
    hash: str

    @property
    def id(self) -> str:
        return str(self.header["id"])

    @property
    def sender(self) -> str:
        return str(self.header["from"])

    @property
    def recipient(self) -> str:
        return str(self.header["to"])

    @property
    def type(self) -> str:
        return str(self.header["type"])

    @property
    def agreement(self) -> str | None:
        a = self.header["agreement"]
        return None if a is None else str(a)

    @property
    def created(self) -> dt.datetime:
        return parse_ts(self.header["created"])

    def envelope_bytes(self) -> bytes:
        """The canonical encoding of :meth:`envelope`, without re-encoding.

        Canonical key order is body < header < sig, so the envelope is the
        signed bytes with the signature member appended.
        """
        return b"".join((self.signed_bytes[:-1], b',"sig":"', b64e(self.sig).encode(), b'"}'))

    def verify(self, key: VerifyKey) -> None:
        """Raises: BadSignatureError if the sender's key did not sign this."""
        try:
            key.verify(self.sig, self.signed_bytes)
        except BadSignature as e:
            raise BadSignatureError(f"message {self.id}: signature does not verify") from e

    def envelope(self) -> dict[str, Any]:
        return {"header": self.header, "body": self.body, "sig": b64e(self.sig)}


def seal_message(key: SigningKey, header: dict[str, Any], body: dict[str, Any]) -> Message:
    """Sign a message. ``header`` must hold exactly the header fields."""
    if set(header) != _HEADER_KEYS:
        raise ValueError(f"header fields must be {sorted(_HEADER_KEYS)}")
    signed = canonical.dumps({"header": header, "body": body})
    return Message(header, body, key.sign(signed), signed, canonical.sha256_hex(signed))


def resign(key: SigningKey, message: Message) -> Message:
    """The same message (same hash) signed with another key."""
    return Message(message.header, message.body, key.sign(message.signed_bytes),
                   message.signed_bytes, message.hash)


def parse_message(unverified: object, *, max_bytes: int) -> Message:
    """Check a message's structure and compute its signed bytes and hash.

    Raises:
        MalformedMessageError: on a missing, extra or malformed member.
        PayloadTooLargeError: if the signed part exceeds ``max_bytes``.
    """
    if not isinstance(unverified, dict) or set(unverified) != {"header", "body", "sig"}:
        raise _bad("a message is an object with exactly header, body and sig")
    header, body, sig = unverified["header"], unverified["body"], unverified["sig"]
    if not isinstance(header, dict) or set(header) != _HEADER_KEYS:
        raise _bad(f"header must have exactly the fields {sorted(_HEADER_KEYS)}")
    if not isinstance(body, dict):
        raise _bad("body must be an object")
    if type(header["v"]) is not int or header["v"] != 1:
        raise _bad(f"unsupported message version {header['v']!r}")
    if not _is_uuid(header["id"]):
        raise _bad("header.id must be a lowercase UUID")
    if not (_is_node(header["from"]) and _is_node(header["to"])):
        raise _bad("header.from and header.to must be node ids")
    if not (isinstance(header["type"], str) and _TYPE.match(header["type"])):
        raise _bad("header.type is not a message type name")
    for name in ("agreement", "in_reply_to"):
        if header[name] is not None and not _is_uuid(header[name]):
            raise _bad(f"header.{name} must be a UUID or null")
    try:
        parse_ts(header["created"])
        b64d(header["salt"], length=32)
        raw_sig = b64d(sig, length=64)
        signed = canonical.dumps({"header": header, "body": body})
    except (ValueError, KeyFormatError, canonical.CanonicalJSONError) as e:
        raise _bad(f"message {header['id']}: {e}") from e
    if len(signed) > max_bytes:
        raise PayloadTooLargeError(
            f"message {header['id']} is {len(signed)} bytes; the limit is {max_bytes}")
    return Message(header, body, raw_sig, signed, canonical.sha256_hex(signed))


def check_freshness(when: dt.datetime, now: dt.datetime, *, max_age: float, skew: float,
                    what: str) -> None:
    """Refuse timestamps older than ``max_age`` or ahead of ``now`` by > ``skew``.

    Raises:
        StaleTimestampError, FutureTimestampError
    """
    age = (now - when).total_seconds()
    if age > max_age:
        raise StaleTimestampError(f"{what} is {age:.0f} s old; at most {max_age:.0f} s allowed")
    if -age > skew:
        raise FutureTimestampError(f"{what} is {-age:.0f} s in the future; "
                                   f"at most {skew:.0f} s of clock skew allowed")


# -- deliveries ----------------------------------------------------------------

def _delivery_signed(sender: str, recipient: str, sent: str, serial: int,
                     hashes: list[str]) -> bytes:
    return canonical.dumps({"type": DELIVERY_TYPE, "v": 1, "from": sender, "to": recipient,
                            "sent": sent, "serial": serial, "hashes": hashes})


def seal_delivery(key: SigningKey, *, sender: str, recipient: str, serial: int,
                  sent: dt.datetime, hashes: list[str], envelopes: list[bytes]) -> bytes:
    """Build and sign a delivery; returns the request body.

    ``envelopes`` are messages' canonical encodings (as stored in the outbox)
    and ``hashes`` their message hashes, in the same order; they are embedded
    as they are, without decoding.
    """
    if len(hashes) != len(envelopes):
        raise ValueError("one hash per envelope")
    ts = format_ts(sent)
    signed = _delivery_signed(sender, recipient, ts, serial, hashes)
    return orjson.dumps({
        "type": DELIVERY_TYPE, "v": 1, "from": sender, "to": recipient, "sent": ts,
        "serial": serial, "messages": [orjson.Fragment(e) for e in envelopes],
        "sig": b64e(key.sign(signed)),
    })


def seal_delivery_of(key: SigningKey, *, sender: str, recipient: str, serial: int,
                     sent: dt.datetime, messages: list[Message]) -> bytes:
    """:func:`seal_delivery` for :class:`Message` objects."""
    return seal_delivery(key, sender=sender, recipient=recipient, serial=serial, sent=sent,
                         hashes=[m.hash for m in messages],
                         envelopes=[m.envelope_bytes() for m in messages])


@dataclass(frozen=True)
class UnverifiedDelivery:
    sender: str
    recipient: str
    sent: dt.datetime
    serial: int
    raw_messages: list[Any]
    sig: bytes
    sent_text: str

    def open(self, key: VerifyKey, *, max_message_bytes: int) -> list[Message | Exception]:
        """Verify the delivery signature; parse each message.

        Returns one entry per message, in order: a structurally valid
        :class:`Message` (signature *not yet* checked) or the exception that
        rejected it.

        Raises:
            BadSignatureError: if the delivery itself is not signed by ``key``.
            MalformedMessageError: if a message cannot even be hashed.
        """
        parsed: list[Message | Exception] = []
        hashes: list[str] = []
        for raw in self.raw_messages:
            try:
                m = parse_message(raw, max_bytes=max_message_bytes)
                parsed.append(m)
                hashes.append(m.hash)
            except (MalformedMessageError, PayloadTooLargeError) as e:
                # Name the message when it can be named, so the sender can
                # settle that one message and go on with the rest.
                header = raw.get("header") if isinstance(raw, dict) else None
                if isinstance(header, dict) and _is_uuid(header.get("id")):
                    e.extra.setdefault("message_id", header["id"])
                parsed.append(e)
                try:
                    hashes.append(canonical.sha256_hex(canonical.dumps(
                        {"header": raw["header"], "body": raw["body"]})))
                except Exception as inner:
                    raise _bad("a message in the delivery cannot be hashed") from inner
        signed = _delivery_signed(self.sender, self.recipient, self.sent_text, self.serial,
                                  hashes)
        try:
            key.verify(self.sig, signed)
        except BadSignature as e:
            raise BadSignatureError("delivery is not signed by the sender's current key") from e
        return parsed


def parse_delivery(unverified: object, *, max_messages: int) -> UnverifiedDelivery:
    """Check a delivery's outer structure.

    Raises:
        MalformedMessageError: on any structural problem.
    """
    keys = {"type", "v", "from", "to", "sent", "serial", "messages", "sig"}
    if not isinstance(unverified, dict) or set(unverified) != keys:
        raise _bad(f"a delivery is an object with exactly the fields {sorted(keys)}")
    d = unverified
    if d["type"] != DELIVERY_TYPE or type(d["v"]) is not int or d["v"] != 1:
        raise _bad("not a version 1 comity.delivery")
    if not (_is_node(d["from"]) and _is_node(d["to"])):
        raise _bad("from and to must be node ids")
    if not (isinstance(d["serial"], int) and not isinstance(d["serial"], bool)
            and d["serial"] >= 1):
        raise _bad("serial must be a positive integer")
    msgs = d["messages"]
    if not isinstance(msgs, list) or not 1 <= len(msgs) <= max_messages:
        raise _bad(f"messages must be a list of 1 to {max_messages} messages")
    try:
        sent = parse_ts(d["sent"])
        sig = b64d(d["sig"], length=64)
    except (ValueError, KeyFormatError) as e:
        raise _bad(str(e)) from e
    return UnverifiedDelivery(d["from"], d["to"], sent, d["serial"], msgs, sig, d["sent"])


# -- receipts -------------------------------------------------------------------

def seal_receipt(key: SigningKey, *, receiver: str, sender: str, serial: int,
                 received: dt.datetime, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Sign a receipt for ``entries`` (``{"id", "hash", "seq", "log"}`` each)."""
    doc: dict[str, Any] = {"type": RECEIPT_TYPE, "v": 1, "from": receiver, "to": sender,
                           "serial": serial, "received": format_ts(received),
                           "entries": entries}
    doc["sig"] = b64e(key.sign(canonical.dumps(doc)))
    return doc


@dataclass(frozen=True)
class Receipt:
    """A verified receipt."""

    doc: dict[str, Any]

    @property
    def serial(self) -> int:
        return int(self.doc["serial"])

    def entry_for(self, message_id: str, message_hash: str) -> dict[str, Any]:
        """The entry acknowledging exactly this message.

        Raises:
            MalformedMessageError: if the receipt does not cover it.
        """
        e = self._by_id.get(message_id)
        if e is None:
            raise _bad(f"receipt does not acknowledge message {message_id}")
        if e["hash"] != message_hash:
            raise _bad(f"receipt acknowledges message {message_id} with another hash")
        return dict(e)

    @cached_property
    def _by_id(self) -> dict[str, dict[str, Any]]:
        return {e["id"]: e for e in self.doc["entries"]}


def receipt_serial(unverified: object) -> int:
    """The card serial an unverified receipt claims it was signed under (0 if none)."""
    if isinstance(unverified, dict) and isinstance(unverified.get("serial"), int):
        return int(unverified["serial"])
    return 0


def parse_receipt(unverified: object, key: VerifyKey, *, receiver: str,
                  sender: str) -> Receipt:
    """Verify a receipt signed by ``receiver`` for messages from ``sender``.

    Raises:
        MalformedMessageError: wrong structure or parties.
        BadSignatureError: the receiver's key did not sign it.
    """
    keys = {"type", "v", "from", "to", "serial", "received", "entries", "sig"}
    if not isinstance(unverified, dict) or set(unverified) != keys:
        raise _bad("a receipt has exactly the fields " + ", ".join(sorted(keys)))
    r = unverified
    if (r["type"] != RECEIPT_TYPE or type(r["v"]) is not int or r["v"] != 1
            or r["from"] != receiver or r["to"] != sender):
        raise _bad("receipt is not from the recipient to us")
    entries = r["entries"]
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and set(e) == {"id", "hash", "seq", "log"} and _is_uuid(e["id"])
            and isinstance(e["hash"], str) and _HASH.match(e["hash"])
            and _is_count(e["seq"]) and _is_count(e["log"]) for e in entries):
        raise _bad("receipt entries must be {id, hash, seq, log} objects")
    try:
        parse_ts(r["received"])
        sig = b64d(r["sig"], length=64)
        key.verify(sig, canonical.dumps({k: v for k, v in r.items() if k != "sig"}))
    except (ValueError, KeyFormatError) as e:
        raise _bad(f"receipt: {e}") from e
    except BadSignature as e:
        raise BadSignatureError("receipt is not signed by the recipient") from e
    return Receipt(dict(r))
