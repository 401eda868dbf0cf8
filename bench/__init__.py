"""Benchmarks (``python -m bench.NAME``), each printing machine-readable results.

Shared here: writing a run's results to the ``--out`` file every benchmark takes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["write_results"]


def write_results(path: Path | None, results: Any) -> None:
    """Write ``results`` as indented JSON to ``path`` (creating its folder), if given."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
