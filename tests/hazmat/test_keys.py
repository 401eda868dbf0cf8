"""Keys and signatures: tampering anywhere fails, encodings are strict, files are private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from comity.hazmat.keys import (
    BadSignature,
    EncryptionKey,
    KeyFormatError,
    SigningKey,
    VerifyKey,
    b64d,
    b64e,
)


def test_every_flipped_bit_of_signature_or_message_is_rejected() -> None:
    key = SigningKey.generate()
    data = b"expedited preservation request"
    sig = key.sign(data)
    key.public.verify(sig, data)
    for i in range(len(sig) * 8):
        forged = bytearray(sig)
        forged[i // 8] ^= 1 << (i % 8)
        with pytest.raises(BadSignature):
            key.public.verify(bytes(forged), data)
    for i in range(len(data) * 8):
        tampered = bytearray(data)
        tampered[i // 8] ^= 1 << (i % 8)
        with pytest.raises(BadSignature):
            key.public.verify(sig, bytes(tampered))


def test_signature_of_another_key_and_wrong_length_are_rejected() -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    with pytest.raises(BadSignature):
        b.public.verify(a.sign(b"x"), b"x")
    with pytest.raises(BadSignature):
        a.public.verify(a.sign(b"x")[:-1], b"x")


@pytest.mark.parametrize("text", ["AAAA=", "A", "AA A", "é", "AB", ""])
def test_base64_is_strict(text: str) -> None:
    with pytest.raises(KeyFormatError):
        b64d(text, length=2)


def test_base64_round_trip_and_exact_length() -> None:
    assert b64d(b64e(b"\x00\xff\x10"), length=3) == b"\x00\xff\x10"
    with pytest.raises(KeyFormatError):
        VerifyKey.from_b64(b64e(b"\x01" * 31))


def test_private_keys_are_written_owner_only_and_reload(tmp_path: Path) -> None:
    key, enc = SigningKey.generate(), EncryptionKey.generate()
    key.save(tmp_path / "k" / "signing.key")
    enc.save(tmp_path / "k" / "encryption.key")
    for name in ("signing.key", "encryption.key"):
        mode = stat.S_IMODE(os.stat(tmp_path / "k" / name).st_mode)
        assert mode == 0o600, oct(mode)
    assert SigningKey.load(tmp_path / "k" / "signing.key").public == key.public
    assert EncryptionKey.load(tmp_path / "k" / "encryption.key").public_raw == enc.public_raw
    (tmp_path / "short.key").write_bytes(b"\x00" * 31)
    with pytest.raises(KeyFormatError):
        SigningKey.load(tmp_path / "short.key")
