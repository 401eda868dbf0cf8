"""``comity user``: accounts from the node's host, passwords never on the command line."""

from __future__ import annotations

import json
from pathlib import Path

from comity.db import session_scope
from comity.web.accounts import audit
from tests.requests.test_cli import comity
from tests.support import LocalFederation


def test_user_commands(fed: LocalFederation, tmp_path: Path) -> None:
    tn = fed.add("ke", jurisdiction="KE")
    secret = tmp_path / "pw"
    secret.write_text("a long enough password\n")
    secret.chmod(0o600)
    comity(tn, "user", "add", "amina", "--role", "officer", "--role", "supervisor",
           "--language", "fr", "--timezone", "Africa/Nairobi", "--password-file", str(secret))
    listed = json.loads(comity(tn, "user", "list", "--json"))
    assert listed[0]["username"] == "amina"
    assert listed[0]["roles"] == ["officer", "supervisor"]
    assert listed[0]["timezone"] == "Africa/Nairobi"
    assert "unknown role" in comity(tn, "user", "add", "bob", "--role", "king",
                                    "--password-file", str(secret), code=1)
    short = tmp_path / "short"
    short.write_text("short\n")
    assert "12 characters" in comity(tn, "user", "password", "amina", "--password-file",
                                     str(short), code=1)
    comity(tn, "user", "set", "amina", "--disable")
    assert json.loads(comity(tn, "user", "list", "--json"))[0]["disabled"] is True
    with session_scope(tn.node.sessions) as session:
        audit(session, at=tn.node.clock.now(), username="amina", action="sign-in",
              outcome="refused", detail="wrong username or password")
    trail = json.loads(comity(tn, "user", "audit", "--json"))
    assert trail[0]["user"] == "amina"
    assert trail[0]["outcome"] == "refused"
