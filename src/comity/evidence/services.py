"""Evidence: packaging files for a request, moving them to the peer, custody, verify and open.

The flow, for a package the requested party returns to the requester:

1. ``prepare`` (sender, outside any transaction, may take minutes): every file
   is read once, encrypted to the recipient's card key and hashed
   (:mod:`comity.evidence.package`); the signed manifest comes back.
2. The officer's act (``execute`` with ``evidence: [manifest]``) commits the
   package row and the *collected* and *packaged* custody events with the
   event message, in one transaction.
3. The receiver, on that message, records the package as *announced*: only
   announced packages accept bytes, and never more than the manifest says.
4. Once the message is delivered, the :class:`Uploader` streams each file's
   ciphertext to ``PUT /federation/evidence/{package}/{index}`` (resuming
   where the receiver stands). The receiver hashes while it writes; a file
   becomes visible only when its size and SHA-256 match the manifest. With
   the last file it records *received* and answers with a signed receipt,
   which the sender keeps with its *sent* event.
5. The requester ``verify``s (decrypts and checks everything, writes
   nothing) and ``open``s (writes the plaintext): *verified*, *opened*.

Every custody event is also a CUSTODY entry in the node's log, committed in
the same transaction.

Trust assumptions: manifests from peers are verified against the sender's
card key; transfer requests are authenticated by a signature of the peer's
node key over method, path, offset and time; bytes are trusted only after
their hash matches the signed manifest.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from comity.clock import Clock, format_ts, parse_ts
from comity.config import Settings
from comity.db import read_scope, session_scope
from comity.evidence.errors import EvidenceError, ManifestError, TamperedError
from comity.evidence.models import CustodyEvent, EvidencePackage
from comity.evidence.package import (
    Manifest,
    SignedManifest,
    build_package,
    cipher_file_name,
    open_package,
    parse_signed_manifest,
    verify_package,
)
from comity.federation.errors import InvalidBodyError, PayloadTooLargeError
from comity.federation.models import OutboxMessage
from comity.hazmat import canonical
from comity.hazmat.keys import BadSignature, VerifyKey, b64d, b64e
from comity.identity.models import Peer, PeerCard
from comity.identity.services import (
    IdentityHolder,
    get_peer,
    stored_card,
)
from comity.ledger.commitments import Opening, new_salt
from comity.ledger.sequencer import BackgroundLoop
from comity.ledger.services import Ledger
from comity.problems import Problem

__all__ = ["Evidence", "TransferAuthError", "Uploader"]

log = logging.getLogger(__name__)

_TRANSFER_DOMAIN = b"comity.evidence.transfer.v1\0"
_RECEIPT_DOMAIN = b"comity.evidence.receipt.v1\0"
RECEIPT_TYPE = "comity.evidence.receipt"


class TransferAuthError(Problem):
    slug = "evidence-transfer-unauthenticated"
    status = 401
    title = "Evidence transfer not authenticated"


class PackageNotFoundError(EvidenceError):
    slug = "evidence-not-found"
    status = 404
    title = "No such evidence package"


class PackageStateError(EvidenceError):
    slug = "evidence-state"
    status = 409
    title = "Not possible in the package's current state"


@dataclass(frozen=True)
class FileProgress:
    index: int
    received: int
    complete: bool


def transfer_signing_bytes(method: str, path: str, offset: int, date: str, node: str,
                           length: int = 0) -> bytes:
    """What a transfer request's signature covers: method, path, offset, time, sender and
    the body's length, so captured headers cannot carry other bytes or another range."""
    return _TRANSFER_DOMAIN + "\0".join(
        [method, path, str(offset), date, node, str(length)]).encode()


class Evidence:
    """The evidence packages of one node."""

    def __init__(self, settings: Settings, identity: IdentityHolder,
                 sessions: sessionmaker[Session], ledger: Ledger, clock: Clock) -> None:
        self.settings = settings
        self.identity = identity
        self.sessions = sessions
        self.ledger = ledger
        self.clock = clock
        self.root = settings.data_dir / "evidence"

    def out_dir(self, package_id: str) -> Path:
        return self.root / "out" / package_id

    def in_dir(self, package_id: str) -> Path:
        return self.root / "in" / package_id

    @contextmanager
    def staged(self, name: str) -> Iterator[Path]:
        """A private path named ``name`` (checked) for an upload to be packaged; the file
        and its directory are removed afterwards, whatever happens.

        Raises:
            PackageError: ``name`` is not a safe file name.
        """
        from comity.evidence.package import check_name

        safe = check_name(name)
        staging = self.root / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=staging))
        path = tmp / safe
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)
            tmp.rmdir()

    # -- custody ---------------------------------------------------------------

    def custody(self, session: Session, package_id: str, event: str, *, digest: str,
                detail: dict[str, Any] | None = None, by: str | None = None) -> CustodyEvent:
        """Record a custody event and commit it to the log, in ``session``."""
        now = self.clock.now()
        actor = self.identity.get().node_id
        act = {"package": package_id, "event": event, "manifest": digest, "actor": actor,
               "at": format_ts(now)}
        index = self.ledger.record(session, [Opening("CUSTODY", act, new_salt())])[0]
        row = CustodyEvent(package_id=package_id, event=event, actor=actor, by=by, at=now,
                           detail=orjson.dumps(detail or {}).decode(), log_index=index)
        session.add(row)
        return row

    # -- sending side ----------------------------------------------------------

    def prepare(self, session_factory: sessionmaker[Session], request_id: str,
                sources: Sequence[Path], *, progress: Any = None) -> SignedManifest:
        """Encrypt ``sources`` for the request's peer; returns the signed manifest.

        Long work, done outside any transaction; nothing is recorded until
        the act that carries the manifest commits.

        Raises:
            RequestNotFoundError, UnsafeNameError, OSError
        """
        from comity.requests.errors import RequestNotFoundError
        from comity.requests.models import Request

        with read_scope(session_factory) as session:
            row = session.scalar(select(Request).where(Request.request_id == request_id))
            if row is None:
                raise RequestNotFoundError(f"no request {request_id!r} here")
            peer = get_peer(session, row.peer_id)
            card = stored_card(peer.card)
        total = 0
        for src in sources:
            if not src.is_file():
                raise FileNotFoundError(f"{src}: not a readable file")
            total += src.stat().st_size
        if total > self.settings.evidence_max_bytes:
            raise PayloadTooLargeError(f"the files hold {total} bytes; the limit is "
                                       f"{self.settings.evidence_max_bytes}")
        local = self.identity.get()
        package_id = str(uuid.uuid4())
        return build_package(
            [(p.name, p) for p in sources], self.out_dir(package_id), package_id=package_id,
            request_id=request_id, sender=local.node_id, recipient=peer.node_id,
            recipient_serial=card.serial, recipient_public=b64d(card.encryption_key_b64,
                                                                length=32),
            signing_key=local.signing_key, created=format_ts(self.clock.now()),
            progress=progress)

    def attach(self, session: Session, request: Any, manifests: list[Any], *, outgoing: bool,
               message_id: str, peer: Peer | None = None, by: str | None = None) -> None:
        """Record the packages an act carries (called in the act's transaction).

        Raises:
            InvalidBodyError: a manifest is invalid, not for this request or
                these parties, too large, or already known.
        """
        local = self.identity.get()
        for obj in manifests:
            try:
                if outgoing:
                    manifest = parse_signed_manifest(obj, local.signing_key.public)
                    signer_serial = local.serial
                else:
                    assert peer is not None
                    manifest = parse_signed_manifest(obj, VerifyKey(peer.signing_key))
                    signer_serial = peer.serial
            except ManifestError as e:
                raise InvalidBodyError(f"evidence: {e.detail}") from e
            sender, recipient = ((local.node_id, request.peer_id) if outgoing
                                 else (request.peer_id, local.node_id))
            if (manifest.request_id != request.request_id or manifest.sender != sender
                    or manifest.recipient != recipient):
                raise InvalidBodyError("evidence: the manifest names another request or "
                                       "other parties")
            if manifest.total_size > self.settings.evidence_max_bytes:
                raise PayloadTooLargeError(
                    f"evidence package of {manifest.total_size} bytes exceeds the limit of "
                    f"{self.settings.evidence_max_bytes}")
            if not outgoing and manifest.recipient_serial > local.serial:
                raise InvalidBodyError("evidence: sealed to a key this node does not have")
            if outgoing and not all((self.out_dir(manifest.package_id) / cipher_file_name(
                    f.index)).is_file() for f in manifest.files):
                raise InvalidBodyError("evidence: the package's files are not here; "
                                       "prepare it on this node")
            if session.scalar(select(EvidencePackage.seq).where(
                    EvidencePackage.package_id == manifest.package_id)) is not None:
                raise InvalidBodyError(f"evidence package {manifest.package_id} is "
                                       "already known")
            now = self.clock.now()
            digest = manifest.digest()
            session.add(EvidencePackage(
                package_id=manifest.package_id, request_id=request.request_id,
                direction="out" if outgoing else "in", peer_id=request.peer_id,
                manifest=canonical.dumps(obj).decode(), digest=digest,
                total_size=manifest.total_size, files=len(manifest.files),
                status="packaged" if outgoing else "announced", message_id=message_id,
                signer_serial=signer_serial,
                attempts=0, next_attempt_at=now, created_at=now, updated_at=now))
            if outgoing:
                files = [{"name": f.name, "size": f.size, "sha256": f.sha256}
                         for f in manifest.files]
                self.custody(session, manifest.package_id, "collected", digest=digest,
                             detail={"files": files}, by=by)
                self.custody(session, manifest.package_id, "packaged", digest=digest,
                             detail={"recipient": manifest.recipient,
                                     "recipient_serial": manifest.recipient_serial}, by=by)

    def due_uploads(self) -> list[str]:
        """Outgoing packages whose announcing message was delivered and that are due."""
        now = self.clock.now()
        with read_scope(self.sessions) as session:
            return list(session.scalars(
                select(EvidencePackage.package_id)
                .join(OutboxMessage, OutboxMessage.message_id == EvidencePackage.message_id)
                .where(EvidencePackage.direction == "out",
                       EvidencePackage.status == "packaged",
                       OutboxMessage.status == "delivered",
                       EvidencePackage.next_attempt_at <= now)
                .order_by(EvidencePackage.seq)))

    def _signed_headers(self, method: str, path: str, offset: int,
                        length: int = 0) -> dict[str, str]:
        local = self.identity.get()
        date = format_ts(self.clock.now())
        sig = local.signing_key.sign(transfer_signing_bytes(method, path, offset, date,
                                                            local.node_id, length))
        return {"comity-node": local.node_id, "comity-date": date,
                "comity-offset": str(offset), "comity-signature": b64e(sig)}

    def upload(self, package_id: str, client: httpx.Client) -> bool:
        """Send one package's remaining bytes; True once the receiver holds it all.

        Never raises for peer or transport problems: they are recorded and
        retried with backoff.
        """
        try:
            pkg = self._load(package_id)
        except PackageNotFoundError:
            return True
        if pkg.status != "packaged":
            return True
        with read_scope(self.sessions) as session:
            peer = get_peer(session, pkg.peer_id)
            url, peer_key = peer.url, VerifyKey(peer.signing_key)
        attempts, digest = pkg.attempts, pkg.digest
        try:
            manifest = self._manifest(pkg)
            self._authorized(pkg.request_id, pkg.peer_id)
            path = f"/federation/evidence/{package_id}"
            resp = client.get(url + path, headers=self._signed_headers("GET", path, 0))
            if resp.status_code != 200:
                raise _PeerRefused(resp)
            have = {f["index"]: f for f in resp.json()["files"]}
            receipt: dict[str, Any] | None = resp.json().get("receipt")
            for entry in manifest.files:
                got = have.get(entry.index, {"received": 0, "complete": False})
                if got["complete"]:
                    continue
                offset = int(got["received"])
                if not 0 <= offset <= entry.cipher_size:
                    raise _PeerRefused(None, f"the peer claims {offset} bytes of file "
                                             f"{entry.index}")
                fpath = f"{path}/{entry.index}"
                resp = client.put(
                    url + fpath, content=self._read_from(package_id, entry.index, offset),
                    headers={**self._signed_headers("PUT", fpath, offset,
                                                    entry.cipher_size - offset),
                             "content-type": "application/octet-stream",
                             "content-length": str(entry.cipher_size - offset)})
                if resp.status_code != 200:
                    raise _PeerRefused(resp)
                receipt = resp.json().get("receipt") or receipt
            if receipt is None:
                raise _PeerRefused(None, "the peer holds every file but gave no receipt")
            self._check_receipt(receipt, peer_key, package_id, digest)
        except Exception as e:  # any failure: record it, back off, go on to the next
            delay = min(self.settings.retry_max_seconds,
                        self.settings.retry_base_seconds * 2 ** min(attempts, 16))
            with session_scope(self.sessions) as session:
                row = session.scalar(select(EvidencePackage).where(
                    EvidencePackage.package_id == package_id).with_for_update())
                if row is not None:
                    row.attempts += 1
                    row.last_error = f"{type(e).__name__}: {e}"[:2000]
                    row.next_attempt_at = self.clock.now() + dt.timedelta(seconds=delay)
            log.warning("evidence upload %s: %s", package_id, e)
            return False
        with session_scope(self.sessions) as session:
            row = session.scalar(select(EvidencePackage).where(
                EvidencePackage.package_id == package_id).with_for_update())
            if row is not None and row.status == "packaged":
                row.status = "sent"
                row.receipt = canonical.dumps(receipt).decode()
                row.updated_at = self.clock.now()
                self.custody(session, package_id, "sent", digest=digest,
                             detail={"receipt": receipt})
        return True

    def _read_from(self, package_id: str, index: int, offset: int) -> Iterator[bytes]:
        chunk = self.settings.evidence_chunk_bytes
        with open(self.out_dir(package_id) / cipher_file_name(index), "rb") as f:
            f.seek(offset)
            while block := f.read(chunk):
                yield block

    @staticmethod
    def _check_receipt(receipt: dict[str, Any], key: VerifyKey, package_id: str,
                       digest: str) -> None:
        body = receipt.get("receipt")
        if (not isinstance(body, dict) or body.get("type") != RECEIPT_TYPE
                or body.get("package_id") != package_id or body.get("manifest") != digest):
            raise ValueError("the receipt does not name this package")
        try:
            key.verify(b64d(str(receipt.get("signature"))),
                       _RECEIPT_DOMAIN + canonical.dumps(body))
        except (BadSignature, ValueError) as e:
            raise ValueError("the receipt's signature does not verify") from e

    # -- receiving side --------------------------------------------------------

    def authenticate(self, method: str, path: str, headers: Any) -> tuple[Peer, int]:
        """The peer a transfer request comes from, and the offset it claims.

        Raises:
            TransferAuthError: missing, stale or forged credentials, unknown peer.
        """
        try:
            node, date = headers["comity-node"], headers["comity-date"]
            offset = int(headers["comity-offset"])
            sig = b64d(headers["comity-signature"], length=64)
            when = parse_ts(date)
        except (KeyError, ValueError, TypeError) as e:
            raise TransferAuthError("evidence transfers need comity-node, comity-date, "
                                    "comity-offset and comity-signature headers") from e
        skew = abs((self.clock.now() - when).total_seconds())
        if skew > self.settings.clock_skew_seconds:
            raise TransferAuthError(f"comity-date is {skew:.0f} s away from this node's clock")
        with read_scope(self.sessions) as session:
            peer = session.get(Peer, node)
            if peer is None:
                raise TransferAuthError(f"unknown peer {node!r}")
            session.expunge(peer)
        try:
            length = int(headers.get("content-length", "0") or 0)
            VerifyKey(peer.signing_key).verify(sig, transfer_signing_bytes(
                method, path, offset, date, node, length))
        except (BadSignature, ValueError) as e:
            raise TransferAuthError("the transfer signature does not verify") from e
        return peer, offset

    def incoming(self, package_id: str, peer: Peer) -> tuple[EvidencePackage, Manifest]:
        """An announced package from ``peer``, with its verified manifest.

        Raises:
            PackageNotFoundError: no such package from this peer.
        """
        pkg = self._load(package_id)
        if pkg.direction != "in" or pkg.peer_id != peer.node_id:
            raise PackageNotFoundError(f"no evidence package {package_id} is expected "
                                       "from this peer")
        self._authorized(pkg.request_id, peer.node_id)
        return pkg, self._manifest(pkg)

    def _load(self, package_id: str) -> EvidencePackage:
        """The package's row, detached.

        Raises:
            PackageNotFoundError
        """
        with read_scope(self.sessions) as session:
            pkg = session.scalar(select(EvidencePackage).where(
                EvidencePackage.package_id == package_id))
            if pkg is None:
                raise PackageNotFoundError(f"no evidence package {package_id!r} here")
            session.expunge(pkg)
        return pkg

    def _manifest(self, pkg: EvidencePackage) -> Manifest:
        """The package's stored manifest, checked again against the key that signed it."""
        signer = None if pkg.direction == "out" else pkg.peer_id
        return parse_signed_manifest(orjson.loads(pkg.manifest),
                                     self._signer_key(pkg.signer_serial, signer))

    def _signer_key(self, serial: int, peer_id: str | None) -> VerifyKey:
        """The key that signed a stored manifest: ours or the peer's, of that card serial.

        Manifests are checked again whenever they are used, and a rotation
        since must not make them look forged.
        """
        if peer_id is None:
            chain = self.identity.get().chain
            if not 1 <= serial <= len(chain):
                raise ManifestError(f"no card {serial} of this node")
            return chain[serial - 1].signing_key
        with read_scope(self.sessions) as session:
            card = session.get(PeerCard, (peer_id, serial))
            if card is None:
                raise ManifestError(f"no card {serial} of the sender was ever accepted here")
            return stored_card(card.card).signing_key

    def _authorized(self, request_id: str, peer_id: str) -> None:
        """Evidence moves only while the request's agreement is in force for both.

        Raises:
            AuthorizationError
        """
        from comity.agreements.authorization import Purpose, authorize
        from comity.requests.models import Request

        with read_scope(self.sessions) as session:
            agreement = session.scalar(select(Request.agreement_id).where(
                Request.request_id == request_id))
            authorize(session, agreement_id=agreement, local_id=self.identity.get().node_id,
                      peer_id=peer_id, purpose=Purpose(), at=self.clock.now())

    def progress(self, pkg: EvidencePackage, manifest: Manifest) -> list[FileProgress]:
        d = self.in_dir(pkg.package_id)
        out = []
        for f in manifest.files:
            final = d / cipher_file_name(f.index)
            if final.exists():
                out.append(FileProgress(f.index, f.cipher_size, True))
            else:
                part = final.with_name(final.name + ".part")
                out.append(FileProgress(f.index, part.stat().st_size if part.exists() else 0,
                                        False))
        return out

    def complete_if_whole(self, pkg: EvidencePackage, manifest: Manifest
                          ) -> dict[str, Any] | None:
        """When every file is in, record *received* (once) and return the signed receipt."""
        if not all(p.complete for p in self.progress(pkg, manifest)):
            return None
        with session_scope(self.sessions) as session:
            row = session.scalar(select(EvidencePackage).where(
                EvidencePackage.package_id == pkg.package_id).with_for_update())
            assert row is not None
            if row.status == "announced":
                row.status = "received"
                row.updated_at = self.clock.now()
                event = self.custody(session, row.package_id, "received", digest=row.digest,
                                     detail={"bytes": row.total_size, "files": row.files})
                body = {"type": RECEIPT_TYPE, "v": 1, "package_id": row.package_id,
                        "manifest": row.digest, "receiver": self.identity.get().node_id,
                        "received_at": format_ts(event.at), "log_index": event.log_index}
                sig = self.identity.get().signing_key.sign(_RECEIPT_DOMAIN +
                                                           canonical.dumps(body))
                row.receipt = canonical.dumps({"receipt": body,
                                               "signature": b64e(sig)}).decode()
            receipt: dict[str, Any] | None = (orjson.loads(row.receipt) if row.receipt
                                              else None)
        return receipt

    # -- the requester's checks ------------------------------------------------

    def _held(self, package_id: str) -> tuple[EvidencePackage, Manifest]:
        pkg = self._load(package_id)
        return pkg, self._manifest(pkg)

    def verify(self, package_id: str, *, by: str | None = None, progress: Any = None
               ) -> dict[str, Any]:
        """Decrypt and check every byte of a received package; record *verified*.

        A package that fails is recorded *rejected* (with the reason) and the
        error raised: a changed, truncated or re-encrypted byte anywhere fails.

        Raises:
            TamperedError, PackageNotFoundError, PackageStateError
        """
        pkg, manifest = self._held(package_id)
        if pkg.direction != "in" or pkg.status not in ("received", "verified"):
            raise PackageStateError(f"package {package_id} is {pkg.direction}/{pkg.status}; "
                                    "only a fully received package can be verified")
        try:
            verify_package(manifest, self.in_dir(package_id),
                           self.identity.encryption_key(manifest.recipient_serial), progress)
        except TamperedError as e:
            self._mark(package_id, "rejected", {"reason": e.detail}, by)
            raise
        self._mark(package_id, "verified", {"files": len(manifest.files),
                                            "bytes": manifest.total_size}, by)
        return self.show(package_id)

    def open(self, package_id: str, out_dir: Path, *, by: str | None = None,
             progress: Any = None) -> list[Path]:
        """Write the plaintext of a received package into ``out_dir`` (checked first)."""
        pkg, manifest = self._held(package_id)
        if pkg.direction != "in" or pkg.status not in ("received", "verified"):
            raise PackageStateError(f"package {package_id} is {pkg.direction}/{pkg.status}; "
                                    "only a fully received package can be opened")
        try:
            paths = open_package(manifest, self.in_dir(package_id), out_dir,
                                 self.identity.encryption_key(manifest.recipient_serial), progress)
        except TamperedError as e:
            self._mark(package_id, "rejected", {"reason": e.detail}, by)
            raise
        self._mark(package_id, "opened", {"into": str(out_dir)}, by)
        if pkg.status != "verified":
            self._mark(package_id, "verified", {"files": len(manifest.files),
                                                "bytes": manifest.total_size}, by)
        return paths

    def _mark(self, package_id: str, event: str, detail: dict[str, Any],
              by: str | None) -> None:
        with session_scope(self.sessions) as session:
            pkg = session.scalar(select(EvidencePackage).where(
                EvidencePackage.package_id == package_id).with_for_update())
            assert pkg is not None
            if event in ("verified", "rejected"):
                pkg.status = event
            pkg.updated_at = self.clock.now()
            self.custody(session, package_id, event, digest=pkg.digest, detail=detail, by=by)

    # -- reading ---------------------------------------------------------------

    def show(self, package_id: str) -> dict[str, Any]:
        """A package: manifest summary, transfer status and chain of custody."""
        with read_scope(self.sessions) as session:
            pkg = session.scalar(select(EvidencePackage).where(
                EvidencePackage.package_id == package_id))
            if pkg is None:
                raise PackageNotFoundError(f"no evidence package {package_id!r} here")
            events = list(session.scalars(select(CustodyEvent).where(
                CustodyEvent.package_id == package_id).order_by(CustodyEvent.seq)))
            return package_view(pkg, events)

    def for_request(self, session: Session, request_id: str) -> list[dict[str, Any]]:
        pkgs = list(session.scalars(select(EvidencePackage).where(
            EvidencePackage.request_id == request_id).order_by(EvidencePackage.seq)))
        out = []
        for pkg in pkgs:
            events = list(session.scalars(select(CustodyEvent).where(
                CustodyEvent.package_id == pkg.package_id).order_by(CustodyEvent.seq)))
            out.append(package_view(pkg, events))
        return out

    @staticmethod
    def for_message(session: Session, message_id: str) -> list[EvidencePackage]:
        """The packages an act (message) announced."""
        return list(session.scalars(select(EvidencePackage).where(
            EvidencePackage.message_id == message_id).with_for_update()))

    def discard_unattached(self, package_id: str) -> bool:
        """Remove a prepared package that no act carried (the act failed); True if removed."""
        with read_scope(self.sessions) as session:
            if session.scalar(select(EvidencePackage.seq).where(
                    EvidencePackage.package_id == package_id)) is not None:
                return False
        shutil.rmtree(self.out_dir(package_id), ignore_errors=True)
        return True


def package_view(pkg: EvidencePackage, events: list[CustodyEvent]) -> dict[str, Any]:
    signed = orjson.loads(pkg.manifest)
    return {
        "id": pkg.package_id, "request": pkg.request_id, "direction": pkg.direction,
        "peer": pkg.peer_id, "status": pkg.status, "digest": pkg.digest,
        "total_size": pkg.total_size,
        "files": [{"name": f["name"], "size": f["size"], "sha256": f["sha256"],
                   "media_type": f["media_type"]} for f in signed["manifest"]["files"]],
        "attempts": pkg.attempts, "last_error": pkg.last_error,
        "receipt": orjson.loads(pkg.receipt) if pkg.receipt else None,
        "custody": [{"event": e.event, "actor": e.actor, "by": e.by, "at": format_ts(e.at),
                     "detail": orjson.loads(e.detail), "log_index": e.log_index}
                    for e in events],
    }


class _PeerRefused(Exception):
    def __init__(self, resp: httpx.Response | None, detail: str = "") -> None:
        if resp is not None:
            detail = f"HTTP {resp.status_code}: {resp.text[:500]}"
        super().__init__(detail)


class Uploader(BackgroundLoop):
    """A thread that uploads packages once their announcing message is delivered."""

    def __init__(self, evidence: Evidence, *, timeout: float, poll_seconds: float = 1.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__("comity-evidence", poll_seconds=poll_seconds)
        self.evidence = evidence
        self.timeout = timeout
        self.transport = transport

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        # Reads may wait on a slow disk at the peer, so only the connection
        # gets the short timeout.
        timeout = httpx.Timeout(self.timeout, read=max(self.timeout, 300.0))
        with httpx.Client(timeout=timeout, transport=self.transport) as client:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    for pid in self.evidence.due_uploads():
                        if self._stop.is_set():
                            return
                        try:
                            self.evidence.upload(pid, client)
                        except Exception:  # one package must not hold up the others
                            log.exception("evidence upload %s failed", pid)
                except Exception:  # keep the thread alive; the next round retries
                    log.exception("evidence upload round failed")
                self._wake.wait(self.poll_seconds)
