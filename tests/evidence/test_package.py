"""Evidence packages: round trips, and every way to tamper with one is refused.

Tampering tests come in two kinds. *Raw* tampering changes bytes on disk and
leaves the signed manifest alone; the ciphertext hash catches it in custody
(``verify_ciphertext``) and the AEAD catches it when opening. *Re-signed*
tampering also updates the manifest and signs it again with the sender's key,
so every hash matches: what is left to catch it is the specific check the
test is about (chunk additional data, the final tag, the ciphertext hash of
a stream re-encrypted under the right key). Each test asserts the reason, so
removing the check it targets makes it fail.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
import shutil
import stat
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.bindings as sodium
import pytest

from comity.evidence.errors import EvidenceError, ManifestError, TamperedError, UnsafeNameError
from comity.evidence.package import (
    CHUNK,
    MAX_FILE_SIZE,
    CipherSink,
    FileEntry,
    SignedManifest,
    build_package,
    check_name,
    cipher_file_name,
    cipher_size_for,
    open_package,
    parse_signed_manifest,
    verify_ciphertext,
    verify_package,
)
from comity.hazmat import canonical
from comity.hazmat.keys import EncryptionKey, SigningKey, b64d, b64e
from comity.hazmat.sealing import (
    SealingError,
    StreamOpener,
    StreamSealer,
    new_stream_key,
    open_sealed,
    seal,
)

SENDER_ID = "5e" * 16
RECIPIENT_ID = "7c" * 16
CREATED = "2026-03-01T12:00:00.000000Z"
HEADER = 24
ABYTES = 17
SIGNING_PREFIX = b"comity.evidence.manifest.v1\0"

Wire = dict[str, Any]


@dataclasses.dataclass
class Keys:
    sender: SigningKey
    recipient: EncryptionKey


@dataclasses.dataclass
class Pkg:
    enc: Path
    wire: Wire
    plain: dict[str, bytes]
    package_id: str


@dataclasses.dataclass
class Case:
    """A private copy of the shared package that one test may damage."""

    enc: Path
    wire: Wire
    out: Path

    def enc_file(self, index: int) -> Path:
        return self.enc / cipher_file_name(index)


def build(sources: list[tuple[str, Path]], out: Path, keys: Keys, *,
          package_id: str | None = None, signing_key: SigningKey | None = None,
          progress: Callable[[int], None] | None = None) -> SignedManifest:
    return build_package(
        sources, out, package_id=package_id or str(uuid.uuid4()), request_id="req-42",
        sender=SENDER_ID, recipient=RECIPIENT_ID, recipient_serial=3,
        recipient_public=keys.recipient.public_raw,
        signing_key=signing_key or keys.sender, created=CREATED, progress=progress)


def write_sources(root: Path, files: dict[str, bytes]) -> list[tuple[str, Path]]:
    root.mkdir(parents=True, exist_ok=True)
    sources = []
    for i, (name, data) in enumerate(files.items()):
        path = root / f"src{i}"
        path.write_bytes(data)
        sources.append((name, path))
    return sources


def resign(wire: Wire, key: SigningKey) -> Wire:
    """Sign (possibly edited) manifest contents again, as a sender would."""
    sig = key.sign(SIGNING_PREFIX + canonical.dumps(wire["manifest"]))
    return {"manifest": wire["manifest"], "signature": b64e(sig)}


def describe(entry: dict[str, Any], ciphertext: bytes) -> None:
    """Point a manifest entry at ``ciphertext`` (size and hash)."""
    entry["cipher_size"] = len(ciphertext)
    entry["cipher_sha256"] = hashlib.sha256(ciphertext).hexdigest()


def chunk_at(k: int) -> int:
    return HEADER + k * (CHUNK + ABYTES)


def ad(package_id: str, index: int, chunk_no: int) -> bytes:
    """The chunk additional data, spelled out independently of the code under test."""
    return (b"comity.evidence.v1\0" + package_id.encode() + b"\0"
            + index.to_bytes(4, "big") + chunk_no.to_bytes(8, "big"))


def stream_key(keys: Keys, wire: Wire, index: int) -> bytes:
    return open_sealed(keys.recipient, b64d(wire["manifest"]["files"][index]["sealed_key"]))


def outputs(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(SigningKey.generate(), EncryptionKey.generate())


@pytest.fixture(scope="module")
def pkg(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> Pkg:
    """Three files: 2.5 chunks of random data, a short text, an empty file."""
    root = tmp_path_factory.mktemp("pkg")
    plain = {"a.bin": os.urandom(2 * CHUNK + CHUNK // 2), "b.txt": b"statement\n" * 300,
             "empty": b""}
    package_id = str(uuid.uuid4())
    signed = build(write_sources(root / "src", plain), root / "enc", keys, package_id=package_id)
    return Pkg(root / "enc", signed.to_dict(), plain, package_id)


@pytest.fixture
def case(pkg: Pkg, tmp_path: Path) -> Case:
    shutil.copytree(pkg.enc, tmp_path / "enc")
    return Case(tmp_path / "enc", copy.deepcopy(pkg.wire), tmp_path / "out")


def assert_opening_fails(case: Case, keys: Keys, reason: str) -> None:
    """Both decrypting paths refuse with ``reason`` and leave no plaintext behind."""
    manifest = parse_signed_manifest(case.wire, keys.sender.public)
    with pytest.raises(TamperedError, match=reason):
        verify_package(manifest, case.enc, keys.recipient)
    with pytest.raises(TamperedError, match=reason):
        open_package(manifest, case.enc, case.out, keys.recipient)
    assert outputs(case.out) == []


def assert_custody_fails(case: Case, keys: Keys, reason: str) -> None:
    manifest = parse_signed_manifest(case.wire, keys.sender.public)
    with pytest.raises(TamperedError, match=reason):
        verify_ciphertext(manifest, case.enc)


# --- Round trips ---------------------------------------------------------------------


def test_round_trip_of_sizes_around_chunk_boundaries(keys: Keys, tmp_path: Path) -> None:
    plain = {"empty.bin": b"", "one-chunk.bin": os.urandom(CHUNK),
             "one-chunk-plus-one.bin": os.urandom(CHUNK + 1),
             "several.bin": os.urandom(3 * CHUNK + 12345), "note.txt": "réponse\n".encode()}
    built: list[int] = []
    signed = build(write_sources(tmp_path / "src", plain), tmp_path / "enc", keys,
                   progress=built.append)
    assert sum(built) == sum(len(d) for d in plain.values())

    manifest = parse_signed_manifest(signed.to_dict(), keys.sender.public)
    assert manifest == signed.manifest
    assert manifest.total_size == sum(built)
    for entry, (name, data) in zip(manifest.files, plain.items(), strict=True):
        assert (entry.name, entry.size) == (name, len(data))
        assert entry.sha256 == hashlib.sha256(data).hexdigest()
        assert (tmp_path / "enc" / cipher_file_name(entry.index)).stat().st_size \
            == entry.cipher_size == cipher_size_for(len(data))
    assert [f.chunks for f in manifest.files] == [1, 1, 2, 4, 1]
    assert manifest.files[4].media_type == "text/plain"
    assert manifest.files[0].media_type == "application/octet-stream"

    verify_ciphertext(manifest, tmp_path / "enc")
    verify_package(manifest, tmp_path / "enc", keys.recipient)
    opened: list[int] = []
    paths = open_package(manifest, tmp_path / "enc", tmp_path / "out", keys.recipient,
                         progress=opened.append)
    assert sum(opened) == sum(built)
    assert [p.name for p in paths] == list(plain)
    for path, data in zip(paths, plain.values(), strict=True):
        assert path.read_bytes() == data
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert outputs(tmp_path / "out") == sorted(plain)  # no temporary files left


def test_wire_format_vectors(keys: Keys, pkg: Pkg) -> None:
    """Pin the format: signature domain, chunk additional data, file layout."""
    doc = pkg.wire["manifest"]
    keys.sender.public.verify(b64d(pkg.wire["signature"]), SIGNING_PREFIX + canonical.dumps(doc))
    manifest = parse_signed_manifest(pkg.wire, keys.sender.public)
    assert manifest.digest() == hashlib.sha256(canonical.dumps(doc)).hexdigest()
    assert manifest.to_dict() == doc
    raw = (pkg.enc / cipher_file_name(0)).read_bytes()
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, raw[:HEADER],
                                                           stream_key(keys, pkg.wire, 0))
    tags = []
    for k in range(3):
        chunk = raw[chunk_at(k):chunk_at(k + 1)]
        text, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
            state, chunk, ad(pkg.package_id, 0, k))
        assert text == pkg.plain["a.bin"][k * CHUNK:(k + 1) * CHUNK]
        tags.append(tag)
    assert tags == [sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE] * 2 + [
        sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL]


def test_memory_stays_a_few_chunks_for_a_large_file(keys: Keys, tmp_path: Path) -> None:
    source = tmp_path / "disk.img"
    with source.open("wb") as f:
        f.truncate(64 * CHUNK)
        for offset in range(0, 64 * CHUNK, 9 * CHUNK + 4096):
            f.seek(offset)
            f.write(os.urandom(65536))
    tracemalloc.start()
    try:
        signed = build([("disk.img", source)], tmp_path / "enc", keys)
        build_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        [out] = open_package(signed.manifest, tmp_path / "enc", tmp_path / "out", keys.recipient)
        open_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert build_peak < 6 * CHUNK, build_peak
    assert open_peak < 6 * CHUNK, open_peak
    assert out.stat().st_size == 64 * CHUNK
    assert signed.manifest.files[0].sha256 == hashlib.sha256(source.read_bytes()).hexdigest()


# --- Ciphertext tampering --------------------------------------------------------------


@pytest.mark.parametrize(("where", "offset", "chunk"), [
    ("header", 5, 0),
    ("middle chunk", chunk_at(1) + 1000, 1),
    ("last chunk's tag", -1, 2),
])
def test_flipped_byte_is_refused(case: Case, keys: Keys, where: str, offset: int,
                                 chunk: int) -> None:
    path = case.enc_file(0)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(data)
    assert_custody_fails(case, keys, "altered: ciphertext hash")
    assert_opening_fails(case, keys, f"chunk {chunk} does not authenticate")


@pytest.mark.parametrize(("cut", "custody", "opening"), [
    (10, "truncated", "no complete stream header"),
    (HEADER + CHUNK // 2, "truncated", "truncated in chunk 0"),
    (chunk_at(2), "truncated", "truncated in chunk 2"),  # the final chunk dropped exactly
    (-1, "truncated", "truncated in chunk 2"),  # only the last byte
])
def test_truncated_file_is_refused(case: Case, keys: Keys, cut: int, custody: str,
                                   opening: str) -> None:
    path = case.enc_file(0)
    path.write_bytes(path.read_bytes()[:cut])
    assert_custody_fails(case, keys, custody)
    assert_opening_fails(case, keys, opening)


def test_dropped_final_chunk_is_refused_even_if_the_manifest_agrees(
        case: Case, keys: Keys, pkg: Pkg) -> None:
    """Without the final tag check, two whole chunks would pass every hash."""
    path = case.enc_file(0)
    cut = path.read_bytes()[:chunk_at(2)]
    path.write_bytes(cut)
    entry = case.wire["manifest"]["files"][0]
    kept = pkg.plain["a.bin"][:2 * CHUNK]
    entry.update(size=len(kept), sha256=hashlib.sha256(kept).hexdigest())
    describe(entry, cut)
    case.wire["manifest"]["total_size"] -= CHUNK // 2
    case.wire = resign(case.wire, keys.sender)
    verify_ciphertext(parse_signed_manifest(case.wire, keys.sender.public), case.enc)
    assert_opening_fails(case, keys, "last chunk is not marked final")


@pytest.mark.parametrize("extra", [b"\x00", os.urandom(CHUNK + ABYTES)])
def test_appended_bytes_are_refused(case: Case, keys: Keys, extra: bytes) -> None:
    with case.enc_file(0).open("ab") as f:
        f.write(extra)
    assert_custody_fails(case, keys, "extended")
    assert_opening_fails(case, keys, "extended: data after the final chunk")


def test_chunk_after_the_final_tag_is_refused(case: Case, keys: Keys, pkg: Pkg) -> None:
    """A stream whose final tag comes early, followed by more authentic chunks."""
    key = stream_key(keys, case.wire, 0)
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    data = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    plain = pkg.plain["a.bin"]
    tags = [sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL,
            sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE,
            sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL]
    for k, tag in enumerate(tags):
        data += sodium.crypto_secretstream_xchacha20poly1305_push(
            state, plain[k * CHUNK:(k + 1) * CHUNK], ad(pkg.package_id, 0, k), tag)
    case.enc_file(0).write_bytes(data)
    describe(case.wire["manifest"]["files"][0], data)
    case.wire = resign(case.wire, keys.sender)
    assert_opening_fails(case, keys, "final tag on chunk 0")


@pytest.mark.parametrize("resigned", [False, True])
def test_swapped_chunks_are_refused(case: Case, keys: Keys, resigned: bool) -> None:
    path = case.enc_file(0)
    data = path.read_bytes()
    c0, c1 = data[chunk_at(0):chunk_at(1)], data[chunk_at(1):chunk_at(2)]
    swapped = data[:HEADER] + c1 + c0 + data[chunk_at(2):]
    path.write_bytes(swapped)
    if resigned:
        describe(case.wire["manifest"]["files"][0], swapped)
        case.wire = resign(case.wire, keys.sender)
    else:
        assert_custody_fails(case, keys, "altered")
    assert_opening_fails(case, keys, "chunk 0 does not authenticate")


def test_files_swapped_within_the_package_are_refused(case: Case, keys: Keys) -> None:
    os.rename(case.enc_file(0), case.enc / "tmp")
    os.rename(case.enc_file(1), case.enc_file(0))
    os.rename(case.enc / "tmp", case.enc_file(1))
    assert_custody_fails(case, keys, "truncated|extended")
    # Now let the manifest describe the swap, so only the file index bound
    # into every chunk's additional data tells the two apart.
    files = case.wire["manifest"]["files"]
    files[0], files[1] = files[1], files[0]
    files[0]["index"], files[1]["index"] = 0, 1
    case.wire = resign(case.wire, keys.sender)
    verify_ciphertext(parse_signed_manifest(case.wire, keys.sender.public), case.enc)
    assert_opening_fails(case, keys, "file 0 .*chunk 0 does not authenticate")


def test_file_from_another_package_is_refused(case: Case, keys: Keys, pkg: Pkg,
                                              tmp_path: Path) -> None:
    other = build(write_sources(tmp_path / "src", pkg.plain), tmp_path / "other", keys)
    shutil.copyfile(tmp_path / "other" / cipher_file_name(1), case.enc_file(1))
    assert_custody_fails(case, keys, "altered")
    assert_opening_fails(case, keys, "chunk 0 does not authenticate")
    # Same layout, key, hashes, everything but the package id in the
    # additional data, signed by the sender.
    case.wire["manifest"]["files"][1] = other.manifest.files[1].to_dict()
    case.wire = resign(case.wire, keys.sender)
    verify_ciphertext(parse_signed_manifest(case.wire, keys.sender.public), case.enc)
    assert_opening_fails(case, keys, "file 1 .*chunk 0 does not authenticate")


def test_reencryption_by_a_third_party_is_refused(case: Case, keys: Keys, pkg: Pkg,
                                                  tmp_path: Path) -> None:
    """Anyone can seal a fresh key to the recipient, but not sign as the sender."""
    mallory = SigningKey.generate()
    forged = dict(pkg.plain, **{"b.txt": b"STATEMENT\n" * 300})  # same length
    theirs = build(write_sources(tmp_path / "src", forged), tmp_path / "m", keys,
                   package_id=pkg.package_id, signing_key=mallory).to_dict()

    # Their ciphertext under the genuine manifest: wrong hash, wrong key.
    shutil.copyfile(tmp_path / "m" / cipher_file_name(1), case.enc_file(1))
    assert_custody_fails(case, keys, "altered")
    assert_opening_fails(case, keys, "file 1 .*sealed key does not open|does not authenticate")

    # Their sealed key and hashes patched into the genuine signed manifest.
    patched = copy.deepcopy(case.wire)
    patched["manifest"]["files"][1] = theirs["manifest"]["files"][1]
    patched["manifest"]["total_size"] = theirs["manifest"]["total_size"]
    with pytest.raises(ManifestError) as e:
        parse_signed_manifest(patched, keys.sender.public)
    assert e.value.code == "signature"

    # Their own manifest, claiming the sender's node id.
    with pytest.raises(ManifestError) as e:
        parse_signed_manifest(theirs, keys.sender.public)
    assert e.value.code == "signature"


def test_reencryption_under_the_right_key_is_refused(case: Case, keys: Keys, pkg: Pkg) -> None:
    """The recipient knows the stream key, so it could re-encrypt the same plaintext:
    only the sender-signed ciphertext hash shows the bytes are not what was sent."""
    sealer = StreamSealer(stream_key(keys, case.wire, 1))
    data = sealer.header + sealer.push(pkg.plain["b.txt"], ad(pkg.package_id, 1, 0), final=True)
    case.enc_file(1).write_bytes(data)
    assert_custody_fails(case, keys, "altered")
    assert_opening_fails(case, keys, "ciphertext hash does not match")


def test_plaintext_hash_mismatch_is_refused(case: Case, keys: Keys) -> None:
    case.wire["manifest"]["files"][1]["sha256"] = "0" * 64
    case.wire = resign(case.wire, keys.sender)
    assert_opening_fails(case, keys, "file 1 .*plaintext hash does not match")


def test_missing_file_is_refused(case: Case, keys: Keys) -> None:
    case.enc_file(2).unlink()
    assert_custody_fails(case, keys, "missing")
    assert_opening_fails(case, keys, "file 2 .*missing")


def test_wrong_recipient_key_is_refused(case: Case, keys: Keys) -> None:
    manifest = parse_signed_manifest(case.wire, keys.sender.public)
    stranger = EncryptionKey.generate()
    for check in (lambda: verify_package(manifest, case.enc, stranger),
                  lambda: open_package(manifest, case.enc, case.out, stranger)):
        with pytest.raises(TamperedError, match="sealed key does not open"):
            check()
    assert outputs(case.out) == []


def test_open_is_all_or_nothing(case: Case, keys: Keys) -> None:
    """A bad last file means the good first ones never appear either."""
    with case.enc_file(2).open("ab") as f:
        f.write(b"x")
    assert_opening_fails(case, keys, "file 2 ")


def test_open_refuses_to_overwrite(case: Case, keys: Keys) -> None:
    manifest = parse_signed_manifest(case.wire, keys.sender.public)
    case.out.mkdir()
    (case.out / "b.txt").write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        open_package(manifest, case.enc, case.out, keys.recipient)
    assert outputs(case.out) == ["b.txt"]
    assert (case.out / "b.txt").read_bytes() == b"mine"


def test_build_refuses_to_overwrite_and_cleans_up(keys: Keys, pkg: Pkg, tmp_path: Path) -> None:
    (tmp_path / "enc").mkdir()
    (tmp_path / "enc" / cipher_file_name(1)).write_bytes(b"earlier")
    with pytest.raises(FileExistsError):
        build(write_sources(tmp_path / "src", pkg.plain), tmp_path / "enc", keys)
    assert outputs(tmp_path / "enc") == [cipher_file_name(1)]
    assert (tmp_path / "enc" / cipher_file_name(1)).read_bytes() == b"earlier"


# --- Incremental receiving -------------------------------------------------------------


def test_cipher_sink_accepts_exact_ciphertext_in_any_pieces(keys: Keys, pkg: Pkg) -> None:
    manifest = parse_signed_manifest(pkg.wire, keys.sender.public)
    data = (pkg.enc / cipher_file_name(0)).read_bytes()
    sink = CipherSink(manifest.files[0])
    for i in range(0, len(data), 77_777):
        sink.append(memoryview(data)[i:i + 77_777])
    sink.finish()
    assert sink.received == len(data)


def test_cipher_sink_refuses_the_first_byte_too_many(keys: Keys, pkg: Pkg) -> None:
    entry = parse_signed_manifest(pkg.wire, keys.sender.public).files[1]
    data = (pkg.enc / cipher_file_name(1)).read_bytes()
    sink = CipherSink(entry)
    sink.append(data)
    with pytest.raises(TamperedError, match="extended"):
        sink.append(b"\x00")
    assert sink.received == len(data)
    with pytest.raises(TamperedError, match="already refused"):
        sink.finish()


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda d: d[:-1], "truncated"),
    (lambda d: d[:-1] + bytes([d[-1] ^ 0x80]), "altered"),
    (lambda d: b"", "truncated"),
])
def test_cipher_sink_finish_requires_exact_bytes(keys: Keys, pkg: Pkg,
                                                 damage: Callable[[bytes], bytes],
                                                 reason: str) -> None:
    entry = parse_signed_manifest(pkg.wire, keys.sender.public).files[1]
    sink = CipherSink(entry)
    sink.append(damage((pkg.enc / cipher_file_name(1)).read_bytes()))
    with pytest.raises(TamperedError, match=reason):
        sink.finish()


# --- Manifest: signature ---------------------------------------------------------------


def leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaf_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaf_paths(v, (*path, i))]
    return [path]


def altered(value: Any) -> Any:
    """A different value that would still pass every structural check if it could."""
    if isinstance(value, int):
        return value + 1
    if value and value[-1] in "0123456789abcdef":
        return value[:-1] + ("1" if value[-1] == "0" else "0")
    return value[:-1] + ("A" if value[-1] != "A" else "B")


def test_every_altered_manifest_field_breaks_the_signature(keys: Keys, pkg: Pkg) -> None:
    paths = leaf_paths(pkg.wire["manifest"])
    assert len(paths) == 10 - 1 + 3 * 8
    for path in paths:
        wire = copy.deepcopy(pkg.wire)
        parent = wire["manifest"]
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = altered(parent[path[-1]])
        with pytest.raises(ManifestError) as e:
            parse_signed_manifest(wire, keys.sender.public)
        assert e.value.code == "signature", path


def test_every_flipped_signature_bit_is_refused(keys: Keys, pkg: Pkg) -> None:
    sig = b64d(pkg.wire["signature"])
    for bit in range(len(sig) * 8):
        forged = bytearray(sig)
        forged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ManifestError) as e:
            parse_signed_manifest({**pkg.wire, "signature": b64e(bytes(forged))},
                                  keys.sender.public)
        assert e.value.code == "signature"


def test_removed_or_reordered_files_break_the_signature(keys: Keys, pkg: Pkg) -> None:
    edits: list[Callable[[list[Any]], object]] = [
        lambda files: files.pop(), lambda files: files.reverse(),
        lambda files: files.append(copy.deepcopy(files[0]))]
    for edit in edits:
        wire = copy.deepcopy(pkg.wire)
        edit(wire["manifest"]["files"])
        with pytest.raises(ManifestError) as e:
            parse_signed_manifest(wire, keys.sender.public)
        assert e.value.code == "signature"


def test_manifest_signed_by_another_key_is_refused(keys: Keys, pkg: Pkg) -> None:
    with pytest.raises(ManifestError) as e:
        parse_signed_manifest(resign(pkg.wire, SigningKey.generate()), keys.sender.public)
    assert e.value.code == "signature"


# --- Manifest: structure (correctly signed, still refused) -----------------------------


def _set(doc: Any, path: str, value: Any) -> None:
    """Set (or delete) ``files.0.name``-style paths in a manifest dict."""
    *parents, last = (int(s) if s.isdigit() else s for s in path.split("."))
    for step in parents:
        doc = doc[step]
    if value is _DELETE:
        del doc[last]
    else:
        doc[last] = value


_DELETE = object()
_LONG_NAME = "é" * 128  # 256 bytes of UTF-8


@pytest.mark.parametrize(("path", "value", "code"), [
    ("extra", 1, "keys"),
    ("created", _DELETE, "keys"),
    ("type", "comity.evidence.other", "version"),
    ("v", 2, "version"),
    ("v", True, "type"),
    ("package_id", str(uuid.UUID("ab" * 16)).upper(), "format"),
    ("package_id", "not-a-uuid", "format"),
    ("package_id", "{" + str(uuid.UUID("ab" * 16)) + "}", "format"),
    ("package_id", "ab" * 16, "format"),
    ("request_id", "", "format"),
    ("request_id", "r" * 257, "format"),
    ("request_id", "réq", "format"),
    ("request_id", 42, "type"),
    ("sender", "5E" * 16, "format"),
    ("recipient", "7c" * 15, "format"),
    ("recipient_serial", 0, "range"),
    ("recipient_serial", "3", "type"),
    ("recipient_serial", True, "type"),
    ("created", "2026-03-01T12:00:00Z", "format"),
    ("created", "2026-13-01T12:00:00.000000Z", "format"),
    ("files", [], "range"),
    ("files", {}, "type"),
    ("total_size", 0, "total-size"),
    ("total_size", 1.5, "type"),
    ("files.0.extra", "x", "keys"),
    ("files.0.media_type", _DELETE, "keys"),
    ("files.0", "file", "type"),
    ("files.0.index", 1, "index"),
    ("files.0.index", False, "type"),
    ("files.0.size", -1, "range"),
    ("files.0.size", MAX_FILE_SIZE + 1, "range"),
    ("files.0.size", 2.5 * CHUNK, "type"),
    ("files.0.sha256", "A" * 64, "format"),
    ("files.0.sha256", "a" * 63, "format"),
    ("files.0.cipher_size", cipher_size_for(2 * CHUNK + CHUNK // 2) + 1, "cipher-size"),
    ("files.2.cipher_size", HEADER, "cipher-size"),
    ("files.0.cipher_sha256", "g" * 64, "format"),
    ("files.0.sealed_key", b64e(b"k" * 79), "format"),
    ("files.0.sealed_key", b64e(b"k" * 80) + "=", "format"),
    ("files.0.sealed_key", None, "type"),
    ("files.0.media_type", "text", "format"),
    ("files.0.media_type", "text/plain; charset=utf-8", "format"),
    ("files.0.name", "../a.bin", "unsafe-name"),
    ("files.0.name", "b.txt", "unsafe-name"),
    ("files.0.name", _LONG_NAME, "unsafe-name"),
    ("files.0.name", 3, "unsafe-name"),
])
def test_structural_errors_are_refused_even_when_signed(keys: Keys, pkg: Pkg, path: str,
                                                        value: Any, code: str) -> None:
    wire = copy.deepcopy(pkg.wire)
    _set(wire["manifest"], path, value)
    with pytest.raises(ManifestError) as e:
        parse_signed_manifest(resign(wire, keys.sender), keys.sender.public)
    assert e.value.code == code
    assert isinstance(e.value, EvidenceError)
    assert isinstance(e.value, UnsafeNameError) == (code == "unsafe-name")


def test_files_out_of_order_are_refused_even_when_signed(keys: Keys, pkg: Pkg) -> None:
    wire = copy.deepcopy(pkg.wire)
    wire["manifest"]["files"].reverse()
    with pytest.raises(ManifestError) as e:
        parse_signed_manifest(resign(wire, keys.sender), keys.sender.public)
    assert e.value.code == "index"


@pytest.mark.parametrize(("obj", "code"), [
    ([], "type"),
    ({"manifest": {}}, "keys"),
    ({"manifest": [], "signature": "AA"}, "type"),
    ({"manifest": {}, "signature": 5}, "format"),
    ({"manifest": {}, "signature": b64e(b"s" * 63)}, "format"),
    ({"manifest": {"x": float("nan")}, "signature": b64e(b"s" * 64)}, "format"),
])
def test_malformed_signed_wrapper_is_refused(keys: Keys, obj: object, code: str) -> None:
    with pytest.raises(ManifestError) as e:
        parse_signed_manifest(obj, keys.sender.public)
    assert e.value.code == code


# --- File names ------------------------------------------------------------------------


UNSAFE_NAMES = ["", ".", "..", "a/b", "/etc", "a\\b", "a\0b", "a\nb", "tab\there", "\x7f",
                "x" * 256, _LONG_NAME, "\ud800"]


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_unsafe_names_are_refused_before_anything_is_written(keys: Keys, tmp_path: Path,
                                                             name: str) -> None:
    sources = write_sources(tmp_path / "src", {"ok.txt": b"1", "x": b"2"})
    sources[1] = (name, sources[1][1])
    with pytest.raises(UnsafeNameError):
        build(sources, tmp_path / "enc", keys)
    assert outputs(tmp_path / "enc") == []


def test_duplicate_names_are_refused(keys: Keys, tmp_path: Path) -> None:
    sources = write_sources(tmp_path / "src", {"a": b"1", "b": b"2"})
    with pytest.raises(UnsafeNameError, match="same name"):
        build([sources[0], ("a", sources[1][1])], tmp_path / "enc", keys)


@pytest.mark.parametrize("name", ["a", "x" * 255, "é" * 127, ".hidden", "...", "a b:c",
                                  "証拠.pdf"])
def test_safe_names_are_accepted(name: str) -> None:
    assert check_name(name) == name


def test_build_refuses_malformed_arguments(keys: Keys, tmp_path: Path) -> None:
    sources = write_sources(tmp_path / "src", {"a": b"1"})
    with pytest.raises(ValueError, match="package_id"):
        build(sources, tmp_path / "enc", keys, package_id="nope")
    with pytest.raises(ValueError, match="1 to"):
        build([], tmp_path / "enc", keys)
    assert outputs(tmp_path / "enc") == []


# --- hazmat.sealing --------------------------------------------------------------------


def test_sealed_box_opens_only_for_its_recipient() -> None:
    alice, bob = EncryptionKey.generate(), EncryptionKey.generate()
    box = seal(alice.public_raw, b"stream key")
    assert open_sealed(alice, box) == b"stream key"
    with pytest.raises(SealingError):
        open_sealed(bob, box)
    for i in range(len(box)):
        forged = bytearray(box)
        forged[i] ^= 0x04
        with pytest.raises(SealingError):
            open_sealed(alice, bytes(forged))
    with pytest.raises(SealingError):
        open_sealed(alice, box[:47])
    with pytest.raises(SealingError):
        seal(alice.public_raw[:31], b"x")


def test_stream_detects_truncation_reordering_and_data_after_final() -> None:
    key = new_stream_key()
    sealer = StreamSealer(key)
    parts = [sealer.push(b"one", b"ad0", final=False), sealer.push(b"two", b"ad1", final=False),
             sealer.push(b"end", b"ad2", final=True)]
    with pytest.raises(ValueError, match="finished"):
        sealer.push(b"more", b"ad3", final=False)

    opener = StreamOpener(key, sealer.header)
    assert opener.pull(parts[0], b"ad0") == (b"one", False)
    assert opener.pull(parts[1], b"ad1") == (b"two", False)
    assert not opener.finished  # a stream cut here is visibly incomplete
    assert opener.pull(parts[2], b"ad2") == (b"end", True)
    assert opener.finished
    with pytest.raises(SealingError, match="after the final"):
        opener.pull(parts[2], b"ad2")

    swapped = StreamOpener(key, sealer.header)
    with pytest.raises(SealingError, match="does not authenticate"):
        swapped.pull(parts[1], b"ad1")
    with pytest.raises(SealingError, match="already failed"):
        swapped.pull(parts[0], b"ad0")  # poisoned, even for the right chunk

    wrong_ad = StreamOpener(key, sealer.header)
    with pytest.raises(SealingError):
        wrong_ad.pull(parts[0], b"ad9")
    with pytest.raises(SealingError, match="header"):
        StreamOpener(key, sealer.header[:-1])
    with pytest.raises(SealingError, match="too short"):
        StreamOpener(key, sealer.header).pull(b"x" * 16, b"ad0")


def test_stream_refuses_tags_the_format_never_uses() -> None:
    key = new_stream_key()
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    chunk = sodium.crypto_secretstream_xchacha20poly1305_push(
        state, b"x", b"", sodium.crypto_secretstream_xchacha20poly1305_TAG_PUSH)
    with pytest.raises(SealingError, match="unexpected stream tag"):
        StreamOpener(key, header).pull(chunk, b"")


def test_entry_chunk_count(pkg: Pkg) -> None:
    sizes = {0: 1, 1: 1, CHUNK: 1, CHUNK + 1: 2, 5 * CHUNK: 5}
    for size, chunks in sizes.items():
        entry = FileEntry(0, "n", size, "0" * 64, cipher_size_for(size), "0" * 64, b"", "a/b")
        assert entry.chunks == chunks
        assert entry.cipher_size == HEADER + size + ABYTES * chunks
