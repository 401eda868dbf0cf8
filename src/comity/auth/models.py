"""Tables of local authentication: API tokens, stored only as hashes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from comity.db import Base, UTCDateTime

__all__ = ["ApiToken"]


class ApiToken(Base):
    __tablename__ = "api_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # Unset: the token does not expire.
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    @property
    def token_id(self) -> str:
        """A short public name of the token (the start of its hash), for listing and revoking."""
        return self.token_hash[:12]
