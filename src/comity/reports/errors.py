"""Errors of the reports domain.

``InvalidReportError`` (422) says which report parameter is wrong and which
values are allowed; it carries no data from the database.
"""

from __future__ import annotations

from comity.problems import Problem

__all__ = ["InvalidReportError"]


class InvalidReportError(Problem):
    """The report asked for cannot be built (unknown grouping key, bad period)."""

    slug = "invalid-report"
    status = 422
    title = "Report parameters are not valid"
