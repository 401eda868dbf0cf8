"""DANGER: Ed25519 signing keys and X25519 encryption keys.

Keys are raw 32-byte values. Public keys and signatures travel as unpadded
base64url text; private keys are written to files that only the owner can
read (mode 0600), atomically, so a crash never leaves half a key behind.
``verify`` raises on failure and never returns a bool, so a forgotten check
cannot turn into an accepted forgery.

Example::

    key = SigningKey.generate()
    sig = key.sign(b"msg")
    key.public.verify(sig, b"msg")      # raises BadSignature on tampering
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

__all__ = [
    "BadSignature",
    "EncryptionKey",
    "KeyFormatError",
    "SigningKey",
    "VerifyKey",
    "b64d",
    "b64e",
    "write_private_file",
]

KEY_BYTES = 32
SIGNATURE_BYTES = 64


class BadSignature(Exception):
    """A signature did not verify under the given key."""


class KeyFormatError(ValueError):
    """Key or signature bytes have the wrong encoding or length."""


def b64e(data: bytes) -> str:
    """Encode bytes as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str, *, length: int | None = None) -> bytes:
    """Decode unpadded base64url, strictly (canonical form, exact length).

    Raises:
        KeyFormatError: if ``text`` is not canonical base64url or has the
            wrong decoded length.
    """
    if not isinstance(text, str) or not text.isascii() or "=" in text:
        raise KeyFormatError("expected unpadded base64url text")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise KeyFormatError(f"invalid base64url: {e}") from e
    if b64e(data) != text:
        raise KeyFormatError("non-canonical base64url")
    if length is not None and len(data) != length:
        raise KeyFormatError(f"expected {length} bytes, got {len(data)}")
    return data


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """An Ed25519 public key."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != KEY_BYTES:
            raise KeyFormatError(f"Ed25519 public key must be {KEY_BYTES} bytes")

    @classmethod
    def from_b64(cls, text: str) -> VerifyKey:
        """Parse an unpadded base64url public key.

        Raises:
            KeyFormatError: on bad encoding or length.
        """
        return cls(b64d(text, length=KEY_BYTES))

    def b64(self) -> str:
        """The key as unpadded base64url."""
        return b64e(self.raw)

    def key_id(self) -> str:
        """A short stable identifier: hex of the first 8 bytes of SHA-256."""
        return hashlib.sha256(self.raw).hexdigest()[:16]

    def verify(self, signature: bytes, data: bytes) -> None:
        """Verify ``signature`` over ``data``.

        Raises:
            BadSignature: if the signature is invalid or malformed.
        """
        if len(signature) != SIGNATURE_BYTES:
            raise BadSignature("signature has the wrong length")
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except InvalidSignature as e:
            raise BadSignature("signature does not verify") from e


class SigningKey:
    """An Ed25519 private key. Never serialised except to a 0600 file."""

    __slots__ = ("_key", "public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public = VerifyKey(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    @classmethod
    def generate(cls) -> SigningKey:
        """Create a fresh key from the operating system's CSPRNG."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        """Load a raw 32-byte private key from ``path``.

        Raises:
            KeyFormatError: if the file does not hold exactly 32 bytes.
        """
        raw = path.read_bytes()
        if len(raw) != KEY_BYTES:
            raise KeyFormatError(f"{path}: private key must be {KEY_BYTES} bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def save(self, path: Path) -> None:
        """Write the private key to ``path`` with mode 0600, atomically."""
        write_private_file(
            path, self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        )

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` (Ed25519, pure)."""
        return self._key.sign(data)

    def to_cryptography(self) -> Ed25519PrivateKey:
        """The underlying ``cryptography`` key, for other hazmat recipes (signed notes)."""
        return self._key


class EncryptionKey:
    """An X25519 private key, used to open bodies sealed to this node."""

    __slots__ = ("_key", "public_raw")

    def __init__(self, key: X25519PrivateKey) -> None:
        self._key = key
        self.public_raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @classmethod
    def generate(cls) -> EncryptionKey:
        """Create a fresh key from the operating system's CSPRNG."""
        return cls(X25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> EncryptionKey:
        """Load a raw 32-byte private key from ``path``.

        Raises:
            KeyFormatError: if the file does not hold exactly 32 bytes.
        """
        raw = path.read_bytes()
        if len(raw) != KEY_BYTES:
            raise KeyFormatError(f"{path}: private key must be {KEY_BYTES} bytes")
        return cls(X25519PrivateKey.from_private_bytes(raw))

    def save(self, path: Path) -> None:
        """Write the private key to ``path`` with mode 0600, atomically."""
        write_private_file(
            path, self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        )

    def public_b64(self) -> str:
        """The public key as unpadded base64url."""
        return b64e(self.public_raw)

    def private_raw(self) -> bytes:
        """The raw 32-byte private scalar, for libsodium recipes (``hazmat.sealing``).

        X25519 keys from ``cryptography`` and libsodium's curve25519 keys are the
        same bytes, so the sealed-box code can use this key directly. Never log
        or transmit the result.
        """
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by the owner only, crash-safely.

    The file is created 0600 from the start (never world-readable, even for a
    moment), fsynced, then renamed over the target, and the directory fsynced.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
