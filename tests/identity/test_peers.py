"""Importing peers' cards into a node's database: first contact, rotation, forks."""

from __future__ import annotations

import copy

import pytest

from comity.db import session_scope
from comity.identity.errors import CardChainError, CardSignatureError, InvalidCardError
from comity.identity.services import import_cards, rotate_keys
from tests.support import LocalFederation


def _import(fed: LocalFederation, into: object, cards: object) -> tuple[int, int]:
    node = into.node  # type: ignore[attr-defined]
    with session_scope(node.sessions) as session:
        peer, added = import_cards(session, cards, local_node_id=node.local.node_id,
                                   clock=fed.clock)
        return peer.serial, added


def test_first_contact_then_rotation_by_chain(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    assert _import(fed, b, a.node.local.card.doc) == (1, 1)
    assert _import(fed, b, a.node.local.card.doc) == (1, 0)  # idempotent
    rotate_keys(a.node.settings.data_dir, clock=fed.clock)
    rotate_keys(a.node.settings.data_dir, clock=fed.clock)
    chain = [c.doc for c in a.node.local.chain]
    assert _import(fed, b, chain) == (3, 2)
    assert b.api("GET", f"/api/peers/{a.id}")["serial"] == 3


def test_first_contact_needs_the_chain_from_serial_one(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    rotate_keys(a.node.settings.data_dir, clock=fed.clock)
    with pytest.raises(CardChainError, match="--chain"):
        _import(fed, b, a.node.local.card.doc)
    assert b.api("GET", "/api/peers") == []


def test_fork_and_own_card_and_mixed_nodes_are_refused(fed: LocalFederation) -> None:
    a, b, c = fed.add("a"), fed.add("b"), fed.add("c")
    _import(fed, b, a.node.local.card.doc)
    forked = copy.deepcopy(a.node.local.card.doc)
    forked["name"] = "Impostor"
    with pytest.raises(CardChainError, match="fork"):
        _import(fed, b, forked)
    with pytest.raises(InvalidCardError, match="own card"):
        _import(fed, b, b.node.local.card.doc)
    with pytest.raises(InvalidCardError, match="several nodes"):
        _import(fed, b, [a.node.local.card.doc, c.node.local.card.doc])


def test_forged_card_over_the_api_stores_nothing(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    doc = copy.deepcopy(a.node.local.card.doc)
    doc["url"] = "http://attacker.test"
    resp = b.client.post("/api/peers", json=doc, headers={"authorization": f"Bearer {b.token}"})
    assert resp.status_code == 400
    assert resp.json()["type"] == "urn:comity:problem:card-signature"
    assert b.api("GET", "/api/peers") == []
    with pytest.raises(CardSignatureError):
        _import(fed, b, doc)
