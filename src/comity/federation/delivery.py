"""Delivery workers: one thread per peer, pushing its outbox in order.

Each worker takes a lease on its peer in the database (so that, with several
processes on PostgreSQL, exactly one delivers to a given peer and per-peer
order holds), then loops: deliver a batch, and when nothing is due wait until
the head-of-line message's retry time, a notification that new mail was
queued, or the poll interval, whichever comes first. A scheduler thread
notices peers with pending mail queued by other processes.

Stopping is prompt and loses nothing: an interrupted batch was either
acknowledged (and its receipts stored) or is retried, and the receiver
answers a repeated message with its original receipt.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

import httpx
from sqlalchemy.orm import Session

from comity.db import session_scope
from comity.federation.models import DeliveryLease
from comity.federation.services import Federation

__all__ = ["DeliveryService"]

log = logging.getLogger(__name__)


class DeliveryService:
    """Runs the delivery workers of one node process."""

    def __init__(self, federation: Federation, *, owner: str, lease_seconds: float = 15.0,
                 http_client: httpx.Client | None = None) -> None:
        self.federation = federation
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._stop = threading.Event()
        self._wake: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._client = http_client or httpx.Client(
            limits=httpx.Limits(max_keepalive_connections=32), trust_env=False)
        self._scheduler: threading.Thread | None = None
        federation.on_enqueue(self.notify)

    def start(self) -> None:
        """Start the scheduler (which starts per-peer workers as needed)."""
        self._scheduler = threading.Thread(target=self._schedule, name="comity-delivery",
                                           daemon=True)
        self._scheduler.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every worker and wait for in-flight batches to finish."""
        self._stop.set()
        for ev in list(self._wake.values()):
            ev.set()
        threads = list(self._threads.values())
        if self._scheduler is not None:
            threads.append(self._scheduler)
        for t in threads:
            t.join(timeout)
        self._client.close()

    def notify(self, peer_id: str) -> None:
        """New mail for ``peer_id`` was committed: wake (or start) its worker."""
        if self._stop.is_set():
            return
        with self._lock:
            ev = self._wake.get(peer_id)
            if ev is None:
                ev = self._wake[peer_id] = threading.Event()
                t = threading.Thread(target=self._work, args=(peer_id, ev),
                                     name=f"comity-deliver-{peer_id[:8]}", daemon=True)
                self._threads[peer_id] = t
                t.start()
        ev.set()

    def _schedule(self) -> None:
        interval = self.federation.settings.poll_interval_seconds
        while not self._stop.is_set():
            try:
                for peer_id in self.federation.pending_peers():
                    self.notify(peer_id)
            except Exception:
                log.exception("delivery scheduler: listing pending peers failed")
            self._stop.wait(interval)

    def _work(self, peer_id: str, wake: threading.Event) -> None:
        poll = self.federation.settings.poll_interval_seconds
        linger = self.federation.settings.delivery_linger_seconds
        lease_until: dt.datetime | None = None
        while not self._stop.is_set():
            wake.clear()
            now = self.federation.clock.now()
            try:
                if lease_until is None or (lease_until - now).total_seconds() < (
                        self.lease_seconds / 2):
                    lease_until = self._take_lease(peer_id, now)
                if lease_until is None:
                    wake.wait(min(poll, self.lease_seconds / 3))
                    continue
                outcome = self.federation.deliver_batch(peer_id, self._client)
            except Exception:
                log.exception("delivery to %s failed unexpectedly", peer_id)
                wake.wait(poll)
                continue
            if outcome.delivered or outcome.failed:
                continue
            if outcome.retry_at is not None:
                delay = (outcome.retry_at - self.federation.clock.now()).total_seconds()
                wake.wait(max(0.0, min(delay, poll)))
            elif outcome.idle and wake.wait(poll) and linger > 0:
                # Woken by new mail: let a few more messages join the batch.
                # Per-batch costs (a signature, a round trip, two commits)
                # then spread over several messages, which under load keeps
                # latency low rather than adding to it.
                self._stop.wait(linger)

    def _take_lease(self, peer_id: str, now: dt.datetime) -> dt.datetime | None:
        until = now + dt.timedelta(seconds=self.lease_seconds)
        with session_scope(self.federation.sessions) as session:
            return _claim(session, peer_id, self.owner, now, until)


def _claim(session: Session, peer_id: str, owner: str, now: dt.datetime,
           until: dt.datetime) -> dt.datetime | None:
    from sqlalchemy import select

    lease = session.scalar(select(DeliveryLease).where(DeliveryLease.peer_id == peer_id)
                           .with_for_update())
    if lease is None:
        session.add(DeliveryLease(peer_id=peer_id, owner=owner, expires_at=until))
        return until
    if lease.owner != owner and lease.expires_at > now:
        return None
    lease.owner = owner
    lease.expires_at = until
    return until
