"""The evidence package format: encrypted files plus a manifest the sender signs.

A package carries files of any size from a sender node to one recipient
node. Each file is encrypted under its own random key with libsodium's secret
stream in chunks of :data:`CHUNK` plaintext bytes; the key is sealed to the
recipient's X25519 public key. Every chunk's additional data binds the package
id, the file's index and the chunk number, so a chunk cannot be moved,
reordered or reused elsewhere, and the last chunk carries ``TAG_FINAL`` so a
cut-off file is detected. A ciphertext file is the 24-byte stream header
followed by the chunks; an empty file still has one (final) chunk.

The manifest lists, per file, the plaintext and ciphertext sizes and SHA-256
digests and the sealed key, and the sender signs its RFC 8785 encoding
(prefixed by ``comity.evidence.manifest.v1\\0``). Anyone with the sender's
public key can thus check the ciphertext (custody without decryption), and
only the recipient can open it. Version 1 is closed: unknown fields are
rejected, and new fields need a new version.

Trust assumptions: the sender's verify key and the recipient's private key
are trusted (the caller looked them up); the signed manifest and every
ciphertext byte are untrusted until :func:`parse_signed_manifest`,
:func:`verify_ciphertext` or :func:`open_package` accept them. Plaintext
reaches its final path only after every check on every file of the package
has passed. Files are streamed, never held whole in memory: memory use is a
few chunks whatever the file size.

Example::

    signed = build_package([("mail.eml", src)], enc_dir, package_id=pid, ...)
    wire = signed.to_dict()                          # send with the .enc files
    manifest = parse_signed_manifest(wire, sender_verify_key)
    verify_ciphertext(manifest, enc_dir)             # custody: no key needed
    paths = open_package(manifest, enc_dir, out_dir, recipient_key)
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import mimetypes
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from comity.clock import parse_ts
from comity.evidence.errors import ManifestError, TamperedError, UnsafeNameError
from comity.hazmat import canonical
from comity.hazmat.keys import (
    BadSignature,
    EncryptionKey,
    KeyFormatError,
    SigningKey,
    VerifyKey,
    b64d,
    b64e,
)
from comity.hazmat.sealing import (
    SEAL_OVERHEAD,
    STREAM_ABYTES,
    STREAM_HEADER_BYTES,
    STREAM_KEY_BYTES,
    SealingError,
    StreamOpener,
    StreamSealer,
    new_stream_key,
    open_sealed,
    seal,
)

__all__ = [
    "CHUNK",
    "MANIFEST_TYPE",
    "MAX_FILES",
    "MAX_FILE_SIZE",
    "CipherSink",
    "FileEntry",
    "Manifest",
    "SignedManifest",
    "build_package",
    "check_name",
    "cipher_file_name",
    "cipher_size_for",
    "fsync_dir",
    "open_package",
    "parse_signed_manifest",
    "verify_ciphertext",
    "verify_package",
]

#: Plaintext bytes per encrypted chunk.
CHUNK = 1 << 20
MANIFEST_TYPE = "comity.evidence.manifest"
#: Most files one package may hold (indexes are written with four digits).
MAX_FILES = 10_000
#: Largest file accepted (16 TiB): keeps every size an exact JSON integer.
MAX_FILE_SIZE = 1 << 44

_VERSION = 1
_SIGNING_PREFIX = b"comity.evidence.manifest.v1\0"
_AD_PREFIX = b"comity.evidence.v1\0"
_SIGNATURE_BYTES = 64
_SEALED_KEY_BYTES = SEAL_OVERHEAD + STREAM_KEY_BYTES
_MAX_JSON_INT = 2**53 - 1
_MAX_NAME_BYTES = 255
_MAX_TEXT = 256
_SIGNED_KEYS = frozenset({"manifest", "signature"})
_MANIFEST_KEYS = frozenset({"type", "v", "package_id", "request_id", "sender", "recipient",
                            "recipient_serial", "created", "files", "total_size"})
_FILE_KEYS = frozenset({"index", "name", "size", "sha256", "cipher_size", "cipher_sha256",
                        "sealed_key", "media_type"})
_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
_NODE_ID = re.compile(r"\A[0-9a-f]{32}\Z")
_PRINTABLE = re.compile(r"\A[\x20-\x7e]+\Z")
# RFC 6838 restricted names, without parameters: a media type is a label here.
_MEDIA_TYPE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
                         r"/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\Z")
# Only the built-in table, never the host's mime.types: two senders given the
# same names then produce the same manifest.
_MIME = mimetypes.MimeTypes()

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a package, as its verified manifest describes it."""

    index: int
    name: str
    size: int
    sha256: str
    cipher_size: int
    cipher_sha256: str
    sealed_key: bytes
    media_type: str

    @property
    def chunks(self) -> int:
        """How many stream chunks the ciphertext holds (at least one)."""
        return max(1, -(-self.size // CHUNK))

    def to_dict(self) -> dict[str, Any]:
        """The wire form of this entry."""
        return {"index": self.index, "name": self.name, "size": self.size,
                "sha256": self.sha256, "cipher_size": self.cipher_size,
                "cipher_sha256": self.cipher_sha256, "sealed_key": b64e(self.sealed_key),
                "media_type": self.media_type}


@dataclass(frozen=True, slots=True)
class Manifest:
    """A package manifest. Instances from :func:`parse_signed_manifest` are verified."""

    package_id: str
    request_id: str
    sender: str
    recipient: str
    recipient_serial: int
    created: str
    files: tuple[FileEntry, ...]
    total_size: int

    def to_dict(self) -> dict[str, Any]:
        """The wire form of the manifest (what the sender signs)."""
        return {"type": MANIFEST_TYPE, "v": _VERSION, "package_id": self.package_id,
                "request_id": self.request_id, "sender": self.sender,
                "recipient": self.recipient, "recipient_serial": self.recipient_serial,
                "created": self.created, "files": [f.to_dict() for f in self.files],
                "total_size": self.total_size}

    @property
    def signed_bytes(self) -> bytes:
        """The exact bytes the sender's Ed25519 signature covers."""
        return _SIGNING_PREFIX + canonical.dumps(self.to_dict())

    def digest(self) -> str:
        """Hex SHA-256 of the canonical manifest: a stable id for custody records."""
        return canonical.sha256_hex(canonical.dumps(self.to_dict()))


@dataclass(frozen=True, slots=True)
class SignedManifest:
    """A manifest with the sender's signature, as :func:`build_package` returns it."""

    manifest: Manifest
    signature: bytes

    def to_dict(self) -> dict[str, Any]:
        """The wire form: ``{"manifest": {...}, "signature": <b64url>}``."""
        return {"manifest": self.manifest.to_dict(), "signature": b64e(self.signature)}


def cipher_size_for(size: int) -> int:
    """Ciphertext length of a ``size``-byte file: header plus per-chunk overhead."""
    return STREAM_HEADER_BYTES + size + STREAM_ABYTES * max(1, -(-size // CHUNK))


def cipher_file_name(index: int) -> str:
    """Name of the ciphertext file of file ``index`` inside a package directory."""
    return f"{index:04d}.enc"


def check_name(name: object) -> str:
    """Require ``name`` to be a safe single path component.

    The name becomes a path on the recipient's disk, so anything that could
    address another directory (separators, ``.``, ``..``) or be cut short by
    C code (NUL) is refused. Control characters are refused too: names end
    up in logs and terminals.

    Raises:
        UnsafeNameError: naming the problem.

    Returns:
        ``name``, unchanged.
    """
    if not isinstance(name, str):
        raise UnsafeNameError("file name must be a string")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError as e:
        raise UnsafeNameError("file name is not valid Unicode") from e
    if not 0 < len(encoded) <= _MAX_NAME_BYTES:
        raise UnsafeNameError(f"file name must be 1 to {_MAX_NAME_BYTES} bytes of UTF-8")
    if name in {".", ".."} or any(c in name for c in "/\\\0"):
        raise UnsafeNameError(f"file name {name!r} is not a single path component")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise UnsafeNameError(f"file name {name!r} contains control characters")
    return name


# --- Parsing ---------------------------------------------------------------------------


def _field(doc: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = doc[key]
    # bool is an int in Python but not in the format.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ManifestError(f"{where}.{key} must be {kind.__name__}", code="type")
    return value


def _int(doc: dict[str, Any], key: str, low: int, high: int, where: str) -> int:
    value: int = _field(doc, key, int, where)
    if not low <= value <= high:
        raise ManifestError(f"{where}.{key} must be in {low}..{high}", code="range")
    return value


def _matching(doc: dict[str, Any], key: str, pattern: re.Pattern[str], where: str) -> str:
    value: str = _field(doc, key, str, where)
    if not pattern.match(value):
        raise ManifestError(f"{where}.{key} has the wrong format", code="format")
    return value


def _object(value: object, keys: frozenset[str], where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestError(f"{where} must be an object", code="type")
    if set(value) != keys:
        extra, missing = sorted(set(value) - keys), sorted(keys - set(value))
        raise ManifestError(f"{where} keys: unexpected {extra}, missing {missing}", code="keys")
    return value


def _parse_header(doc: dict[str, Any]) -> dict[str, Any]:
    """Check every manifest field except the file list; return them typed."""
    if doc["type"] != MANIFEST_TYPE or _field(doc, "v", int, "manifest") != _VERSION:
        raise ManifestError("not a version 1 evidence manifest", code="version")
    package_id = _field(doc, "package_id", str, "manifest")
    try:
        canonical_id = str(uuid.UUID(package_id))
    except ValueError:
        canonical_id = ""
    if canonical_id != package_id:
        raise ManifestError("manifest.package_id must be a lowercase UUID", code="format")
    request_id = _field(doc, "request_id", str, "manifest")
    if len(request_id) > _MAX_TEXT or not _PRINTABLE.match(request_id):
        raise ManifestError("manifest.request_id must be 1 to 256 printable ASCII "
                            "characters", code="format")
    try:
        parse_ts(doc["created"])
    except ValueError as e:
        raise ManifestError("manifest.created must be a canonical UTC timestamp",
                            code="format") from e
    return {"package_id": package_id, "request_id": request_id,
            "sender": _matching(doc, "sender", _NODE_ID, "manifest"),
            "recipient": _matching(doc, "recipient", _NODE_ID, "manifest"),
            "recipient_serial": _int(doc, "recipient_serial", 1, _MAX_JSON_INT, "manifest"),
            "created": doc["created"]}


def _parse_file(value: object, index: int) -> FileEntry:
    where = f"files[{index}]"
    doc = _object(value, _FILE_KEYS, where)
    if _field(doc, "index", int, where) != index:
        raise ManifestError(f"{where}.index must be {index}", code="index")
    try:
        name = check_name(doc["name"])
    except UnsafeNameError as e:
        raise UnsafeNameError(f"{where}: {e.detail}") from e
    size = _int(doc, "size", 0, MAX_FILE_SIZE, where)
    cipher_size = _field(doc, "cipher_size", int, where)
    if cipher_size != cipher_size_for(size):
        raise ManifestError(f"{where}.cipher_size does not match its size", code="cipher-size")
    try:
        sealed_key = b64d(_field(doc, "sealed_key", str, where), length=_SEALED_KEY_BYTES)
    except KeyFormatError as e:
        raise ManifestError(f"{where}.sealed_key: {e}", code="format") from e
    return FileEntry(index=index, name=name, size=size,
                     sha256=_matching(doc, "sha256", _HEX64, where),
                     cipher_size=cipher_size,
                     cipher_sha256=_matching(doc, "cipher_sha256", _HEX64, where),
                     sealed_key=sealed_key,
                     media_type=_matching(doc, "media_type", _MEDIA_TYPE, where))


def _parse_manifest(doc: dict[str, Any]) -> Manifest:
    header = _parse_header(doc)
    raw_files = _field(doc, "files", list, "manifest")
    if not 0 < len(raw_files) <= MAX_FILES:
        raise ManifestError(f"manifest must list 1 to {MAX_FILES} files", code="range")
    files = tuple(_parse_file(raw, i) for i, raw in enumerate(raw_files))
    if len({f.name for f in files}) != len(files):
        raise UnsafeNameError("two files have the same name")
    total = _field(doc, "total_size", int, "manifest")
    if total != sum(f.size for f in files):
        raise ManifestError("manifest.total_size is not the sum of file sizes",
                            code="total-size")
    return Manifest(**header, files=files, total_size=total)


def parse_signed_manifest(obj: object, sender_key: VerifyKey) -> Manifest:
    """Verify the sender's signature on a manifest, then check it strictly.

    The signature is checked first, over the canonical encoding of whatever
    was received, so a forged or altered manifest is reported as such
    whatever else is wrong with it; a correctly signed but malformed one
    (a buggy sender) is then refused field by field.

    Args:
        obj: the parsed JSON ``{"manifest": {...}, "signature": "..."}``.
        sender_key: the sender's current Ed25519 key, from its verified card.

    Raises:
        ManifestError: with ``code`` naming the failed check (``"signature"``
            for a forgery); :class:`UnsafeNameError` for file names.

    Returns:
        The verified manifest.
    """
    unverified = _object(obj, _SIGNED_KEYS, "signed manifest")
    doc = unverified["manifest"]
    if not isinstance(doc, dict):
        raise ManifestError("manifest must be an object", code="type")
    try:
        signature = b64d(unverified["signature"], length=_SIGNATURE_BYTES)
        signed = _SIGNING_PREFIX + canonical.dumps(doc)
    except (KeyFormatError, canonical.CanonicalJSONError) as e:
        raise ManifestError(f"cannot check the signature: {e}", code="format") from e
    try:
        sender_key.verify(signature, signed)
    except BadSignature as e:
        raise ManifestError("manifest is not signed by the sender", code="signature") from e
    return _parse_manifest(_object(doc, _MANIFEST_KEYS, "manifest"))


# --- Shared streaming helpers ----------------------------------------------------------


def _ad_prefix(package_id: str, index: int) -> bytes:
    """Additional data shared by a file's chunks; the 8-byte chunk number follows."""
    return _AD_PREFIX + package_id.encode("ascii") + b"\0" + index.to_bytes(4, "big")


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a new or renamed file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- Building --------------------------------------------------------------------------


def _guess_media_type(name: str) -> str:
    media_type, encoding = _MIME.guess_type(name, strict=True)
    # "x.tar.gz" guesses as a tar archive with gzip encoding, but the bytes are
    # gzip: say nothing rather than something wrong.
    if media_type is None or encoding is not None or not _MEDIA_TYPE.match(media_type):
        return "application/octet-stream"
    return media_type


def _seal_stream(src: BinaryIO, out: BinaryIO, key: bytes, ad_prefix: bytes,
                 progress: Progress | None) -> tuple[int, str, str]:
    """Encrypt ``src`` into ``out``; return (size, plaintext sha256, ciphertext sha256)."""
    sealer = StreamSealer(key)
    plain_hash, cipher_hash = hashlib.sha256(), hashlib.sha256()
    out.write(sealer.header)
    cipher_hash.update(sealer.header)
    size, chunk_no = 0, 0
    # BufferedReader.read(n) returns short only at end of file, so every
    # chunk but the last is exactly CHUNK bytes, as cipher_size_for assumes.
    # Reading one chunk ahead tells whether the current one is the last
    # without trusting a file size that could change while we read.
    chunk = src.read(CHUNK)
    while True:
        following = src.read(CHUNK) if len(chunk) == CHUNK else b""
        final = not following
        sealed = sealer.push(chunk, ad_prefix + chunk_no.to_bytes(8, "big"), final=final)
        plain_hash.update(chunk)
        cipher_hash.update(sealed)
        out.write(sealed)
        size += len(chunk)
        if progress is not None:
            progress(len(chunk))
        if final:
            return size, plain_hash.hexdigest(), cipher_hash.hexdigest()
        chunk, chunk_no = following, chunk_no + 1


def _encrypt_file(index: int, name: str, source: Path, target: Path, ad_prefix: bytes,
                  recipient_public: bytes, progress: Progress | None) -> FileEntry:
    key = new_stream_key()
    with source.open("rb") as src:
        # "x": refuse to overwrite. Once the file is ours, remove it on any
        # failure, so no half-written ciphertext is left behind.
        out = target.open("xb")
        try:
            with out:
                size, plain_hex, cipher_hex = _seal_stream(src, out, key, ad_prefix, progress)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            target.unlink(missing_ok=True)
            raise
    return FileEntry(index=index, name=name, size=size, sha256=plain_hex,
                     cipher_size=cipher_size_for(size), cipher_sha256=cipher_hex,
                     sealed_key=seal(recipient_public, key), media_type=_guess_media_type(name))


def build_package(sources: Sequence[tuple[str, Path]], out_dir: Path, *, package_id: str,
                  request_id: str, sender: str, recipient: str, recipient_serial: int,
                  recipient_public: bytes, signing_key: SigningKey, created: str,
                  progress: Progress | None = None) -> SignedManifest:
    """Encrypt ``sources`` into ``out_dir`` and sign the manifest.

    Each file is read once, in chunks, and written to
    ``out_dir/<cipher_file_name(index)>`` (fsynced); existing files there are
    never overwritten. On failure the ciphertext files written so far are
    removed.

    Args:
        sources: ``(name shown in the manifest, path to read)`` per file.
        out_dir: directory for the ciphertext files (created if needed).
        package_id: a lowercase UUID, fresh per package.
        request_id, sender, recipient, recipient_serial, created: manifest
            fields (node ids are 32 hex digits; ``created`` a wire timestamp).
        recipient_public: raw X25519 key of the recipient's card
            ``recipient_serial``.
        signing_key: the sender's current Ed25519 key.
        progress: called with the number of plaintext bytes just processed.

    Raises:
        UnsafeNameError: a name is unsafe or used twice.
        ValueError: another argument is malformed (a caller bug).
        OSError: a source cannot be read or a ciphertext file exists or
            cannot be written.

    Returns:
        The signed manifest.
    """
    if not 0 < len(sources) <= MAX_FILES:
        raise ValueError(f"a package holds 1 to {MAX_FILES} files")
    names = [check_name(name) for name, _ in sources]
    if len(set(names)) != len(names):
        raise UnsafeNameError("two files have the same name")
    if len(recipient_public) != STREAM_KEY_BYTES:
        raise ValueError("recipient_public must be a raw 32-byte X25519 key")
    header = Manifest(package_id=package_id, request_id=request_id, sender=sender,
                      recipient=recipient, recipient_serial=recipient_serial,
                      created=created, files=(), total_size=0)
    try:
        _parse_header(header.to_dict())
    except ManifestError as e:
        raise ValueError(e.detail) from e
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: list[FileEntry] = []
    try:
        for index, (name, path) in enumerate(sources):
            entries.append(_encrypt_file(
                index, name, path, out_dir / cipher_file_name(index),
                _ad_prefix(package_id, index), recipient_public, progress))
        fsync_dir(out_dir)
        manifest = dataclasses.replace(header, files=tuple(entries),
                                       total_size=sum(e.size for e in entries))
        # Never sign what a receiver would refuse (e.g. a file beyond MAX_FILE_SIZE).
        _parse_manifest(manifest.to_dict())
    except BaseException as e:
        # The file being written removed itself; remove the finished ones.
        for entry in entries:
            (out_dir / cipher_file_name(entry.index)).unlink(missing_ok=True)
        if isinstance(e, ManifestError):
            raise ValueError(f"sources do not make a valid package: {e.detail}") from e
        raise
    return SignedManifest(manifest, signing_key.sign(manifest.signed_bytes))


# --- Receiving and custody checks ------------------------------------------------------


class CipherSink:
    """Checks one file's ciphertext incrementally, as it arrives from the sender.

    Feed it every received piece (any size) with :meth:`append`; it refuses
    the byte that would exceed the manifest's ``cipher_size``, so a peer
    cannot make the receiver store more than the sender signed for.
    :meth:`finish` then requires the exact size and digest. After a refusal
    the sink stays failed.
    """

    __slots__ = ("_entry", "_failed", "_hash", "_received")

    def __init__(self, entry: FileEntry) -> None:
        self._entry = entry
        self._hash = hashlib.sha256()
        self._received = 0
        self._failed = False

    @property
    def received(self) -> int:
        """Ciphertext bytes accepted so far."""
        return self._received

    def _fail(self, reason: str) -> TamperedError:
        self._failed = True
        return TamperedError(self._entry.index, self._entry.name, reason)

    def append(self, data: bytes | bytearray | memoryview) -> None:
        """Hash the next piece of ciphertext.

        Raises:
            TamperedError: if the piece would exceed ``cipher_size``, or an
                earlier piece was refused.
        """
        if self._failed:
            raise self._fail("ciphertext was already refused")
        length = memoryview(data).nbytes
        if self._received + length > self._entry.cipher_size:
            raise self._fail(f"extended: more than {self._entry.cipher_size} bytes of ciphertext")
        self._hash.update(data)
        self._received += length

    def finish(self) -> None:
        """Require the complete, unaltered ciphertext.

        Raises:
            TamperedError: if fewer bytes arrived than ``cipher_size`` or the
                digest differs from ``cipher_sha256``.
        """
        if self._failed:
            raise self._fail("ciphertext was already refused")
        if self._received != self._entry.cipher_size:
            raise self._fail(f"truncated: {self._received} of "
                             f"{self._entry.cipher_size} bytes of ciphertext")
        if self._hash.hexdigest() != self._entry.cipher_sha256:
            raise self._fail("altered: ciphertext hash does not match the manifest")


def _open_cipher(enc_dir: Path, entry: FileEntry) -> io.BufferedReader:
    try:
        return (enc_dir / cipher_file_name(entry.index)).open("rb")
    except FileNotFoundError as e:
        raise TamperedError(entry.index, entry.name, "ciphertext file is missing") from e


def verify_ciphertext(manifest: Manifest, enc_dir: Path) -> None:
    """Re-hash the stored ciphertext of every file against the verified manifest.

    Needs no key: this is the custody check anyone holding the sender's
    signed manifest can run.

    Raises:
        TamperedError: for the first file that is missing, truncated,
            extended or altered.
    """
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    for entry in manifest.files:
        sink = CipherSink(entry)
        with _open_cipher(enc_dir, entry) as f:
            on_disk = os.fstat(f.fileno()).st_size
            if on_disk < entry.cipher_size:
                raise TamperedError(entry.index, entry.name,
                                    f"truncated: {on_disk} of {entry.cipher_size} bytes")
            if on_disk > entry.cipher_size:
                raise TamperedError(entry.index, entry.name,
                                    f"extended: {on_disk} bytes, expected {entry.cipher_size}")
            # The sink re-checks the length while reading, in case the file
            # changes under us.
            while n := f.readinto(buf):
                sink.append(view[:n])
        sink.finish()


# --- Opening ---------------------------------------------------------------------------


def _open_stream_key(recipient: EncryptionKey, entry: FileEntry) -> bytes:
    try:
        key = open_sealed(recipient, entry.sealed_key)
    except SealingError as e:
        raise TamperedError(entry.index, entry.name,
                            "sealed key does not open with this recipient key") from e
    if len(key) != STREAM_KEY_BYTES:
        raise TamperedError(entry.index, entry.name, "sealed key has the wrong length")
    return key


def _open_stream(src: BinaryIO, out: BinaryIO | None, key: bytes, ad_prefix: bytes,
                 entry: FileEntry, progress: Progress | None) -> tuple[str, str]:
    """Decrypt ``src`` into ``out``; return (plaintext sha256, ciphertext sha256).

    Chunk lengths come from the signed size, so a chunk boundary can never
    be moved; the final tag must be on the last chunk and nowhere else, and
    the file must end right after it.
    """
    def tampered(reason: str) -> TamperedError:
        return TamperedError(entry.index, entry.name, reason)

    plain_hash, cipher_hash = hashlib.sha256(), hashlib.sha256()
    header = src.read(STREAM_HEADER_BYTES)
    if len(header) != STREAM_HEADER_BYTES:
        raise tampered("truncated: no complete stream header")
    cipher_hash.update(header)
    opener = StreamOpener(key, header)
    last, remaining = entry.chunks - 1, entry.size
    for chunk_no in range(entry.chunks):
        want = min(CHUNK, remaining) + STREAM_ABYTES
        chunk = src.read(want)
        if len(chunk) != want:
            raise tampered(f"truncated in chunk {chunk_no}")
        try:
            plain, final = opener.pull(chunk, ad_prefix + chunk_no.to_bytes(8, "big"))
        except SealingError as e:
            raise tampered(f"chunk {chunk_no} does not authenticate") from e
        if final != (chunk_no == last):
            raise tampered(f"final tag on chunk {chunk_no}" if final
                           else "truncated: last chunk is not marked final")
        plain_hash.update(plain)
        cipher_hash.update(chunk)
        if out is not None:
            out.write(plain)
        remaining -= len(plain)
        if progress is not None:
            progress(len(plain))
    if src.read(1):
        raise tampered("extended: data after the final chunk")
    return plain_hash.hexdigest(), cipher_hash.hexdigest()


def _decrypt_file(manifest: Manifest, entry: FileEntry, enc_dir: Path,
                  recipient: EncryptionKey, out: BinaryIO | None,
                  progress: Progress | None) -> None:
    """Decrypt one file to ``out`` (or nowhere), checking every byte.

    Both digests must match as well as every chunk's AEAD: the ciphertext
    hash ties the bytes to the sender's signature even against a party that
    knows the stream key (the recipient could re-encrypt, but not re-sign).
    """
    key = _open_stream_key(recipient, entry)
    ad_prefix = _ad_prefix(manifest.package_id, entry.index)
    with _open_cipher(enc_dir, entry) as src:
        plain_hex, cipher_hex = _open_stream(src, out, key, ad_prefix, entry, progress)
    if cipher_hex != entry.cipher_sha256:
        raise TamperedError(entry.index, entry.name,
                            "altered: ciphertext hash does not match the manifest")
    if plain_hex != entry.sha256:
        raise TamperedError(entry.index, entry.name,
                            "altered: plaintext hash does not match the manifest")


def verify_package(manifest: Manifest, enc_dir: Path, recipient: EncryptionKey,
                   progress: Progress | None = None) -> None:
    """Decrypt and check every file without writing any plaintext.

    This is the recipient's "verified" custody step: the same checks as
    :func:`open_package`, with nothing left on disk.

    Raises:
        TamperedError: for the first file that fails any check.
    """
    for entry in manifest.files:
        _decrypt_file(manifest, entry, enc_dir, recipient, None, progress)


def open_package(manifest: Manifest, enc_dir: Path, out_dir: Path, recipient: EncryptionKey,
                 progress: Progress | None = None) -> list[Path]:
    """Decrypt every file of a verified manifest into ``out_dir/<name>``.

    All or nothing: each file is decrypted into a private temporary file in
    ``out_dir``, and only when every file of the package has passed every
    check are they linked to their names. A hard link, unlike a rename,
    never replaces an existing file, so nothing is overwritten even if a
    file appears meanwhile. Output files are readable by the owner only.

    Raises:
        TamperedError: a file failed a check; no plaintext is left behind.
        FileExistsError: an output name already exists in ``out_dir``.
        OSError: the output cannot be written.

    Returns:
        The paths written, in manifest order.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = [out_dir / entry.name for entry in manifest.files]
    for target in targets:
        if os.path.lexists(target):
            raise FileExistsError(f"refusing to overwrite {target}")
    temps: list[Path] = []
    placed: list[Path] = []
    try:
        for entry in manifest.files:
            fd, name = tempfile.mkstemp(prefix=".comity-evidence-", suffix=".partial",
                                        dir=out_dir)
            temps.append(Path(name))
            with open(fd, "wb") as out:
                _decrypt_file(manifest, entry, enc_dir, recipient, out, progress)
                out.flush()
                os.fsync(out.fileno())
        for temp, target in zip(temps, targets, strict=True):
            os.link(temp, target)
            placed.append(target)
        fsync_dir(out_dir)
    except BaseException:
        for target in placed:
            target.unlink(missing_ok=True)
        raise
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)
    return targets
