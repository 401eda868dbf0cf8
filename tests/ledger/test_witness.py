"""Witnessing (C2SP tlog-witness): cosigning partners' logs, and catching forks and rollbacks."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from comity.db import read_scope, session_scope
from comity.hazmat import merkle
from comity.hazmat.keys import SigningKey
from comity.hazmat.note import Checkpoint, NoteSigner, cosignatures, open_note, sign_note
from comity.identity.errors import InvalidCardError
from comity.identity.schemas import NodeKind
from comity.identity.services import get_peer, import_cards, init_node, peer_card
from comity.ledger.keys import log_verifier, witness_verifier
from comity.ledger.models import LedgerAlarm, PeerCheckpoint, WitnessedLog, WitnessProgress
from comity.ledger.witness import encode_add_checkpoint
from tests.federation.test_delivery import send
from tests.support import LocalFederation, PeerNode


def pair(fed: LocalFederation) -> tuple[PeerNode, PeerNode, str]:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    return a, b, aid


def forge(node: PeerNode, size: int, root: bytes, key: SigningKey | None = None) -> bytes:
    """A checkpoint of ``node``'s log signed with its key (or another): a lying log."""
    signer = NoteSigner(node.node.ledger.origin,
                        (key or node.node.local.signing_key).to_cryptography())
    return sign_note(Checkpoint(node.node.ledger.origin, size, root).to_text(), [signer])


def post(witness: PeerNode, body: bytes) -> Any:
    return witness.client.post("/log/add-checkpoint", content=body,
                               headers={"content-type": "text/plain"})


def held(witness: PeerNode, log: PeerNode) -> WitnessedLog:
    with read_scope(witness.node.sessions) as s:
        row = s.get(WitnessedLog, log.id)
        assert row is not None
        return row


def alarms(node: PeerNode) -> list[dict[str, Any]]:
    return list(node.api("GET", "/api/ledger/alarms", expect=200))


def test_partners_cosign_each_others_checkpoints_and_follow_them_forward(
        fed: LocalFederation) -> None:
    a, b, aid = pair(fed)
    assert fed.witness() == {"a": {b.id: "cosigned"}, "b": {a.id: "cosigned"}}
    first = a.node.ledger.head()
    # The served checkpoint carries b's cosignature, valid under b's card.
    note = a.client.get("/log/checkpoint").content
    assert open_note(note, [log_verifier(a.node.local.card)]).text.endswith(
        base64.b64encode(first.root).decode() + "\n")
    with read_scope(a.node.sessions) as s:
        b_card = peer_card(get_peer(s, b.id))
    assert list(cosignatures(note, [witness_verifier(b_card)])) == [witness_verifier(b_card).name]
    assert held(b, a).size == first.size
    # More entries: the next checkpoint moves forward with a consistency proof.
    send(a, b, aid, 5)
    fed.pump()
    assert fed.witness()["a"] == {b.id: "cosigned"}
    second = a.node.ledger.head()
    assert second.size > first.size
    assert held(b, a).size == second.size
    with read_scope(b.node.sessions) as s:
        seen = sorted(r.size for r in s.scalars(select(PeerCheckpoint).where(
            PeerCheckpoint.peer_id == a.id)))
    assert seen == [first.size, second.size]
    assert fed.witness()["a"] == {b.id: "cosigned"}  # nothing new: nothing sent
    status = a.api("GET", "/api/ledger", expect=200)
    assert status["cosigned_by"] == {b.id: second.size}
    assert status["alarms"] == 0
    assert alarms(a) == alarms(b) == []


def test_a_witness_that_lost_track_answers_409_and_the_log_catches_up(
        fed: LocalFederation) -> None:
    a, b, aid = pair(fed)
    fed.witness()
    send(a, b, aid, 3)
    fed.pump()
    # The log forgot what b cosigned: it sends old 0, learns the size, retries.
    with session_scope(a.node.sessions) as s:
        s.execute(delete(WitnessProgress))
    assert fed.witness()["a"] == {b.id: "cosigned"}
    assert held(b, a).size == a.node.ledger.head().size
    # The raw protocol: old 0 against a held size answers that size.
    resp = post(b, encode_add_checkpoint(0, [], a.node.ledger.head().checkpoint))
    assert resp.status_code == 409
    assert resp.headers["content-type"].startswith("text/x.tlog.size")
    assert resp.text == f"{held(b, a).size}\n"


def test_a_forked_checkpoint_is_refused_kept_as_evidence_and_raised(
        fed: LocalFederation) -> None:
    a, b, _ = pair(fed)
    fed.witness()
    cosigned = held(b, a)
    fake = forge(a, cosigned.size, b"\x42" * 32)
    resp = post(b, encode_add_checkpoint(cosigned.size, [], fake))
    assert resp.status_code == 422
    assert resp.json()["type"].endswith("inconsistent-checkpoint")
    [alarm] = alarms(b)
    assert alarm["kind"] == "fork"
    assert alarm["peer"] == a.id
    # Both signed checkpoints are kept verbatim: anyone with a's key can check them.
    assert alarm["evidence"]["held"] == cosigned.checkpoint
    assert alarm["evidence"]["presented"] == fake.decode()
    for note in (alarm["evidence"]["held"], alarm["evidence"]["presented"]):
        open_note(note.encode(), [log_verifier(a.node.local.card)])
    assert held(b, a).root == cosigned.root  # the witness did not move
    post(b, encode_add_checkpoint(cosigned.size, [], fake))
    assert len(alarms(b)) == 1  # the same evidence is not raised twice


def test_a_rolled_back_log_is_caught_by_its_witness(fed: LocalFederation) -> None:
    a, b, aid = pair(fed)
    fed.witness()
    first = held(b, a)
    send(a, b, aid, 4)
    fed.pump()
    fed.witness()
    assert held(b, a).size > first.size
    # a lost its newest entries and rewrote history from an older size: its
    # new checkpoint at a size b cosigned before has another root.
    rewritten = forge(a, first.size, b"\x33" * 32)
    resp = post(b, encode_add_checkpoint(0, [], rewritten))
    assert resp.status_code == 422
    [alarm] = alarms(b)
    assert alarm["kind"] == "fork"
    assert alarm["evidence"]["held"] == first.checkpoint


def test_a_replayed_old_checkpoint_is_stale_not_evidence(fed: LocalFederation) -> None:
    a, b, aid = pair(fed)
    fed.witness()
    old = held(b, a)
    send(a, b, aid, 2)
    fed.pump()
    fed.witness()
    # Anyone can replay a's genuine older checkpoint: a 409, no alarm.
    resp = post(b, encode_add_checkpoint(0, [], old.checkpoint.encode()))
    assert resp.status_code == 409
    assert resp.text == f"{held(b, a).size}\n"
    assert alarms(b) == []


def test_a_log_behind_its_witness_is_told_so_without_an_alarm(fed: LocalFederation) -> None:
    a, b, aid = pair(fed)
    send(a, b, aid, 3)
    fed.pump()
    fed.witness()
    # a's database is restored from an old backup: b has cosigned more than a has.
    with session_scope(a.node.sessions) as s:
        s.execute(update(WitnessProgress).values(size=held(b, a).size + 100))
    assert fed.witness()["a"] == {b.id: "witness-ahead"}
    assert alarms(a) == []  # an unsigned claim of the witness is not evidence


def test_a_checkpoint_that_is_not_an_extension_is_caught(fed: LocalFederation) -> None:
    a, b, aid = pair(fed)
    fed.witness()
    cosigned = held(b, a)
    send(a, b, aid, 3)
    fed.pump()
    # A proof made for the true tree does not fit the fake root.
    with read_scope(a.node.sessions) as s:
        while a.node.ledger.integrate():
            pass
        size = a.node.ledger.head().size
        proof = merkle.consistency_proof(cosigned.size, size, a.node.ledger.reader(s))
    fake = forge(a, size, b"\x17" * 32)
    resp = post(b, encode_add_checkpoint(cosigned.size, proof, fake))
    assert resp.status_code == 422
    # The proof lines are the requester's: a failing one is no evidence
    # against the log, so it raises no alarm (anyone could send one).
    assert resp.json()["type"].endswith("bad-consistency-proof")
    assert alarms(b) == []
    assert held(b, a).size == cosigned.size


@pytest.mark.parametrize("case", ["unknown-origin", "wrong-key", "malformed", "old-too-big",
                                  "proof-from-zero", "bad-base64", "empty-root"])
def test_bad_requests_get_their_own_status_and_change_nothing(fed: LocalFederation,
                                                              case: str) -> None:
    a, b, _ = pair(fed)
    fed.witness()
    before = held(b, a)
    head = a.node.ledger.head()
    expected = {"unknown-origin": (404, "unknown-log"),
                "wrong-key": (403, "bad-checkpoint-signature"),
                "malformed": (400, "bad-add-checkpoint"),
                "old-too-big": (400, "bad-add-checkpoint"),
                "proof-from-zero": (422, "bad-consistency-proof"),
                "bad-base64": (400, "bad-add-checkpoint"),
                "empty-root": (422, "inconsistent-checkpoint")}[case]
    if case == "unknown-origin":
        stranger = fed.add("stranger")
        body = encode_add_checkpoint(0, [], stranger.node.ledger.head().checkpoint)
    elif case == "wrong-key":
        body = encode_add_checkpoint(head.size, [], forge(a, head.size, head.root,
                                                          key=SigningKey.generate()))
    elif case == "malformed":
        body = b"old 1\nno blank line"
    elif case == "old-too-big":
        body = encode_add_checkpoint(head.size + 1, [], head.checkpoint)
    elif case == "proof-from-zero":
        with session_scope(b.node.sessions) as s:
            s.execute(delete(WitnessedLog))
        body = encode_add_checkpoint(0, [b"\x00" * 32], head.checkpoint)
    elif case == "bad-base64":
        body = b"old 0\n!!!!\n\n" + head.checkpoint
    else:
        body = encode_add_checkpoint(0, [], forge(a, 0, b"\x01" * 32))
    resp = post(b, body)
    assert (resp.status_code, resp.json()["type"].rsplit(":", 1)[-1]) == expected
    with read_scope(b.node.sessions) as s:
        assert s.scalars(select(LedgerAlarm)).all() == []
    if case != "proof-from-zero":
        assert held(b, a).checkpoint == before.checkpoint


def test_a_second_node_cannot_claim_a_partners_log_origin(
        fed: LocalFederation, tmp_path: Path) -> None:
    a, b, aid = pair(fed)
    # An impostor's card claims a's URL, hence a's log origin: b refuses it,
    # so no second key can move b's view of a's log.
    impostor = init_node(tmp_path / "impostor", name="Impostor", kind=NodeKind.CERT,
                         jurisdiction="FR", url="http://a.test", languages=["en"],
                         clock=fed.clock)
    with pytest.raises(InvalidCardError, match="already the origin"), \
            session_scope(b.node.sessions) as s:
        import_cards(s, [c.doc for c in impostor.chain], local_node_id=b.id, clock=fed.clock)
    send(a, b, aid, 2)
    fed.pump()
    assert fed.witness()["a"] == {b.id: "cosigned"}
    assert held(b, a).size == a.node.ledger.head().size


def test_lines_added_by_the_requester_are_not_kept(fed: LocalFederation) -> None:
    a, b, _ = pair(fed)
    fed.witness()
    head = a.node.ledger.head()
    forged_line = "\u2014 b.test/witness " + base64.b64encode(b"\x00" * 76).decode() + "\n"
    with session_scope(b.node.sessions) as s:
        s.execute(delete(WitnessedLog))
    resp = post(b, encode_add_checkpoint(0, [], head.checkpoint + forged_line.encode()))
    assert resp.status_code == 200
    assert held(b, a).checkpoint == head.checkpoint.decode()
