"""Entry proofs: a log entry, its checkpoint, witnesses and receipt, checked offline."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from comity.clock import FixedClock, format_ts
from comity.federation.envelope import new_message_id, seal_receipt
from comity.hazmat import canonical, merkle
from comity.hazmat.keys import SigningKey, b64d, b64e
from comity.hazmat.note import (
    Checkpoint,
    CosignatureSigner,
    NoteSigner,
    add_signature_lines,
    sign_note,
)
from comity.hazmat.tlogproof import TlogProof, parse_tlog_proof
from comity.identity.schemas import NodeCard, NodeKind, node_id_for, sign_card
from comity.identity.services import LocalIdentity, init_node, rotate_keys
from comity.ledger.commitments import Opening, message_opening, new_salt
from comity.ledger.keys import witness_name
from comity.ledger.proofs import (
    ProofBundleError,
    VerifiedEntry,
    build_entry_proof,
    verify_entry_proof,
)

WHEN = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
TS1, TS2 = 1_740_830_400, 1_740_830_401
RECEIVED_AT, SENT_AT, ELSEWHERE_AT, SIZE = 5, 6, 7, 11


class Levels:
    """An in-memory tree over some leaf hashes."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.levels = merkle.subtree_levels(leaves, max(1, len(leaves).bit_length()))

    def read_nodes(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
        return [self.levels[level][n] for level, n in nodes]


def _node(tmp_path: Path, name: str, port: int) -> LocalIdentity:
    return init_node(tmp_path / name, name=name, kind=NodeKind.CERT, jurisdiction="FR",
                     url=f"http://127.0.0.1:{port}", languages=["en"], clock=FixedClock(WHEN))


@dataclass
class World:
    """A log node, two witnesses, a sender, and a log holding a received message."""

    tmp_path: Path
    log: LocalIdentity
    w1: LocalIdentity
    w2: LocalIdentity
    sender: LocalIdentity
    message_id: str
    message_hash: str
    received: Opening
    sent: Opening
    elsewhere: Opening
    reader: Levels

    @property
    def root(self) -> bytes:
        return merkle.tree_hash(SIZE, self.reader)

    def origin(self, log: LocalIdentity | None = None) -> str:
        return str((log or self.log).card.doc["log_origin"])

    def checkpoint(self, *, log: LocalIdentity | None = None, signer: SigningKey | None = None,
                   cosigners: Sequence[tuple[LocalIdentity, int]] | None = None) -> bytes:
        """The tree's checkpoint, signed by ``signer`` (the log key) and cosigned."""
        log = log or self.log
        text = Checkpoint(self.origin(log), SIZE, self.root).to_text()
        key = (signer or log.signing_key).to_cryptography()
        note = sign_note(text, [NoteSigner(self.origin(log), key)])
        if cosigners is None:
            cosigners = [(self.w1, TS1), (self.w2, TS2)]
        lines = [CosignatureSigner(witness_name(w.card), w.signing_key.to_cryptography())
                 .cosign(text, ts) for w, ts in cosigners]
        return add_signature_lines(note, lines)

    def receipt(self, *, key: SigningKey | None = None, log_index: int = RECEIVED_AT,
                serial: int | None = None, log: LocalIdentity | None = None) -> dict[str, Any]:
        log = log or self.log
        return seal_receipt(
            key or log.signing_key, receiver=log.node_id, sender=self.sender.node_id,
            serial=log.serial if serial is None else serial, received=WHEN,
            entries=[
                {"id": new_message_id(), "hash": secrets.token_hex(32), "seq": 2, "log": 3},
                {"id": self.message_id, "hash": self.message_hash, "seq": 3, "log": log_index},
            ])

    def proof(self, *, opening: Opening | None = None, index: int = RECEIVED_AT,
              checkpoint: bytes | None = None, log_chain: Sequence[NodeCard] | None = None,
              witness_chains: Sequence[Sequence[NodeCard]] | None = None,
              receipt: dict[str, Any] | None = None, message_id: str | None = None) -> bytes:
        return build_entry_proof(
            opening=opening or self.received,
            index=index,
            proof=merkle.inclusion_proof(index, SIZE, self.reader),
            checkpoint=self.checkpoint() if checkpoint is None else checkpoint,
            log_chain=self.log.chain if log_chain is None else log_chain,
            witness_chains=([self.w1.chain, self.w2.chain] if witness_chains is None
                            else witness_chains),
            receipt=receipt, message_id=message_id,
        )

    def receipt_proof(self, **kwargs: Any) -> bytes:
        kwargs.setdefault("receipt", self.receipt())
        kwargs.setdefault("message_id", self.message_id)
        return self.proof(**kwargs)


@pytest.fixture
def world(tmp_path: Path) -> World:
    log = _node(tmp_path, "log-node", 8001)
    w1, w2 = _node(tmp_path, "witness-1", 8002), _node(tmp_path, "witness-2", 8003)
    sender = _node(tmp_path, "sender", 8004)
    message_hash, salt = secrets.token_hex(32), new_salt()
    received = message_opening("RECEIVED", message_hash=message_hash, sender=sender.node_id,
                               recipient=log.node_id, salt=salt)
    sent = message_opening("SENT", message_hash=message_hash, sender=sender.node_id,
                           recipient=log.node_id, salt=salt)
    elsewhere = message_opening("RECEIVED", message_hash=message_hash, sender=sender.node_id,
                                recipient=w1.node_id, salt=salt)
    entries = [secrets.token_bytes(32) for _ in range(SIZE)]
    entries[RECEIVED_AT] = received.commitment()
    entries[SENT_AT] = sent.commitment()
    entries[ELSEWHERE_AT] = elsewhere.commitment()
    reader = Levels([merkle.leaf_hash(e) for e in entries])
    return World(tmp_path, log, w1, w2, sender, new_message_id(), message_hash, received,
                 sent, elsewhere, reader)


def retouch(data: bytes, *, extra: Callable[[dict[str, Any]], None] | None = None,
            index: int | None = None, proof: Sequence[bytes] | None = None) -> bytes:
    """Re-encode a proof with its extra data, index or hashes changed."""
    tlog = parse_tlog_proof(data)
    raw = tlog.extra
    if extra is not None:
        assert raw is not None
        bundle = json.loads(raw)
        extra(bundle)
        raw = canonical.dumps(bundle)
    return TlogProof(tlog.index if index is None else index,
                     tlog.proof if proof is None else tuple(proof), tlog.checkpoint,
                     raw).to_bytes()


def rejected(data: bytes, match: str, **kwargs: Any) -> ProofBundleError:
    with pytest.raises(ProofBundleError, match=match) as info:
        verify_entry_proof(data, **kwargs)
    return info.value


# -- what a good proof proves -------------------------------------------------

def test_an_entry_proof_verifies_and_reports_every_fact(world: World) -> None:
    data = world.proof()
    assert data.startswith(b"c2sp.org/tlog-proof@v1\nextra ")
    entry = verify_entry_proof(data, min_cosignatures=2)
    assert entry == VerifiedEntry(
        log_node=world.log.node_id,
        log_name="log-node",
        origin="127.0.0.1:8001/log",
        index=RECEIVED_AT,
        tree_size=SIZE,
        root=world.root.hex(),
        opening=world.received,
        cosigned_by={world.w1.node_id: TS1, world.w2.node_id: TS2},
    )
    assert (entry.message_id, entry.message_hash, entry.sender, entry.received) == (
        None, None, None, None)
    doc = entry.to_dict()
    assert json.loads(json.dumps(doc)) == {
        "log_node": world.log.node_id, "log_name": "log-node",
        "origin": "127.0.0.1:8001/log", "index": RECEIVED_AT, "tree_size": SIZE,
        "root": world.root.hex(), "opening": world.received.to_dict(),
        "cosigned_by": {world.w1.node_id: TS1, world.w2.node_id: TS2},
        "message_id": None, "message_hash": None, "sender": None, "received": None,
    }


def test_the_extra_data_is_exactly_the_canonical_bundle(world: World) -> None:
    extra = parse_tlog_proof(world.proof()).extra
    assert extra is not None
    assert extra == canonical.dumps({
        "type": "comity.entry-proof", "v": 1, "opening": world.received.to_dict(),
        "log_cards": [c.doc for c in world.log.chain],
        "witness_cards": [[c.doc for c in world.w1.chain], [c.doc for c in world.w2.chain]],
        "receipt": None, "message_id": None,
    })


def test_a_receipt_proof_verifies_and_names_the_message(world: World) -> None:
    receipt = world.receipt()
    entry = verify_entry_proof(world.receipt_proof(receipt=receipt), require_receipt=True)
    assert entry == VerifiedEntry(
        log_node=world.log.node_id,
        log_name="log-node",
        origin="127.0.0.1:8001/log",
        index=RECEIVED_AT,
        tree_size=SIZE,
        root=world.root.hex(),
        opening=world.received,
        cosigned_by={world.w1.node_id: TS1, world.w2.node_id: TS2},
        message_id=world.message_id,
        message_hash=world.message_hash,
        sender=world.sender.node_id,
        received=format_ts(WHEN),
    )
    assert entry.received == receipt["received"]
    doc = entry.to_dict()
    assert (doc["message_id"], doc["message_hash"], doc["sender"], doc["received"]) == (
        world.message_id, world.message_hash, world.sender.node_id, format_ts(WHEN))


def test_only_the_listed_witnesses_count_and_a_proof_may_need_none(world: World) -> None:
    data = world.proof(witness_chains=[world.w2.chain])
    assert verify_entry_proof(data).cosigned_by == {world.w2.node_id: TS2}
    alone = world.proof(checkpoint=world.checkpoint(cosigners=[]), witness_chains=[])
    assert verify_entry_proof(alone, min_cosignatures=0).cosigned_by == {}
    rejected(alone, "0 valid cosignatures, fewer than the 1 required")


def test_a_proof_still_verifies_after_the_log_node_rotated_its_key(world: World) -> None:
    old_checkpoint = world.checkpoint()
    old_receipt = world.receipt()
    rotated = rotate_keys(world.tmp_path / "log-node", clock=FixedClock(WHEN))
    assert rotated.serial == 2
    assert rotated.signing_key.public != world.log.card.signing_key
    # Checkpoint and receipt were signed under card 1; the chain proves card 2.
    data = world.receipt_proof(checkpoint=old_checkpoint, receipt=old_receipt,
                               log_chain=rotated.chain)
    entry = verify_entry_proof(data, min_cosignatures=2, require_receipt=True)
    assert entry.log_node == world.log.node_id == rotated.node_id
    assert (entry.index, entry.message_id, entry.sender) == (
        RECEIVED_AT, world.message_id, world.sender.node_id)
    # A checkpoint and a receipt under the new key verify with the same chain.
    new = world.receipt_proof(checkpoint=world.checkpoint(log=rotated),
                              receipt=world.receipt(log=rotated), log_chain=rotated.chain)
    assert verify_entry_proof(new, require_receipt=True).root == world.root.hex()
    # Without card 2, the new key is nobody's.
    rejected(world.proof(checkpoint=world.checkpoint(log=rotated), log_chain=world.log.chain),
             "not signed by the log key of any card")
    rejected(world.receipt_proof(receipt=world.receipt(log=rotated),
                                 log_chain=world.log.chain),
             "card serial 2, which log_cards does not hold")


# -- the opening ----------------------------------------------------------------

def test_a_flipped_byte_in_the_salt_is_rejected(world: World) -> None:
    def flip(bundle: dict[str, Any]) -> None:
        salt = bytearray(b64d(bundle["opening"]["salt"]))
        salt[7] ^= 1
        bundle["opening"]["salt"] = b64e(bytes(salt))

    rejected(retouch(world.proof(), extra=flip), "inclusion proof does not verify")


def test_an_opening_of_another_kind_does_not_match_the_receipt(world: World) -> None:
    # The SENT entry is in the log: only the receipt makes it the wrong one.
    assert verify_entry_proof(world.proof(opening=world.sent, index=SENT_AT)).index == SENT_AT
    data = world.receipt_proof(opening=world.sent, index=SENT_AT,
                               receipt=world.receipt(log_index=SENT_AT))
    rejected(data, "RECEIVED entry, but the opening is of kind SENT")


def test_an_opening_of_another_act_does_not_match_the_receipt(world: World) -> None:
    data = world.receipt_proof(opening=world.elsewhere, index=ELSEWHERE_AT,
                               receipt=world.receipt(log_index=ELSEWHERE_AT))
    rejected(data, "opening does not match the receipt")


def test_a_malformed_opening_is_rejected(world: World) -> None:
    def drop_salt(bundle: dict[str, Any]) -> None:
        del bundle["opening"]["salt"]

    rejected(retouch(world.proof(), extra=drop_salt), "^opening: ")


# -- the receipt ------------------------------------------------------------------

def test_a_receipt_naming_another_log_index_is_rejected(world: World) -> None:
    data = world.receipt_proof(receipt=world.receipt(log_index=RECEIVED_AT + 1))
    rejected(data, f"names log index {RECEIVED_AT + 1}, the proof is for index {RECEIVED_AT}")


def test_a_receipt_signed_by_another_key_is_rejected(world: World) -> None:
    data = world.receipt_proof(receipt=world.receipt(key=world.w1.signing_key))
    rejected(data, "receipt signature does not verify under the key of log card serial 1")


def test_a_receipt_changed_after_signing_is_rejected(world: World) -> None:
    receipt = world.receipt()
    receipt["received"] = format_ts(WHEN + dt.timedelta(days=1))
    rejected(world.receipt_proof(receipt=receipt), "receipt signature does not verify")


def test_a_receipt_for_another_message_is_rejected(world: World) -> None:
    rejected(world.receipt_proof(message_id=new_message_id()),
             "receipt does not name this entry: receipt does not acknowledge message")
    # The receipt's other message has another hash than the opening's.
    receipt = world.receipt()
    other = receipt["entries"][0]["id"]
    rejected(world.receipt_proof(receipt=receipt, message_id=other),
             f"acknowledges message {other} with another hash")


def test_a_receipt_under_an_unknown_card_serial_is_rejected(world: World) -> None:
    rejected(world.receipt_proof(receipt=world.receipt(serial=2)),
             "card serial 2, which log_cards does not hold")


def test_a_receipt_from_another_node_is_rejected(world: World) -> None:
    receipt = seal_receipt(world.w1.signing_key, receiver=world.w1.node_id,
                           sender=world.sender.node_id, serial=1, received=WHEN,
                           entries=[{"id": world.message_id, "hash": world.message_hash,
                                     "seq": 1, "log": RECEIVED_AT}])
    rejected(world.receipt_proof(receipt=receipt), "receipt is not from the log's node")


def test_a_receipt_is_required_when_asked_for_and_comes_with_its_message_id(
        world: World) -> None:
    rejected(world.proof(), "carries no receipt", require_receipt=True)

    def drop_id(bundle: dict[str, Any]) -> None:
        bundle["message_id"] = None

    def drop_receipt(bundle: dict[str, Any]) -> None:
        bundle["receipt"] = None

    rejected(retouch(world.receipt_proof(), extra=drop_id), "needs message_id as a string")
    rejected(retouch(world.receipt_proof(), extra=drop_receipt), "message_id .* without a receipt")
    with pytest.raises(ProofBundleError, match="go together"):
        world.proof(receipt=world.receipt())


# -- card chains ---------------------------------------------------------------------

def _forged_card(doc: dict[str, Any], key: SigningKey, previous: SigningKey | None,
                 **changes: Any) -> dict[str, Any]:
    body = {k: v for k, v in doc.items() if k not in ("sig", "rotation_sig")}
    body["keys"] = {**body["keys"], "signing": key.public.b64()}
    body.update(changes)
    return sign_card(body, key=key, previous_key=previous)


def test_a_forged_first_card_is_rejected(world: World) -> None:
    # Someone else's key under the log's node id: the id is not derived from it.
    forger = SigningKey.generate()
    assert node_id_for(forger.public) != world.log.node_id
    forged = _forged_card(world.log.card.doc, forger, None)
    err = rejected(world.proof(log_chain=[NodeCard(forged)]),
                   "log card chain does not verify: node_id is not derived")
    assert err.__cause__ is not None


def test_a_chain_starting_with_another_nodes_card_is_rejected(world: World) -> None:
    rotated = rotate_keys(world.tmp_path / "log-node", clock=FixedClock(WHEN))
    chain = [world.w1.card, rotated.card]
    rejected(world.proof(log_chain=chain), "log card chain does not verify: .*another node")
    rejected(world.proof(log_chain=[rotated.card]), "must start at serial 1")


def test_a_broken_rotation_is_rejected(world: World) -> None:
    rotated = rotate_keys(world.tmp_path / "log-node", clock=FixedClock(WHEN))
    forger = SigningKey.generate()
    forged = _forged_card(rotated.card.doc, forger, forger)
    checkpoint = world.checkpoint(signer=forger)
    rejected(world.proof(log_chain=[world.log.card, NodeCard(forged)], checkpoint=checkpoint),
             "log card chain does not verify: rotation is not signed by the previous key")


def test_a_broken_witness_chain_is_rejected(world: World) -> None:
    def tamper(bundle: dict[str, Any]) -> None:
        bundle["witness_cards"][1][0]["name"] = "someone else"

    rejected(retouch(world.proof(), extra=tamper),
             "witness 2 card chain does not verify: card is not signed")


# -- checkpoint and witnesses ----------------------------------------------------------

def test_a_checkpoint_signed_by_a_non_log_key_is_rejected(world: World) -> None:
    data = world.proof(checkpoint=world.checkpoint(signer=world.w1.signing_key))
    rejected(data, "checkpoint signature: the checkpoint is not signed by the log key")


def test_too_few_cosignatures_are_rejected(world: World) -> None:
    one = world.checkpoint(cosigners=[(world.w1, TS1)])
    assert verify_entry_proof(world.proof(checkpoint=one)).cosigned_by == {
        world.w1.node_id: TS1}
    rejected(world.proof(checkpoint=one), "1 valid cosignatures, fewer than the 2 required",
             min_cosignatures=2)
    # Cosignatures by witnesses the proof does not list do not count.
    rejected(world.proof(witness_chains=[world.w1.chain]), "fewer than the 2 required",
             min_cosignatures=2)


def test_the_log_cosigning_as_its_own_witness_is_rejected(world: World) -> None:
    checkpoint = world.checkpoint(cosigners=[(world.w1, TS1), (world.log, TS2)])
    data = world.proof(checkpoint=checkpoint, witness_chains=[world.w1.chain, world.log.chain])
    rejected(data, f"witness 2 is the log's own node {world.log.node_id}", min_cosignatures=2)


def test_the_same_witness_twice_is_rejected(world: World) -> None:
    data = world.proof(witness_chains=[world.w1.chain, world.w1.chain])
    rejected(data, "witnesses 1 and 2 are the same node")


def test_a_bad_cosignature_by_a_listed_witness_is_rejected(world: World) -> None:
    other = Checkpoint(world.origin(), SIZE + 1, world.root).to_text()
    bad = CosignatureSigner(witness_name(world.w1.card), world.w1.signing_key.to_cryptography())
    checkpoint = add_signature_lines(world.checkpoint(cosigners=[]), [bad.cosign(other, TS1)])
    rejected(world.proof(checkpoint=checkpoint), "checkpoint: .*cosignature by .* does not verify")


# -- the tlog proof itself ------------------------------------------------------------------

def test_a_wrong_index_is_rejected(world: World) -> None:
    rejected(retouch(world.proof(), index=RECEIVED_AT - 1), "inclusion proof does not verify")
    rejected(retouch(world.receipt_proof(), index=SIZE), "inclusion proof does not verify")


def test_a_flipped_proof_hash_is_rejected(world: World) -> None:
    hashes = list(parse_tlog_proof(world.proof()).proof)
    hashes[1] = bytes([hashes[1][0] ^ 0x80]) + hashes[1][1:]
    rejected(retouch(world.proof(), proof=hashes), "inclusion proof does not verify")


def test_a_proof_without_extra_data_is_rejected(world: World) -> None:
    tlog = parse_tlog_proof(world.proof())
    bare = TlogProof(tlog.index, tlog.proof, tlog.checkpoint).to_bytes()
    rejected(bare, "no extra data")


def test_extra_data_with_unknown_or_missing_members_is_rejected(world: World) -> None:
    def add(bundle: dict[str, Any]) -> None:
        bundle["comment"] = "trust me"

    def drop(bundle: dict[str, Any]) -> None:
        del bundle["witness_cards"]

    rejected(retouch(world.proof(), extra=add), r"unknown: \['comment'\]")
    rejected(retouch(world.proof(), extra=drop), r"missing: \['witness_cards'\]")


@pytest.mark.parametrize(("member", "value", "match"), [
    ("type", "comity.other", "not 'comity.entry-proof'"),
    ("v", 2, "unsupported entry proof version 2"),
    ("v", True, "unsupported entry proof version True"),
    ("log_cards", {}, "log_cards must be a list"),
    ("witness_cards", [{}], "witness_cards must be a list of card lists"),
])
def test_extra_data_of_the_wrong_shape_is_rejected(world: World, member: str, value: object,
                                                   match: str) -> None:
    def change(bundle: dict[str, Any]) -> None:
        bundle[member] = value

    rejected(retouch(world.proof(), extra=change), match)


def test_extra_data_that_is_not_canonical_json_is_rejected(world: World) -> None:
    tlog = parse_tlog_proof(world.proof())
    assert tlog.extra is not None
    loose = json.dumps(json.loads(tlog.extra), indent=1).encode()
    data = replace(tlog, extra=loose).to_bytes()
    rejected(data, "extra data is not canonical JSON")
    rejected(replace(tlog, extra=b"[]").to_bytes(), "not a JSON object")


def test_bytes_that_are_not_a_tlog_proof_are_rejected(world: World) -> None:
    rejected(b"hello\n\nworld\n", "not a valid tlog proof")
    rejected(world.proof()[:-2], "not a valid tlog proof")


def test_a_negative_quorum_is_a_caller_bug(world: World) -> None:
    with pytest.raises(ValueError, match="must not be negative") as info:
        verify_entry_proof(world.proof(), min_cosignatures=-1)
    assert not isinstance(info.value, ProofBundleError)
