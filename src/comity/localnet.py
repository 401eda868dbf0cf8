"""Nodes as local server processes on loopback: for the demo, the tests and the benchmarks.

Each :class:`LocalNode` is a real ``comity node serve`` child process with its
own data directory (and, if asked, its own PostgreSQL database), driven over
its REST API with the admin token ``comity node init`` wrote. Nothing here is
used by a production node; it exists so that the demo, the crash tests and the
benchmarks all start and steer nodes the same way.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from comity.node import Node

__all__ = ["LocalNode", "StepFailed", "agree", "free_port", "introduce", "spawn", "wait_for"]


class StepFailed(Exception):
    """A named step of a scenario did not happen."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"{step}: {detail}")
        self.step = step
        self.detail = detail


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for(step: str, predicate: Callable[[], bool], timeout: float = 60,
             interval: float = 0.05) -> None:
    """Poll ``predicate`` until true.

    Raises:
        StepFailed: if it is still false after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise StepFailed(step, f"not done after {timeout:.0f} s")


def comity_command(*args: str) -> list[str]:
    """The command line that runs this installation's ``comity``."""
    return [sys.executable, "-m", "comity", *args]


@dataclass
class LocalNode:
    """One node: data directory, server process, API client."""

    key: str
    data_dir: Path
    url: str
    env: dict[str, str] = field(default_factory=dict)
    token: str = ""
    node_id: str = ""
    name: str = ""
    process: subprocess.Popen[bytes] | None = None
    client: httpx.Client = field(default_factory=lambda: httpx.Client(trust_env=False,
                                                                      timeout=60))

    def init(self, *, name: str, kind: str, jurisdiction: str, languages: Sequence[str]) -> None:
        """Create the node's identity and database (``comity node init``)."""
        cmd = comity_command("node", "init", "--data-dir", str(self.data_dir), "--name", name,
                             "--kind", kind, "--jurisdiction", jurisdiction, "--url", self.url)
        for lang in languages:
            cmd += ["--language", lang]
        done = subprocess.run(cmd, capture_output=True, env=self._env(), check=False)  # noqa: S603
        if done.returncode != 0:
            raise StepFailed(f"{self.key} init", done.stderr.decode(errors="replace")[-2000:])

    def _env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}

    def start(self, *, wait: bool = True) -> None:
        """Start the server process (appending to ``server.log``)."""
        self.token = (self.data_dir / "admin.token").read_text().strip()
        with (self.data_dir / "server.log").open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 (our own CLI)
                comity_command("node", "serve", "--data-dir", str(self.data_dir)),
                stdout=log, stderr=subprocess.STDOUT, env=self._env())
        if wait:
            self.wait_healthy()

    def wait_healthy(self, timeout: float = 60) -> None:
        wait_for(f"{self.key} starts", self._healthy, timeout=timeout)
        health = self.client.get(f"{self.url}/healthz").json()
        self.node_id = health["node_id"]
        self.name = self.api("GET", "/api/node")["name"]

    def _healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise StepFailed(f"{self.key} starts",
                             f"server exited; see {self.data_dir}/server.log")
        try:
            return self.client.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM and wait for a clean shutdown (SIGKILL after ``timeout``)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def open_node(self) -> Node:
        """This node's data directory and database opened in this process.

        For a test or benchmark to read or write what the server stores, the
        way the CLI does; the server may keep running.
        """
        from comity.config import Settings
        from comity.node import Node

        return Node.open(Settings(data_dir=self.data_dir,
                                  database_url=self.env.get("COMITY_DATABASE_URL", "")),
                         migrate=False)

    def close(self) -> None:
        """Stop the server and release the API client's connections."""
        self.stop()
        self.client.close()

    def api(self, method: str, path: str, **kw: Any) -> Any:
        """Call the node's API with its admin token.

        Raises:
            StepFailed: on any HTTP error status.
        """
        resp = self.client.request(method, f"{self.url}{path}",
                                   headers={"authorization": f"Bearer {self.token}"}, **kw)
        if resp.status_code >= 400:
            raise StepFailed(f"{self.key} {method} {path}", resp.text[:500])
        return resp.json()

    def agreement_status(self, agreement_id: str) -> str | None:
        resp = self.client.get(f"{self.url}/api/agreements/{agreement_id}",
                               headers={"authorization": f"Bearer {self.token}"})
        return str(resp.json()["status"]) if resp.status_code == 200 else None


def spawn(root: Path, key: str, *, jurisdiction: str = "FR", env: dict[str, str] | None = None,
          database_url: str = "", kind: str = "cert") -> LocalNode:
    """Create a node ``key`` (a CERT unless ``kind`` says otherwise) under ``root`` on a
    free loopback port, and start it.

    ``database_url`` empty means the embedded SQLite default.
    """
    env = dict(env or {})
    if database_url:
        env["COMITY_DATABASE_URL"] = database_url
    node = LocalNode(key=key, data_dir=root / key, url=f"http://127.0.0.1:{free_port()}",
                     env=env)
    node.init(name=f"Node {key}", kind=kind, jurisdiction=jurisdiction, languages=["en"])
    node.start()
    return node


def introduce(nodes: Sequence[LocalNode]) -> None:
    """Every node imports every other node's card chain."""
    for node in nodes:
        chain = node.client.get(f"{node.url}/federation/cards").json()
        for other in nodes:
            if other is not node:
                other.api("POST", "/api/peers", json=chain)


def _has_status(node: LocalNode, agreement_id: str, status: str) -> bool:
    return node.agreement_status(agreement_id) == status


def agree(proposer: LocalNode, others: Sequence[LocalNode], *, title: str,
          scope: dict[str, Any], step: str = "agreement", timeout: float = 60) -> str:
    """Draft at ``proposer``, propose, have every other party sign; wait for all in force."""
    draft = proposer.api("POST", "/api/agreements", json={
        "title": title, "parties": [o.node_id for o in others], "scope": scope})
    aid = str(draft["id"])
    proposer.api("POST", f"/api/agreements/{aid}/propose")
    for other in others:
        wait_for(f"{step}: proposal reaches {other.key}",
                 partial(_has_status, other, aid, "proposed"), timeout)
        other.api("POST", f"/api/agreements/{aid}/sign")
    for node in [proposer, *others]:
        wait_for(f"{step}: in force at {node.key}", partial(_has_status, node, aid, "in_force"),
                 timeout)
    return aid
