"""Evidence: sealed, signed packages of files for cross-border transfer.

A package is a set of encrypted files plus a manifest signed by the sender
(see :mod:`comity.evidence.package`). Only the intended recipient can decrypt
the files, and anyone holding the sender's public key can check that the
ciphertext is exactly what the sender sent. The files may be far larger than
memory: everything is streamed in fixed-size chunks.
"""

from __future__ import annotations

__all__: list[str] = []
