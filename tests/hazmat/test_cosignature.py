"""Witness cosignatures (tlog-cosignature v1, Ed25519): format, key strings, tampering."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from comity.hazmat.keys import KeyFormatError, VerifyKey
from comity.hazmat.note import (
    ALG_COSIGNATURE_V1,
    MAX_COSIGNATURE_TIMESTAMP,
    CosignatureSigner,
    CosignatureVerifier,
    MalformedCheckpointError,
    MalformedNoteError,
    NoteSignatureError,
    NoteSigner,
    NoteVerifier,
    UnverifiedNoteError,
    add_signature_lines,
    cosignatures,
    cosigner_key_id,
    key_id,
    open_note,
    parse_cosigner_key,
    parse_verifier_key,
    sign_note,
)

# The checkpoint and timestamp of the tlog-cosignature specification's example.
TEXT = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
TS = 1679315147
# The signed message, as the specification spells it out for that example.
SPEC_MESSAGE = (
    b"cosignature/v1\n"
    b"time 1679315147\n"
    b"example.com/behind-the-sofa\n"
    b"20852163\n"
    b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)

WITNESS_NAME = "witness.example.com/w1"
WITNESS_KEY = Ed25519PrivateKey.from_private_bytes(bytes(32))
WITNESS_PUB = WITNESS_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
WITNESS = CosignatureSigner(WITNESS_NAME, WITNESS_KEY)
OTHER_WITNESS = CosignatureSigner(
    "witness.example.org/w2", Ed25519PrivateKey.from_private_bytes(bytes([2]) * 32)
)
LOG = NoteSigner(
    "example.com/behind-the-sofa", Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32)
)
SIGNED = sign_note(TEXT, [LOG])


def _line(name: str, payload: bytes) -> str:
    return f"\u2014 {name} {base64.b64encode(payload).decode()}\n"


def _payload(line: str) -> bytes:
    return base64.b64decode(line.rstrip("\n").rsplit(" ", 1)[1])


# The format, checked against bytes built here from the specification.


def test_key_id_is_the_truncated_hash_with_type_byte_4() -> None:
    expected = hashlib.sha256(WITNESS_NAME.encode() + b"\n\x04" + WITNESS_PUB).digest()[:4]
    assert cosigner_key_id(WITNESS_NAME, WITNESS_PUB) == expected
    assert WITNESS.key_id == expected
    assert WITNESS.verifier.key_id == expected
    # The same key as a plain note key has another ID: the type byte differs.
    assert key_id(WITNESS_NAME, WITNESS_PUB) != expected
    assert ALG_COSIGNATURE_V1 == 4


def test_cosign_writes_the_line_the_specification_describes() -> None:
    signature = WITNESS_KEY.sign(SPEC_MESSAGE)
    kid = hashlib.sha256(WITNESS_NAME.encode() + b"\n\x04" + WITNESS_PUB).digest()[:4]
    payload = kid + TS.to_bytes(8, "big") + signature
    expected = "\u2014 " + WITNESS_NAME + " " + base64.b64encode(payload).decode() + "\n"
    line = WITNESS.cosign(TEXT, TS)
    assert line == expected
    assert len(_payload(line)) == 76
    # Checked with the raw public key, outside the module under test.
    WITNESS_KEY.public_key().verify(_payload(line)[12:], SPEC_MESSAGE)


def test_verify_returns_the_timestamp() -> None:
    line_sig = _payload(WITNESS.cosign(TEXT, TS))[4:]
    assert WITNESS.verifier.verify(TEXT, line_sig) == TS


def test_the_extreme_timestamps_round_trip() -> None:
    for ts in (0, MAX_COSIGNATURE_TIMESTAMP):
        line_sig = _payload(WITNESS.cosign(TEXT, ts))[4:]
        assert line_sig[:8] == ts.to_bytes(8, "big")
        assert WITNESS.verifier.verify(TEXT, line_sig) == ts


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=MAX_COSIGNATURE_TIMESTAMP))
def test_any_valid_timestamp_round_trips_through_a_note(ts: int) -> None:
    raw = add_signature_lines(SIGNED, [WITNESS.cosign(TEXT, ts)])
    assert cosignatures(raw, [WITNESS.verifier]) == {WITNESS_NAME: ts}


def test_cosign_refuses_a_timestamp_out_of_range() -> None:
    for ts in (-1, 2**63, True):
        with pytest.raises(ValueError, match="timestamp"):
            WITNESS.cosign(TEXT, ts)


def test_cosign_refuses_text_that_is_not_a_checkpoint() -> None:
    with pytest.raises(MalformedCheckpointError):
        WITNESS.cosign("hello\n", TS)
    with pytest.raises(MalformedNoteError, match="newline"):
        WITNESS.cosign(TEXT.rstrip("\n"), TS)


# Key strings.


def test_vkey_is_name_hex_id_and_base64_of_type_4_and_key() -> None:
    kid = hashlib.sha256(WITNESS_NAME.encode() + b"\n\x04" + WITNESS_PUB).digest()[:4]
    encoded = base64.b64encode(b"\x04" + WITNESS_PUB).decode()
    expected = f"{WITNESS_NAME}+{kid.hex()}+{encoded}"
    assert WITNESS.verifier.to_vkey() == expected
    assert parse_cosigner_key(expected) == WITNESS.verifier


def test_generated_cosigner_keys_round_trip() -> None:
    signer = CosignatureSigner.generate("witness.example/gen")
    parsed = parse_cosigner_key(signer.verifier.to_vkey())
    assert parsed == signer.verifier
    assert parsed.verify(TEXT, _payload(signer.cosign(TEXT, 7))[4:]) == 7


def test_a_note_key_is_not_a_cosigner_key_and_back() -> None:
    note_vkey = NoteSigner(WITNESS_NAME, WITNESS_KEY).verifier.to_vkey()
    with pytest.raises(KeyFormatError, match="not an Ed25519 cosigner key"):
        parse_cosigner_key(note_vkey)
    with pytest.raises(KeyFormatError, match="not an Ed25519 note key"):
        parse_verifier_key(WITNESS.verifier.to_vkey())


def test_a_vkey_with_type_byte_4_but_a_note_key_id_is_refused() -> None:
    wrong_id = key_id(WITNESS_NAME, WITNESS_PUB).hex()
    encoded = base64.b64encode(b"\x04" + WITNESS_PUB).decode()
    with pytest.raises(KeyFormatError, match="does not match"):
        parse_cosigner_key(f"{WITNESS_NAME}+{wrong_id}+{encoded}")


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        ("witness.example", "name\\+id\\+key"),
        ("witness.example+abcd", "name\\+id\\+key"),
        ("+00000000+" + base64.b64encode(b"\x04" + bytes(32)).decode(), "invalid note key name"),
        ("w+ABCDEF01+" + base64.b64encode(b"\x04" + bytes(32)).decode(), "8 lowercase hex"),
        ("w+00000000+" + base64.b64encode(b"\x04" + bytes(31)).decode(), "cosigner key"),
        ("w+00000000+" + base64.b64encode(b"\x04" + bytes(32)).decode()[:-1], "base64"),
    ],
)
def test_malformed_cosigner_keys_are_refused(vkey: str, message: str) -> None:
    with pytest.raises(KeyFormatError, match=message):
        parse_cosigner_key(vkey)


def test_a_cosigner_name_must_be_a_valid_key_name() -> None:
    for name in ("", "a b", "a+b", "a\tb"):
        with pytest.raises(KeyFormatError, match="invalid cosigner name"):
            CosignatureVerifier(name, VerifyKey(WITNESS_PUB))


# The signature field.


def test_a_signature_field_of_the_wrong_length_is_malformed() -> None:
    line_sig = _payload(WITNESS.cosign(TEXT, TS))[4:]
    for bad in (line_sig[:-1], line_sig + b"\x00", line_sig[:8], b""):
        with pytest.raises(MalformedNoteError, match="not 72"):
            WITNESS.verifier.verify(TEXT, bad)


def test_a_timestamp_of_2_to_the_63_is_malformed() -> None:
    signature = WITNESS_KEY.sign(b"cosignature/v1\ntime 9223372036854775808\n" + TEXT.encode())
    with pytest.raises(MalformedNoteError, match=r"2\*\*63"):
        WITNESS.verifier.verify(TEXT, (2**63).to_bytes(8, "big") + signature)


def test_a_signature_over_another_timestamp_fails() -> None:
    line_sig = _payload(WITNESS.cosign(TEXT, TS))[4:]
    with pytest.raises(NoteSignatureError, match=WITNESS_NAME):
        WITNESS.verifier.verify(TEXT, (TS + 1).to_bytes(8, "big") + line_sig[8:])


def test_a_plain_note_signature_by_the_witness_key_is_not_a_cosignature() -> None:
    as_note_key = NoteSigner(WITNESS_NAME, WITNESS_KEY)
    raw = sign_note(TEXT, [LOG, as_note_key])
    assert cosignatures(raw, [WITNESS.verifier]) == {}
    # Even under the cosigner's key ID, it signs the wrong message and length.
    note_signature = WITNESS_KEY.sign(TEXT.encode())
    payload = WITNESS.key_id + TS.to_bytes(8, "big") + note_signature
    forged = add_signature_lines(SIGNED, [_line(WITNESS_NAME, payload)])
    with pytest.raises(NoteSignatureError):
        cosignatures(forged, [WITNESS.verifier])


# Cosignatures on a note.


def test_cosignatures_reports_each_trusted_witness_with_its_time() -> None:
    raw = add_signature_lines(
        SIGNED, [WITNESS.cosign(TEXT, TS), OTHER_WITNESS.cosign(TEXT, TS + 5)]
    )
    assert cosignatures(raw, [WITNESS.verifier, OTHER_WITNESS.verifier]) == {
        WITNESS_NAME: TS,
        OTHER_WITNESS.name: TS + 5,
    }
    assert cosignatures(raw, [OTHER_WITNESS.verifier]) == {OTHER_WITNESS.name: TS + 5}
    assert cosignatures(raw, []) == {}


def test_open_note_ignores_cosignatures_by_keys_it_does_not_know() -> None:
    raw = add_signature_lines(SIGNED, [WITNESS.cosign(TEXT, TS), OTHER_WITNESS.cosign(TEXT, 1)])
    opened = open_note(raw, [LOG.verifier])
    assert opened.text == TEXT
    assert [s.name for s in opened.signatures] == [LOG.name]
    assert [(s.name, s.key_id) for s in opened.unverified_signatures] == [
        (WITNESS_NAME, WITNESS.key_id),
        (OTHER_WITNESS.name, OTHER_WITNESS.key_id),
    ]
    # A note key with the witness's name and key has another key ID: no match.
    opened = open_note(raw, [LOG.verifier, NoteVerifier(WITNESS_NAME, VerifyKey(WITNESS_PUB))])
    assert [s.name for s in opened.signatures] == [LOG.name]
    # Cosignatures alone never make a note verified.
    with pytest.raises(UnverifiedNoteError):
        open_note((TEXT + "\n" + WITNESS.cosign(TEXT, TS)).encode(), [LOG.verifier])


def test_a_cosignature_by_an_unknown_key_is_ignored() -> None:
    impostor_key = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)
    impostor = CosignatureSigner(WITNESS_NAME, impostor_key)
    raw = add_signature_lines(SIGNED, [impostor.cosign(TEXT, TS), OTHER_WITNESS.cosign(TEXT, TS)])
    assert cosignatures(raw, [WITNESS.verifier]) == {}
    assert cosignatures(raw, [WITNESS.verifier, OTHER_WITNESS.verifier]) == {
        OTHER_WITNESS.name: TS
    }


def test_a_cosignature_under_a_wrong_key_id_is_ignored() -> None:
    payload = _payload(WITNESS.cosign(TEXT, TS))
    wrong = bytes([payload[0] ^ 1]) + payload[1:]
    raw = add_signature_lines(SIGNED, [_line(WITNESS_NAME, wrong)])
    assert cosignatures(raw, [WITNESS.verifier]) == {}


def test_every_changed_character_of_the_checkpoint_fails() -> None:
    sig_block = add_signature_lines(SIGNED, [WITNESS.cosign(TEXT, TS)])[len(TEXT):]
    for i, c in enumerate(TEXT):
        if c == "\n":
            continue
        forged = TEXT[:i] + ("X" if c != "X" else "Y") + TEXT[i + 1:]
        with pytest.raises(NoteSignatureError, match="cosignature"):
            cosignatures(forged.encode() + sig_block, [WITNESS.verifier])


def test_every_flipped_bit_of_the_cosignature_fails() -> None:
    payload = _payload(WITNESS.cosign(TEXT, TS))
    for bit in range(len(payload) * 8):
        forged = bytearray(payload)
        forged[bit // 8] ^= 1 << (bit % 8)
        raw = SIGNED + _line(WITNESS_NAME, bytes(forged)).encode()
        if bit < 32:
            # Another key ID: a stranger's line, ignored.
            assert cosignatures(raw, [WITNESS.verifier]) == {}
        elif bit == 39:
            # The timestamp's top bit: 2**63 or more, out of range.
            with pytest.raises(MalformedNoteError, match=r"2\*\*63"):
                cosignatures(raw, [WITNESS.verifier])
        else:
            with pytest.raises(NoteSignatureError, match=WITNESS_NAME):
                cosignatures(raw, [WITNESS.verifier])


def test_a_truncated_cosignature_by_a_trusted_witness_is_malformed() -> None:
    payload = _payload(WITNESS.cosign(TEXT, TS))
    for cut in (5, 12, 75):
        raw = SIGNED + _line(WITNESS_NAME, payload[:cut]).encode()
        with pytest.raises(MalformedNoteError, match=f"is {cut - 4} bytes, not 72"):
            cosignatures(raw, [WITNESS.verifier])


def test_two_cosignatures_by_one_trusted_witness_are_refused() -> None:
    raw = SIGNED + (WITNESS.cosign(TEXT, TS) + WITNESS.cosign(TEXT, TS + 1)).encode()
    with pytest.raises(MalformedNoteError, match="repeated cosignature"):
        cosignatures(raw, [WITNESS.verifier])
    # The very same line twice is refused too.
    raw = SIGNED + (WITNESS.cosign(TEXT, TS) * 2).encode()
    with pytest.raises(MalformedNoteError, match="repeated cosignature"):
        cosignatures(raw, [WITNESS.verifier])


def test_ambiguous_cosigner_configurations_are_refused() -> None:
    raw = add_signature_lines(SIGNED, [WITNESS.cosign(TEXT, TS)])
    same_name = CosignatureVerifier(WITNESS_NAME, OTHER_WITNESS.verifier.public)
    with pytest.raises(ValueError, match="two cosigners are named"):
        cosignatures(raw, [WITNESS.verifier, same_name])
    same_key = CosignatureVerifier("witness.example/alias", WITNESS.verifier.public)
    with pytest.raises(ValueError, match="share one public key"):
        cosignatures(raw, [WITNESS.verifier, same_key])
    # Listing one cosigner twice is harmless.
    assert cosignatures(raw, [WITNESS.verifier, WITNESS.verifier]) == {WITNESS_NAME: TS}


def test_cosignatures_refuses_a_malformed_note() -> None:
    with pytest.raises(MalformedNoteError, match="blank line"):
        cosignatures(TEXT.encode(), [WITNESS.verifier])
    with pytest.raises(MalformedNoteError, match="longer than"):
        cosignatures(SIGNED, [WITNESS.verifier], max_bytes=10)


# Appending signature lines.


def test_add_signature_lines_appends_after_the_existing_ones() -> None:
    lines = [WITNESS.cosign(TEXT, TS), OTHER_WITNESS.cosign(TEXT, TS)]
    raw = add_signature_lines(SIGNED, lines)
    assert raw == SIGNED + "".join(lines).encode()
    assert add_signature_lines(SIGNED, []) == SIGNED


def test_add_signature_lines_skips_duplicate_lines() -> None:
    line = WITNESS.cosign(TEXT, TS)
    once = add_signature_lines(SIGNED, [line])
    assert add_signature_lines(once, [line]) == once
    assert add_signature_lines(SIGNED, [line, line]) == once
    log_line = SIGNED.decode().rsplit("\n\n", 1)[1]
    assert add_signature_lines(SIGNED, [log_line]) == SIGNED


def test_add_signature_lines_refuses_a_second_signature_by_the_same_key() -> None:
    once = add_signature_lines(SIGNED, [WITNESS.cosign(TEXT, TS)])
    with pytest.raises(MalformedNoteError, match="already has another signature"):
        add_signature_lines(once, [WITNESS.cosign(TEXT, TS + 1)])
    with pytest.raises(MalformedNoteError, match="already has another signature"):
        add_signature_lines(SIGNED, [WITNESS.cosign(TEXT, TS), WITNESS.cosign(TEXT, TS + 1)])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (WITNESS.cosign(TEXT, TS).rstrip("\n"), "ending in a newline"),
        (WITNESS.cosign(TEXT, TS) * 2, "one line"),
        ("- " + WITNESS.cosign(TEXT, TS)[2:], "em dash"),
        ("\u2014 " + WITNESS.cosign(TEXT, TS)[2:].replace(" ", "  ", 1), "base64"),
        ("\u2014  AAAAAAAA\n", "key name"),
        (WITNESS.cosign(TEXT, TS).replace("==\n", "\n"), "base64"),
        (_line(WITNESS_NAME, b"\x00" * 4), "too short"),
        ("\n", "em dash"),
    ],
)
def test_add_signature_lines_refuses_malformed_lines(line: str, message: str) -> None:
    with pytest.raises(MalformedNoteError, match=message):
        add_signature_lines(SIGNED, [line])


def test_add_signature_lines_refuses_a_malformed_note_and_enforces_the_limits() -> None:
    line = WITNESS.cosign(TEXT, TS)
    with pytest.raises(MalformedNoteError, match="blank line"):
        add_signature_lines(TEXT.encode(), [line])
    with pytest.raises(MalformedNoteError, match="more than 1 signatures"):
        add_signature_lines(SIGNED, [line], max_signatures=1)
    with pytest.raises(MalformedNoteError, match="longer than"):
        add_signature_lines(SIGNED, [line], max_bytes=len(SIGNED) + 10)
