"""Signed notes and checkpoints: the Go/C2SP vector, tampering, and strict parsing."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comity.hazmat import note as note_module
from comity.hazmat.keys import KeyFormatError
from comity.hazmat.merkle import EMPTY_ROOT, MAX_TREE_SIZE
from comity.hazmat.note import (
    MAX_NOTE_BYTES,
    MAX_SIGNATURES,
    Checkpoint,
    MalformedCheckpointError,
    MalformedNoteError,
    NoteError,
    NoteSignature,
    NoteSignatureError,
    NoteSigner,
    NoteVerifier,
    UnverifiedNoteError,
    key_id,
    open_note,
    parse_checkpoint,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
)

VECTOR = json.loads(
    (Path(__file__).resolve().parent.parent / "vectors" / "signed-note.json").read_text()
)["vectors"][0]
SIGNER = parse_signer_key(VECTOR["signer_key"])
VERIFIER = parse_verifier_key(VECTOR["verifier_key"])
TEXT: str = VECTOR["text"]
RAW = sign_note(TEXT, [SIGNER])


def _sig_line(name: str, payload: bytes) -> str:
    return f"— {name} {base64.b64encode(payload).decode()}\n"


# The vector.


def test_vector_signature_is_reproduced_byte_for_byte() -> None:
    signature_block = RAW.decode().rsplit("\n\n", 1)[1]
    assert signature_block == VECTOR["signature_line"] + "\n"
    assert (TEXT + "\n" + VECTOR["signature_line"] + "\n").encode() == RAW


def test_vector_keys_round_trip_and_agree() -> None:
    assert SIGNER.to_skey() == VECTOR["signer_key"]
    assert VERIFIER.to_vkey() == VECTOR["verifier_key"]
    assert SIGNER.verifier == VERIFIER
    assert key_id("PeterNeumann", VERIFIER.public.raw).hex() == "c74f20a3"


def test_vector_opens() -> None:
    opened = open_note(RAW, [VERIFIER])
    assert opened.text == TEXT
    assert [s.to_line() for s in opened.signatures] == [VECTOR["signature_line"] + "\n"]
    assert opened.unverified_signatures == ()


def test_a_vkey_whose_base64_contains_plus_parses() -> None:
    vkey = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
    assert parse_verifier_key(vkey).to_vkey() == vkey


def test_generated_keys_round_trip() -> None:
    signer = NoteSigner.generate("example.org/log")
    assert parse_signer_key(signer.to_skey()).verifier == signer.verifier
    assert parse_verifier_key(signer.verifier.to_vkey()) == signer.verifier
    assert open_note(sign_note("hi\n", [signer]), [signer.verifier]).text == "hi\n"


# Tampering.


def test_every_changed_character_of_the_text_is_refused() -> None:
    sig_block = RAW[len(TEXT.encode()):]
    for i, c in enumerate(TEXT):
        if c == "\n":
            continue
        forged = TEXT[:i] + ("X" if c != "X" else "Y") + TEXT[i + 1:]
        with pytest.raises(NoteSignatureError):
            open_note(forged.encode() + sig_block, [VERIFIER])


def test_every_flipped_bit_of_the_signature_is_refused() -> None:
    payload = SIGNER.key_id + SIGNER.sign(TEXT.encode())
    for bit in range(len(payload) * 8):
        forged = bytearray(payload)
        forged[bit // 8] ^= 1 << (bit % 8)
        raw = (TEXT + "\n" + _sig_line(SIGNER.name, bytes(forged))).encode()
        # A changed key ID makes the signature a stranger's: nothing verifies.
        expected = UnverifiedNoteError if bit < 32 else NoteSignatureError
        with pytest.raises(expected):
            open_note(raw, [VERIFIER])


def test_a_signature_of_the_wrong_length_by_a_known_key_is_refused() -> None:
    for signature in (b"\x00", SIGNER.sign(TEXT.encode()) + b"\x00"):
        raw = (TEXT + "\n" + _sig_line(SIGNER.name, SIGNER.key_id + signature)).encode()
        with pytest.raises(NoteSignatureError):
            open_note(raw, [VERIFIER])


def test_unknown_signatures_are_kept_unchecked_and_never_suffice() -> None:
    other = NoteSigner.generate("witness.example/w1")
    # Same name as a known key, different key: a stranger too.
    impostor = NoteSigner.generate(SIGNER.name)
    raw = sign_note(TEXT, [other, SIGNER, impostor])
    opened = open_note(raw, [VERIFIER])
    assert [s.name for s in opened.signatures] == [SIGNER.name]
    assert [(s.name, s.key_id) for s in opened.unverified_signatures] == [
        (other.name, other.key_id), (impostor.name, impostor.key_id)]
    with pytest.raises(UnverifiedNoteError):
        open_note(raw, [])
    with pytest.raises(UnverifiedNoteError):
        open_note(sign_note(TEXT, [other]), [VERIFIER])


def test_one_bad_known_signature_spoils_the_note() -> None:
    witness = NoteSigner.generate("witness.example/w1")
    bad = NoteSignature(witness.name, witness.key_id, witness.sign(b"another text\n"))
    raw = RAW + bad.to_line().encode()
    assert open_note(raw, [VERIFIER]).text == TEXT
    with pytest.raises(NoteSignatureError):
        open_note(raw, [VERIFIER, witness.verifier])


def test_a_repeated_signature_by_a_known_key_is_refused() -> None:
    with pytest.raises(MalformedNoteError, match="repeated"):
        open_note(RAW + VECTOR["signature_line"].encode() + b"\n", [VERIFIER])


def test_ambiguous_verifiers_are_a_caller_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(note_module, "key_id", lambda name, public: b"\x00" * 4)
    twin = NoteSigner.generate(SIGNER.name).verifier
    with pytest.raises(ValueError, match="share key ID"):
        open_note(RAW, [VERIFIER, twin])


# Malformed notes.


SIG = VECTOR["signature_line"]
MALFORMED_NOTES = {
    "no blank line": (TEXT + SIG + "\n").encode(),
    "no signatures": (TEXT + "\n").encode(),
    "no final newline": RAW[:-1],
    "lone signature block": ("\n" + SIG + "\n").encode(),
    "lone signature block after blank lines": ("\n\n" + SIG + "\n").encode(),
    "hyphen instead of em dash": RAW.replace("—".encode(), b"-"),
    "no space after the dash": RAW.replace("— ".encode(), "—".encode()),
    "two spaces before the name": RAW.replace("— ".encode(), "—  ".encode()),
    "no signature after the name": (TEXT + "\n— PeterNeumann\n").encode(),
    "two spaces before the signature": RAW.replace(b"Neumann ", b"Neumann  "),
    "plus in the name": RAW.replace(b"PeterNeumann", b"Peter+Neumann"),
    "missing base64 padding": RAW.replace(b"nAM=\n", b"nAM\n"),
    "non-canonical base64": RAW.replace(b"nAM=\n", b"nAN=\n"),
    "base64url alphabet": RAW.replace(b"/", b"_"),
    "signature of four bytes": (TEXT + "\n" + _sig_line("PeterNeumann", b"\xc7O \xa3")).encode(),
    "carriage return": RAW.replace(b"\n", b"\r\n"),
    "tab in text": RAW.replace(b" ", b"\t", 1),
    "nul in text": b"\x00" + RAW,
    "invalid UTF-8": b"\xff" + RAW,
    "overlong UTF-8": b"\xc0\xaf" + RAW,
    "too large": b"x" * (MAX_NOTE_BYTES + 1 - len(RAW)) + RAW,
}


@pytest.mark.parametrize("raw", MALFORMED_NOTES.values(), ids=MALFORMED_NOTES.keys())
def test_malformed_notes_are_refused(raw: bytes) -> None:
    with pytest.raises(MalformedNoteError):
        open_note(raw, [VERIFIER])


def test_a_blank_line_among_signatures_moves_them_into_the_text() -> None:
    # The text ends at the last blank line, so the first block of signature
    # lines becomes text that nobody signed.
    with pytest.raises(NoteSignatureError):
        open_note(RAW + b"\n" + RAW[len(TEXT) + 1:], [VERIFIER])


def test_a_signature_block_must_be_present_and_end_in_newline() -> None:
    for raw in ((TEXT + "\n").encode(), RAW[:-1]):
        with pytest.raises(MalformedNoteError, match="final newline"):
            open_note(raw, [VERIFIER])


def test_limits_are_applied_and_configurable() -> None:
    strangers = "".join(_sig_line(f"s{i}", bytes(68)) for i in range(MAX_SIGNATURES - 1))
    at_limit = RAW + strangers.encode()
    assert len(open_note(at_limit, [VERIFIER]).unverified_signatures) == MAX_SIGNATURES - 1
    with pytest.raises(MalformedNoteError, match="more than"):
        open_note(at_limit + _sig_line("one-too-many", bytes(68)).encode(), [VERIFIER])
    with pytest.raises(MalformedNoteError, match="more than 1 "):
        open_note(RAW + _sig_line("s", bytes(68)).encode(), [VERIFIER], max_signatures=1)
    with pytest.raises(MalformedNoteError, match="longer than"):
        open_note(RAW, [VERIFIER], max_bytes=len(RAW) - 1)
    assert open_note(RAW, [VERIFIER], max_bytes=len(RAW)).text == TEXT


def test_text_may_hold_blank_lines_and_non_ascii() -> None:
    text = "Ognuno sta solo sul cuor della terra\n\ned è subito sera — 终.\n\n"
    assert open_note(sign_note(text, [SIGNER]), [VERIFIER]).text == text


@pytest.mark.parametrize("text", ["", "\n", "\n\n", "no newline", "tab\there\n", "cr\r\n",
                                  "lone \ud800 surrogate\n"])
def test_sign_refuses_text_that_is_not_a_note_text(text: str) -> None:
    with pytest.raises(MalformedNoteError):
        sign_note(text, [SIGNER])


def test_sign_needs_distinct_signers_within_the_limit() -> None:
    for signers in ([], [SIGNER, SIGNER], [SIGNER] * (MAX_SIGNATURES + 1)):
        with pytest.raises(ValueError, match="distinct signers"):
            sign_note(TEXT, signers)


# Key strings.


VKEY = VECTOR["verifier_key"]
SKEY = VECTOR["signer_key"]
BAD_VKEYS = {
    "no separators": "PeterNeumann",
    "one separator": "PeterNeumann+c74f20a3",
    "empty name": VKEY.replace("PeterNeumann", ""),
    "space in name": VKEY.replace("PeterNeumann", "Peter Neumann"),
    "uppercase key ID": VKEY.replace("c74f20a3", "C74F20A3"),
    "short key ID": VKEY.replace("c74f20a3", "c74f20a"),
    "wrong key ID": VKEY.replace("c74f20a3", "c74f20a4"),
    "other name, same key": VKEY.replace("PeterNeumann", "EnochRoot"),
    "non-canonical base64": VKEY[:-1] + "X",
    "missing padding": "PeterNeumann+c74f20a3+" + base64.b64encode(b"\x01" + bytes(32)).decode()
    .rstrip("="),
    "ECDSA type byte": "PeterNeumann+c74f20a3+" + base64.b64encode(b"\x02" + bytes(32)).decode(),
    "key too long": "PeterNeumann+c74f20a3+" + base64.b64encode(b"\x01" + bytes(33)).decode(),
    "non-ASCII base64": VKEY + "é",
}
BAD_SKEYS = {
    "verifier key": VKEY,
    "lowercase prefix": SKEY.replace("PRIVATE+KEY", "private+key"),
    "wrong key ID": SKEY.replace("c74f20a3", "00000000"),
    "too few parts": "PRIVATE+KEY+PeterNeumann+c74f20a3",
    "public key instead of seed": "PRIVATE+KEY+" + VKEY,
}


@pytest.mark.parametrize("vkey", BAD_VKEYS.values(), ids=BAD_VKEYS.keys())
def test_malformed_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(KeyFormatError):
        parse_verifier_key(vkey)


@pytest.mark.parametrize("skey", BAD_SKEYS.values(), ids=BAD_SKEYS.keys())
def test_malformed_signer_keys_are_refused(skey: str) -> None:
    with pytest.raises(KeyFormatError):
        parse_signer_key(skey)


@pytest.mark.parametrize(("type_byte", "key"), [(2, bytes(32)), (1, bytes(31)), (1, bytes(33))])
def test_only_ed25519_keys_are_accepted(type_byte: int, key: bytes) -> None:
    # The key ID is right for the key bytes, so only the type or length is wrong.
    encoded = base64.b64encode(bytes([type_byte]) + key).decode()
    vkey = f"PeterNeumann+{key_id('PeterNeumann', key).hex()}+{encoded}"
    with pytest.raises(KeyFormatError, match="not an Ed25519"):
        parse_verifier_key(vkey)
    with pytest.raises(KeyFormatError, match="not an Ed25519"):
        parse_signer_key("PRIVATE+KEY+" + vkey)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u2003b", "a\nb", "a\x01b"])
def test_invalid_key_names_are_refused(name: str) -> None:
    with pytest.raises(KeyFormatError):
        NoteSigner.generate(name)
    with pytest.raises(KeyFormatError):
        NoteVerifier(name, VERIFIER.public)


# Checkpoints.


C2SP_EXAMPLE = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)


def test_the_c2sp_example_checkpoint_round_trips() -> None:
    checkpoint = parse_checkpoint(C2SP_EXAMPLE)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.extensions == ()
    assert checkpoint.to_text() == C2SP_EXAMPLE


def test_extension_lines_are_kept_in_order() -> None:
    text = C2SP_EXAMPLE + "ext one\n— not a signature\n"
    checkpoint = parse_checkpoint(text)
    assert checkpoint.extensions == ("ext one", "— not a signature")
    assert checkpoint.to_text() == text


def test_a_signed_checkpoint_opens_and_parses() -> None:
    signer = NoteSigner.generate("example.org/log")
    checkpoint = Checkpoint("example.org/log", 0, EMPTY_ROOT)
    opened = open_note(sign_note(checkpoint.to_text(), [signer]), [signer.verifier])
    assert parse_checkpoint(opened.text) == checkpoint


ROOT_B64 = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
BAD_CHECKPOINTS = {
    "missing final newline": C2SP_EXAMPLE[:-1],
    "two lines": "example.com/log\n5\n",
    "empty origin": f"\n5\n{ROOT_B64}\n",
    "empty size": f"o\n\n{ROOT_B64}\n",
    "leading zero": f"o\n05\n{ROOT_B64}\n",
    "zero with leading zero": f"o\n00\n{ROOT_B64}\n",
    "negative size": f"o\n-5\n{ROOT_B64}\n",
    "plus sign": f"o\n+5\n{ROOT_B64}\n",
    "space in size": f"o\n 5\n{ROOT_B64}\n",
    "underscore in size": f"o\n1_000\n{ROOT_B64}\n",
    "non-ASCII digits": f"o\n٥\n{ROOT_B64}\n",
    "size above uint64": f"o\n{MAX_TREE_SIZE + 1}\n{ROOT_B64}\n",
    "thousands of digits": f"o\n{'9' * 5000}\n{ROOT_B64}\n",
    "non-canonical base64": f"o\n5\n{ROOT_B64[:-2]}3=\n",
    "missing padding": f"o\n5\n{ROOT_B64[:-1]}\n",
    "base64url": f"o\n5\n{ROOT_B64.replace('/', '_')}\n",
    "short root": f"o\n5\n{base64.b64encode(bytes(31)).decode()}\n",
    "long root": f"o\n5\n{base64.b64encode(bytes(33)).decode()}\n",
    "empty extension line": C2SP_EXAMPLE + "\n",
    "CRLF": C2SP_EXAMPLE.replace("\n", "\r\n"),
    "control in origin": "o\x01\n5\n" + ROOT_B64 + "\n",
}


@pytest.mark.parametrize("text", BAD_CHECKPOINTS.values(), ids=BAD_CHECKPOINTS.keys())
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(MalformedCheckpointError):
        parse_checkpoint(text)


def test_the_largest_size_is_accepted() -> None:
    assert parse_checkpoint(f"o\n{MAX_TREE_SIZE}\n{ROOT_B64}\n").size == MAX_TREE_SIZE


@pytest.mark.parametrize(("origin", "size", "root", "extensions"), [
    ("", 0, EMPTY_ROOT, ()),
    ("o\nx", 0, EMPTY_ROOT, ()),
    ("o", -1, EMPTY_ROOT, ()),
    ("o", MAX_TREE_SIZE + 1, EMPTY_ROOT, ()),
    ("o", True, EMPTY_ROOT, ()),
    ("o", 0, EMPTY_ROOT[:31], ()),
    ("o", 0, EMPTY_ROOT, ("",)),
    ("o", 0, EMPTY_ROOT, ("a\nb",)),
])
def test_impossible_checkpoints_cannot_be_built(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(MalformedCheckpointError):
        Checkpoint(origin, size, root, extensions)


_LINE = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"), min_size=1
).filter(lambda s: not any(c < " " for c in s))


@settings(max_examples=200, deadline=None)
@given(_LINE, st.integers(0, MAX_TREE_SIZE), st.binary(min_size=32, max_size=32),
       st.lists(_LINE, max_size=3).map(tuple))
def test_checkpoints_round_trip(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    checkpoint = Checkpoint(origin, size, root, extensions)
    assert parse_checkpoint(checkpoint.to_text()) == checkpoint


def test_note_errors_share_one_base() -> None:
    for error in (MalformedNoteError, NoteSignatureError, UnverifiedNoteError):
        assert issubclass(error, NoteError)
        assert issubclass(error, ValueError)
