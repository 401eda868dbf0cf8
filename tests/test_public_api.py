"""Each package declares its public surface once, and it matches what it defines."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import comity

MODULES = sorted(m.name for m in pkgutil.walk_packages(comity.__path__, "comity.")
                 if ".migrations" not in m.name and not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    for symbol in exported:
        assert hasattr(module, symbol), f"{name}.__all__ names missing {symbol}"


@pytest.mark.parametrize("name", MODULES)
def test_every_module_states_its_role(name: str) -> None:
    module = importlib.import_module(name)
    doc = (module.__doc__ or "").strip()
    assert len(doc) > 20, f"{name} lacks a docstring"


def test_hazmat_modules_open_with_a_warning() -> None:
    for name in MODULES:
        if name.startswith("comity.hazmat"):
            doc = importlib.import_module(name).__doc__ or ""
            assert doc.startswith("DANGER"), name
