"""The agreement cache is never stale, even when another process changes an agreement."""

from __future__ import annotations

import pytest

from comity.agreements import services
from comity.agreements.authorization import Purpose
from comity.agreements.errors import AgreementNotInForceError, NotAPartyError
from comity.db import session_scope
from comity.node import Node
from tests.support import LocalFederation


def test_change_by_another_process_is_seen_at_once(fed: LocalFederation) -> None:
    a, b = fed.add("a"), fed.add("b")
    fed.introduce_all()
    aid = fed.agree(a, [b])
    server = a.node.federation
    check = dict(agreement_id=aid, local_id=a.id, peer_id=b.id, purpose=Purpose(), at=None)

    def authorize() -> None:
        with session_scope(a.node.sessions) as s:
            server.authorize_in(s, **{**check, "at": fed.clock.now()})  # type: ignore[arg-type]

    authorize()  # fills the cache
    assert aid in server.agreements._views
    # A second Node on the same data directory and database: the CLI's view.
    cli = Node.open(a.node.settings, clock=fed.clock, migrate=False)
    try:
        with session_scope(cli.sessions) as s:
            services.suspend(s, cli.local, cli.federation, aid, reason="audit",
                             now=fed.clock.now())
        with pytest.raises(AgreementNotInForceError):
            authorize()
        with session_scope(cli.sessions) as s:
            services.resume(s, cli.local, cli.federation, aid, reason="",
                            now=fed.clock.now())
        authorize()
        with session_scope(cli.sessions) as s:
            services.withdraw(s, cli.local, cli.federation, aid, reason="done",
                              now=fed.clock.now())
        with pytest.raises(NotAPartyError):
            authorize()
    finally:
        cli.close()
