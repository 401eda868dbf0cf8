"""The ASGI application of a node: ``/api``, ``/federation/``, ``/log/``, ``/taxii2/``, ``/rdap/``,
and the web UI under ``/ui/``.

Also ``/governance/`` (settled council decisions, public), ``/healthz`` and
``/openapi.json``.

``create_app(node)`` builds the app around an opened :class:`~comity.node.Node`;
with ``deliver=True`` its lifespan also runs the delivery workers, so one
``comity node serve`` process both answers peers and delivers to them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from sqlalchemy import text
from starlette.responses import Response

import comity
from comity.agreements.api import router as agreements_router
from comity.auth.services import TokenCache
from comity.evidence.api import api_router as evidence_router
from comity.evidence.api import peer_router as evidence_peer_router
from comity.evidence.package import cipher_size_for
from comity.federation.api import api_router as messages_router
from comity.federation.api import peer_router
from comity.federation.receiving import CARD_CHAIN_BYTES
from comity.governance.api import api_router as governance_api_router
from comity.governance.api import public_router as governance_public_router
from comity.http import BodyLimitMiddleware, get_node, install_error_handlers, json_response
from comity.identity.api import router as identity_router
from comity.ledger.api import api_router as ledger_router
from comity.ledger.api import router as log_router
from comity.ledger.witness import MAX_ADD_CHECKPOINT_BYTES
from comity.node import Node
from comity.registry.api import api_router as registry_api_router
from comity.registry.rdap import router as rdap_router
from comity.reports.api import router as reports_router
from comity.requests.api import router as requests_router
from comity.sharing.api import router as sharing_router
from comity.sharing.sync import SyncService
from comity.sharing.taxii import router as taxii_router
from comity.web.accounts import AddressThrottle
from comity.web.api import router as web_router
from comity.web.core import ServerTiming, problem_page

__all__ = ["create_app"]


def create_app(node: Node, *, deliver: bool = True) -> FastAPI:
    """Build the node's ASGI app."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service = node.delivery_service() if deliver else None
        sequencer = node.sequencer() if deliver else None
        publishing = node.publishing_service() if deliver else None
        uploader = node.uploader() if deliver else None
        syncing = (SyncService(node, interval=node.settings.sharing_sync_seconds)
                   if deliver and node.settings.sharing_sync_seconds > 0 else None)
        if uploader is not None:
            # Packages wait for their announcing message: look again after deliveries.
            node.federation.on_delivered(lambda _peer: uploader.wake())
        workers = (service, sequencer, publishing, uploader, syncing)
        for worker in workers:
            if worker is not None:
                worker.start()
        try:
            yield
        finally:
            for worker in workers:
                if worker is not None:
                    worker.stop()

    # No interactive docs page: FastAPI's loads its scripts from a public CDN,
    # which would tell a third party who operates this node and when.
    app = FastAPI(title="Comity node", version=comity.__version__, lifespan=lifespan,
                  openapi_url="/openapi.json", docs_url=None, redoc_url=None)
    app.state.node = node
    app.state.tokens = TokenCache()
    app.state.evidence_uploads = set()
    app.state.sign_in_throttle = AddressThrottle()
    install_error_handlers(app)
    app.add_middleware(ServerTiming)
    app.add_middleware(BodyLimitMiddleware, limits=[
        ("/federation/cards", CARD_CHAIN_BYTES),
        ("/log/add-checkpoint", MAX_ADD_CHECKPOINT_BYTES),
        ("/federation/evidence/", cipher_size_for(node.settings.evidence_max_bytes)),
        ("/federation/", node.settings.max_delivery_bytes),
        ("/api/evidence/packages", node.settings.evidence_max_bytes),
        ("/taxii2/", node.settings.taxii_max_content_length),
        ("/api", node.settings.max_api_body_bytes),
        # A request's acts may carry an evidence file; every other form is small.
        ("/ui/requests/", node.settings.evidence_max_bytes),
        ("/ui/", node.settings.max_api_body_bytes),
    ])
    # Routes are matched in order, and TAXII pages are the bulk of a busy
    # node's traffic: its router is tried first.
    app.include_router(taxii_router)
    app.include_router(rdap_router)
    app.include_router(identity_router)
    app.include_router(agreements_router)
    app.include_router(messages_router)
    app.include_router(peer_router)
    app.include_router(log_router)
    app.include_router(ledger_router)
    app.include_router(requests_router)
    app.include_router(evidence_router)
    app.include_router(evidence_peer_router)
    app.include_router(reports_router)
    app.include_router(sharing_router)
    app.include_router(registry_api_router)
    app.include_router(governance_api_router)
    app.include_router(governance_public_router)
    app.include_router(web_router)
    app.state.problem_page = problem_page

    @app.get("/healthz", tags=["health"], summary="Liveness and database check")
    def healthz(request: Request) -> Response:
        n = get_node(request)
        with n.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return json_response({"status": "ok", "node_id": n.local.node_id,
                              "serial": n.local.serial, "version": comity.__version__})

    return app
