"""medallion 3.0.0 (the OASIS TAXII 2.1 reference server) as a benchmark opponent.

:func:`running_medallion` writes a medallion configuration (memory backend,
one API root ``/api1/`` holding one readable and writable collection, one
HTTP Basic user with a random password) to a temporary directory, starts
``python -m bench.medallion_server`` on a free loopback port and yields the
API root URL, the collection id and the ``Authorization`` header. On exit
the process is stopped (SIGTERM, then SIGKILL) and the directory removed,
whatever happened.

medallion is a Flask app (``medallion.application_instance``, configured by
``set_config`` and ``register_blueprints`` exactly as its own ``medallion``
CLI does). Its CLI serves it with Flask's development server; here it is
served by waitress if that is installed, otherwise by werkzeug's
``run_simple`` with ``threaded=True`` (HTTP/1.1 keep-alive, a thread per
request). Which one ran is reported as ``wsgi_server``.

Example::

    with running_medallion(page_size=1000) as srv:
        httpx.get(srv.api_root + "collections/", headers={**srv.headers,
                  "accept": "application/taxii+json;version=2.1"})
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import json
import logging
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from comity.localnet import free_port

API_ROOT = "api1"
COLLECTION_ID = "365fed99-08fa-fdcd-a1b3-fb247eb41d01"
TAXII = "application/taxii+json;version=2.1"


@dataclass(frozen=True)
class MedallionServer:
    """A running medallion: where to reach it and how to authenticate."""

    api_root: str
    collection_id: str
    headers: dict[str, str]
    wsgi_server: str
    log: Path


def wsgi_server_name() -> str:
    """The WSGI server :func:`serve` will use in this environment."""
    return "waitress" if importlib.util.find_spec("waitress") else "werkzeug run_simple threaded"


def _data(base: str) -> dict[str, object]:
    """The memory backend's initial data: discovery, one API root, one empty collection."""
    return {
        "/discovery": {"title": "medallion (bench)", "description": "benchmark opponent",
                       "default": f"{base}/{API_ROOT}/", "api_roots": [f"{base}/{API_ROOT}/"]},
        API_ROOT: {
            "information": {"title": "bench", "description": "benchmark API root",
                            "versions": [TAXII], "max_content_length": 256 * 1024 * 1024},
            "status": [],
            "collections": [{
                "id": COLLECTION_ID, "title": "bench", "description": "benchmark collection",
                "can_read": True, "can_write": True,
                "media_types": ["application/stix+json;version=2.1"],
                "objects": [], "manifest": []}],
        },
    }


def write_config(directory: Path, port: int, page_size: int, user: str,
                 password: str) -> Path:
    """Write medallion's data file and configuration file; the configuration's path."""
    base = f"http://127.0.0.1:{port}"
    data = directory / "data.json"
    data.write_text(json.dumps(_data(base)))
    config = directory / "medallion.json"
    config.write_text(json.dumps({
        "backend": {"module": "medallion.backends.memory_backend",
                    "module_class": "MemoryBackend", "filename": str(data),
                    # medallion forgets a paging session this long after its
                    # first page (30 s by default); a slow read-back of a large
                    # collection must not lose its ``next`` half way.
                    "session_timeout": 24 * 3600},
        "users": {user: password},
        "taxii": {"max_page_size": page_size},
    }))
    return config


def _ready(client: httpx.Client, srv: MedallionServer, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        raise RuntimeError(f"medallion exited with {proc.returncode}; see {srv.log}")
    try:
        resp = client.get(srv.api_root, headers={**srv.headers, "accept": TAXII}, timeout=2)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200


@contextlib.contextmanager
def running_medallion(page_size: int = 1000, start_timeout: float = 60) -> Iterator[
        MedallionServer]:
    """Start medallion in a subprocess; stop it and remove its files on exit.

    Raises:
        RuntimeError: if the server exits or does not answer within ``start_timeout``.
    """
    user, password = "bench", secrets.token_urlsafe(16)
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    with tempfile.TemporaryDirectory(prefix="comity-bench-medallion-") as tmp:
        port = free_port()
        config = write_config(Path(tmp), port, page_size, user, password)
        srv = MedallionServer(api_root=f"http://127.0.0.1:{port}/{API_ROOT}/",
                              collection_id=COLLECTION_ID,
                              headers={"authorization": f"Basic {basic}"},
                              wsgi_server=wsgi_server_name(), log=Path(tmp) / "server.log")
        with srv.log.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.medallion_server", str(config), str(port)],
                stdout=log, stderr=subprocess.STDOUT)
        try:
            with httpx.Client(trust_env=False) as client:
                deadline = time.monotonic() + start_timeout
                while not _ready(client, srv, proc):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"medallion not up after {start_timeout:.0f} s")
                    time.sleep(0.1)
            yield srv
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def serve(config: Path, port: int) -> None:
    """Configure medallion from ``config`` and serve it on 127.0.0.1:``port`` (blocks)."""
    from medallion import application_instance, register_blueprints, set_config  # type: ignore[import-untyped]

    configuration = json.loads(config.read_text())
    for section in ("users", "taxii", "backend"):
        set_config(application_instance, section, configuration)
    register_blueprints(application_instance)
    if importlib.util.find_spec("waitress"):
        import waitress  # type: ignore[import-untyped]

        waitress.serve(application_instance, host="127.0.0.1", port=port, threads=4,
                       _quiet=True)
    else:
        from werkzeug.serving import run_simple

        # One log line per request would cost the server more than some requests do.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        run_simple("127.0.0.1", port, application_instance, threaded=True,
                   use_reloader=False, use_debugger=False)


def main() -> None:
    ap = argparse.ArgumentParser(description="Serve medallion from a configuration file.")
    ap.add_argument("config", type=Path)
    ap.add_argument("port", type=int)
    args = ap.parse_args()
    serve(args.config, args.port)


if __name__ == "__main__":
    main()
