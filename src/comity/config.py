"""The node's settings: one typed, immutable object, read once at start-up.

Settings come from ``COMITY_*`` environment variables (and explicit keyword
arguments, which win), are validated by pydantic, and are then passed
explicitly to whatever needs them; there are no module-level globals. Defaults
are the safe ones: strict freshness windows, bounded bodies, durable SQLite
commits.

Example::

    settings = Settings(data_dir=Path("/var/lib/comity"))
    settings.database_url   # 'sqlite:////var/lib/comity/comity.db'
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Everything a node needs to know about its own deployment."""

    model_config = SettingsConfigDict(env_prefix="COMITY_", frozen=True, extra="forbid")

    data_dir: Path = Field(description="Directory holding keys, node card and the SQLite file.")
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means SQLite in the data directory.",
    )
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        default="FULL",
        description="FULL survives power loss; NORMAL survives process crashes only.",
    )
    clock_skew_seconds: int = Field(default=300, ge=1, le=3600)
    message_max_age_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=60,
        description="How old a message's creation time may be when it arrives.",
    )
    max_message_bytes: int = Field(default=1 << 20, ge=1024)
    max_delivery_bytes: int = Field(default=16 << 20, ge=4096)
    max_api_body_bytes: int = Field(default=8 << 20, ge=4096)
    delivery_batch_size: int = Field(default=256, ge=1, le=4096)
    delivery_linger_seconds: float = Field(
        default=0.01, ge=0, le=1,
        description="How long a woken delivery worker waits for more mail to batch.",
    )
    retry_base_seconds: float = Field(default=0.5, gt=0)
    retry_max_seconds: float = Field(default=300.0, gt=0)
    delivery_timeout_seconds: float = Field(default=30.0, gt=0)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    # Log tiles kept in memory for proofs: a full tile with its internal
    # levels is 16 KiB, so the default holds at most 256 MiB (4M entries).
    ledger_cache_tiles: int = Field(default=16_384, ge=16)
    ledger_linger_seconds: float = Field(
        default=0.25, ge=0, le=5,
        description="How long the sequencer waits after a wake-up to integrate in bulk.",
    )
    witness_interval_seconds: float = Field(
        default=1.0, ge=0, le=600,
        description="Shortest time between two rounds of asking partners to cosign.",
    )
    instance_id: str = Field(
        default="",
        max_length=64,
        description="Delivery worker identity; set a distinct one per process on PostgreSQL.",
    )
    timezone: str = Field(
        default="UTC",
        description="IANA time zone in which calendar-day and month deadlines are counted.",
    )
    requests_catalog: Path | None = Field(
        default=None,
        description="A request catalog file replacing the built-in one (same YAML format).",
    )
    evidence_max_bytes: int = Field(
        default=256 << 30, ge=1 << 20,
        description="Largest evidence package accepted from a peer (all files together).",
    )
    evidence_chunk_bytes: int = Field(
        default=1 << 20, ge=64 << 10, le=64 << 20,
        description="Read and write size when moving evidence (bounds memory per transfer).",
    )
    sharing_default_tlp: Literal["clear", "green", "amber", "amber+strict", "red"] = Field(
        default="amber",
        description="TLP level of STIX objects that carry no TLP marking.",
    )
    taxii_max_content_length: int = Field(default=16 << 20, ge=64 << 10)
    taxii_max_objects: int = Field(default=10_000, ge=1, le=100_000,
                                   description="Most objects in one TAXII envelope.")
    taxii_status_retention_seconds: int = Field(default=7 * 86400, ge=86400)
    sharing_sync_seconds: float = Field(
        default=300.0, ge=0,
        description="How often partners' collections are pulled (0: only on demand).",
    )
    ui_secure_cookies: Literal["auto", "always"] = Field(
        default="auto",
        description="Mark UI cookies Secure: 'auto' when the request came over HTTPS, "
                    "'always' behind a TLS-terminating proxy that forwards plain HTTP.",
    )
    host: str | None = Field(default=None, description="Bind address; default from the card URL.")
    port: int | None = Field(default=None, ge=1, le=65535)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.retry_max_seconds < self.retry_base_seconds:
            raise ValueError("retry_max_seconds must be at least retry_base_seconds")
        if self.max_delivery_bytes < self.max_message_bytes:
            raise ValueError("max_delivery_bytes must be at least max_message_bytes")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError) as e:
            raise ValueError(f"unknown time zone {self.timezone!r}") from e
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite inside the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir.resolve() / 'comity.db'}"

    @property
    def keys_dir(self) -> Path:
        """Where the node's private keys live (mode 0700)."""
        return self.data_dir / "keys"
