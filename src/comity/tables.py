"""Every table of every domain, imported in one place for Alembic.

Importing this module registers all models on ``comity.db.Base.metadata``;
migrations compare against it.
"""

from __future__ import annotations

from comity.agreements import models as agreements_models
from comity.auth import models as auth_models
from comity.db import Base
from comity.evidence import models as evidence_models
from comity.federation import models as federation_models
from comity.governance import models as governance_models
from comity.identity import models as identity_models
from comity.ledger import models as ledger_models
from comity.registry import models as registry_models
from comity.requests import models as requests_models
from comity.sharing import models as sharing_models
from comity.web import models as web_models

__all__ = ["metadata"]

metadata = Base.metadata
_DOMAINS = (agreements_models, auth_models, evidence_models, federation_models,
            governance_models, identity_models, ledger_models, registry_models,
            requests_models, sharing_models, web_models)
