"""Registry routes for the local operator (``/api/registry``): distribution statistics and charts.

Every route needs a bearer token (the node's operators). The statistics
read only the local database and disclose nothing that the delegation
listing does not already show to the same operators.

Charts are SVG documents made by :mod:`comity.registry.charts`, which
escapes every label and writes no script; they are served all the same
with a policy that forbids scripts and any fetch, and ``nosniff``, so that
a browser opening one directly runs nothing even if a label slipped through.

Example::

    GET /api/registry/stats?kind=ipv4&authority=local
    GET /api/registry/stats/charts/lorenz-ipv4.svg
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from comity.db import read_scope
from comity.http import get_node, json_response, require_token
from comity.node import Node
from comity.registry.charts import chart_names, render
from comity.registry.errors import NotFoundError
from comity.registry.regions import default_populations
from comity.registry.resources import Kind
from comity.registry.stats import Distribution, distribution

__all__ = ["api_router"]

api_router = APIRouter(prefix="/api/registry", tags=["registry"],
                       dependencies=[Depends(require_token)])

_SVG_HEADERS = {"content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
                "x-content-type-options": "nosniff"}

Authority = Annotated[str | None, Query(
    max_length=64, description="Only this registry's delegations ('local' or a council's "
                               "name); all by default.")]
AsOf = Annotated[dt.date | None, Query(
    description="Only delegations registered on or before this day (UTC); undated "
                "delegations are then left out.")]


def _report(node: Node, authority: str | None, kinds: tuple[Kind, ...],
            as_of: dt.date | None) -> Distribution:
    populations = default_populations()
    with read_scope(node.sessions) as session:
        return distribution(session, authority=authority, kinds=kinds, as_of=as_of,
                            populations=populations)


@api_router.get("/stats", summary="Distribution of resources across countries and regions")
def stats(
    request: Request,
    authority: Authority = None,
    kind: Annotated[Kind | None, Query(description="Only this kind.")] = None,
    as_of: AsOf = None,
) -> Response:
    """Units, shares, per-capita, Gini, HHI, top shares, Lorenz curve and Gini by year per
    kind: the JSON of ``comity registry stats --json``."""
    kinds = tuple(Kind) if kind is None else (kind,)
    return json_response(_report(get_node(request), authority, kinds, as_of).to_json())


@api_router.get("/stats/charts/{name}.svg", summary="A chart of the distribution (SVG)",
                response_class=Response,
                responses={200: {"content": {"image/svg+xml": {}}}})
def chart(request: Request, name: str, authority: Authority = None,
          as_of: AsOf = None) -> Response:
    """``top-<kind>``, ``lorenz-<kind>`` (kind: ipv4, ipv6, asn) or ``gini-by-year``;
    an unknown name is a 404 ``registry-not-found``."""
    if name not in chart_names():
        raise NotFoundError(f"no chart {name[:40]!r}; charts: {', '.join(chart_names())}")
    kinds = tuple(k for k in Kind if name.endswith(f"-{k.value}")) or tuple(Kind)
    report = _report(get_node(request), authority, kinds, as_of)
    return Response(render(report, name), media_type="image/svg+xml", headers=_SVG_HEADERS)
