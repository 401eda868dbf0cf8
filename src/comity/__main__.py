"""``python -m comity``: the same as the ``comity`` command."""

from __future__ import annotations

from comity.cli import main

main()
