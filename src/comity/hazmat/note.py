"""DANGER: C2SP signed notes with Ed25519 keys, and C2SP tlog checkpoints.

A signed note (https://c2sp.org/signed-note) is UTF-8 text followed by a blank
line and signature lines ``— <key name> base64(key ID || signature)``. The
log's checkpoints (https://c2sp.org/tlog-checkpoint) are notes whose text is
``origin``, ``size`` and ``base64(root hash)`` lines. Getting a byte wrong
here (the em dash, the newline that ends the text, the key ID hash) makes
every signature fail to verify elsewhere, or worse, makes a parser read a
different text than the one that was signed. Application code should use the
ledger's recipes, not these functions.

Trust assumptions: the bytes given to :func:`open_note` and the text given to
:func:`parse_checkpoint` are untrusted and parsed strictly and within bounds
(canonical base64, exact lengths, no control characters, at most
:data:`MAX_SIGNATURES` signatures and :data:`MAX_NOTE_BYTES` bytes by
default). The :class:`NoteVerifier` keys handed to :func:`open_note` are
trusted: they come from the federation's configuration. Signatures by keys
the caller does not know are kept but never checked, as the specification
requires. Only :func:`open_note` makes a :class:`VerifiedNote`.

Witness cosignatures (https://c2sp.org/tlog-cosignature, Ed25519 type
``0x04``, ``cosignature/v1``) are extra signature lines on a checkpoint note:
:class:`CosignatureSigner` writes one, :func:`add_signature_lines` appends it,
:func:`cosignatures` checks those by trusted :class:`CosignatureVerifier`
keys. The cosigned message does not name the cosigner, so one Ed25519 key
must serve one cosigner name only, and never double as a log key.
:func:`cosignatures` checks nothing but cosignatures: it does not tell who
signed the checkpoint, so open the note with the log's key first.

Example::

    signer = NoteSigner.generate("example.org/log")
    text = Checkpoint("example.org/log", 0, merkle.EMPTY_ROOT).to_text()
    raw = sign_note(text, [signer])
    note = open_note(raw, [signer.verifier])      # raises on any tampering
    checkpoint = parse_checkpoint(note.text)
    witness = CosignatureSigner.generate("witness.example/w1")
    raw = add_signature_lines(raw, [witness.cosign(note.text, int(time.time()))])
    seen = cosignatures(raw, [witness.verifier])  # {"witness.example/w1": <time>}
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from comity.hazmat.keys import SIGNATURE_BYTES, BadSignature, KeyFormatError, VerifyKey
from comity.hazmat.merkle import HASH_SIZE, MAX_TREE_SIZE

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "MAX_COSIGNATURE_TIMESTAMP",
    "MAX_NOTE_BYTES",
    "MAX_SIGNATURES",
    "Checkpoint",
    "CosignatureSigner",
    "CosignatureVerifier",
    "MalformedCheckpointError",
    "MalformedNoteError",
    "NoteError",
    "NoteSignature",
    "NoteSignatureError",
    "NoteSigner",
    "NoteVerifier",
    "UnverifiedNoteError",
    "VerifiedNote",
    "add_signature_lines",
    "cosignatures",
    "cosigner_key_id",
    "key_id",
    "open_note",
    "parse_checkpoint",
    "parse_cosigner_key",
    "parse_signer_key",
    "parse_verifier_key",
    "sign_note",
]

ALG_ED25519 = 0x01
"""Signature type byte for Ed25519 in key IDs and key strings."""

ALG_COSIGNATURE_V1 = 0x04
"""Signature type byte for Ed25519 tlog cosignatures (``cosignature/v1``)."""

MAX_COSIGNATURE_TIMESTAMP = 2**63 - 1
"""Latest cosignature timestamp, in POSIX seconds, that tlog-cosignature allows."""

MAX_SIGNATURES = 100
"""Default cap on signature lines per note (the specification asks for >= 16)."""

MAX_NOTE_BYTES = 1 << 20
"""Default cap on a whole note: 100 post-quantum signatures fit with room."""

_SIG_PREFIX = "— "  # U+2014 EM DASH, then a space.
_KEY_ID_BYTES = 4
_SEED_BYTES = 32
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_HEX_ID = re.compile(r"[0-9a-f]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_TIMESTAMP_BYTES = 8
_COSIGNATURE_BYTES = _TIMESTAMP_BYTES + SIGNATURE_BYTES
_KEY_KINDS = {ALG_ED25519: "Ed25519 note key", ALG_COSIGNATURE_V1: "Ed25519 cosigner key"}


class NoteError(ValueError):
    """Base class: a signed note was refused."""


class MalformedNoteError(NoteError):
    """The note, or text offered for signing, breaks the signed-note format."""


class NoteSignatureError(NoteError):
    """A signature by a known key failed to verify, so the whole note is refused."""


class UnverifiedNoteError(NoteError):
    """No signature in the note is by a known key."""


class MalformedCheckpointError(ValueError):
    """Checkpoint text, or a checkpoint's fields, break the tlog-checkpoint format."""


def key_id(name: str, public: bytes) -> bytes:
    """The 4-byte Ed25519 key ID: ``SHA-256(name || 0x0A || 0x01 || public)[:4]``."""
    return _typed_key_id(name, ALG_ED25519, public)


def _typed_key_id(name: str, alg: int, public: bytes) -> bytes:
    """``SHA-256(name || 0x0A || alg || public)[:4]``: the type byte keeps a key's IDs apart."""
    data = name.encode("utf-8") + b"\n" + bytes([alg]) + public
    return hashlib.sha256(data).digest()[:_KEY_ID_BYTES]


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """A trusted Ed25519 note key: a key name and its public key.

    Raises:
        KeyFormatError: on construction, if the name is not a valid key name.
    """

    name: str
    public: VerifyKey

    def __post_init__(self) -> None:
        if not _valid_name(self.name):
            raise KeyFormatError(f"invalid note key name {self.name!r}")

    @property
    def key_id(self) -> bytes:
        """The key's 4-byte ID, derived from its name and public key."""
        return key_id(self.name, self.public.raw)

    def to_vkey(self) -> str:
        """The verifier key string ``name+hex(key ID)+base64(0x01 || public key)``."""
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.public.raw).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> None:
        """Check an Ed25519 ``signature`` over ``message``.

        Raises:
            BadSignature: if the signature is malformed or does not verify.
        """
        self.public.verify(signature, message)


class NoteSigner:
    """An Ed25519 note signing key with its key name."""

    __slots__ = ("_key", "name", "verifier")

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        """Wrap ``key`` under ``name``.

        Raises:
            KeyFormatError: if ``name`` is not a valid key name.
        """
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = NoteVerifier(name, VerifyKey(public))
        self.name = name
        self._key = key

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        """A fresh key from the operating system's CSPRNG.

        Raises:
            KeyFormatError: if ``name`` is not a valid key name.
        """
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def key_id(self) -> bytes:
        """The key's 4-byte ID."""
        return self.verifier.key_id

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        return self._key.sign(message)

    def to_skey(self) -> str:
        """The secret key string ``PRIVATE+KEY+name+hex(key ID)+base64(0x01 || seed)``.

        The result is as secret as the key itself.
        """
        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        encoded = base64.b64encode(bytes([ALG_ED25519]) + seed).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{encoded}"


def parse_verifier_key(vkey: str) -> NoteVerifier:
    """Parse a verifier key string ``name+hex(key ID)+base64(0x01 || public key)``.

    Raises:
        KeyFormatError: if the string is malformed, not canonical, not an
            Ed25519 key, or its key ID does not match its name and key.
    """
    name, hex_id, encoded = _split_vkey(vkey)
    claimed_id, public = _decode_key(name, hex_id, encoded)
    verifier = NoteVerifier(name, VerifyKey(public))
    if verifier.key_id != claimed_id:
        raise KeyFormatError("verifier key ID does not match its name and key")
    return verifier


def parse_signer_key(skey: str) -> NoteSigner:
    """Parse a secret key string ``PRIVATE+KEY+name+hex(key ID)+base64(0x01 || seed)``.

    Raises:
        KeyFormatError: if the string is malformed, not canonical, not an
            Ed25519 key, or its key ID does not match its name and key.
    """
    parts = skey.split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise KeyFormatError("secret key must read PRIVATE+KEY+name+id+key")
    claimed_id, seed = _decode_key(parts[2], parts[3], parts[4])
    signer = NoteSigner(parts[2], Ed25519PrivateKey.from_private_bytes(seed))
    if signer.key_id != claimed_id:
        raise KeyFormatError("secret key ID does not match its name and key")
    return signer


def _split_vkey(vkey: str) -> tuple[str, str, str]:
    """Split ``name+id+key`` at its first two ``+``: the base64 key may hold more."""
    name, sep1, rest = vkey.partition("+")
    hex_id, sep2, encoded = rest.partition("+")
    if not (sep1 and sep2):
        raise KeyFormatError("verifier key must read name+id+key")
    return name, hex_id, encoded


def _decode_key(
    name: str, hex_id: str, encoded: str, alg: int = ALG_ED25519
) -> tuple[bytes, bytes]:
    """Check the parts of a key string of type ``alg``; return (claimed key ID, 32 key bytes)."""
    if not _valid_name(name):
        raise KeyFormatError(f"invalid note key name {name!r}")
    if not _HEX_ID.fullmatch(hex_id):
        raise KeyFormatError("key ID must be 8 lowercase hex digits")
    try:
        raw = _b64decode(encoded)
    except ValueError as e:
        raise KeyFormatError(f"key: {e}") from e
    if len(raw) != 1 + _SEED_BYTES or raw[0] != alg:
        raise KeyFormatError(f"not an {_KEY_KINDS[alg]}")
    return bytes.fromhex(hex_id), raw[1:]


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID and signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def to_line(self) -> str:
        """The signature line, em dash first, newline last."""
        encoded = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{_SIG_PREFIX}{self.name} {encoded}\n"


@dataclass(frozen=True, slots=True)
class VerifiedNote:
    """A note at least one known key has signed; only :func:`open_note` makes one.

    ``signatures`` all verified under a caller-supplied key.
    ``unverified_signatures`` are by keys the caller does not know: kept, as
    a witness needs them, but not checked and not to be trusted.
    """

    text: str
    signatures: tuple[NoteSignature, ...]
    unverified_signatures: tuple[NoteSignature, ...]


def sign_note(text: str, signers: Sequence[NoteSigner]) -> bytes:
    """Sign ``text`` with every signer and return the encoded note.

    Args:
        text: the note text; it must end with a newline.
        signers: one or more keys, with distinct (name, key ID) pairs.

    Returns:
        ``text``, a blank line, then one signature line per signer, as UTF-8.

    Raises:
        MalformedNoteError: if ``text`` is not valid note text.
        ValueError: if there are no signers, too many, or repeated ones.
    """
    _check_text(text)
    ids = {(s.name, s.key_id) for s in signers}
    if not 0 < len(signers) <= MAX_SIGNATURES or len(ids) != len(signers):
        raise ValueError(f"need 1 to {MAX_SIGNATURES} distinct signers")
    message = text.encode("utf-8")
    lines = [NoteSignature(s.name, s.key_id, s.sign(message)).to_line() for s in signers]
    return (text + "\n" + "".join(lines)).encode("utf-8")


def open_note(
    raw: bytes,
    verifiers: Iterable[NoteVerifier],
    *,
    max_bytes: int = MAX_NOTE_BYTES,
    max_signatures: int = MAX_SIGNATURES,
) -> VerifiedNote:
    """Parse an untrusted signed note and verify it against known keys.

    Args:
        raw: the encoded note (untrusted).
        verifiers: the trusted keys; signatures by any other key are ignored.
        max_bytes: refuse notes longer than this.
        max_signatures: refuse notes with more signature lines than this.

    Returns:
        The note, with the signatures that verified and the ignored ones.

    Raises:
        MalformedNoteError: if the note breaks the format or the limits, or
            carries two signatures by the same known key.
        NoteSignatureError: if a signature by a known key does not verify.
        UnverifiedNoteError: if no signature is by a known key.
        ValueError: if two verifiers share a name and key ID (a caller bug).
    """
    text, signatures = _split_note(raw, max_bytes, max_signatures)
    known = _index_verifiers(verifiers)
    message = text.encode("utf-8")
    verified: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    for sig in signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            unverified.append(sig)
            continue
        if any(v.name == sig.name and v.key_id == sig.key_id for v in verified):
            raise MalformedNoteError(f"repeated signature by {sig.name}")
        try:
            verifier.verify(message, sig.signature)
        except BadSignature as e:
            raise NoteSignatureError(f"signature by {sig.name} does not verify") from e
        verified.append(sig)
    if not verified:
        raise UnverifiedNoteError("no signature by a known key")
    return VerifiedNote(text, tuple(verified), tuple(unverified))


def _split_note(
    raw: bytes, max_bytes: int, max_signatures: int
) -> tuple[str, list[NoteSignature]]:
    """Split a note at its last blank line into text and parsed signature lines."""
    if len(raw) > max_bytes:
        raise MalformedNoteError(f"note is longer than {max_bytes} bytes")
    try:
        note = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MalformedNoteError("note is not valid UTF-8") from e
    if _CONTROL.search(note):
        raise MalformedNoteError("note contains control characters")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise MalformedNoteError("note has no blank line before its signatures")
    text, block = note[: cut + 1], note[cut + 2 :]
    if not text.strip("\n"):
        raise MalformedNoteError("signatures without any text")
    if not block.endswith("\n"):
        raise MalformedNoteError("signature block is empty or lacks its final newline")
    lines = block[:-1].split("\n")
    if len(lines) > max_signatures:
        raise MalformedNoteError(f"note has more than {max_signatures} signatures")
    return text, [_parse_signature_line(line) for line in lines]


def _parse_signature_line(line: str) -> NoteSignature:
    """Parse ``— name base64(key ID || signature)`` (without its newline)."""
    if not line.startswith(_SIG_PREFIX):
        raise MalformedNoteError("signature line must start with an em dash and a space")
    name, sep, encoded = line[len(_SIG_PREFIX) :].partition(" ")
    if not sep or not _valid_name(name):
        raise MalformedNoteError("signature line has no valid key name")
    try:
        data = _b64decode(encoded)
    except ValueError as e:
        raise MalformedNoteError(f"signature: {e}") from e
    if len(data) <= _KEY_ID_BYTES:
        raise MalformedNoteError("signature is too short")
    return NoteSignature(name, data[:_KEY_ID_BYTES], data[_KEY_ID_BYTES:])


def _index_verifiers(verifiers: Iterable[NoteVerifier]) -> dict[tuple[str, bytes], NoteVerifier]:
    """Key the trusted verifiers by (name, key ID), refusing ambiguity."""
    known: dict[tuple[str, bytes], NoteVerifier] = {}
    for v in verifiers:
        if known.setdefault((v.name, v.key_id), v) != v:
            raise ValueError(f"two verifiers named {v.name} share key ID {v.key_id.hex()}")
    return known


def _check_text(text: str) -> None:
    """Refuse text that cannot be the text of a signed note."""
    if not text.endswith("\n") or not text.strip("\n"):
        raise MalformedNoteError("note text must be non-blank and end with a newline")
    if _CONTROL.search(text):
        raise MalformedNoteError("note text contains control characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise MalformedNoteError("note text is not encodable as UTF-8") from e


def _valid_name(name: str) -> bool:
    """Key names are non-empty, without spaces, ``+`` or control characters."""
    return bool(name) and "+" not in name and not any(
        c.isspace() or c < " " for c in name
    )


def _b64decode(text: str) -> bytes:
    """Decode standard padded base64, refusing any other spelling of the bytes.

    Raises:
        ValueError: if ``text`` is not canonical standard base64.
    """
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as e:
        raise ValueError("invalid base64") from e
    if base64.b64encode(data).decode("ascii") != text:
        raise ValueError("non-canonical base64")
    return data


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A C2SP tlog checkpoint: the text a log signs to commit to a tree head.

    Raises:
        MalformedCheckpointError: on construction, if the origin is empty or
            holds control characters, the size is out of range, the root is
            not 32 bytes, or an extension line is empty or multi-line.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for line in (self.origin, *self.extensions):
            if not line or _CONTROL.search(line) or "\n" in line:
                raise MalformedCheckpointError("checkpoint lines must be non-empty single lines")
        if isinstance(self.size, bool) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise MalformedCheckpointError(f"tree size {self.size} is out of range")
        if len(self.root_hash) != HASH_SIZE:
            raise MalformedCheckpointError(f"root hash must be {HASH_SIZE} bytes")

    def to_text(self) -> str:
        """The note text: origin, size, base64 root, extension lines, each ending in newline."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        lines = (self.origin, str(self.size), root, *self.extensions)
        return "".join(f"{line}\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint text strictly, normally the text of a :class:`VerifiedNote`.

    Raises:
        MalformedCheckpointError: if a line is missing or empty, the text does
            not end in a newline, the size is not canonical decimal within
            range, or the root is not canonical base64 of 32 bytes.
    """
    if not text.endswith("\n"):
        raise MalformedCheckpointError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedCheckpointError("checkpoint needs origin, size and root lines")
    origin, size_text, root_text, *extensions = lines
    if not _DECIMAL.fullmatch(size_text):
        raise MalformedCheckpointError("tree size must be decimal without leading zeros")
    try:
        root = _b64decode(root_text)
    except ValueError as e:
        raise MalformedCheckpointError(f"root hash: {e}") from e
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


# Witness cosignatures: https://c2sp.org/tlog-cosignature, Ed25519, cosignature/v1.


def cosigner_key_id(name: str, public: bytes) -> bytes:
    """The 4-byte cosigner key ID: ``SHA-256(name || 0x0A || 0x04 || public)[:4]``."""
    return _typed_key_id(name, ALG_COSIGNATURE_V1, public)


def _cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    """``cosignature/v1``, ``time <T>``, then the checkpoint text, each line newline-terminated.

    The header line keeps a cosignature from ever reading as a plain note
    signature of the same text. The time line puts the timestamp, which the
    line carries in clear before the signature, under the signature.
    """
    _check_text(checkpoint_text)
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


@dataclass(frozen=True, slots=True)
class CosignatureVerifier:
    """A trusted witness key: a cosigner name and its Ed25519 public key.

    Raises:
        KeyFormatError: on construction, if the name is not a valid key name.
    """

    name: str
    public: VerifyKey

    def __post_init__(self) -> None:
        if not _valid_name(self.name):
            raise KeyFormatError(f"invalid cosigner name {self.name!r}")

    @property
    def key_id(self) -> bytes:
        """The cosigner's 4-byte key ID (type ``0x04``)."""
        return cosigner_key_id(self.name, self.public.raw)

    def to_vkey(self) -> str:
        """The verifier key string ``name+hex(key ID)+base64(0x04 || public key)``."""
        encoded = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + self.public.raw).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verify(self, checkpoint_text: str, line_sig: bytes) -> int:
        """Check one cosignature over ``checkpoint_text`` and return its timestamp.

        Args:
            checkpoint_text: the cosigned note text, final newline included.
            line_sig: the signature field of the line, after its key ID:
                big-endian u64 timestamp then the 64-byte Ed25519 signature.

        Returns:
            The timestamp, in POSIX seconds. It is not compared with any
            clock: whether a future or stale one matters is the caller's policy.

        Raises:
            MalformedNoteError: if ``line_sig`` is not 72 bytes, its timestamp
                is 2**63 or later, or the text is not valid note text.
            NoteSignatureError: if the signature does not verify.
        """
        if len(line_sig) != _COSIGNATURE_BYTES:
            raise MalformedNoteError(
                f"cosignature by {self.name} is {len(line_sig)} bytes, not {_COSIGNATURE_BYTES}"
            )
        timestamp = int.from_bytes(line_sig[:_TIMESTAMP_BYTES], "big")
        if timestamp > MAX_COSIGNATURE_TIMESTAMP:
            raise MalformedNoteError(f"cosignature by {self.name} has a timestamp past 2**63 - 1")
        message = _cosigned_message(checkpoint_text, timestamp)
        try:
            self.public.verify(line_sig[_TIMESTAMP_BYTES:], message)
        except BadSignature as e:
            raise NoteSignatureError(f"cosignature by {self.name} does not verify") from e
        return timestamp


class CosignatureSigner:
    """A witness's Ed25519 cosigning key with its cosigner name.

    The key must be this cosigner's alone: the signed message does not name
    the cosigner, so a key shared by two names makes one witness count twice.
    """

    __slots__ = ("_key", "name", "verifier")

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        """Wrap ``key`` under ``name``.

        Raises:
            KeyFormatError: if ``name`` is not a valid key name.
        """
        public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = CosignatureVerifier(name, VerifyKey(public))
        self.name = name
        self._key = key

    @classmethod
    def generate(cls, name: str) -> CosignatureSigner:
        """A fresh key from the operating system's CSPRNG.

        Raises:
            KeyFormatError: if ``name`` is not a valid key name.
        """
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def key_id(self) -> bytes:
        """The cosigner's 4-byte key ID (type ``0x04``)."""
        return self.verifier.key_id

    def cosign(self, checkpoint_text: str, timestamp: int) -> str:
        """Cosign checkpoint text as of ``timestamp`` and return one signature line.

        This only signs. A witness must first have opened the checkpoint with
        the log's key and checked it is consistent with what it saw before:
        the cosignature states exactly that.

        Args:
            checkpoint_text: the checkpoint note text, final newline included.
            timestamp: POSIX seconds, 0 to 2**63 - 1.

        Returns:
            ``— <name> base64(key ID || u64 timestamp || signature)`` and a newline.

        Raises:
            MalformedNoteError: if the text is not valid note text.
            MalformedCheckpointError: if the text is not a checkpoint: a
                witness vouches for tree heads, never for arbitrary text.
            ValueError: if ``timestamp`` is out of range.
        """
        message = _cosigned_message(checkpoint_text, _check_timestamp(timestamp))
        parse_checkpoint(checkpoint_text)
        stamp = timestamp.to_bytes(_TIMESTAMP_BYTES, "big")
        return NoteSignature(self.name, self.key_id, stamp + self._key.sign(message)).to_line()


def _check_timestamp(timestamp: int) -> int:
    """Refuse a cosignature time that is not an int in 0 .. 2**63 - 1."""
    if isinstance(timestamp, bool) or not 0 <= timestamp <= MAX_COSIGNATURE_TIMESTAMP:
        raise ValueError(f"cosignature timestamp {timestamp!r} is out of range")
    return timestamp


def parse_cosigner_key(vkey: str) -> CosignatureVerifier:
    """Parse a cosigner key string ``name+hex(key ID)+base64(0x04 || public key)``.

    Raises:
        KeyFormatError: if the string is malformed, not canonical, not an
            Ed25519 cosigner key (type ``0x04``; a ``0x01`` note key is
            refused), or its key ID does not match its name and key.
    """
    name, hex_id, encoded = _split_vkey(vkey)
    claimed_id, public = _decode_key(name, hex_id, encoded, ALG_COSIGNATURE_V1)
    verifier = CosignatureVerifier(name, VerifyKey(public))
    if verifier.key_id != claimed_id:
        raise KeyFormatError("cosigner key ID does not match its name and key")
    return verifier


def cosignatures(
    note: bytes,
    verifiers: Sequence[CosignatureVerifier],
    *,
    max_bytes: int = MAX_NOTE_BYTES,
    max_signatures: int = MAX_SIGNATURES,
) -> dict[str, int]:
    """Check the cosignatures on a signed note by the trusted cosigners.

    This does not check who signed the note itself: open it with the log's
    key (:func:`open_note`) before trusting its text or counting these.

    Args:
        note: the encoded note (untrusted), normally a checkpoint.
        verifiers: the trusted cosigners; lines by any other (name, key ID)
            are ignored, as the signed-note specification requires.
        max_bytes: refuse notes longer than this.
        max_signatures: refuse notes with more signature lines than this.

    Returns:
        ``{cosigner name: timestamp}`` for every trusted cosigner that signed.

    Raises:
        MalformedNoteError: if the note breaks the format or the limits, a
            trusted cosigner signed twice, or its line is malformed.
        NoteSignatureError: if a trusted cosigner's line does not verify.
        ValueError: if two verifiers share a name, or a public key (a caller
            bug that would let one witness count twice).
    """
    text, signatures = _split_note(note, max_bytes, max_signatures)
    known = _index_cosigners(verifiers)
    found: dict[str, int] = {}
    for sig in signatures:
        cosigner = known.get((sig.name, sig.key_id))
        if cosigner is None:
            continue
        # Names are unique among the trusted cosigners, so a name seen before
        # is the same key again: two timestamps, and no way to pick one.
        if sig.name in found:
            raise MalformedNoteError(f"repeated cosignature by {sig.name}")
        found[sig.name] = cosigner.verify(text, sig.signature)
    return found


def _index_cosigners(
    verifiers: Sequence[CosignatureVerifier],
) -> dict[tuple[str, bytes], CosignatureVerifier]:
    """Key the trusted cosigners by (name, key ID), one name and one key each."""
    by_name: dict[str, CosignatureVerifier] = {}
    by_key: dict[bytes, CosignatureVerifier] = {}
    for v in verifiers:
        if by_name.setdefault(v.name, v) != v:
            raise ValueError(f"two cosigners are named {v.name}")
        # The cosigned message does not name the cosigner: one key under two
        # names would make every signature by it count twice.
        other = by_key.setdefault(v.public.raw, v)
        if other != v:
            raise ValueError(f"cosigners {other.name} and {v.name} share one public key")
    return {(v.name, v.key_id): v for v in by_name.values()}


def add_signature_lines(
    note: bytes,
    lines: Sequence[str],
    *,
    max_bytes: int = MAX_NOTE_BYTES,
    max_signatures: int = MAX_SIGNATURES,
) -> bytes:
    """Append signature lines, such as cosignatures, to a signed note.

    Nothing is verified here: the result is for :func:`open_note` and
    :func:`cosignatures` to check, like any note. A line already on the note
    (or given twice) is added once.

    Args:
        note: an encoded signed note.
        lines: signature lines, each ``— <name> <base64>`` and a newline.
        max_bytes: refuse a result longer than this.
        max_signatures: refuse a result with more signature lines than this.

    Returns:
        ``note`` with the new lines after its own.

    Raises:
        MalformedNoteError: if ``note`` or a line is malformed, a line carries
            a different signature by a (name, key ID) already on the note
            (verifiers would refuse the repetition), or the result would
            exceed the limits.
    """
    _, existing = _split_note(note, max_bytes, max_signatures)
    # Parsed signatures re-encode to the exact line: only canonical base64 parses.
    present = {sig.to_line() for sig in existing}
    signers = {(sig.name, sig.key_id) for sig in existing}
    added: list[str] = []
    for line in lines:
        if not line.endswith("\n") or "\n" in line[:-1]:
            raise MalformedNoteError("a signature line must be one line ending in a newline")
        sig = _parse_signature_line(line[:-1])
        if line in present:
            continue
        if (sig.name, sig.key_id) in signers:
            raise MalformedNoteError(
                f"note already has another signature by {sig.name} ({sig.key_id.hex()})"
            )
        present.add(line)
        signers.add((sig.name, sig.key_id))
        added.append(line)
    result = note + "".join(added).encode("utf-8")
    _split_note(result, max_bytes, max_signatures)
    return result
