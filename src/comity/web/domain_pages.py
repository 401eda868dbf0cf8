"""The UI's pages over the domain services, gathered into one router for ``/ui/``.

Each subject has its own module, so each stays small and states its own
roles and trust assumptions:

* :mod:`comity.web.federation_pages`: agreements (a supervisor signs or
  withdraws), peers (an administrator imports a card chain), the log.
* :mod:`comity.web.sharing_pages`: collections and their objects with TLP
  badges (analysts only).
* :mod:`comity.web.registry_pages`: delegations, pools, councils and
  proposals (a delegate casts the node's ballot).
* :mod:`comity.web.reports_pages`: request and registry statistics, with
  charts drawn on the server.

Every page needs a signed-in actor (:func:`~comity.web.core.view`) and every
POST is an :func:`~comity.web.core.action` (role, CSRF, audit). The domain
services check everything again; the UI adds who may ask, never what is
allowed.

Example::

    router.include_router(domain_router)  # in comity.web.api, under /ui
"""

from __future__ import annotations

from fastapi import APIRouter

from comity.web.federation_pages import router as federation_router
from comity.web.registry_pages import router as registry_router
from comity.web.reports_pages import router as reports_router
from comity.web.sharing_pages import router as sharing_router

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
router.include_router(federation_router)
router.include_router(sharing_router)
router.include_router(registry_router)
router.include_router(reports_router)
