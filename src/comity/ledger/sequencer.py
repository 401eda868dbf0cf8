"""The sequencer thread: integrates pending log entries as soon as they commit.

One per node process. It is woken by every commit that assigned entries and
otherwise polls, so entries assigned by other processes (the CLI) are
integrated too. Integration itself is safe against several sequencers (the
state row is locked and the checkpoint moves by compare-and-swap); running
one per process only avoids wasted work.
"""

from __future__ import annotations

import logging
import threading

from comity.ledger.services import Ledger

__all__ = ["BackgroundLoop", "Sequencer"]

log = logging.getLogger(__name__)


class BackgroundLoop:
    """A daemon thread that does a round of work when woken, or every ``poll_seconds``.

    Subclasses implement :meth:`_run` with ``self._wake`` and ``self._stop``;
    :meth:`stop` sets both and joins the thread.
    """

    def __init__(self, name: str, *, poll_seconds: float) -> None:
        self.name = name
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        raise NotImplementedError


class Sequencer(BackgroundLoop):
    """Runs :meth:`Ledger.integrate` whenever there may be work."""

    def __init__(self, ledger: Ledger, *, poll_seconds: float = 1.0,
                 linger_seconds: float = 0.0) -> None:
        super().__init__("comity-sequencer", poll_seconds=poll_seconds)
        self.ledger = ledger
        # Waiting a little after a wake-up turns a stream of single entries
        # into batches: fewer tile rewrites, signatures and witness rounds.
        self.linger_seconds = linger_seconds
        ledger.on_assign(self._wake.set)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.linger_seconds:
                self._stop.wait(self.linger_seconds)
            self._wake.clear()
            try:
                while self.ledger.integrate():
                    pass
            except Exception:
                # A LedgerError means the log must not move: keep refusing
                # (and logging) rather than sign anything doubtful.
                log.exception("ledger integration failed")
            self._wake.wait(self.poll_seconds)
