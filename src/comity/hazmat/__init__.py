"""DANGER: low-level cryptographic and encoding primitives.

This package holds canonical JSON encoding, Ed25519/X25519 key handling and
signing. It is full of sharp edges: a mistake here silently breaks the
authenticity of every message Comity exchanges. Application code should call
the high-level recipes in ``comity.identity`` and ``comity.federation``
(``sign_envelope``, ``open_envelope``, ...) and never these modules directly.

Trust assumptions: inputs handed to ``verify_*`` functions are untrusted;
everything else (keys loaded from the node's own data directory) is trusted.
"""

from __future__ import annotations

__all__: list[str] = []
