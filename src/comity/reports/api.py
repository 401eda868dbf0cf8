"""Report routes (``/api/reports``): statistics on this node's requests, as JSON or CSV.

Every route needs a bearer token (the node's operators). Reports read only
the local database and disclose nothing that the request listing does not
already show to the same operators.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from comity.db import read_scope
from comity.http import get_node, json_response, require_token
from comity.reports.requests import GROUP_KEYS, request_report

__all__ = ["router"]

router = APIRouter(prefix="/api/reports", tags=["reports"],
                   dependencies=[Depends(require_token)])


def _aware(when: dt.datetime | None) -> dt.datetime | None:
    """Read a datetime given without a zone as UTC."""
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=dt.UTC)
    return when


@router.get("/requests", summary="Counts and response times of requests, grouped")
def requests_report(
    request: Request,
    group_by: Annotated[list[str] | None, Query(
        max_length=len(GROUP_KEYS),
        description=f"Grouping keys, in column order, among {', '.join(GROUP_KEYS)} "
                    "(default: all).")] = None,
    since: Annotated[dt.datetime | None, Query(
        description="Only requests sent at or after this instant (UTC if no zone).")] = None,
    until: Annotated[dt.datetime | None, Query(
        description="Only requests sent before this instant (UTC if no zone).")] = None,
    format: Annotated[Literal["json", "csv"], Query(
        description="json (default) or csv.")] = "json",
) -> Response:
    """The request report; an unknown or repeated key is a 422 ``invalid-report``."""
    node = get_node(request)
    now = node.clock.now()
    keys = GROUP_KEYS if group_by is None else tuple(group_by)
    with read_scope(node.sessions) as session:
        report = request_report(session, now=now, group_by=keys, since=_aware(since),
                                until=_aware(until))
    if format == "json":
        return json_response(report.to_json())
    filename = f"requests-report-{now:%Y%m%dT%H%M%SZ}.csv"
    return Response(report.to_csv(), media_type="text/csv; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{filename}"'})
