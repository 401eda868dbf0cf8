"""A running node: settings, storage, identity, message types and federation, wired once.

``Node.open(settings)`` is the single place where a node's parts are built and
connected; the server, the CLI and the tests all go through it, so they all
see the same node. Nothing here is global: two nodes can live in one process
(the tests and the demo rely on that).
"""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from comity.agreements import messages as agreement_messages
from comity.agreements.cache import track_generations
from comity.clock import Clock, SystemClock
from comity.config import Settings
from comity.db import make_engine, sessionmaker_for, upgrade
from comity.evidence.services import Evidence, Uploader
from comity.federation.correspondence import CORRESPONDENCE
from comity.federation.delivery import DeliveryService
from comity.federation.registry import MessageTypes
from comity.federation.services import Federation
from comity.governance import messages as council_messages
from comity.governance.messages import CouncilHandlers
from comity.governance.services import Governance
from comity.identity.services import IdentityHolder, LocalIdentity
from comity.ledger.sequencer import Sequencer
from comity.ledger.services import Ledger
from comity.ledger.witness import Publisher, PublishingService, Witness
from comity.registry.services import Registry
from comity.requests import messages as request_messages
from comity.requests.catalog import catalog_for
from comity.requests.messages import RequestHandlers
from comity.requests.services import Requests
from comity.sharing.services import Sharing

__all__ = ["Node", "default_message_types"]


def default_message_types(requests: RequestHandlers,
                          councils: CouncilHandlers) -> MessageTypes:
    """Every message type this version of Comity speaks."""
    types = MessageTypes()
    agreement_messages.register(types)
    types.register(CORRESPONDENCE)
    request_messages.register(types, requests)
    council_messages.register(types, councils)
    return types


@dataclass
class Node:
    """The parts of one node, connected."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    identity: IdentityHolder
    federation: Federation
    ledger: Ledger
    clock: Clock
    requests: Requests
    evidence: Evidence
    sharing: Sharing
    registry: Registry
    governance: Governance

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock | None = None,
             migrate: bool = True) -> Node:
        """Open the node in ``settings.data_dir`` (migrating its database).

        Raises:
            IdentityError: if the node was never initialised.
        """
        clock = clock or SystemClock()
        engine = make_engine(settings)
        if migrate:
            upgrade(engine)
        sessions = sessionmaker_for(engine)
        track_generations(sessions)
        identity = IdentityHolder(settings.data_dir)
        ledger = Ledger(sessions, identity, clock, cache_tiles=settings.ledger_cache_tiles)
        event.listen(sessions, "before_commit", ledger.record_deferred)
        event.listen(sessions, "after_commit", ledger.notify_committed)
        catalog = catalog_for(settings.requests_catalog)
        handlers = RequestHandlers(catalog)
        councils = CouncilHandlers()
        federation = Federation(settings, identity, sessions,
                                default_message_types(handlers, councils), clock, ledger=ledger)
        evidence = Evidence(settings, identity, sessions, ledger, clock)
        requests = Requests(federation, identity, clock, catalog, evidence=evidence,
                            timezone=settings.timezone)
        handlers.service = requests
        federation.on_failed(requests.peer_refused)
        sharing = Sharing(settings, identity, sessions, clock, federation.agreements)
        registry = Registry()
        governance = Governance(federation, identity, ledger, registry, clock)
        councils.service = governance
        ledger.ensure_state()
        return cls(settings, engine, sessions, identity, federation, ledger, clock, requests,
                   evidence, sharing, registry, governance)

    @property
    def local(self) -> LocalIdentity:
        return self.identity.get()

    def delivery_service(self, lease_seconds: float | None = None) -> DeliveryService:
        """A delivery service for this process (not started).

        The lease outlasts the slowest possible batch (a POST, a card fetch
        and a card push, each up to the delivery timeout), so another process
        cannot take a peer over while a batch is still in flight.
        """
        lease = lease_seconds or 4 * self.settings.delivery_timeout_seconds
        return DeliveryService(self.federation, owner=self.instance_id(), lease_seconds=lease)

    def instance_id(self) -> str:
        """Stable id of this deployment's worker, so a restart reclaims its lease."""
        if self.settings.instance_id:
            return self.settings.instance_id
        raw = f"{socket.gethostname()}:{self.settings.data_dir.resolve()}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def sequencer(self, poll_seconds: float = 1.0) -> Sequencer:
        """The ledger's sequencer for this process (not started)."""
        return Sequencer(self.ledger, poll_seconds=poll_seconds,
                         linger_seconds=self.settings.ledger_linger_seconds)

    def witness(self) -> Witness:
        """This node as a witness of its partners' logs."""
        return Witness(self.sessions, self.identity, self.ledger, self.clock)

    def publisher(self) -> Publisher:
        """This node's log, asking its partners to cosign."""
        return Publisher(self.sessions, self.identity, self.ledger, self.clock)

    def publishing_service(self, poll_seconds: float = 30.0) -> PublishingService:
        """The thread that has new checkpoints cosigned (not started)."""
        return PublishingService(self.publisher(), poll_seconds=poll_seconds,
                                 min_interval=self.settings.witness_interval_seconds,
                                 timeout=self.settings.delivery_timeout_seconds)

    def uploader(self, poll_seconds: float = 1.0) -> Uploader:
        """The thread that moves evidence packages to their recipients (not started)."""
        return Uploader(self.evidence, timeout=self.settings.delivery_timeout_seconds,
                        poll_seconds=poll_seconds)

    def close(self) -> None:
        self.engine.dispose()
