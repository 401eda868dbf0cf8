"""Node cards: self-certifying first cards, rotation chains, and what is refused."""

from __future__ import annotations

import copy
import datetime as dt
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from comity.clock import FixedClock
from comity.identity.errors import (
    CardChainError,
    CardSignatureError,
    IdentityError,
    InvalidCardError,
)
from comity.identity.schemas import NodeCard, NodeKind, node_id_for, sign_card
from comity.identity.services import LocalIdentity, encryption_key_for, init_node, rotate_keys

CLOCK = FixedClock(dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC))


def make(tmp_path: Path, name: str = "fr") -> LocalIdentity:
    return init_node(tmp_path / name, name="Ministère de la Justice",
                     kind=NodeKind.CENTRAL_AUTHORITY, jurisdiction="fr",
                     url="http://127.0.0.1:8701", languages=["fr", "en"], clock=CLOCK)


def test_init_creates_private_keys_and_a_self_certifying_card(tmp_path: Path) -> None:
    local = make(tmp_path)
    card = local.card
    card.verify_self()
    assert card.node_id == node_id_for(local.signing_key.public)
    assert card.jurisdiction == "FR"
    assert card.kind is NodeKind.CENTRAL_AUTHORITY
    key_dir = tmp_path / "fr" / "identity" / "000001"
    assert stat.S_IMODE(os.stat(key_dir).st_mode) == 0o700
    for name in ("signing.key", "encryption.key"):
        assert stat.S_IMODE(os.stat(key_dir / name).st_mode) == 0o600
    with pytest.raises(IdentityError, match="already"):
        make(tmp_path)


def test_missing_identity_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="comity node init"):
        LocalIdentity.load(tmp_path / "nothing")


@pytest.mark.parametrize("field", ["name", "url", "jurisdiction", "kind", "node_id", "issued",
                                   "languages", "log_origin"])
def test_tampering_with_any_field_breaks_the_card(tmp_path: Path, field: str) -> None:
    doc = copy.deepcopy(make(tmp_path).card.doc)
    replacements: dict[str, Any] = {
        "name": "Someone else", "url": "http://10.9.9.9", "jurisdiction": "US",
        "kind": "cert", "node_id": "0" * 32, "issued": "2020-01-01T00:00:00.000000Z",
        "languages": ["de"], "log_origin": "evil/log"}
    doc[field] = replacements[field]
    card = NodeCard.parse_unverified(doc)
    with pytest.raises((CardSignatureError, InvalidCardError)):
        card.verify_self()


def test_swapped_signing_key_is_refused(tmp_path: Path) -> None:
    a, b = make(tmp_path, "a"), make(tmp_path, "b")
    doc = copy.deepcopy(a.card.doc)
    doc["keys"] = b.card.doc["keys"]
    with pytest.raises(CardSignatureError):
        NodeCard.parse_unverified(doc).verify_self()
    # Re-signed by the other key, the node id no longer matches the key.
    body = {k: v for k, v in doc.items() if k != "sig"}
    resigned = NodeCard.parse_unverified(sign_card(body, key=b.signing_key))
    with pytest.raises(InvalidCardError, match="node_id"):
        resigned.verify_self()


@pytest.mark.parametrize(("change", "message"), [
    ({"type": "other"}, "type"), ({"v": 2}, "version"), ({"serial": 0}, "serial"),
    ({"jurisdiction": "France"}, "ISO 3166"), ({"kind": "spy-agency"}, "kind"),
    ({"url": "ftp://x"}, "http"), ({"languages": "fr"}, "languages"),
    ({"sig": "short"}, "encoding"), ({"issued": "yesterday"}, "timestamp"),
])
def test_malformed_cards_are_refused_with_a_reason(tmp_path: Path, change: dict[str, Any],
                                                   message: str) -> None:
    doc = {**make(tmp_path).card.doc, **change}
    with pytest.raises(InvalidCardError, match=message):
        NodeCard.parse_unverified(doc)


def test_rotation_deletes_old_signing_keys_and_keeps_decryption_keys(tmp_path: Path) -> None:
    first = make(tmp_path)
    second = rotate_keys(tmp_path / "fr", clock=CLOCK)
    third = rotate_keys(tmp_path / "fr", clock=CLOCK)
    assert [c.serial for c in third.chain] == [1, 2, 3]
    assert third.node_id == first.node_id
    assert third.signing_key.public != first.signing_key.public
    first.card.verify_successor(second.card)
    second.card.verify_successor(third.card)
    for serial, local in ((1, first), (2, second)):
        key_dir = tmp_path / "fr" / "identity" / f"{serial:06d}"
        assert not (key_dir / "signing.key").exists()
        # What was sealed to an earlier card must stay readable.
        kept = encryption_key_for(tmp_path / "fr", serial)
        assert kept.public_raw == local.encryption_key.public_raw
        assert stat.S_IMODE(os.stat(key_dir / "encryption.key").st_mode) == 0o600
    with pytest.raises(FileNotFoundError):
        encryption_key_for(tmp_path / "fr", 4)
    # Skipping a card, or following the wrong card, is refused.
    with pytest.raises(CardChainError):
        first.card.verify_successor(third.card)
    other = make(tmp_path, "other")
    with pytest.raises(CardChainError):
        other.card.verify_successor(second.card)


def test_rotation_signed_by_a_stranger_is_refused(tmp_path: Path) -> None:
    first = make(tmp_path)
    second = rotate_keys(tmp_path / "fr", clock=CLOCK)
    thief = make(tmp_path, "thief")
    body = {k: v for k, v in second.card.doc.items() if k not in ("sig", "rotation_sig")}
    forged = NodeCard.parse_unverified(
        sign_card(body, key=second.signing_key, previous_key=thief.signing_key))
    with pytest.raises(CardSignatureError, match="previous key"):
        first.card.verify_successor(forged)
