"""Sealed message bodies: only the recipient reads them, and only what the sender signed."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from comity.db import read_scope, session_scope
from comity.federation.envelope import parse_message, seal_message
from comity.federation.errors import InvalidBodyError
from comity.federation.models import InboxMessage, OutboxMessage
from comity.federation.sealing import body_digest, open_body, seal_body
from comity.hazmat import canonical
from comity.hazmat.keys import EncryptionKey, b64e
from comity.hazmat.sealing import seal
from comity.identity.services import rotate_keys
from comity.ledger.commitments import new_salt
from tests.requests.support import PRESERVATION_FIELDS, preservation, send_request, two_authorities
from tests.support import LocalFederation, PeerNode


def _envelopes(node: PeerNode, table: Any) -> list[bytes]:
    with read_scope(node.node.sessions) as session:
        return list(session.scalars(select(table.envelope)))


def test_request_bodies_are_sealed_on_the_wire_and_at_rest(fed: LocalFederation) -> None:
    fr, ke, aid = two_authorities(fed)
    rid = send_request(fed, fr, ke, aid, preservation())
    secret = PRESERVATION_FIELDS["custodian_or_location"].encode()
    sent = [e for e in _envelopes(fr, OutboxMessage) if b'"request.submit"' in e]
    got = [e for e in _envelopes(ke, InboxMessage) if b'"request.submit"' in e]
    assert len(sent) == len(got) == 1
    for envelope in (sent[0], got[0]):
        assert secret not in envelope
        assert rid.encode() not in envelope
        assert set(orjson.loads(envelope)["body"]) == {"sealed", "key", "digest"}
    # The recipient's handler saw the opened body.
    shown = ke.api("GET", f"/api/requests/{rid}")
    assert shown["document"]["fields"]["custodian_or_location"] == secret.decode()


def _forged_submit(fed: LocalFederation, fr: PeerNode, ke: PeerNode, aid: str,
                   body: dict[str, Any]) -> str:
    """Queue a request.submit whose wire body is given as is (bypassing sealing)."""
    fed_ = fr.node.federation
    prepared = fed_.prepare(to=ke.id, type="request.submit", body=body_for(fr, ke, aid),
                            agreement_id=aid)
    msg = seal_message(fr.node.local.signing_key, prepared.message.header, body)
    with session_scope(fr.node.sessions) as session:
        fed_.enqueue(session, dataclasses.replace(prepared, message=msg))
    fed.pump()
    return msg.id


def body_for(fr: PeerNode, ke: PeerNode, aid: str) -> dict[str, Any]:
    draft = fr.api("POST", "/api/requests", json={"to": ke.id, "agreement": aid,
                                                  "request": preservation()})
    return dict(draft["document"])


@pytest.mark.parametrize("forgery", ["other-body", "wrong-key", "plaintext", "bad-shape"])
def test_a_sealed_body_that_is_not_what_was_signed_is_refused(fed: LocalFederation,
                                                              forgery: str) -> None:
    fr, ke, aid = two_authorities(fed)
    doc = body_for(fr, ke, aid)
    card_key = ke.node.local.encryption_key.public_raw
    if forgery == "other-body":
        # Opens fine, but its digest commits to another body than the one sealed.
        other = {**doc, "reference": "FORGED"}
        wire = seal_body(other, salt="A" * 43, recipient_public=card_key,
                         recipient_serial=ke.node.local.serial)
        expected = "not the one its sender signed"
    elif forgery == "wrong-key":
        wire = seal_body(doc, salt="A" * 43, recipient_public=EncryptionKey.generate()
                         .public_raw, recipient_serial=ke.node.local.serial)
        expected = "does not open"
    elif forgery == "plaintext":
        wire = doc
        expected = "exactly {sealed, key, digest}"
    else:
        wire = {"sealed": "", "key": 99, "digest": "00"}
        expected = "does not hold"
    mid = _forged_submit(fed, fr, ke, aid, wire)
    msg = fr.api("GET", f"/api/messages/{mid}")
    assert msg["status"] == "failed"
    assert expected in msg["last_error"]
    assert ke.api("GET", "/api/requests")["items"] == []


def test_bodies_sealed_to_a_rotated_key_still_open(fed: LocalFederation) -> None:
    fr, ke, aid = two_authorities(fed)
    # FR still holds KE's first card when it seals; KE rotates before delivery.
    rid = fr.api("POST", "/api/requests", json={"to": ke.id, "agreement": aid,
                                                "request": preservation()})["id"]
    for step in ("submit", "approve", "send"):
        fr.api("POST", f"/api/requests/{rid}/{step}", json={"by": step})
    rotate_keys(ke.node.settings.data_dir, clock=fed.clock)
    fed.pump()
    assert ke.api("GET", f"/api/requests/{rid}")["state"] == "sent"


def test_either_party_can_prove_the_body_to_a_third_party(fed: LocalFederation) -> None:
    fr, ke, aid = two_authorities(fed)
    rid = send_request(fed, fr, ke, aid, preservation())
    envelope = next(e for e in _envelopes(ke, InboxMessage) if b'"request.submit"' in e)
    message = parse_message(orjson.loads(envelope), max_bytes=1 << 20)
    # Revealed by the recipient: the body and the salt. Anyone can check them
    # against the signed digest, with the sender's public key only.
    body = ke.api("GET", f"/api/requests/{rid}")["document"]
    message.verify(fr.node.local.signing_key.public)
    assert body_digest(body, message.header["salt"]) == message.body["digest"]
    changed = {**body, "reference": "other"}
    assert body_digest(changed, message.header["salt"]) != message.body["digest"]


def test_open_body_refuses_non_canonical_plaintext() -> None:
    key = EncryptionKey.generate()
    salt = new_salt()
    raw = b'{"b": 1, "a": 2}'  # valid JSON, not canonical
    digest = body_digest({"a": 2, "b": 1}, salt)
    wire = {"sealed": b64e(seal(key.public_raw, raw)), "key": 1, "digest": digest}
    with pytest.raises(InvalidBodyError, match="canonical"):
        open_body(wire, salt=salt, key_for=lambda _serial: key)
    good = seal_body({"a": 2, "b": 1}, salt=salt, recipient_public=key.public_raw,
                     recipient_serial=1)
    assert open_body(good, salt=salt, key_for=lambda _serial: key) == {"a": 2, "b": 1}
    assert canonical.dumps({"a": 2, "b": 1}) == b'{"a":2,"b":1}'
