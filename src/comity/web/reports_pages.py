"""Report pages: request statistics and the registry's distribution, as tables and SVG charts.

* ``/ui/reports`` (any signed-in role): the request report of
  :func:`comity.reports.requests.request_report` grouped by one key (country
  by default), with totals; requests by state; and the registry's
  distribution per kind (delegations, countries, Gini and HHI).
* ``/ui/reports/charts/{name}.svg`` (any role): the charts the page shows,
  drawn on the server (``requests-<key>``: share of requests per group;
  the registry's ``top-<kind>``, ``lorenz-<kind>`` and ``gini-by-year``).
  A chart is an image whose figures are also in the page's tables, which
  are its text alternative; each SVG has its own ``<title>`` and ``<desc>``.

Charts are served as separate ``image/svg+xml`` documents rather than
inlined, so that no markup is ever marked safe in a template; they carry a
policy that forbids scripts and every fetch, and ``nosniff``.

Trust assumptions: the actor is authenticated by
:func:`~comity.web.core.view`. Reports read only this node's database and
show nothing beyond what the request and registry listings show. Group
labels (country codes, types) may come from peers: they are escaped by
autoescaping in the page and by :mod:`comity.registry.charts` in the SVG.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from comity.db import read_scope
from comity.http import get_node
from comity.node import Node
from comity.registry.charts import Bar, bar_chart, chart_names
from comity.registry.charts import render as render_chart
from comity.registry.errors import NotFoundError
from comity.registry.regions import default_populations
from comity.registry.resources import Kind
from comity.registry.stats import Distribution, distribution, units
from comity.reports.requests import GROUP_KEYS, RequestReport, request_report
from comity.requests.models import Request as RequestRow
from comity.web.accounts import Actor
from comity.web.core import render, view
from comity.web.i18n import translations

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
_SVG_HEADERS = {"content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
                "x-content-type-options": "nosniff", "x-frame-options": "DENY",
                "referrer-policy": "same-origin", "cache-control": "no-store"}
_BARS = 15


def _report(node: Node, key: str) -> RequestReport:
    with read_scope(node.sessions) as session:
        return request_report(session, now=node.clock.now(), group_by=(key,))


def _by_state(session: Session) -> list[tuple[str, int]]:
    """Requests sent or received (drafts left out, as in the report) per current state."""
    return sorted(session.execute(
        select(RequestRow.state, func.count()).where(RequestRow.sent_at.is_not(None))
        .group_by(RequestRow.state)).all(), key=lambda r: (-r[1], r[0]))


# A registry's distribution scans every delegation (seconds at a million rows), and
# changes only by import or council decision: a page reuses one a few minutes old.
_REGISTRY_TTL = 300.0


def _registry(request: Request, session: Session) -> Distribution:
    """The registry's distribution, computed at most every few minutes per app."""
    now = time.monotonic()
    held: tuple[float, Distribution] | None = getattr(request.app.state, "registry_stats",
                                                      None)
    if held is not None and now - held[0] < _REGISTRY_TTL:
        return held[1]
    dist = distribution(session, kinds=tuple(Kind), populations=default_populations())
    request.app.state.registry_stats = (now, dist)
    return dist


def _kinds(dist: Distribution) -> list[dict[str, Any]]:
    return [{"kind": k.kind.value, "delegations": k.delegations, "countries": len(k.countries),
             "units": units(k.kind, k.size), "gini": k.gini, "hhi": k.hhi}
            for k in dist.kinds]


@router.get("/reports")
def reports_page(request: Request, actor: Annotated[Actor, Depends(view())]) -> Response:
    """Request statistics by a chosen key and by state; the registry's distribution."""
    node = get_node(request)
    key = request.query_params.get("by", "country")
    key = key if key in GROUP_KEYS else "country"
    report = _report(node, key)
    with read_scope(node.sessions) as session:
        states = _by_state(session)
        dist = _registry(request, session)
    kinds = _kinds(dist)
    charts = [f"top-{k['kind']}" for k in kinds if k["countries"]]
    if any(k["countries"] > 1 for k in kinds):
        charts.append("gini-by-year")
    return render(request, "reports.html", actor=actor, key=key, keys=GROUP_KEYS,
                  report=report, rows=[r.to_dict() for r in report.rows],
                  totals=report.totals.to_dict(), states=states, kinds=kinds,
                  charts=charts)


def _requests_chart(report: RequestReport, key: str, language: str) -> str:
    """A bar per group: its share of all requests, largest first."""
    gettext = translations(language).gettext
    total = report.totals.count
    rows = sorted(report.rows, key=lambda r: (-r.count, str(r.key[key])))[:_BARS]
    bars = [Bar(str(r.key[key]), r.count / total, str(r.count)) for r in rows] if total else []
    title = gettext("Requests by %(key)s") % {"key": gettext(key)}
    desc = (gettext("Share of the %(n)s requests sent or received, per %(key)s; the "
                    "table on the page gives every figure.") % {"n": total, "key": gettext(key)})
    return bar_chart(title=title, desc=desc, bars=bars, unit=gettext("requests"))


@router.get("/reports/charts/{name}.svg")
def chart(request: Request, name: str, actor: Annotated[Actor, Depends(view())]) -> Response:
    """One chart of the reports page as an SVG document."""
    node = get_node(request)
    key = name.removeprefix("requests-")
    if name.startswith("requests-") and key in GROUP_KEYS:
        svg = _requests_chart(_report(node, key), key, actor.language)
    elif name in chart_names():
        with read_scope(node.sessions) as session:
            svg = render_chart(_registry(request, session), name)
    else:
        raise NotFoundError(f"no chart {name[:40]!r}")
    return Response(svg, media_type="image/svg+xml", headers=_SVG_HEADERS)
