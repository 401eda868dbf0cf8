"""The node's log: indexes assigned in business transactions, integration, tiles."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from comity.config import Settings
from comity.db import make_engine, read_scope, session_scope, upgrade
from comity.hazmat import merkle
from comity.hazmat.note import open_note, parse_checkpoint
from comity.ledger import services as ledger_services
from comity.ledger.services import LedgerError
from comity.ledger.storage import TileCache, TileStore, decode_bundle, encode_bundle
from tests.support import LocalFederation, PeerNode


def entries(n: int, start: int = 0) -> list[bytes]:
    return [hashlib.sha256(f"act {i}".encode()).digest() for i in range(start, start + n)]


def append(node: PeerNode, data: list[bytes]) -> list[int]:
    with session_scope(node.node.sessions) as s:
        if len(data) > 10:
            return node.node.ledger.assign_many(s, data)
        return [node.node.ledger.assign(s, d) for d in data]


def mth(items: list[bytes]) -> bytes:
    """RFC 6962 Merkle tree hash, recursively: an independent model."""
    if not items:
        return merkle.EMPTY_ROOT
    if len(items) == 1:
        return merkle.leaf_hash(items[0])
    k = 1 << ((len(items) - 1).bit_length() - 1)
    return merkle.node_hash(mth(items[:k]), mth(items[k:]))


def test_empty_log_has_a_signed_checkpoint(fed: LocalFederation) -> None:
    a = fed.add("a")
    head = a.node.ledger.head()
    assert head.size == 0
    note = open_note(head.checkpoint, [a.node.ledger.signer().verifier])
    cp = parse_checkpoint(note.text)
    assert (cp.origin, cp.size, cp.root_hash) == ("a.test/log", 0, merkle.EMPTY_ROOT)


def test_indexes_are_dense_and_a_rolled_back_act_leaves_no_gap(fed: LocalFederation) -> None:
    a = fed.add("a")
    assert append(a, entries(3)) == [0, 1, 2]

    def failing_act() -> None:
        with session_scope(a.node.sessions) as s:
            a.node.ledger.assign(s, b"never committed")
            raise RuntimeError("the act failed")

    with pytest.raises(RuntimeError):
        failing_act()
    assert append(a, entries(2, 3)) == [3, 4]


@pytest.mark.parametrize("batches", [[1], [5, 1, 300], [256, 256, 1], [1000]])
def test_integration_matches_an_independent_model(fed: LocalFederation,
                                                  batches: list[int]) -> None:
    a = fed.add("a")
    ledger = a.node.ledger
    everything: list[bytes] = []
    old_head = ledger.head()
    for n in batches:
        data = entries(n, len(everything))
        append(a, data)
        everything += data
        while ledger.integrate():
            pass
        head = ledger.head()
        assert head.size == len(everything)
        assert head.root == mth(everything)
        cp = parse_checkpoint(open_note(head.checkpoint, [ledger.signer().verifier]).text)
        assert (cp.size, cp.root_hash) == (head.size, head.root)
        with read_scope(a.node.sessions) as s:
            reader = ledger.reader(s)
            for i in {0, len(everything) // 2, len(everything) - 1}:
                proof = merkle.inclusion_proof(i, head.size, reader)
                merkle.verify_inclusion(merkle.leaf_hash(everything[i]), i, head.size, proof,
                                        head.root)
            if old_head.size:
                proof = merkle.consistency_proof(old_head.size, head.size, reader)
                merkle.verify_consistency(old_head.size, head.size, old_head.root, head.root,
                                          proof)
        old_head = head


def test_tiles_and_entry_bundles_are_served(fed: LocalFederation) -> None:
    a = fed.add("a")
    data = entries(300)
    append(a, data)
    while a.node.ledger.integrate():
        pass
    full = a.client.get("/log/tile/0/000")
    assert full.status_code == 200
    assert full.content == b"".join(merkle.leaf_hash(d) for d in data[:256])
    assert "immutable" in full.headers["cache-control"]
    partial = a.client.get("/log/tile/0/001.p/44")
    assert partial.content == b"".join(merkle.leaf_hash(d) for d in data[256:300])
    level1 = a.client.get("/log/tile/1/000.p/1")
    assert level1.content == mth(data[:256])
    bundle = a.client.get("/log/tile/entries/000")
    assert decode_bundle(bundle.content) == data[:256]
    assert decode_bundle(a.client.get("/log/tile/entries/001.p/44").content) == data[256:]
    assert a.client.get("/log/tile/0/001.p/45").status_code == 404  # not in the log yet
    assert a.client.get("/log/tile/0/001").status_code == 404
    for bad in ("0/1", "0/x1/000", "8/000", "0/000.p/256", "0/000.p/0", "entries", "01/000"):
        resp = a.client.get(f"/log/tile/{bad}")
        assert resp.status_code == 400, bad
        assert resp.json()["type"].endswith("bad-tile-path")
    cp = a.client.get("/log/checkpoint")
    assert cp.headers["content-type"].startswith("text/plain")
    assert parse_checkpoint(open_note(cp.content, [a.node.ledger.signer().verifier]).text
                            ).size == 300


def test_a_crash_during_integration_changes_nothing(fed: LocalFederation,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    a = fed.add("a")
    ledger = a.node.ledger
    append(a, entries(10))
    ledger.integrate()
    before = ledger.head()
    append(a, entries(20, 10))
    calls = {"n": 0}
    real = ledger_services.write_bundles

    def crash_on_write(*args: object, **kw: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("power cut between the tiles and the entry bundles")
        real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ledger_services, "write_bundles", crash_on_write)
    with pytest.raises(OSError):
        ledger.integrate()
    assert ledger.head() == before
    monkeypatch.setattr(ledger_services, "write_bundles", real)
    assert ledger.integrate() == 20
    assert ledger.head().root == mth(entries(30))


def test_inconsistent_storage_is_refused_not_signed(fed: LocalFederation,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    a = fed.add("a")
    ledger = a.node.ledger
    append(a, entries(5))
    ledger.integrate()
    before = ledger.head()
    append(a, entries(5, 5))
    monkeypatch.setattr(merkle, "verify_consistency",
                        lambda *a, **k: (_ for _ in ()).throw(merkle.ProofError("forked")))
    with pytest.raises(LedgerError, match="not consistent"):
        ledger.integrate()
    assert ledger.head() == before


def test_oversized_entry_is_refused_before_anything_is_written(fed: LocalFederation) -> None:
    a = fed.add("a")
    with pytest.raises(ValueError, match="at most"), session_scope(a.node.sessions) as s:
        a.node.ledger.assign(s, b"x" * 70_000)
    assert append(a, entries(1)) == [0]


def c2sp_tiles(leaf_hashes: list[bytes]) -> dict[str, bytes]:
    """Every tile of a tree, by path, from the C2SP definition (an independent model)."""
    out: dict[str, bytes] = {}
    level, hashes = 0, leaf_hashes
    while hashes:
        above = []
        for n in range(0, len(hashes), 256):
            chunk = hashes[n:n + 256]
            suffix = "" if len(chunk) == 256 else f".p/{len(chunk)}"
            out[f"{level}/{tile_index_path(n // 256)}{suffix}"] = b"".join(chunk)
            if len(chunk) == 256:
                above.append(mth_of_hashes(chunk))
        level, hashes = level + 1, above
    return out


def tile_index_path(n: int) -> str:
    digits = f"{n:03d}"
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i:i + 3] for i in range(0, len(digits), 3)]
    return "/".join([f"x{g}" for g in groups[:-1]] + groups[-1:])


def mth_of_hashes(hashes: list[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return merkle.node_hash(mth_of_hashes(hashes[:k]), mth_of_hashes(hashes[k:]))


def test_a_tree_of_70000_has_the_tiles_of_the_c2sp_example(fed: LocalFederation) -> None:
    a = fed.add("a")
    ledger = a.node.ledger
    data = entries(70_000)
    # Batches that end inside tiles, on a tile edge and on a level-1 edge.
    for lo, hi in [(0, 100), (100, 256), (256, 65_535), (65_535, 65_536), (65_536, 70_000)]:
        append(a, data[lo:hi])
        while ledger.integrate():
            pass
    leaf_hashes = [merkle.leaf_hash(d) for d in data]
    want = c2sp_tiles(leaf_hashes)
    shapes = sorted((p.split("/")[0], ".p/" in p) for p in want)
    assert shapes.count(("0", False)) == 273
    assert ("0", True) in shapes
    assert [p for p in want if p.startswith(("1/", "2/"))] == ["1/000", "1/001.p/17", "2/000.p/1"]
    assert "0/273.p/112" in want
    for path, content in want.items():
        resp = a.client.get(f"/log/tile/{path}")
        assert resp.status_code == 200, path
        assert resp.content == content, path
    # A partial tile that an older checkpoint needed is still served, narrower.
    old = a.client.get("/log/tile/0/000.p/100")
    assert old.content == b"".join(leaf_hashes[:100])
    assert ledger.head().root == mth_of_hashes(leaf_hashes)


def test_the_tile_migration_rebuilds_tiles_from_the_entry_bundles(tmp_path: Path) -> None:
    data = entries(300)
    engine = make_engine(Settings(data_dir=tmp_path))
    try:
        upgrade(engine, "0003")
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO log_state (id, next_index, size, root, checkpoint, updated_at) "
                "VALUES (1, 300, 300, :root, 'cp', '2026-11-29 00:00:00.000000')"),
                {"root": mth(data)})
            for block, lo in enumerate((0, 256)):
                conn.execute(text("INSERT INTO log_blocks VALUES ('e', :b, :d)"),
                             {"b": block, "d": encode_bundle(data[lo:lo + 256])})
                conn.execute(text("INSERT INTO log_blocks VALUES ('h', :b, :d)"),
                             {"b": block, "d": b"old layout"})
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM log_blocks WHERE kind = 'h'")
                                ).scalar() == 0
        with Session(engine) as session:
            reader = TileStore(session, TileCache())
            assert merkle.tree_hash(300, reader) == mth(data)
            proof = merkle.inclusion_proof(299, 300, reader)
            merkle.verify_inclusion(merkle.leaf_hash(data[299]), 299, 300, proof, mth(data))
            assert reader.c2sp_tile(1, 0, 1) == mth(data[:256])
    finally:
        engine.dispose()


def test_a_sequencer_that_loses_the_race_writes_nothing(fed: LocalFederation,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    a = fed.add("a")
    ledger = a.node.ledger
    append(a, entries(10))
    other = ledger_services.Ledger(a.node.sessions, a.node.identity, a.node.clock)
    real = ledger_services.Ledger._prepare

    def prepare_then_lose(self: ledger_services.Ledger, *args: object) -> object:
        work = real(self, *args)  # type: ignore[arg-type]
        if self is ledger:
            assert other.integrate() == 10  # another process's sequencer wins meanwhile
        return work

    monkeypatch.setattr(ledger_services.Ledger, "_prepare", prepare_then_lose)
    assert ledger.integrate() == 0
    head = ledger.head()
    assert (head.size, head.root) == (10, mth(entries(10)))
    monkeypatch.undo()
    append(a, entries(5, 10))
    assert ledger.integrate() == 5
    assert ledger.head().root == mth(entries(15))


def test_a_reader_sees_the_head_of_its_own_snapshot(fed: LocalFederation) -> None:
    """The log growing during a read never leaves the reader a head it cannot find.

    On SQLite a read transaction keeps the snapshot of its first read: a
    head read in another session would be newer, with no checkpoint row
    of its size in this one.
    """
    from comity.ledger.models import LogState
    from comity.ledger.witness import log_status

    a = fed.add("a")
    ledger = a.node.ledger
    append(a, entries(3))
    while ledger.integrate():
        pass
    with read_scope(a.node.sessions) as session:
        seen = session.scalar(select(LogState.size))  # the snapshot starts here
        append(a, entries(2, 3))
        while ledger.integrate():
            pass
        status = log_status(session, ledger)
        served = ledger.cosigned_checkpoint(session)
    verifier = ledger.signer().verifier
    for note in (status["checkpoint"].encode(), served):
        assert parse_checkpoint(open_note(note, [verifier]).text).size == status["size"]
    assert status["size"] in (seen, 5)  # 5 where each statement sees the newest
    assert ledger.head().size == 5
