"""`verify_log`: the whole log recomputed from its entry bundles, every stored byte checked."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from comity.db import read_scope, session_scope
from comity.hazmat.note import NoteError, open_note
from comity.identity.services import rotate_keys
from comity.ledger.keys import log_verifier
from comity.ledger.models import LogCheckpoint, LogCosignature, LogOpening, LogState
from comity.ledger.storage import decode_bundle
from comity.ledger.verify import CHUNK_BUNDLES, VerifyReport, verify_log
from tests.federation.test_delivery import send
from tests.support import LocalFederation, PeerNode

# 258 full level-0 tiles and one of 113 (odd: its last hash has no parent
# inside the tile), level-1 tiles 1/0 (full) and 1/1 (2 wide), level-2 tile 2/0 (1 wide).
SIZE = 258 * 256 + 113
TILES = 259 + 2 + 1


@dataclass
class Log:
    fed: LocalFederation
    a: PeerNode
    b: PeerNode

    @property
    def size(self) -> int:
        return self.a.node.ledger.head().size


def build(fed: LocalFederation) -> Log:
    """Two partners, messages, cosignatures, and a log of SIZE entries in several batches."""
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    send(a, b, aid, 5)
    fed.pump()
    fed.witness()
    with session_scope(a.node.sessions) as s:
        state = s.get(LogState, 1)
        assert state is not None
        bulk = SIZE - state.next_index
        assert 65_000 < bulk < SIZE
        a.node.ledger.assign_many(s, [i.to_bytes(4, "big") for i in range(bulk)])
    batches = 0
    while a.node.ledger.integrate():  # 10,000 at a time: one checkpoint each
        batches += 1
    assert batches >= 6
    fed.witness()
    log = Log(fed, a, b)
    assert log.size == SIZE
    return log


def verify(log: Log, **kw: Any) -> VerifyReport:
    return verify_log(log.a.node, **kw)


# -- damage, with raw SQL -----------------------------------------------------

def flip_byte(s: Session, table: str, column: str, where: str, params: dict[str, Any],
              at: int) -> None:
    value = s.execute(text(f"SELECT {column} FROM {table} WHERE {where}"), params).scalar_one()
    data = bytearray(bytes(value))
    data[at] ^= 0x01
    s.execute(text(f"UPDATE {table} SET {column} = :v WHERE {where}"),
              {**params, "v": bytes(data)})


def set_value(s: Session, table: str, column: str, where: str, params: dict[str, Any],
              value: Any) -> None:
    s.execute(text(f"UPDATE {table} SET {column} = :v WHERE {where}"), {**params, "v": value})


def swap_char(value: str, at: int) -> str:
    """Another base64 character at ``at``: the text stays well formed."""
    return value[:at] + ("B" if value[at] != "B" else "C") + value[at + 1:]


TILE_ROW = "level = :l AND idx = :n"
LEVEL_START = [sum((256 >> i) * 32 for i in range(k)) for k in range(9)]  # full tile layout


def flip_tile(s: Session, level: int, index: int, at: int) -> None:
    flip_byte(s, "log_tiles", "data", TILE_ROW, {"l": level, "n": index}, at)


def bundle(s: Session, n: int) -> bytes:
    return bytes(s.execute(text("SELECT data FROM log_blocks WHERE kind = 'e' AND block = :n"),
                           {"n": n}).scalar_one())


def checkpoint_lines(note: str) -> tuple[int, int]:
    """Offsets of a char inside the root line, and inside the signature, of a signed note."""
    root_line = note.index("\n", note.index("\n") + 1) + 1
    signature = note.rindex(" ") + 1
    return root_line + 10, signature + 40


Damage = Callable[[Session, Log], str]


def tile_level0(s: Session, log: Log) -> str:
    flip_tile(s, 0, 5, 37 * 32 + 3)
    return "tile 0/5: stored hash 37 at level 0 differs"


def tile_internal(s: Session, log: Log) -> str:
    flip_tile(s, 0, 5, LEVEL_START[3] + 5 * 32 + 7)
    return "tile 0/5: stored hash 5 at internal level 3 differs"


def tile_level1(s: Session, log: Log) -> str:
    flip_tile(s, 1, 0, 200 * 32)
    return "tile 1/0: stored hash 200 at level 0 differs"


def tile_level1_internal(s: Session, log: Log) -> str:
    flip_tile(s, 1, 0, LEVEL_START[7] + 32 + 31)
    return "tile 1/0: stored hash 1 at internal level 7 differs"


def partial_tile_level0(s: Session, log: Log) -> str:
    flip_tile(s, 0, 258, 112 * 32 + 9)  # the unpaired last hash: the tile stays self-consistent
    return "tile 0/258: stored hash 112 at level 0 differs"


def partial_tile_level0_paired(s: Session, log: Log) -> str:
    flip_tile(s, 0, 258, 40 * 32)
    return "tile 0/258: stored hash 40 at level 0 differs"


def partial_tile_level1(s: Session, log: Log) -> str:
    flip_tile(s, 1, 1, 32 + 5)
    return "tile 1/1: stored hash 1 at level 0 differs"


def partial_tile_level2(s: Session, log: Log) -> str:
    flip_tile(s, 2, 0, 31)
    return "tile 2/0: stored hash 0 at level 0 differs"


def tile_deleted(s: Session, log: Log) -> str:
    s.execute(text(f"DELETE FROM log_tiles WHERE {TILE_ROW}"), {"l": 0, "n": 7})
    return "tile 0/7: missing"


def tile_truncated(s: Session, log: Log) -> str:
    data = bytes(s.execute(text(f"SELECT data FROM log_tiles WHERE {TILE_ROW}"),
                           {"l": 0, "n": 9}).scalar_one())
    set_value(s, "log_tiles", "data", TILE_ROW, {"l": 0, "n": 9}, data[:-32])
    return f"tile 0/9: wrong width ({len(data) - 32} bytes is no tile's length)"


def bundle_entry(s: Session, log: Log) -> str:
    entries = decode_bundle(bundle(s, 3))
    at = sum(2 + len(e) for e in entries[:37]) + 2 + 1  # inside entry 37's data
    flip_byte(s, "log_blocks", "data", "kind = 'e' AND block = :n", {"n": 3}, at)
    return ("entry bundle 3: entry 37 (index 805) is not the one the log signed "
            "(tile 0/3 holds another hash)")


def bundle_length(s: Session, log: Log) -> str:
    flip_byte(s, "log_blocks", "data", "kind = 'e' AND block = :n", {"n": 4}, 0)
    return "entry bundle 4: "


def bundle_deleted(s: Session, log: Log) -> str:
    s.execute(text("DELETE FROM log_blocks WHERE kind = 'e' AND block = 6"))
    return "entry bundle 6: missing"


def state_checkpoint_root(s: Session, log: Log) -> str:
    note = str(s.execute(text("SELECT checkpoint FROM log_state")).scalar_one())
    at = checkpoint_lines(note)[0]
    set_value(s, "log_state", "checkpoint", "id = 1", {}, swap_char(note, at))
    return "log state: checkpoint signature does not verify"


def state_checkpoint_signature(s: Session, log: Log) -> str:
    note = str(s.execute(text("SELECT checkpoint FROM log_state")).scalar_one())
    at = checkpoint_lines(note)[1]
    set_value(s, "log_state", "checkpoint", "id = 1", {}, swap_char(note, at))
    return "log state: checkpoint signature does not verify"


def state_root(s: Session, log: Log) -> str:
    flip_byte(s, "log_state", "root", "id = 1", {}, 17)
    return "log state: root differs from the tiles"


def older_checkpoint(s: Session) -> LogCheckpoint:
    return s.scalars(select(LogCheckpoint).where(LogCheckpoint.size > 10_000)
                     .order_by(LogCheckpoint.size)).first()  # type: ignore[return-value]


def checkpoint_text(s: Session, log: Log) -> str:
    row = older_checkpoint(s)
    note = row.checkpoint
    set_value(s, "log_checkpoints", "checkpoint", "size = :n", {"n": row.size},
              swap_char(note, checkpoint_lines(note)[0]))
    return f"checkpoint {row.size}: signature does not verify"


def checkpoint_root(s: Session, log: Log) -> str:
    row = older_checkpoint(s)
    flip_byte(s, "log_checkpoints", "root", "size = :n", {"n": row.size}, 0)
    return f"checkpoint {row.size}: stored root differs from its signed text"


def cosignature(s: Session, log: Log) -> str:
    row = s.get(LogCosignature, (SIZE, log.b.id))
    assert row is not None
    set_value(s, "log_cosignatures", "line", "size = :n AND witness_id = :w",
              {"n": SIZE, "w": log.b.id}, swap_char(row.line, len(row.line) // 2))
    return f"cosignature of checkpoint {SIZE} by {log.b.id}: does not verify"


def peer_card(s: Session, log: Log) -> str:
    s.execute(text("DELETE FROM peer_cards WHERE node_id = :w"), {"w": log.b.id})
    return f"cosignature of checkpoint {SIZE} by {log.b.id}: no card of that peer"


def opening(s: Session, log: Log) -> str:
    row = s.scalars(select(LogOpening).order_by(LogOpening.idx.desc())
                    .where(LogOpening.idx < SIZE)).first()
    assert row is not None
    salt = json.loads(row.opening)["salt"]
    at = row.opening.index(salt) + 10
    set_value(s, "log_openings", "opening", "idx = :i", {"i": row.idx},
              swap_char(row.opening, at))
    return f"entry {row.idx}: does not match its opening"


DAMAGE: dict[str, Damage] = {f.__name__: f for f in [
    tile_level0, tile_internal, tile_level1, tile_level1_internal, partial_tile_level0,
    partial_tile_level0_paired, partial_tile_level1, partial_tile_level2, tile_deleted,
    tile_truncated, bundle_entry, bundle_length, bundle_deleted, state_checkpoint_root,
    state_checkpoint_signature, state_root, checkpoint_text, checkpoint_root, cosignature,
    peer_card, opening]}


# -- tests --------------------------------------------------------------------

def test_a_healthy_log_verifies_and_every_part_is_counted(fed: LocalFederation) -> None:
    log = build(fed)
    report = verify(log)
    assert report.problems == []
    assert report.ok
    assert report.size == SIZE
    assert report.checked_tiles == TILES
    with read_scope(log.a.node.sessions) as s:
        checkpoints = len(s.scalars(select(LogCheckpoint.size)).all())
        cosigned = len(s.scalars(select(LogCosignature.size)).all())
        openings = len(s.scalars(select(LogOpening.idx).where(LogOpening.idx < SIZE)).all())
    assert report.checked_checkpoints == checkpoints >= 8
    assert report.checked_cosignatures == cosigned >= 2
    assert report.checked_openings == openings > 0
    assert report.to_dict() == {
        "ok": True, "size": SIZE, "checked_tiles": TILES, "checked_checkpoints": checkpoints,
        "checked_cosignatures": cosigned, "checked_openings": openings, "problems": []}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_one_damaged_byte_is_found_and_named(fed: LocalFederation, case: str) -> None:
    log = build(fed)
    assert verify(log).ok
    with session_scope(log.a.node.sessions) as s:
        expected = DAMAGE[case](s, log)
    log.a.node.ledger.cache.clear()
    report = verify(log)
    assert not report.ok
    if expected.endswith(": "):
        assert any(p.startswith(expected) for p in report.problems), report.problems
    else:
        assert expected in report.problems, report.problems
    # The item that was not damaged is not blamed.
    if case.startswith(("tile", "partial_tile")):
        assert not [p for p in report.problems if p.startswith(("entry", "cosignature"))]
    elif case.startswith("bundle"):
        assert not [p for p in report.problems if p.startswith(("tile", "checkpoint", "log"))]
    else:
        assert not [p for p in report.problems if p.startswith(("tile", "entry bundle"))]
    assert report.size == SIZE


def test_rows_beyond_the_log_and_a_lost_bundle_with_its_tile(fed: LocalFederation) -> None:
    a = fed.add("a")
    with session_scope(a.node.sessions) as s:
        a.node.ledger.assign_many(s, [i.to_bytes(3, "big") for i in range(3 * 256 + 5)])
    a.node.ledger.integrate()
    assert verify_log(a.node).ok
    with session_scope(a.node.sessions) as s:
        # Rows no tree of this size has.
        s.execute(text("INSERT INTO log_tiles (level, idx, data) VALUES (0, 4, :d), (3, 0, :d)"),
                  {"d": b"\x00" * 32})
        s.execute(text("INSERT INTO log_blocks (kind, block, data) VALUES ('e', 9, :d)"),
                  {"d": b"\x00\x01x"})
        # Entries and tile both gone: nothing stands in for them.
        s.execute(text("DELETE FROM log_blocks WHERE kind = 'e' AND block = 1"))
        s.execute(text("DELETE FROM log_tiles WHERE level = 0 AND idx = 1"))
    a.node.ledger.cache.clear()
    problems = verify_log(a.node).problems
    assert sorted(problems) == sorted([
        "entry bundle 1: missing", "tile 0/1: missing",
        "entry bundle 9: beyond the log's size 773", "tile 0/4: beyond the log's size 773",
        "tile 3/0: beyond the log's size 773"])


def test_progress_counts_up_to_the_size(fed: LocalFederation) -> None:
    log = build(fed)
    calls: list[tuple[int, int]] = []
    assert verify(log, progress=lambda done, size: calls.append((done, size))).ok
    assert len(calls) == -(-SIZE // (256 * CHUNK_BUNDLES)) > 1
    done = [d for d, _ in calls]
    assert done == sorted(set(done))
    assert done[0] > 0
    assert calls[-1] == (SIZE, SIZE)
    assert {size for _, size in calls} == {SIZE}


def test_an_empty_log_verifies(fed: LocalFederation) -> None:
    a = fed.add("a")
    calls: list[tuple[int, int]] = []
    report = verify_log(a.node, progress=lambda done, size: calls.append((done, size)))
    assert report.ok
    assert (report.size, report.checked_tiles, report.checked_checkpoints) == (0, 0, 1)
    assert calls == [(0, 0)]


def test_checkpoints_signed_before_a_key_rotation_still_verify(fed: LocalFederation) -> None:
    a = fed.add("a")
    ledger = a.node.ledger
    with session_scope(a.node.sessions) as s:
        ledger.assign_many(s, [bytes([i]) * 8 for i in range(200)])
    ledger.integrate()
    old = ledger.head()
    rotate_keys(a.node.settings.data_dir, clock=fed.clock)
    assert a.node.local.serial == 2
    with session_scope(a.node.sessions) as s:
        ledger.assign_many(s, [bytes([i]) * 9 for i in range(100)])
    ledger.integrate()
    # The old checkpoint verifies only under the old card's key.
    with pytest.raises(NoteError):
        open_note(old.checkpoint, [log_verifier(a.node.local.card)])
    report = verify_log(a.node)
    assert report.problems == []
    assert (report.size, report.checked_checkpoints, report.checked_tiles) == (300, 3, 3)
    # A checkpoint signed by no key of the chain is refused.
    with session_scope(a.node.sessions) as s:
        s.execute(text("UPDATE log_checkpoints SET checkpoint = :c WHERE size = :n"),
                  {"c": fed.add("z").node.ledger.head().checkpoint.decode(), "n": old.size})
    assert f"checkpoint {old.size}: not signed by any key of this node" in verify_log(
        a.node).problems
