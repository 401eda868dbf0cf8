"""CSV cells safe to open in a spreadsheet: every report and statistics export writes through here.

Values come from peers and files (names, handles, subjects): a cell that
starts like a formula is prefixed with a quote, so a spreadsheet shows it
as text instead of evaluating it (CSV injection).
"""

from __future__ import annotations

__all__ = ["csv_cell"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """``value`` as a CSV cell: empty for None, floats exact, formulas defused."""
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_START) else value
    return repr(value) if isinstance(value, float) else str(value)
