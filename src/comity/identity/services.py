"""The node's own identity on disk, and the peers it trusts.

Local identity: each card serial has its own directory
``DATA/identity/<serial>/`` holding ``card.json`` and the private keys (files
mode 0600, directory 0700); ``DATA/identity/current`` names the serial in use
and is replaced atomically, so a crash during rotation leaves either the old
identity or the new one, never a mixture. After a rotation the old private keys
are deleted: nothing can sign with them again. Old cards stay, as the chain a
peer needs to follow the rotation.

Peers: a peer is pinned to the newest card of its chain that we verified. A
first card is self-certifying (its node id is derived from its key); each
later card must carry a rotation signature by the card before it.

Trust assumptions: the data directory is trusted; every card handed to
:func:`import_cards` is not.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from comity.clock import Clock, format_ts
from comity.hazmat import canonical
from comity.hazmat.keys import EncryptionKey, SigningKey, write_private_file
from comity.identity.errors import (
    CardChainError,
    IdentityError,
    InvalidCardError,
    UnknownPeerError,
)
from comity.identity.models import Peer, PeerCard
from comity.identity.schemas import CARD_TYPE, NodeCard, NodeKind, node_id_for, sign_card

__all__ = [
    "IdentityHolder",
    "LocalIdentity",
    "get_peer",
    "import_cards",
    "init_node",
    "list_peers",
    "peer_card",
    "require_peer",
    "rotate_keys",
    "stored_card",
]

_MAX_CARD_FILE = 64 * 1024


@dataclass(frozen=True)
class LocalIdentity:
    """This node's current card, its private keys, and its card chain."""

    card: NodeCard
    signing_key: SigningKey
    encryption_key: EncryptionKey
    chain: tuple[NodeCard, ...]

    @property
    def node_id(self) -> str:
        return self.card.node_id

    @property
    def serial(self) -> int:
        return self.card.serial

    @classmethod
    def load(cls, data_dir: Path) -> LocalIdentity:
        """Load the current identity from ``data_dir``.

        Raises:
            IdentityError: if the node was never initialised or its files are
                inconsistent.
        """
        root = data_dir / "identity"
        try:
            serial = int((root / "current").read_text().strip())
        except FileNotFoundError as e:
            raise IdentityError(
                f"no node identity in {data_dir}: run `comity node init` first"
            ) from e
        except ValueError as e:
            raise IdentityError(f"{root / 'current'} is corrupt") from e
        chain = tuple(_load_card(root / f"{s:06d}" / "card.json") for s in range(1, serial + 1))
        card = chain[-1]
        signing = SigningKey.load(root / f"{serial:06d}" / "signing.key")
        encryption = EncryptionKey.load(root / f"{serial:06d}" / "encryption.key")
        if signing.public != card.signing_key or encryption.public_b64() != card.encryption_key_b64:
            raise IdentityError(f"keys in {root / f'{serial:06d}'} do not match the card")
        return cls(card=card, signing_key=signing, encryption_key=encryption, chain=chain)


def _load_card(path: Path) -> NodeCard:
    raw = path.read_bytes()
    card = stored_card(raw)
    card.verify_self()
    return card


def _write_identity(data_dir: Path, card: NodeCard, sk: SigningKey, ek: EncryptionKey) -> None:
    root = data_dir / "identity"
    target = root / f"{card.serial:06d}"
    staging = root / f".{card.serial:06d}.staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True, mode=0o700)
    sk.save(staging / "signing.key")
    ek.save(staging / "encryption.key")
    write_private_file(staging / "card.json", card.to_json())
    os.chmod(staging / "card.json", 0o644)
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    # The switch: until this rename lands, the previous identity is current.
    write_private_file(root / "current", f"{card.serial}\n".encode())


def _card_body(
    *, node_id: str, serial: int, name: str, kind: NodeKind, jurisdiction: str, url: str,
    languages: list[str], sk: SigningKey, ek: EncryptionKey, issued: dt.datetime,
    previous: NodeCard | None, extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = dict(extra or {})
    body.update({
        "type": CARD_TYPE,
        "v": 1,
        "node_id": node_id,
        "serial": serial,
        "name": name,
        "kind": kind.value,
        "jurisdiction": jurisdiction,
        "url": url.rstrip("/"),
        "languages": languages,
        "log_origin": f"{url.rstrip('/').split('://', 1)[-1]}/log",
        "keys": {"signing": sk.public.b64(), "encryption": ek.public_b64()},
        "issued": format_ts(issued),
        "previous": None if previous is None else {
            "serial": previous.serial, "hash": previous.card_hash},
    })
    return body


def init_node(
    data_dir: Path, *, name: str, kind: NodeKind, jurisdiction: str, url: str,
    languages: list[str], clock: Clock,
) -> LocalIdentity:
    """Create a node's keys and first self-signed card in ``data_dir``.

    Raises:
        IdentityError: if ``data_dir`` already holds an identity.
        InvalidCardError: if a field is malformed (bad country code, URL, ...).
    """
    if (data_dir / "identity" / "current").exists():
        raise IdentityError(f"{data_dir} already holds a node identity")
    sk, ek = SigningKey.generate(), EncryptionKey.generate()
    body = _card_body(
        node_id=node_id_for(sk.public), serial=1, name=name, kind=kind,
        jurisdiction=jurisdiction.upper(), url=url, languages=languages, sk=sk, ek=ek,
        issued=clock.now(), previous=None,
    )
    card = NodeCard.parse_unverified(sign_card(body, key=sk))
    card.verify_self()
    _write_identity(data_dir, card, sk, ek)
    return LocalIdentity.load(data_dir)


def rotate_keys(data_dir: Path, *, clock: Clock) -> LocalIdentity:
    """Issue a new card with fresh keys, signed by the new and the old key.

    The old private keys are deleted once the new identity is current.

    Raises:
        IdentityError: if there is no identity to rotate.
    """
    old = LocalIdentity.load(data_dir)
    sk, ek = SigningKey.generate(), EncryptionKey.generate()
    keep = {k: v for k, v in old.card.doc.items()
            if k not in ("sig", "rotation_sig", "previous", "keys", "serial", "issued")}
    body = _card_body(
        node_id=old.node_id, serial=old.serial + 1, name=old.card.name, kind=old.card.kind,
        jurisdiction=old.card.jurisdiction, url=old.card.url,
        languages=list(old.card.doc["languages"]), sk=sk, ek=ek, issued=clock.now(),
        previous=old.card, extra=keep,
    )
    card = NodeCard.parse_unverified(sign_card(body, key=sk, previous_key=old.signing_key))
    old.card.verify_successor(card)
    _write_identity(data_dir, card, sk, ek)
    # The old signing key goes: nothing may be signed with it any more. The old
    # encryption key stays: evidence and message bodies sealed to it before
    # the peers learnt of the rotation must remain readable.
    (data_dir / "identity" / f"{old.serial:06d}" / "signing.key").unlink(missing_ok=True)
    return LocalIdentity.load(data_dir)


def encryption_key_for(data_dir: Path, serial: int) -> EncryptionKey:
    """This node's X25519 key of card ``serial`` (current or earlier).

    Raises:
        FileNotFoundError: no such key is held.
        KeyFormatError: the key file is damaged.
    """
    if serial < 1:
        raise FileNotFoundError(f"no card serial {serial}")
    return EncryptionKey.load(data_dir / "identity" / f"{serial:06d}" / "encryption.key")


class IdentityHolder:
    """Hands out the current identity, reloading it when it is rotated.

    A long-running server holds one of these; ``comity node rotate-keys`` run
    from another process changes ``identity/current``, and the next call to
    :meth:`get` notices (one ``stat``) and loads the new keys.
    """

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self._pointer = data_dir / "identity" / "current"
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._identity = LocalIdentity.load(data_dir)

    def _stat(self) -> tuple[int, int]:
        st = self._pointer.stat()
        return (st.st_mtime_ns, st.st_ino)

    def get(self) -> LocalIdentity:
        stamp = self._stat()
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._identity = LocalIdentity.load(self._data_dir)
                    self._stamp = stamp
        return self._identity

    def encryption_key(self, serial: int) -> EncryptionKey:
        """This node's X25519 key of card ``serial``: the current one from memory, an
        earlier one from its file (kept after rotations to read what was sealed to it).

        Raises:
            FileNotFoundError, KeyFormatError
        """
        local = self.get()
        if serial == local.serial:
            return local.encryption_key
        return encryption_key_for(self._data_dir, serial)


# -- peers ------------------------------------------------------------------

def get_peer(session: Session, node_id: str) -> Peer:
    """The pinned peer ``node_id``.

    Raises:
        UnknownPeerError: if no card of that node was ever imported.
    """
    peer = session.get(Peer, node_id)
    if peer is None:
        raise UnknownPeerError(f"node {node_id!r} is not a known peer")
    return peer


def require_peer(session: Session, node_id: str) -> None:
    """Like :func:`get_peer`, for callers that only need to know it exists.

    Raises:
        UnknownPeerError: if no card of that node was ever imported.
    """
    if session.execute(select(Peer.node_id).where(Peer.node_id == node_id)).first() is None:
        raise UnknownPeerError(f"node {node_id!r} is not a known peer")


def list_peers(session: Session) -> list[Peer]:
    """Every known peer, by name."""
    return list(session.scalars(select(Peer).order_by(Peer.name)))


def stored_card(raw: bytes) -> NodeCard:
    """A card as this node stored it (verified when it was imported)."""
    return NodeCard.parse_unverified(canonical.loads_strict(raw, max_bytes=_MAX_CARD_FILE))


def peer_card(peer: Peer) -> NodeCard:
    """The pinned card of ``peer``."""
    return stored_card(peer.card)


def import_cards(
    session: Session, unverified: object, *, local_node_id: str, clock: Clock,
) -> tuple[Peer, int]:
    """Verify a card or a card chain and pin the peer to its newest card.

    ``unverified`` is a card object or a list of cards of one node. For a
    peer we do not know, the chain must start at the first card. For a peer we
    know, cards we already hold must match exactly, and newer ones must each
    be a valid rotation of the one before.

    Returns:
        The peer row and how many new cards were accepted (0 if none).

    Raises:
        InvalidCardError: on malformed cards, mixed nodes, or our own card.
        CardSignatureError: on any failed signature.
        CardChainError: on a gap, a fork, or a chain not starting at serial 1.
    """
    docs = unverified if isinstance(unverified, list) else [unverified]
    if not docs:
        raise InvalidCardError("no card given")
    cards = sorted((NodeCard.parse_unverified(d) for d in docs), key=lambda c: c.serial)
    node_id = cards[0].node_id
    if any(c.node_id != node_id for c in cards):
        raise InvalidCardError("cards of several nodes given at once")
    if node_id == local_node_id:
        raise InvalidCardError("that is this node's own card")
    now = clock.now()
    peer = session.get(Peer, node_id)
    if peer is None:
        if cards[0].serial != 1:
            raise CardChainError(
                f"first contact needs the whole card chain from serial 1 "
                f"(got serial {cards[0].serial}); export it with `comity node card --chain`"
            )
        cards[0].verify_self()
        pinned = cards[0]
        new_cards = [cards[0]]
    else:
        pinned = peer_card(peer)
        new_cards = []
    for card in cards:
        if card.serial <= pinned.serial:
            if card.serial == pinned.serial and card.card_hash != pinned.card_hash:
                raise CardChainError(
                    f"card serial {card.serial} differs from the one we hold: possible fork")
            continue
        pinned = pinned.verify_successor(card)
        new_cards.append(card)
    if not new_cards:
        assert peer is not None
        return peer, 0
    # A log origin names one node's log: a second node claiming it could get
    # a witness to follow two logs under one name (and cosign a fork).
    origin = pinned.doc["log_origin"]
    for other in session.scalars(select(Peer).where(Peer.node_id != node_id)):
        if peer_card(other).doc["log_origin"] == origin:
            raise InvalidCardError(f"log origin {origin!r} is already the origin of peer "
                                   f"{other.node_id}")
    if peer is None:
        peer = Peer(node_id=node_id, added_at=now)
        session.add(peer)
    _pin(peer, pinned, now)
    for card in new_cards:
        session.add(PeerCard(node_id=node_id, serial=card.serial, card=card.to_json(),
                             accepted_at=now))
    session.flush()
    return peer, len(new_cards)


def _pin(peer: Peer, card: NodeCard, now: dt.datetime) -> None:
    peer.name = card.name
    peer.kind = card.kind.value
    peer.jurisdiction = card.jurisdiction
    peer.url = card.url
    peer.signing_key = card.signing_key.raw
    peer.serial = card.serial
    peer.card = card.to_json()
    peer.updated_at = now

