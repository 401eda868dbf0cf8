"""The UI's domain pages: agreements, peers, log, sharing, registry and reports, over real data.

One federation per backend for the whole module (two authorities under an
agreement that shares a collection and forms a council, a request sent, a
delegation, a proposal being voted on, logs cosigned), and two accounts on
the French node: a chief holding every role but officer, and an officer.
Tests that act (sign, withdraw, vote, import) act on things of their own,
so they do not depend on each other's order.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from comity.agreements.schemas import TLP
from comity.db import read_scope, session_scope
from comity.identity.models import Peer
from comity.identity.schemas import NodeKind
from comity.identity.services import import_cards, init_node
from comity.registry.resources import parse_block
from comity.web.accounts import Role
from tests.requests.support import REQUEST_SCOPE, preservation, send_request
from tests.sharing.support import create_collection, indicator, post_local
from tests.support import SCOPE, LocalFederation, PeerNode
from tests.web.support import Ui, make_user

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
WINDOW = 60


@dataclass
class World:
    fed: LocalFederation
    fr: PeerNode
    ke: PeerNode
    aid: str
    pid: str
    chief: Ui
    officer: Ui
    root: Path

    def later(self, seconds: int = WINDOW + 1) -> None:
        self.fed.clock.at = self.fed.clock.now() + dt.timedelta(seconds=seconds)

    def chain(self, name: str, label: str) -> list[dict[str, Any]]:
        """The card chain of a fresh node that is no one's peer yet."""
        local = init_node(self.root / name, name=label, kind=NodeKind.CERT, jurisdiction="DE",
                          url=f"http://{name}.test", languages=["en"], clock=self.fed.clock)
        return [c.doc for c in local.chain]

    def peers(self) -> int:
        with read_scope(self.fr.node.sessions) as session:
            return int(session.scalar(select(func.count()).select_from(Peer)) or 0)


def _council_scope(chair: PeerNode) -> dict[str, Any]:
    return {**REQUEST_SCOPE, "collections": [{"name": "indicators", "tlp_ceiling": "red"}],
            "council": {
                "name": "numbers", "chair": chair.id, "quorum_percent": 50,
                "majorities": {"policy": "simple", "allocation": "simple",
                               "rules": "two-thirds", "consultation": "simple"},
                "discussion_seconds": WINDOW, "vote_seconds": WINDOW,
                "last_call_seconds": WINDOW, "pools": ["45.64.0.0/16"]}}


def _registry(fr: PeerNode) -> None:
    node = fr.node
    now = node.clock.now()
    with session_scope(node.sessions) as session:
        node.registry.add_pool(session, registry="local", block=parse_block("192.0.2.0/24"),
                               name="TEST-POOL", now=now)
        node.registry.ensure_entity(session, handle="FR-ISP-1", name="Exemple Réseaux",
                                    country="FR", registry="local", now=now)
        node.registry.delegate(session, registry="local", block=parse_block("192.0.2.0/25"),
                               status="allocated", now=now, holder="FR-ISP-1", country="FR",
                               name="EXAMPLE-NET", registered_at=now)


def _build(fed: LocalFederation, root: Path) -> World:
    fr = fed.add("fr", kind=NodeKind.CENTRAL_AUTHORITY, jurisdiction="FR")
    ke = fed.add("ke", kind=NodeKind.CENTRAL_AUTHORITY, jurisdiction="KE")
    fed.introduce(fr, ke)
    aid = fed.agree(fr, [ke], scope=_council_scope(fr), title=f"Cooperation {EVIL}")
    send_request(fed, fr, ke, aid, preservation())
    cid = create_collection(fr)["id"]
    post_local(fed, fr, cid, indicator(1, tlp=TLP.RED), {**indicator(2), "name": EVIL})
    _registry(fr)
    proposal = {"kind": "allocation", "title": "Allocate 45.64.1.0/24",
                "text": "For the exchange point.",
                "effect": {"block": "45.64.1.0/24", "status": "allocated", "name": "KE-IXP",
                           "holder": {"handle": "KE-NET-1", "name": "Kenya IXP",
                                      "country": "KE"}}}
    pid = ke.api("POST", f"/api/governance/councils/{aid}/proposals", json=proposal)["id"]
    fed.pump()
    fed.clock.at = fed.clock.now() + dt.timedelta(seconds=WINDOW + 1)
    fr.api("POST", f"/api/governance/proposals/{pid}/open-vote")
    fed.pump()
    fed.witness()
    make_user(fr, "chief", Role.SUPERVISOR, Role.ANALYST, Role.DELEGATE, Role.ADMINISTRATOR)
    make_user(fr, "officer", Role.OFFICER)
    world = World(fed, fr, ke, aid, pid, Ui(fr, "chief"), Ui(fr, "officer"), root)
    evil = world.chain("evil", f"{EVIL} CERT")
    with session_scope(fr.node.sessions) as session:
        import_cards(session, evil, local_node_id=fr.id, clock=fed.clock)
    return world


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url: Callable[[str], str]
    if request.param == "sqlite":
        url = lambda name: ""  # noqa: E731 - SQLite in the node's own directory
    else:
        cluster = request.getfixturevalue("pg_cluster")
        url = lambda name: cluster.new_database()  # noqa: E731
    root = tmp_path_factory.mktemp("domain")
    fed = LocalFederation(root, url)
    try:
        w = _build(fed, root)
        yield w
        w.chief.close()
        w.officer.close()
    finally:
        fed.close()


def _main(html: str) -> str:
    return html[html.index("<main"):html.index("</main>")]


# -- agreements ---------------------------------------------------------------------------


def test_agreements_list_and_page_show_parties_status_and_signatures(world: World) -> None:
    page = world.officer.get("/ui/agreements")
    assert page.status_code == 200
    assert f"Cooperation {ESCAPED}" in page.text
    assert "Node ke" in page.text
    assert "in force" in page.text
    one = world.officer.get(f"/ui/agreements/{world.aid}")
    assert one.status_code == 200
    body = _main(one.text)
    assert "Version 1" in body
    assert "Node fr" in body
    assert "Node ke" in body
    assert "expedited-preservation" in body
    assert "indicators" in body
    assert 'data-status="in_force"' in body
    assert "Sign version" not in body  # nothing proposed, and an officer may not sign


def test_a_supervisor_signs_then_withdraws_and_the_parties_learn_of_it(world: World) -> None:
    draft = world.ke.api("POST", "/api/agreements", json={
        "title": "Second framework", "parties": [world.fr.id], "scope": SCOPE})
    aid = draft["id"]
    world.ke.api("POST", f"/api/agreements/{aid}/propose")
    world.fed.pump()
    page = world.chief.get(f"/ui/agreements/{aid}")
    assert "awaits this node" in page.text
    assert f"/ui/agreements/{aid}/sign" in page.text
    # An officer may not sign, and nothing changes.
    assert world.officer.post(f"/ui/agreements/{aid}/sign").status_code == 403
    world.fed.pump()
    assert world.ke.agreement_status(aid) == "proposed"
    # Without the CSRF token, neither.
    assert world.chief.post(f"/ui/agreements/{aid}/sign", csrf=False).status_code == 403

    signed = world.chief.post(f"/ui/agreements/{aid}/sign")
    assert signed.status_code == 303, signed.text
    world.fed.pump()
    assert world.ke.agreement_status(aid) == "in_force"
    assert world.fr.agreement_status(aid) == "in_force"
    # Signing twice is refused by the service, shown as a page.
    again = world.chief.post(f"/ui/agreements/{aid}/sign")
    assert again.status_code == 409
    assert "nothing to sign" in again.text

    assert world.officer.post(f"/ui/agreements/{aid}/withdraw",
                              {"reason": "x"}).status_code == 403
    gone = world.chief.post(f"/ui/agreements/{aid}/withdraw", {"reason": "Mandate ended."})
    assert gone.status_code == 303
    world.fed.pump()
    assert world.ke.agreement_status(aid) == "terminated"
    shown = world.officer.get(f"/ui/agreements/{aid}").text
    assert "Mandate ended." in shown
    assert 'data-status="terminated"' in shown


# -- peers ----------------------------------------------------------------------------------


def test_peers_page_shows_each_peer_with_its_key_fingerprint(world: World) -> None:
    page = world.officer.get("/ui/peers")
    assert page.status_code == 200
    body = _main(page.text)
    key = world.ke.node.local.card.signing_key.raw.hex()
    assert "Node ke" in body
    assert "http://ke.test" in body
    assert "central authority" in body
    assert f"{key[:4]} {key[4:8]}" in body
    assert "Import a peer" not in body  # administrators only


def test_an_administrator_imports_a_card_chain(world: World) -> None:
    chain = world.chain("newcomer", "Newcomer CERT")
    before = world.peers()
    assert world.officer.post("/ui/peers", {"cards": json.dumps(chain)}).status_code == 403
    assert world.peers() == before
    done = world.chief.post("/ui/peers", {"cards": json.dumps(chain)})
    assert done.status_code == 303, done.text
    assert world.peers() == before + 1
    assert "Newcomer CERT" in world.chief.get(done.headers["location"]).text


@pytest.mark.parametrize("pasted", ["{not json", "", '[{"type": "comity.node-card"'])
def test_malformed_json_is_refused_and_nothing_is_stored(world: World, pasted: str) -> None:
    before = world.peers()
    page = world.chief.post("/ui/peers", {"cards": pasted})
    assert page.status_code == 422
    assert "JSON" in page.text
    assert world.peers() == before


def test_a_card_that_does_not_verify_is_refused(world: World) -> None:
    chain = world.chain("forger", "Forger CERT")
    chain[0] = {**chain[0], "name": "Someone else"}
    before = world.peers()
    page = world.chief.post("/ui/peers", {"cards": json.dumps(chain)})
    assert page.status_code == 400
    assert world.peers() == before


# -- log ------------------------------------------------------------------------------------


def test_log_page_shows_head_witnesses_and_receipts(world: World) -> None:
    page = world.officer.get("/ui/log")
    assert page.status_code == 200
    body = _main(page.text)
    origin = world.fr.node.ledger.origin
    assert origin in body
    assert "Node ke" in body  # it cosigned our log, and we witness its log
    assert "No alarm." in body
    assert "agreement.propose" in body  # the receipt ke signed for our proposal
    assert "No receipt held yet." not in body


# -- sharing --------------------------------------------------------------------------------


def test_sharing_pages_show_collections_and_tlp_badges(world: World) -> None:
    index = world.chief.get("/ui/sharing")
    assert index.status_code == 200
    body = _main(index.text)
    assert "indicators" in body
    assert f"Cooperation {ESCAPED}" in body
    page = world.chief.get("/ui/sharing/indicators")
    assert page.status_code == 200
    body = _main(page.text)
    assert '<span class="tlp tlp-red">TLP:RED</span>' in body
    # The unmarked object counts as the node's default level (AMBER unless set).
    assert '<span class="tlp tlp-amber">TLP:AMBER</span> <small>(default)</small>' in body
    assert "C2 server 1" in body


def test_sharing_is_for_analysts_only(world: World) -> None:
    assert world.officer.get("/ui/sharing").status_code == 403
    assert world.officer.get("/ui/sharing/indicators").status_code == 403
    assert world.chief.get("/ui/sharing/no-such").status_code == 404


# -- registry -------------------------------------------------------------------------------


def test_registry_page_shows_delegations_pools_and_councils(world: World) -> None:
    for order in ("newest", "block"):
        page = world.officer.get(f"/ui/registry?order={order}&kind=ipv4")
        assert page.status_code == 200
        body = _main(page.text)
        assert "192.0.2.0/25" in body
        assert "Exemple Réseaux" in body
        assert "allocated" in body
        assert "192.0.2.0/24" in body
        assert "45.64.0.0/16" in body
        assert "numbers" in body
        assert "Allocate 45.64.1.0/24" in body
        assert "voting" in body
    assert "192.0.2.0/25" not in world.officer.get("/ui/registry?kind=asn").text


def test_proposal_page_shows_text_stages_and_ballot_form(world: World) -> None:
    page = world.chief.get(f"/ui/registry/proposals/{world.pid}")
    assert page.status_code == 200
    body = _main(page.text)
    assert "For the exchange point." in body
    assert "Kenya IXP" in body
    assert 'data-stage="voting"' in body
    assert "discussion" in body
    assert f"/ui/registry/proposals/{world.pid}/ballot" in body
    # The form is offered to delegates only.
    assert f"/ui/registry/proposals/{world.pid}/ballot" not in world.officer.get(
        f"/ui/registry/proposals/{world.pid}").text


def test_a_delegate_casts_the_nodes_ballot(world: World) -> None:
    pid = world.ke.api("POST", f"/api/governance/councils/{world.aid}/proposals", json={
        "kind": "policy", "title": "Publish the minutes", "text": "Within a week."})["id"]
    world.fed.pump()
    world.later()
    world.fr.api("POST", f"/api/governance/proposals/{pid}/open-vote")
    world.fed.pump()
    url = f"/ui/registry/proposals/{pid}/ballot"
    assert world.officer.post(url, {"choice": "yes"}).status_code == 403
    assert world.chief.post(url, {"choice": "maybe"}).status_code == 422

    def ballots() -> list[dict[str, Any]]:
        with read_scope(world.fr.node.sessions) as session:
            return list(world.fr.node.governance.show(session, pid)["ballots"])

    assert ballots() == []
    done = world.chief.post(url, {"choice": "yes"})
    assert done.status_code == 303, done.text
    assert [(b["voter"], b["choice"]) for b in ballots()] == [(world.fr.id, "yes")]
    page = _main(world.chief.get(done.headers["location"]).text)
    assert 'data-choice="yes"' in page
    assert url not in page
    assert world.chief.post(url, {"choice": "no"}).status_code == 409  # once per round
    # The chair counts the signed ballots; the page shows the tally that decided it.
    world.later()
    world.fr.api("POST", f"/api/governance/proposals/{pid}/close-vote")
    world.fed.pump()
    decided = _main(world.officer.get(f"/ui/registry/proposals/{pid}").text)
    assert 'data-stage="last-call"' in decided
    assert "<td>2</td><td>1</td><td>1</td><td>0</td><td>0</td>" in decided
    assert "passed" in decided
    assert "simple majority" in decided


# -- reports --------------------------------------------------------------------------------


def test_reports_page_has_tables_and_charts(world: World) -> None:
    page = world.officer.get("/ui/reports")
    assert page.status_code == 200
    body = _main(page.text)
    assert re.search(r"<th scope=\"row\">KE</th><td>1</td>", body)
    assert 'src="/ui/reports/charts/requests-country.svg"' in body
    assert "top-ipv4" in body
    assert "Gini" in body
    by_type = _main(world.officer.get("/ui/reports?by=type").text)
    assert "expedited-preservation" in by_type
    chart = world.officer.get("/ui/reports/charts/requests-country.svg")
    assert chart.status_code == 200
    assert chart.headers["content-type"].startswith("image/svg+xml")
    assert "default-src 'none'" in chart.headers["content-security-policy"]
    assert "<title" in chart.text
    assert "<desc" in chart.text
    assert ">KE<" in chart.text
    assert world.officer.get("/ui/reports/charts/top-ipv4.svg").status_code == 200
    assert world.officer.get("/ui/reports/charts/nope.svg").status_code == 404


def test_reports_need_a_session(world: World) -> None:
    anonymous = world.fr.client.get("/ui/reports/charts/requests-country.svg",
                                    follow_redirects=False)
    assert anonymous.status_code == 303
    assert "/ui/login" in anonymous.headers["location"]


# -- escaping -------------------------------------------------------------------------------


def test_names_from_peers_are_escaped_everywhere(world: World) -> None:
    pages = ["/ui/agreements", f"/ui/agreements/{world.aid}", "/ui/peers",
             "/ui/sharing", "/ui/sharing/indicators", "/ui/log", "/ui/registry"]
    for path in pages:
        html = world.chief.get(path).text
        assert EVIL not in html, path
    assert ESCAPED in world.chief.get("/ui/peers").text
    assert ESCAPED in world.chief.get("/ui/sharing/indicators").text
    assert ESCAPED in world.chief.get(f"/ui/agreements/{world.aid}").text
