"""Kill -9 the node while its sequencer integrates: nothing acknowledged is lost.

A real ``comity node serve`` process integrates while this test commits
batches of entries through the node's database (as the CLI does) and a chaos
loop SIGKILLs the server at random moments and restarts it. An entry counts
as acknowledged once its transaction committed. Afterwards the log must
verify end to end and hold every acknowledged entry at the index it was
given. Bounded in time: it fails, never hangs.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from comity.db import session_scope
from comity.ledger.storage import block_data, decode_bundle
from comity.ledger.verify import verify_log
from comity.localnet import LocalNode, spawn, wait_for

BATCH = 2_000
BATCHES = 60
KILLS = 5


def _chaos(node: LocalNode, stop: threading.Event, kills: list[int],
           rng: random.Random) -> None:
    while not stop.is_set() and kills[0] < KILLS:
        if stop.wait(rng.uniform(0.2, 1.0)):
            return
        node.kill()
        kills[0] += 1
        time.sleep(rng.uniform(0.0, 0.3))
        node.start(wait=False)
        node.wait_healthy(timeout=60)


@pytest.mark.slow
def test_kill9_during_sequencing_loses_no_acknowledged_entry(
        tmp_path: Path, db_url_factory: Callable[[str], str]) -> None:
    node = spawn(tmp_path, "log", env={"COMITY_POLL_INTERVAL_SECONDS": "0.2"},
                 database_url=db_url_factory("log"))
    local = node.open_node()
    rng = random.Random(4711)
    stop = threading.Event()
    kills = [0]
    chaos = threading.Thread(target=_chaos, args=(node, stop, kills, rng))
    acknowledged: dict[int, bytes] = {}
    try:
        chaos.start()
        for b in range(BATCHES):
            data = [hashlib.sha256(f"{b}/{i}".encode()).digest() for i in range(BATCH)]
            with session_scope(local.sessions) as s:
                indexes = local.ledger.assign_many(s, data)
            acknowledged.update(zip(indexes, data, strict=True))  # committed: acknowledged
            time.sleep(rng.uniform(0, 0.05))
        wait_for("chaos", lambda: kills[0] >= KILLS or not chaos.is_alive(), timeout=120)
        stop.set()
        chaos.join(90)
        if not node.running():
            node.start()
        total = len(acknowledged)
        wait_for("everything integrated", lambda: local.ledger.head().size >= total,
                 timeout=180, interval=0.5)
        assert kills[0] >= KILLS
        report = verify_log(local)
        assert report.ok, report.problems
        assert report.size == total
        stored: list[bytes] = []
        with session_scope(local.sessions) as s:
            for n in range((total + 255) // 256):
                stored += decode_bundle(block_data(s, n))
        assert stored[:total] == [acknowledged[i] for i in range(total)]
    finally:
        stop.set()
        if chaos.is_alive():
            chaos.join(90)
        node.close()
        local.close()
