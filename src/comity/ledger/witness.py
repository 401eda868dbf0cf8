"""Witnessing: cosign partners' checkpoints, and have ours cosigned (C2SP tlog-witness).

**Witness side** (:class:`Witness`, ``POST /log/add-checkpoint``). A partner's
log sends ``old <size>``, a consistency proof from ``old`` and its new signed
checkpoint. We keep one latest checkpoint per partner log and move it only
forward along a verified consistency proof, compare-and-swap inside one
transaction, and only then cosign (cosignature/v1, with this node's witness
name). A validly signed checkpoint that contradicts one we hold (same size and
another root than one we cosigned before) is kept as evidence, both notes
verbatim, and raised as an alarm; it is never cosigned. A failing
consistency proof is refused but is no evidence (the proof lines are the
requester's, not the log's), nor is an older checkpoint (anyone may replay
one: it is answered 409). A log that was rolled back is caught when it shows
another root for a size we hold, cannot move our view past its old size
without a valid proof, and is caught by ``comity log audit``, which
recomputes the log from its tiles.
Every accepted checkpoint is kept (``peer_checkpoints``) for ``comity log
audit``, and now and then a PEER-CHECKPOINT entry goes into our own log, so
what we saw of a partner is itself committed and cosigned.

**Log side** (:class:`Publisher`). After each integration, the latest
checkpoint goes to every partner we have an agreement in force with; a 409
tells us the size that witness holds, and we retry once from there. Valid
cosignatures are stored by size (``log_cosignatures``): they make proof
bundles verifiable by third parties.

Trust assumptions: requests are untrusted (no authentication beyond the
checkpoint signature, as the specification says); a checkpoint counts only if
the pinned key of a known peer signed it. Witness answers are untrusted until
their cosignature verifies under the partner's pinned card.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from comity.agreements.schemas import AgreementStatus
from comity.agreements.services import list_agreements
from comity.clock import Clock
from comity.db import read_scope, session_scope
from comity.hazmat import merkle
from comity.hazmat.keys import KeyFormatError
from comity.hazmat.note import (
    Checkpoint,
    CosignatureSigner,
    CosignatureVerifier,
    MalformedCheckpointError,
    NoteError,
    add_signature_lines,
    cosignatures,
    open_note,
    parse_checkpoint,
)
from comity.identity.models import Peer
from comity.identity.services import IdentityHolder, get_peer, list_peers, peer_card
from comity.ledger.commitments import Opening, new_salt
from comity.ledger.keys import log_origin, log_verifier, witness_name, witness_verifier
from comity.ledger.models import (
    LedgerAlarm,
    LogCosignature,
    PeerCheckpoint,
    WitnessedLog,
    WitnessProgress,
)
from comity.ledger.sequencer import BackgroundLoop
from comity.ledger.services import Ledger
from comity.problems import Problem

__all__ = [
    "Publisher",
    "PublishingService",
    "Witness",
    "WitnessAnswer",
    "encode_add_checkpoint",
    "list_alarms",
    "log_status",
    "parse_add_checkpoint",
    "raise_alarm",
]

log = logging.getLogger(__name__)

MAX_ADD_CHECKPOINT_BYTES = 64 * 1024
_DECIMAL = re.compile(r"\A(0|[1-9][0-9]{0,18})\Z")


class BadAddCheckpointError(Problem):
    slug = "bad-add-checkpoint"
    status = 400
    title = "Not a valid add-checkpoint request"


class UnknownLogError(Problem):
    slug = "unknown-log"
    status = 404
    title = "This witness does not know that log"


class CheckpointSignatureError(Problem):
    slug = "bad-checkpoint-signature"
    status = 403
    title = "The checkpoint is not signed by the log's key"


class BadProofError(Problem):
    slug = "bad-consistency-proof"
    status = 422
    title = "The consistency proof does not fit the request"


class InconsistentCheckpointError(Problem):
    slug = "inconsistent-checkpoint"
    status = 422
    title = "The checkpoint contradicts one this witness holds"


@dataclass(frozen=True)
class WitnessAnswer:
    status: int
    body: bytes
    media_type: str


@dataclass(frozen=True)
class AddCheckpoint:
    old: int
    proof: list[bytes]
    note: bytes


def encode_add_checkpoint(old: int, proof: Sequence[bytes], note: bytes) -> bytes:
    lines = [f"old {old}\n"] + [base64.b64encode(h).decode() + "\n" for h in proof]
    return ("".join(lines) + "\n").encode() + note


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse the request body of ``add-checkpoint``.

    Raises:
        BadAddCheckpointError: on any deviation from the C2SP format.
    """
    if len(body) > MAX_ADD_CHECKPOINT_BYTES:
        raise BadAddCheckpointError(f"request is over {MAX_ADD_CHECKPOINT_BYTES} bytes")
    head, sep, note = body.partition(b"\n\n")
    if not sep or not note:
        raise BadAddCheckpointError("no empty line between the proof and the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError as e:
        raise BadAddCheckpointError("the request head is not ASCII") from e
    first = lines[0]
    if not first.startswith("old ") or not _DECIMAL.match(first[4:]):
        raise BadAddCheckpointError("the first line must be 'old <size>'")
    if len(lines) - 1 > 63:
        raise BadAddCheckpointError("a consistency proof has at most 63 hashes")
    proof = []
    for line in lines[1:]:
        try:
            h = base64.b64decode(line, validate=True)
        except ValueError as e:
            raise BadAddCheckpointError("a proof line is not base64") from e
        if len(h) != merkle.HASH_SIZE or base64.b64encode(h).decode() != line:
            raise BadAddCheckpointError("a proof line is not one canonical base64 hash")
        proof.append(h)
    return AddCheckpoint(int(first[4:]), proof, note)


def raise_alarm(session: Session, *, peer_id: str | None, kind: str, detail: str,
                evidence: dict[str, Any], now: dt.datetime) -> None:
    """Record an alarm, once: the same detail for the same peer is not repeated."""
    exists = session.scalar(select(LedgerAlarm.id).where(
        LedgerAlarm.peer_id == peer_id, LedgerAlarm.kind == kind, LedgerAlarm.detail == detail))
    if exists is None:
        log.error("ledger alarm (%s) about %s: %s", kind, peer_id or "this log", detail)
        session.add(LedgerAlarm(peer_id=peer_id, kind=kind, detail=detail,
                                evidence=json.dumps(evidence, sort_keys=True), raised_at=now))


def log_status(session: Session, ledger: Ledger) -> dict[str, Any]:
    """The log's head, who cosigned what, what we witness, and how many alarms."""
    head = ledger.head(session)
    cosigned = {peer: size for peer, size in session.execute(
        select(WitnessProgress.peer_id, WitnessProgress.size))}
    witnessed = {w.peer_id: {"origin": w.origin, "size": w.size,
                             "updated_at": w.updated_at.isoformat()}
                 for w in session.scalars(select(WitnessedLog))}
    return {"origin": ledger.origin, "size": head.size, "root": head.root.hex(),
            "checkpoint": ledger.cosigned_checkpoint(session, head.size).decode(),
            "cosigned_by": cosigned, "witnessing": witnessed,
            "alarms": session.scalar(select(func.count()).select_from(LedgerAlarm)) or 0}


def list_alarms(session: Session) -> list[dict[str, Any]]:
    """Every alarm, newest first, with its evidence."""
    return [{"id": a.id, "peer": a.peer_id, "kind": a.kind, "detail": a.detail,
             "evidence": json.loads(a.evidence), "raised_at": a.raised_at.isoformat()}
            for a in session.scalars(select(LedgerAlarm).order_by(LedgerAlarm.id.desc()))]


class _Contradiction(Exception):
    def __init__(self, kind: str, detail: str, evidence: dict[str, Any]) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.evidence = kind, detail, evidence


class Witness:
    """This node as a witness of its partners' logs."""

    def __init__(self, sessions: sessionmaker[Session], identity: IdentityHolder,
                 ledger: Ledger, clock: Clock, *,
                 record_interval: dt.timedelta = dt.timedelta(hours=1)) -> None:
        self.sessions = sessions
        self.identity = identity
        self.ledger = ledger
        self.clock = clock
        self.record_interval = record_interval

    def signer(self) -> CosignatureSigner:
        local = self.identity.get()
        return CosignatureSigner(witness_name(local.card), local.signing_key.to_cryptography())

    def _peers_of_origin(self, origin: str) -> list[Peer]:
        # Card import keeps origins unique; still, the signature decides.
        with read_scope(self.sessions) as session:
            found = [p for p in list_peers(session) if log_origin(peer_card(p)) == origin]
        if not found:
            raise UnknownLogError(f"no partner's log has the origin {origin!r}")
        return found

    def add_checkpoint(self, body: bytes) -> WitnessAnswer:
        """Handle one ``add-checkpoint`` request.

        Raises:
            BadAddCheckpointError, UnknownLogError, CheckpointSignatureError,
            InconsistentCheckpointError
        """
        req = parse_add_checkpoint(body)
        try:
            origin = req.note.split(b"\n", 1)[0].decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadAddCheckpointError("the checkpoint is not UTF-8") from e
        peer, problem, note = None, None, b""
        for candidate in self._peers_of_origin(origin):
            try:
                verified = open_note(req.note, [log_verifier(peer_card(candidate))])
            except (NoteError, KeyFormatError) as e:
                problem = e
                continue
            peer = candidate
            # Keep only what the log signed: lines the requester added (a
            # forged cosignature, say) must not be stored or served as ours.
            text = verified.text
            note = (text + "\n" + "".join(sig.to_line() for sig in verified.signatures)).encode()
            break
        if peer is None:
            raise CheckpointSignatureError(f"checkpoint of {origin}: {problem}")
        req = AddCheckpoint(req.old, req.proof, note)
        try:
            cp = parse_checkpoint(text)
        except MalformedCheckpointError as e:
            raise BadAddCheckpointError(f"not a checkpoint: {e}") from e
        if cp.size == 0 and cp.root_hash != merkle.EMPTY_ROOT:
            raise InconsistentCheckpointError("an empty tree has the empty root")
        now = self.clock.now()
        try:
            with session_scope(self.sessions) as session:
                return self._advance(session, peer.node_id, req, cp, text, now)
        except _Contradiction as c:
            with session_scope(self.sessions) as session:
                raise_alarm(session, peer_id=peer.node_id, kind=c.kind, detail=c.detail,
                            evidence=c.evidence, now=now)
            raise InconsistentCheckpointError(c.detail) from None
        except IntegrityError:
            # Two first contacts at once: the other one won; the log retries.
            return WitnessAnswer(409, b"0\n", "text/x.tlog.size")

    def _advance(self, session: Session, peer_id: str, req: AddCheckpoint, cp: Checkpoint,
                 text: str, now: dt.datetime) -> WitnessAnswer:
        held = session.scalar(select(WitnessedLog).where(WitnessedLog.peer_id == peer_id)
                              .with_for_update())
        held_size = held.size if held is not None else 0
        if held is not None:
            evidence = {"held": held.checkpoint, "presented": req.note.decode("utf-8"),
                        "old": req.old,
                        "proof": [base64.b64encode(h).decode() for h in req.proof]}
            if cp.size == held.size and cp.root_hash != held.root:
                raise _Contradiction("fork", f"two checkpoints of size {cp.size} with "
                                     f"different roots ({held.root.hex()[:16]}…, "
                                     f"{cp.root_hash.hex()[:16]}…)", evidence)
            if cp.size < held.size:
                # An older checkpoint is no evidence by itself: the log signed
                # it once and anyone can replay it. Only another root at a
                # size we cosigned before is.
                seen = session.get(PeerCheckpoint, (peer_id, cp.size))
                if seen is not None and seen.root != cp.root_hash:
                    evidence["held"] = seen.checkpoint
                    raise _Contradiction("fork", f"two checkpoints of size {cp.size} with "
                                         f"different roots ({seen.root.hex()[:16]}…, "
                                         f"{cp.root_hash.hex()[:16]}…)", evidence)
                return WitnessAnswer(409, f"{held.size}\n".encode(), "text/x.tlog.size")
        if req.old > cp.size:
            raise BadAddCheckpointError(f"old size {req.old} is larger than the checkpoint")
        if req.old != held_size:
            return WitnessAnswer(409, f"{held_size}\n".encode(), "text/x.tlog.size")
        if held is None or req.old == 0:
            if req.proof:
                raise BadProofError("a proof from size 0 must be empty")
        elif req.old < cp.size:
            try:
                merkle.verify_consistency(req.old, cp.size, held.root, cp.root_hash, req.proof)
            except merkle.ProofError as e:
                # The proof lines are the requester's, not the log's: a bad
                # one proves nothing against the log (``comity log audit``
                # recomputes from the tiles instead). Refused, no alarm.
                raise BadProofError(f"the consistency proof from size {req.old} to "
                                    f"{cp.size} does not verify") from e
        elif req.proof:
            raise BadProofError("the same size needs an empty proof")
        if held is None:
            held = WitnessedLog(peer_id=peer_id, origin=cp.origin, size=cp.size,
                                root=cp.root_hash, checkpoint=req.note.decode(),
                                updated_at=now)
            session.add(held)
        else:
            held.size, held.root, held.checkpoint = cp.size, cp.root_hash, req.note.decode()
            held.updated_at = now
        if held.recorded_at is None or now - held.recorded_at >= self.record_interval:
            self.ledger.record(session, [Opening("PEER-CHECKPOINT", {
                "peer": peer_id, "origin": cp.origin, "size": cp.size,
                "root": base64.b64encode(cp.root_hash).decode()}, new_salt())])
            held.recorded_at = now
        line = self.signer().cosign(text, int(now.timestamp()))
        if session.get(PeerCheckpoint, (peer_id, cp.size)) is None:
            session.add(PeerCheckpoint(peer_id=peer_id, size=cp.size, root=cp.root_hash,
                                       checkpoint=req.note.decode(), seen_at=now,
                                       cosignature=line))
        session.flush()
        return WitnessAnswer(200, line.encode(), "text/plain; charset=utf-8")


class Publisher:
    """This node's log, getting its checkpoints cosigned by its partners."""

    def __init__(self, sessions: sessionmaker[Session], identity: IdentityHolder,
                 ledger: Ledger, clock: Clock) -> None:
        self.sessions = sessions
        self.identity = identity
        self.ledger = ledger
        self.clock = clock

    def witnesses(self) -> list[str]:
        """Partners with an agreement in force with this node: our witnesses."""
        local_id = self.identity.get().node_id
        now = self.clock.now()
        found: set[str] = set()
        with read_scope(self.sessions) as session:
            for view in list_agreements(session):
                if view.status(now) == AgreementStatus.IN_FORCE and (
                        local_id in view.active_parties):
                    found.update(p for p in view.active_parties if p != local_id)
        return sorted(found)

    def publish(self, client: httpx.Client) -> dict[str, str]:
        """Send the latest checkpoint to every witness; outcome per witness."""
        outcomes = {}
        for peer_id in self.witnesses():
            try:
                outcomes[peer_id] = self._publish_to(client, peer_id)
            except (httpx.HTTPError, ValueError, NoteError) as e:
                log.warning("witness %s: %s", peer_id, e)
                outcomes[peer_id] = f"error: {e}"
        return outcomes

    def _publish_to(self, client: httpx.Client, peer_id: str) -> str:
        with read_scope(self.sessions) as session:
            head = self.ledger.head(session)  # the snapshot the progress is read in
            peer = get_peer(session, peer_id)
            card = peer_card(peer)
            progress = session.get(WitnessProgress, peer_id)
            old = progress.size if progress is not None else 0
            if session.get(LogCosignature, (head.size, peer_id)) is not None:
                return "cosigned"
        url = peer.url.rstrip("/") + "/log/add-checkpoint"
        for _ in range(2):
            if old > head.size:
                # An unsigned claim (a 409 body): worth a warning, not evidence.
                log.warning("witness %s says it cosigned size %d of this log, which has %d",
                            peer_id, old, head.size)
                return "witness-ahead"
            proof: list[bytes] = []
            if 0 < old < head.size:
                with read_scope(self.sessions) as session:
                    proof = merkle.consistency_proof(old, head.size, self.ledger.reader(session))
            resp = client.post(url, content=encode_add_checkpoint(old, proof, head.checkpoint),
                               headers={"content-type": "text/plain; charset=utf-8"})
            if resp.status_code == 409 and resp.headers.get("content-type", "").startswith(
                    "text/x.tlog.size"):
                text = resp.text.strip()
                if not _DECIMAL.match(text):
                    raise ValueError("witness answered 409 without a size")
                old = int(text)
                continue
            if resp.status_code != 200:
                raise ValueError(f"witness answered {resp.status_code}: {resp.text[:200]}")
            return self._store(peer_id, card_verifier=witness_verifier(card), head_size=head.size,
                               note=head.checkpoint, answer=resp.content)
        return "conflict"

    def _store(self, peer_id: str, *, card_verifier: CosignatureVerifier, head_size: int,
               note: bytes,
               answer: bytes) -> str:
        lines = [ln + "\n" for ln in answer.decode("utf-8").split("\n") if ln]
        signed = add_signature_lines(note, lines)
        got = cosignatures(signed, [card_verifier])
        if card_verifier.name not in got:
            raise ValueError("the witness answered without its cosignature")
        # The line that verifies under the witness's key, not just any line
        # bearing its name.
        line = next(ln for ln in lines
                    if card_verifier.name in cosignatures(add_signature_lines(note, [ln]),
                                                          [card_verifier]))
        now = self.clock.now()
        with session_scope(self.sessions) as session:
            if session.get(LogCosignature, (head_size, peer_id)) is None:
                session.add(LogCosignature(size=head_size, witness_id=peer_id, line=line,
                                           cosigned_at=now))
            progress = session.get(WitnessProgress, peer_id)
            if progress is None:
                session.add(WitnessProgress(peer_id=peer_id, size=head_size, updated_at=now))
            elif progress.size < head_size:
                progress.size, progress.updated_at = head_size, now
        return "cosigned"


class PublishingService(BackgroundLoop):
    """A thread that has each new checkpoint cosigned, and retries now and then."""

    def __init__(self, publisher: Publisher, *, timeout: float, poll_seconds: float = 30.0,
                 min_interval: float = 1.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__("comity-witnessing", poll_seconds=poll_seconds)
        self.publisher = publisher
        # One round per interval at most: each round costs every partner a
        # signature check and a write, so a busy log is cosigned in batches.
        self.min_interval = min_interval
        self.timeout = timeout
        self.transport = transport
        publisher.ledger.on_integrated(self._wake.set)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    self.publisher.publish(client)
                except Exception:  # keep the thread alive; the next round retries
                    log.exception("publishing the checkpoint to witnesses failed")
                if self._stop.wait(self.min_interval):
                    return
                self._wake.wait(max(0.0, self.poll_seconds - self.min_interval))
