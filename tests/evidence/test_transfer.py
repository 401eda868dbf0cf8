"""Evidence between two nodes: packaged, announced, streamed, received, verified, opened.

The requested party returns files with an ``execute`` act; the package moves
over the peer transfer endpoint and the requester checks every byte. Every
way of pushing bytes the sender did not sign is refused and leaves nothing
stored; every custody event is in the log.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from comity.clock import format_ts
from comity.db import session_scope
from comity.evidence.errors import TamperedError
from comity.evidence.package import cipher_file_name
from comity.evidence.services import transfer_signing_bytes
from comity.hazmat.keys import b64e
from tests.requests.support import act, mla, send_request, two_authorities
from tests.support import LocalFederation, PeerNode


def _files(tmp: Path) -> list[Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    out = []
    for name, size in (("logs.txt", 3 * (1 << 20) + 17), ("subscriber.json", 0),
                       ("capture.pcap", 1 << 20)):
        p = tmp / name
        p.write_bytes(os.urandom(size))
        out.append(p)
    return out


def _executed_with_evidence(fed: LocalFederation, tmp: Path
                            ) -> tuple[PeerNode, PeerNode, str, str, list[Path]]:
    fr, ke, aid = two_authorities(fed)
    rid = send_request(fed, fr, ke, aid, mla([]))
    act(fed, ke, rid, "acknowledge", reference="KE-1")
    files = _files(tmp / "src")
    signed = ke.node.evidence.prepare(ke.node.sessions, rid, files)
    act(fed, ke, rid, "execute", summary="Logs and subscriber data attached.",
        evidence=[signed.to_dict()])
    return fr, ke, rid, signed.manifest.package_id, files


def _upload_all(fed: LocalFederation, node: PeerNode) -> None:
    for pid in node.node.evidence.due_uploads():
        node.node.evidence.upload(pid, fed.http)


def test_package_travels_and_is_verified_and_opened(fed: LocalFederation,
                                                    tmp_path: Path) -> None:
    fr, ke, rid, pid, files = _executed_with_evidence(fed, tmp_path)
    assert fr.api("GET", f"/api/evidence/{pid}")["status"] == "announced"
    _upload_all(fed, ke)
    mine = fr.api("GET", f"/api/evidence/{pid}")
    theirs = ke.api("GET", f"/api/evidence/{pid}")
    assert mine["status"] == "received"
    assert theirs["status"] == "sent"
    # The sender keeps the receiver's signed receipt for exactly this manifest.
    assert theirs["receipt"]["receipt"]["manifest"] == theirs["digest"] == mine["digest"]
    verified = fr.api("POST", f"/api/evidence/{pid}/verify", json={"by": "analyst"})
    assert verified["status"] == "verified"
    out = fr.node.evidence.open(pid, tmp_path / "opened", by="analyst")
    for src, got in zip(files, out, strict=True):
        assert got.name == src.name
        assert hashlib.sha256(got.read_bytes()).digest() == hashlib.sha256(
            src.read_bytes()).digest()
    assert [e["event"] for e in ke.api("GET", f"/api/evidence/{pid}")["custody"]] == [
        "collected", "packaged", "sent"]
    assert [e["event"] for e in fr.api("GET", f"/api/evidence/{pid}")["custody"]] == [
        "received", "verified", "opened"]
    # Each custody event is a log entry of the node that recorded it.
    for node in (fr, ke):
        events = node.api("GET", f"/api/evidence/{pid}")["custody"]
        assert len({e["log_index"] for e in events}) == len(events)
    shown = fr.api("GET", f"/api/requests/{rid}")
    assert shown["state"] == "executed"
    assert [p["id"] for p in shown["evidence"]] == [pid]


def test_a_changed_byte_at_the_receiver_is_rejected(fed: LocalFederation,
                                                   tmp_path: Path) -> None:
    fr, ke, _, pid, _ = _executed_with_evidence(fed, tmp_path)
    _upload_all(fed, ke)
    target = fr.node.evidence.in_dir(pid) / cipher_file_name(0)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(TamperedError):
        fr.node.evidence.verify(pid)
    shown = fr.api("GET", f"/api/evidence/{pid}")
    assert shown["status"] == "rejected"
    assert shown["custody"][-1]["event"] == "rejected"
    with pytest.raises(Exception, match="only a fully received"):
        fr.node.evidence.open(pid, tmp_path / "never")
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("damage", ["flip", "truncate", "extend"])
def test_bytes_the_sender_did_not_sign_are_not_kept(fed: LocalFederation, tmp_path: Path,
                                                    damage: str) -> None:
    fr, ke, _, pid, _ = _executed_with_evidence(fed, tmp_path)
    src = ke.node.evidence.out_dir(pid) / cipher_file_name(0)
    data = bytearray(src.read_bytes())
    if damage == "flip":
        data[100] ^= 0x80
    elif damage == "truncate":
        del data[-1]
    else:
        data += b"x"
    src.write_bytes(bytes(data))
    _upload_all(fed, ke)
    assert fr.api("GET", f"/api/evidence/{pid}")["status"] == "announced"
    held = fr.node.evidence.in_dir(pid)
    assert not (held / cipher_file_name(0)).exists()
    pkg = ke.api("GET", f"/api/evidence/{pid}")
    assert pkg["status"] == "packaged"
    assert pkg["attempts"] == 1
    assert pkg["last_error"]


def _signed(node: PeerNode, method: str, path: str, offset: int, length: int = 0,
            **over: str) -> dict[str, str]:
    local = node.node.local
    date = format_ts(node.node.clock.now())
    sig = local.signing_key.sign(transfer_signing_bytes(method, path, offset, date,
                                                        local.node_id, length))
    headers = {"comity-node": local.node_id, "comity-date": date,
               "comity-offset": str(offset), "comity-signature": b64e(sig)}
    headers.update(over)
    return headers


def _put(fed: LocalFederation, to: PeerNode, path: str, body: bytes,
         headers: dict[str, str]) -> httpx.Response:
    return fed.http.put(f"{to.url}{path}", content=body, headers=headers)


def test_transfers_are_authenticated_and_bounded(fed: LocalFederation, tmp_path: Path) -> None:
    fr, ke, _, pid, _ = _executed_with_evidence(fed, tmp_path)
    path = f"/federation/evidence/{pid}/0"
    cipher = (ke.node.evidence.out_dir(pid) / cipher_file_name(0)).read_bytes()

    def check(resp: httpx.Response, status: int, slug: str) -> None:
        assert resp.status_code == status, resp.text
        assert resp.json()["type"].endswith(slug)

    check(_put(fed, fr, path, cipher, {}), 401, "evidence-transfer-unauthenticated")
    forged = _signed(ke, "PUT", path, 0, len(cipher), **{"comity-offset": "5"})
    check(_put(fed, fr, path, cipher, forged), 401, "evidence-transfer-unauthenticated")
    stale = _signed(ke, "PUT", path, 0, len(cipher))
    fed.clock.advance(3600)
    check(_put(fed, fr, path, cipher, stale), 401, "evidence-transfer-unauthenticated")
    # The requester itself cannot push bytes into a package it is to receive.
    check(_put(fed, fr, path, cipher, _signed(fr, "PUT", path, 0, len(cipher))), 401,
          "evidence-transfer-unauthenticated")
    other = f"/federation/evidence/{'0' * 8}-0000-4000-8000-{'0' * 12}/0"
    check(_put(fed, fr, other, cipher, _signed(ke, "PUT", other, 0, len(cipher))), 404,
          "evidence-not-found")
    check(_put(fed, fr, path, cipher[:10], _signed(ke, "PUT", path, 7, 10)), 409,
          "evidence-offset")
    # Headers signed for one length cannot carry another body.
    check(_put(fed, fr, path, cipher + b"more", _signed(ke, "PUT", path, 0, len(cipher))),
          401, "evidence-transfer-unauthenticated")
    check(_put(fed, fr, path, cipher + b"more", _signed(ke, "PUT", path, 0, len(cipher) + 4)),
          422,
          "evidence-tampered")
    held = fr.node.evidence.in_dir(pid)
    assert not any(held.glob("*")) if held.exists() else True
    # A first part, then the uploader resumes from where the receiver stands.
    half = len(cipher) // 2
    resp = _put(fed, fr, path, cipher[:half], _signed(ke, "PUT", path, 0, half))
    assert resp.json() == {"index": 0, "received": half, "complete": False, "receipt": None}
    _upload_all(fed, ke)
    assert fr.api("GET", f"/api/evidence/{pid}")["status"] == "received"


def test_a_manifest_for_another_request_is_refused(fed: LocalFederation,
                                                   tmp_path: Path) -> None:
    fr, ke, aid = two_authorities(fed)
    first = send_request(fed, fr, ke, aid, mla([]))
    second = send_request(fed, fr, ke, aid, mla([], reference="FR-2026-0003"))
    signed = ke.node.evidence.prepare(ke.node.sessions, first, _files(tmp_path / "f"))
    resp = ke.client.post(f"/api/requests/{second}/events",
                          headers={"authorization": f"Bearer {ke.token}"},
                          json={"event": "execute", "data": {
                              "summary": "x", "evidence": [signed.to_dict()]}})
    assert resp.status_code == 400, resp.text
    assert "another request" in resp.json()["detail"]
    assert ke.api("GET", f"/api/requests/{second}")["state"] == "sent"
    assert ke.api("GET", f"/api/requests/{second}/evidence") == []


def test_a_forged_manifest_fails_the_message(fed: LocalFederation, tmp_path: Path) -> None:
    fr, ke, aid = two_authorities(fed)
    rid = send_request(fed, fr, ke, aid, mla([]))
    signed: dict[str, Any] = ke.node.evidence.prepare(ke.node.sessions, rid,
                                                      _files(tmp_path / "f")).to_dict()
    signed["manifest"]["files"][0]["sha256"] = "0" * 64
    resp = ke.client.post(f"/api/requests/{rid}/events",
                          headers={"authorization": f"Bearer {ke.token}"},
                          json={"event": "execute", "data": {
                              "summary": "x", "evidence": [signed]}})
    assert resp.status_code == 400, resp.text
    assert "not signed by the sender" in resp.json()["detail"]
    # The same forgery sent past the sender's own check is refused by the receiver.
    with session_scope(ke.node.sessions) as session:
        out = ke.node.federation.send(session, to=fr.id, type="request.event", body={
            "request": rid, "event": "execute", "n": 1, "seen": 0,
            "data": {"summary": "x", "evidence": [signed]}}, agreement_id=aid)
    fed.pump()
    msg = ke.api("GET", f"/api/messages/{out.message_id}")
    assert msg["status"] == "failed"
    assert "not signed by the sender" in msg["last_error"]
    assert fr.api("GET", f"/api/requests/{rid}")["state"] == "sent"
    assert fr.api("GET", f"/api/requests/{rid}/evidence") == []


def test_a_package_over_the_receivers_limit_is_refused(fed: LocalFederation,
                                                       tmp_path: Path) -> None:
    from comity.identity.schemas import NodeKind
    from tests.requests.support import REQUEST_SCOPE

    fr = fed.add("fr", kind=NodeKind.CENTRAL_AUTHORITY, evidence_max_bytes=1 << 20)
    ke = fed.add("ke", kind=NodeKind.CENTRAL_AUTHORITY, jurisdiction="KE")
    fed.introduce(fr, ke)
    aid = fed.agree(fr, [ke], scope=REQUEST_SCOPE)
    rid = send_request(fed, fr, ke, aid, mla([]))
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom((1 << 20) + 1))
    signed = ke.node.evidence.prepare(ke.node.sessions, rid, [big])
    out = ke.api("POST", f"/api/requests/{rid}/events", json={
        "event": "execute", "data": {"summary": "x", "evidence": [signed.to_dict()]}})
    fed.pump()
    event = next(e for e in out["timeline"] if e["event"] == "execute")
    msg = ke.api("GET", f"/api/messages/{event['message_id']}")
    assert msg["status"] == "failed"
    assert "exceeds the limit" in msg["last_error"]
    assert fr.api("GET", f"/api/requests/{rid}")["state"] == "sent"
    assert fr.api("GET", f"/api/requests/{rid}/evidence") == []
