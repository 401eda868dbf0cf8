"""DANGER: sealed boxes and chunked stream encryption (libsodium).

Thin, typed wrappers over ``nacl.bindings`` for the two libsodium
constructions the evidence package format is built from:

* **Sealed boxes** (``crypto_box_seal``): anyone holding a node's X25519
  public key can encrypt a short secret that only that node can open. A sealed
  box is anonymous: it says nothing about who sealed it, so whatever a sealed
  box carries must be authenticated by something else (for evidence, the
  sender's signature over the manifest that lists the sealed key).
* **Secret streams** (``crypto_secretstream_xchacha20poly1305``): a long
  message cut into chunks, each encrypted and authenticated under one key
  with a nonce chain that libsodium maintains, so chunks cannot be dropped,
  repeated or reordered. The last chunk carries ``TAG_FINAL``; a stream that
  never showed that tag was truncated, which :attr:`StreamOpener.finished`
  lets the caller detect.

Trust assumptions: keys handed to these functions are trusted (the caller
owns them); sealed boxes and stream chunks are untrusted. Every failure to
authenticate raises :class:`SealingError`; nothing here returns a bool, and no
plaintext from a chunk that failed is ever returned. Stream keys must never
be reused for a second stream.

X25519 raw keys from ``cryptography`` (:class:`~comity.hazmat.keys.EncryptionKey`)
are the same bytes as libsodium's curve25519 box keys, so no conversion is
needed.

Example::

    key = new_stream_key()
    sealer = StreamSealer(key)
    c1 = sealer.push(b"part 1", b"ad-1", final=False)
    c2 = sealer.push(b"part 2", b"ad-2", final=True)
    opener = StreamOpener(key, sealer.header)
    opener.pull(c1, b"ad-1")            # (b"part 1", False)
    opener.pull(c2, b"ad-2")            # (b"part 2", True); opener.finished
"""

from __future__ import annotations

import nacl.bindings as sodium
import nacl.exceptions

from comity.hazmat.keys import EncryptionKey

__all__ = [
    "SEAL_OVERHEAD",
    "STREAM_ABYTES",
    "STREAM_HEADER_BYTES",
    "STREAM_KEY_BYTES",
    "SealingError",
    "StreamOpener",
    "StreamSealer",
    "new_stream_key",
    "open_sealed",
    "seal",
]

#: Bytes a sealed box adds to its plaintext (ephemeral public key + MAC).
SEAL_OVERHEAD: int = sodium.crypto_box_SEALBYTES
#: Length of a secret-stream key.
STREAM_KEY_BYTES: int = sodium.crypto_secretstream_xchacha20poly1305_KEYBYTES
#: Length of the header that starts every secret stream (its random nonce).
STREAM_HEADER_BYTES: int = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
#: Bytes each stream chunk adds to its plaintext (tag byte + MAC).
STREAM_ABYTES: int = sodium.crypto_secretstream_xchacha20poly1305_ABYTES

_PUBLIC_KEY_BYTES: int = sodium.crypto_box_PUBLICKEYBYTES
_TAG_MESSAGE: int = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL: int = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL


class SealingError(ValueError):
    """A sealed box or stream chunk did not authenticate, or is malformed."""


def seal(recipient_public: bytes, plaintext: bytes) -> bytes:
    """Encrypt ``plaintext`` so only the holder of ``recipient_public``'s key can read it.

    Args:
        recipient_public: the recipient's raw 32-byte X25519 public key.
        plaintext: the secret to seal (short: keys, not bulk data).

    Raises:
        SealingError: if ``recipient_public`` is not 32 bytes.

    Returns:
        ``SEAL_OVERHEAD + len(plaintext)`` bytes.
    """
    if len(recipient_public) != _PUBLIC_KEY_BYTES:
        raise SealingError(f"recipient public key must be {_PUBLIC_KEY_BYTES} bytes")
    return sodium.crypto_box_seal(plaintext, recipient_public)


def open_sealed(recipient: EncryptionKey, sealed: bytes) -> bytes:
    """Open a sealed box addressed to ``recipient``.

    Raises:
        SealingError: if the box is malformed, was sealed to another key, or
            was altered.

    Returns:
        The plaintext.
    """
    if len(sealed) < SEAL_OVERHEAD:
        raise SealingError("sealed box is too short")
    try:
        return sodium.crypto_box_seal_open(sealed, recipient.public_raw, recipient.private_raw())
    except nacl.exceptions.CryptoError as e:
        raise SealingError("sealed box does not open with this key") from e


def new_stream_key() -> bytes:
    """A fresh random secret-stream key from libsodium's CSPRNG."""
    return sodium.crypto_secretstream_xchacha20poly1305_keygen()


def _check_key(key: bytes) -> None:
    if len(key) != STREAM_KEY_BYTES:
        raise ValueError(f"stream key must be {STREAM_KEY_BYTES} bytes")


class StreamSealer:
    """Encrypts one stream, chunk by chunk; the last chunk must say ``final=True``.

    ``header`` must be stored or sent before the first chunk: the opener
    needs it. After the final chunk the sealer refuses more input, so a
    caller bug cannot produce data after ``TAG_FINAL``.
    """

    __slots__ = ("_finished", "_state", "header")

    def __init__(self, key: bytes) -> None:
        """Start a stream under ``key`` (which must not have been used before).

        Raises:
            ValueError: if ``key`` is not ``STREAM_KEY_BYTES`` long.
        """
        _check_key(key)
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        self.header: bytes = sodium.crypto_secretstream_xchacha20poly1305_init_push(
            self._state, key
        )
        self._finished = False

    def push(self, chunk: bytes, ad: bytes, *, final: bool) -> bytes:
        """Encrypt ``chunk``, authenticating ``ad`` with it.

        Raises:
            ValueError: if the stream was already finished (a caller bug).

        Returns:
            ``len(chunk) + STREAM_ABYTES`` bytes of ciphertext.
        """
        if self._finished:
            raise ValueError("stream already finished")
        tag = _TAG_FINAL if final else _TAG_MESSAGE
        out = sodium.crypto_secretstream_xchacha20poly1305_push(self._state, chunk, ad, tag)
        self._finished = final
        return out


class StreamOpener:
    """Decrypts one stream, chunk by chunk, in order.

    Any failure poisons the opener: libsodium's state is undefined after a
    chunk fails, and a caller that catches the error must not be able to
    carry on as if the stream were intact. Only ``TAG_MESSAGE`` and
    ``TAG_FINAL`` are accepted (the formats built on this never use the
    others), and any chunk after ``TAG_FINAL`` is rejected. A stream is
    complete only if :attr:`finished` is true when the input ends.
    """

    __slots__ = ("_broken", "_finished", "_state")

    def __init__(self, key: bytes, header: bytes) -> None:
        """Start opening the stream that began with ``header``.

        Raises:
            ValueError: if ``key`` has the wrong length (a caller bug).
            SealingError: if ``header`` has the wrong length.
        """
        _check_key(key)
        if len(header) != STREAM_HEADER_BYTES:
            raise SealingError(f"stream header must be {STREAM_HEADER_BYTES} bytes")
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(self._state, header, key)
        self._finished = False
        self._broken = False

    @property
    def finished(self) -> bool:
        """Whether the chunk carrying ``TAG_FINAL`` has been opened."""
        return self._finished

    def pull(self, chunk: bytes, ad: bytes) -> tuple[bytes, bool]:
        """Decrypt and authenticate the next chunk.

        Raises:
            SealingError: if the chunk does not authenticate (altered, out of
                order, wrong key or ``ad``), carries an unexpected tag, comes
                after the final chunk, or an earlier chunk failed.

        Returns:
            ``(plaintext, final)``, where ``final`` says this was the last chunk.
        """
        if self._broken:
            raise SealingError("stream already failed")
        if self._finished:
            self._broken = True
            raise SealingError("data after the final chunk")
        if len(chunk) < STREAM_ABYTES:
            self._broken = True
            raise SealingError("stream chunk is too short")
        try:
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
                self._state, chunk, ad
            )
        except nacl.exceptions.CryptoError as e:
            self._broken = True
            raise SealingError("stream chunk does not authenticate") from e
        if tag not in (_TAG_MESSAGE, _TAG_FINAL):
            self._broken = True
            raise SealingError(f"unexpected stream tag {tag}")
        self._finished = tag == _TAG_FINAL
        return plain, self._finished
