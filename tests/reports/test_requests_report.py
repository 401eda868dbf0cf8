"""The request report: counts, percentiles, grouping, filters, CSV/JSON, API and CLI.

Rows are inserted straight into the ``requests`` table of a real node on each
backend, so every number checked here is known by hand.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastapi
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from comity.auth.services import TokenCache, issue_token
from comity.db import read_scope, session_scope
from comity.http import install_error_handlers
from comity.node import Node
from comity.reports.api import router
from comity.reports.cli import app as report_app
from comity.reports.errors import InvalidReportError
from comity.reports.requests import (
    COLUMNS,
    GROUP_KEYS,
    RequestReport,
    percentile,
    request_report,
)
from comity.requests.models import Request
from tests.support import LocalFederation

with warnings.catch_warnings():
    # Starlette's TestClient prefers the httpx2 fork; the project uses httpx.
    warnings.filterwarnings("ignore", "Using `httpx` with", UserWarning)
    from starlette.testclient import TestClient

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 1, tzinfo=UTC)
NOW = dt.datetime(2026, 6, 1, tzinfo=UTC)
H = dt.timedelta(hours=1)


def hours(h: float) -> dt.timedelta:
    return dt.timedelta(hours=h)


def make(n: int, *, direction: str = "out", country: str = "KE",
         type: str = "mla-stored-data", offence: str = "illegal-access", state: str = "sent",
         sent: dt.datetime | None = T0, ack: dt.timedelta | None = None,
         done: dt.timedelta | None = None, due: dt.datetime | None = None) -> Request:
    """A request row; ``ack``/``done`` are times after ``sent``."""
    created = sent or T0
    return Request(
        request_id=f"00000000-0000-4000-8000-{n:012d}", direction=direction,
        peer_id=f"peer-{country.lower()}", peer_country=country, agreement_id="a" * 36,
        type=type, instrument="budapest", offence=offence, reference=f"REF-{n}",
        document="{}", created_at=created, updated_at=created, state=state, sent_at=sent,
        acknowledged_at=None if ack is None or sent is None else sent + ack,
        executed_at=None if done is None or sent is None else sent + done, due_at=due)


def insert(node: Node, rows: list[Request]) -> None:
    with session_scope(node.sessions) as session:
        session.add_all(rows)


def report(node: Node, **kw: Any) -> RequestReport:
    with read_scope(node.sessions) as session:
        return request_report(session, now=kw.pop("now", NOW), **kw)


@pytest.fixture
def node(fed: LocalFederation) -> Node:
    return fed.add("x").node


# -- percentiles ---------------------------------------------------------------------------

@pytest.mark.parametrize(("values", "pct", "expected"), [
    ([1, 2, 3, 4, 10], 50, 3.0),
    ([1, 2, 3, 4, 10], 90, 7.6),         # h = 4 * 0.9 = 3.6: 4 + 0.6 * (10 - 4)
    ([1, 2, 3, 4, 10], 0, 1.0),
    ([1, 2, 3, 4, 10], 100, 10.0),
    ([1, 2], 50, 1.5),                    # interpolated, not the lower middle
    ([10, 20, 30, 40], 90, 37.0),         # h = 2.7: 30 + 0.7 * 10
    ([5], 90, 5.0),
    ([0, 3], 10, 0.3),  # exact, then one rounding: not 0.1 * 3 = 0.30000000000000004
])
def test_percentile_is_linear_interpolation(values: list[int], pct: int,
                                            expected: float) -> None:
    assert percentile(values, pct) == expected


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], 50) is None


def test_percentile_in_a_unit_rounds_once() -> None:
    # h = 1.8: 1500 + 0.8 * (1 200 000 - 1500) = 960 300 ms, then into hours.
    assert percentile([0, 1500, 1_200_000], 90, unit=3_600_000) == 960_300 / 3_600_000
    assert percentile([0, 1_200_000], 0, unit=3_600_000) == 0.0
    assert percentile([1_200_000], 50, unit=3_600_000) == 1 / 3


@pytest.mark.parametrize("pct", [-1, 101])
def test_percentile_out_of_range_is_a_caller_bug(pct: int) -> None:
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        percentile([1], pct)


def test_percentile_unit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="unit"):
        percentile([1], 50, unit=0)


# -- measures --------------------------------------------------------------------------------

def test_median_and_p90_of_hand_made_times(node: Node) -> None:
    insert(node, [make(i, ack=hours(h), done=hours(10 * h) if i < 4 else None,
                       state="executed" if i < 4 else "acknowledged")
                  for i, h in enumerate([1, 2, 3, 4, 10])])
    insert(node, [make(9)])  # sent, never acknowledged: no time, still counted
    r = report(node, group_by=["country"])
    assert len(r.rows) == 1
    row = r.rows[0]
    assert (row.count, row.acknowledged, row.executed) == (6, 5, 4)
    assert (row.acknowledge.median, row.acknowledge.p90) == (3.0, 7.6)
    # Execute times 10, 20, 30, 40 h: median 25, p90 h = 2.7 -> 30 + 0.7 * 10.
    assert (row.execute.median, row.execute.p90) == (25.0, 37.0)
    assert r.totals.to_dict() == {k: v for k, v in row.to_dict().items() if k != "country"}


def test_times_are_exact_to_the_millisecond_on_every_backend(node: Node) -> None:
    insert(node, [make(1, ack=dt.timedelta(minutes=20)),
                  make(2, ack=dt.timedelta(milliseconds=1500)),
                  make(3, country="BR", ack=dt.timedelta(microseconds=400))])  # 0 ms
    r = report(node, group_by=["country"])
    assert r.rows[0].key == {"country": "BR"}
    assert r.rows[0].acknowledge.median == 0.0
    row = r.totals
    assert row.acknowledge.median == 1500 / 3_600_000
    # 0, 1500 and 1 200 000 ms: h = 1.8, 1500 + 0.8 * 1 198 500 = 960 300 ms.
    assert row.acknowledge.p90 == 960_300 / 3_600_000


def test_no_times_gives_none(node: Node) -> None:
    insert(node, [make(1)])
    row = report(node, group_by=["type"]).rows[0]
    assert (row.acknowledge.median, row.acknowledge.p90) == (None, None)
    assert (row.execute.median, row.execute.p90) == (None, None)


def test_outcome_counts(node: Node) -> None:
    states = ["sent", "acknowledged", "executed_partially", "executed", "refused", "refused",
              "impossible", "withdrawn", "closed", "expired", "lifted", "superseded_by_mla",
              "in_execution", "preserved"]
    insert(node, [make(i, state=s) for i, s in enumerate(states)])
    row = report(node, group_by=[]).totals
    assert row.count == 14
    assert row.refused == 2
    # Open: sent, acknowledged, executed_partially, in_execution, preserved.
    assert row.open == 5


def test_overdue_uses_the_injected_now(node: Node) -> None:
    insert(node, [make(1, due=NOW - H), make(2, due=NOW), make(3, due=NOW + H), make(4)])
    assert report(node, group_by=[]).totals.overdue == 1
    assert report(node, group_by=[], now=NOW + 2 * H).totals.overdue == 3
    assert report(node, group_by=[], now=T0).totals.overdue == 0


def test_drafts_are_left_out(node: Node) -> None:
    insert(node, [make(1, sent=None, state="draft"),
                  make(2, sent=None, state="pending_approval", due=NOW - H),
                  make(3, sent=None, state="approved"), make(4)])
    r = report(node)
    assert r.totals.count == 1
    assert r.totals.overdue == 0
    assert [row.count for row in r.rows] == [1]


def test_empty_database(node: Node) -> None:
    for keys in ([], ["country"], list(GROUP_KEYS)):
        r = report(node, group_by=keys)
        assert r.rows == ()
        assert r.totals.count == 0
        assert r.totals.acknowledge.median is None


# -- grouping --------------------------------------------------------------------------------

def mixed() -> list[Request]:
    return [
        make(1, direction="out", country="KE", type="mla-general", offence="csam",
             ack=hours(1)),
        make(2, direction="out", country="KE", type="mla-general", offence="illegal-access",
             ack=hours(3)),
        make(3, direction="in", country="KE", type="expedited-preservation",
             offence="csam", ack=hours(5)),
        make(4, direction="in", country="BR", type="mla-general", offence="csam",
             sent=dt.datetime(2025, 5, 1, tzinfo=UTC), ack=hours(7)),
        make(5, direction="out", country="BR", type="expedited-preservation",
             offence="illegal-access", sent=dt.datetime(2025, 5, 1, tzinfo=UTC)),
    ]


EXPECTED_BY_KEY: dict[str, list[tuple[str | int, int, float | None]]] = {
    # key value, count, median time to acknowledge
    "direction": [("in", 2, 6.0), ("out", 3, 2.0)],
    "country": [("BR", 2, 7.0), ("KE", 3, 3.0)],
    "type": [("expedited-preservation", 2, 5.0), ("mla-general", 3, 3.0)],
    "offence": [("csam", 3, 5.0), ("illegal-access", 2, 3.0)],
    "year": [(2025, 2, 7.0), (2026, 3, 3.0)],
}


@pytest.mark.parametrize("key", GROUP_KEYS)
def test_group_by_each_key(node: Node, key: str) -> None:
    insert(node, mixed())
    r = report(node, group_by=[key])
    got = [(row.key[key], row.count, row.acknowledge.median) for row in r.rows]
    assert got == EXPECTED_BY_KEY[key]
    assert r.totals.count == 5
    assert r.totals.acknowledge.median == 4.0  # 1, 3, 5, 7


def test_group_by_a_combination_keeps_the_callers_order(node: Node) -> None:
    insert(node, mixed())
    r = report(node, group_by=["year", "country", "direction"])
    assert [tuple(row.key.items()) for row in r.rows] == [
        (("year", 2025), ("country", "BR"), ("direction", "in")),
        (("year", 2025), ("country", "BR"), ("direction", "out")),
        (("year", 2026), ("country", "KE"), ("direction", "in")),
        (("year", 2026), ("country", "KE"), ("direction", "out")),
    ]
    assert [row.count for row in r.rows] == [1, 1, 1, 2]
    assert r.rows[3].acknowledge.median == 2.0


def test_group_by_everything_and_nothing(node: Node) -> None:
    insert(node, mixed())
    assert len(report(node).rows) == 5  # every row differs in some key
    nothing = report(node, group_by=[])
    assert len(nothing.rows) == 1
    assert nothing.rows[0].key == {}
    assert nothing.rows[0] == nothing.totals


def test_year_is_the_utc_year_of_sending(node: Node, backend: str) -> None:
    insert(node, [make(1, sent=dt.datetime(2025, 12, 31, 23, 30, tzinfo=UTC)),
                  make(2, sent=dt.datetime(2026, 1, 1, 0, 30, tzinfo=UTC)),
                  make(3, sent=dt.datetime(2026, 1, 1, 0, 30, tzinfo=UTC)),
                  make(4, sent=dt.datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))])
    with read_scope(node.sessions) as session:
        if backend == "postgresql":
            # A session in UTC+14 must not move 2025-12-31T23:30Z into 2026.
            session.execute(text("SET LOCAL TIME ZONE 'Pacific/Kiritimati'"))
        r = request_report(session, now=NOW, group_by=["year"])
    assert [(row.key["year"], row.count) for row in r.rows] == [(2025, 1), (2026, 3)]


def test_since_is_inclusive_and_until_exclusive(node: Node) -> None:
    jan, feb, mar = (dt.datetime(2026, m, 1, tzinfo=UTC) for m in (1, 2, 3))
    insert(node, [make(1, sent=jan), make(2, sent=feb), make(3, sent=mar)])
    assert report(node, since=feb).totals.count == 2
    assert report(node, until=feb).totals.count == 1
    assert report(node, since=jan, until=mar).totals.count == 2
    assert report(node, since=feb, until=feb + dt.timedelta(microseconds=1)).totals.count == 1


# -- refusals --------------------------------------------------------------------------------

@pytest.mark.parametrize("group_by", [["colour"], ["country", "Country"], ["country; drop"],
                                      ["country", "country"], [""]])
def test_invalid_group_by_is_refused(node: Node, group_by: list[str]) -> None:
    with pytest.raises(InvalidReportError) as e:
        report(node, group_by=group_by)
    assert e.value.status == 422
    assert e.value.to_dict()["type"] == "urn:comity:problem:invalid-report"
    assert e.value.extra["allowed"] == list(GROUP_KEYS)


def test_a_string_is_not_a_list_of_keys(node: Node) -> None:
    with pytest.raises(TypeError):
        report(node, group_by="country")


def test_empty_period_is_refused(node: Node) -> None:
    with pytest.raises(InvalidReportError, match="since must be before until"):
        report(node, since=T0, until=T0)


@pytest.mark.parametrize("arg", ["now", "since", "until"])
def test_naive_datetimes_are_caller_bugs(node: Node, arg: str) -> None:
    with pytest.raises(ValueError, match="naive"):
        report(node, **{arg: dt.datetime(2026, 1, 1)})


# -- output ----------------------------------------------------------------------------------

def test_csv_header_quoting_and_order(node: Node) -> None:
    insert(node, [make(1, offence="fraud, computer-related", ack=hours(2)),
                  make(2, offence="=HYPERLINK(\"http://x\")"),
                  make(3, offence="access"), make(4, offence="fraud, computer-related")])
    out = report(node, group_by=["country", "offence"]).to_csv()
    lines = out.split("\r\n")
    assert lines[0] == ("country,offence,count,acknowledged,executed,refused,open,overdue,"
                        "acknowledge_hours_median,acknowledge_hours_p90,"
                        "execute_hours_median,execute_hours_p90")
    assert lines[1:] == [
        'KE,"\'=HYPERLINK(""http://x"")",1,0,0,0,1,0,,,,',
        "KE,access,1,0,0,0,1,0,,,,",
        'KE,"fraud, computer-related",2,1,0,0,2,0,2.0,2.0,,',
        "",
    ]
    parsed = list(csv.reader(io.StringIO(out)))
    assert parsed[1][1] == "'=HYPERLINK(\"http://x\")"
    assert parsed[3][1] == "fraud, computer-related"


def test_csv_without_rows_is_a_header(node: Node) -> None:
    assert report(node, group_by=["year"]).to_csv() == (
        "year," + ",".join(COLUMNS) + "\r\n")


def test_json_shape(node: Node) -> None:
    insert(node, [make(1, ack=hours(1), done=hours(4), state="executed")])
    doc = report(node, group_by=["direction", "year"], since=T0).to_json()
    assert json.loads(json.dumps(doc)) == doc
    assert doc == {
        "report": "requests", "as_of": "2026-06-01T00:00:00.000000Z",
        "since": "2026-03-01T00:00:00.000000Z", "until": None,
        "group_by": ["direction", "year"],
        "rows": [{"direction": "out", "year": 2026, "count": 1, "acknowledged": 1,
                  "executed": 1, "refused": 0, "open": 0, "overdue": 0,
                  "acknowledge_hours_median": 1.0, "acknowledge_hours_p90": 1.0,
                  "execute_hours_median": 4.0, "execute_hours_p90": 4.0}],
        "totals": {"count": 1, "acknowledged": 1, "executed": 1, "refused": 0, "open": 0,
                   "overdue": 0, "acknowledge_hours_median": 1.0,
                   "acknowledge_hours_p90": 1.0, "execute_hours_median": 4.0,
                   "execute_hours_p90": 4.0},
    }


# -- HTTP ------------------------------------------------------------------------------------

@pytest.fixture
def client(node: Node) -> Iterator[tuple[TestClient, dict[str, str]]]:
    app = fastapi.FastAPI()
    app.state.node = node
    app.state.tokens = TokenCache()
    install_error_handlers(app)
    app.include_router(router)
    with session_scope(node.sessions) as session:
        token = issue_token(session, name="reports", clock=node.clock)
    with TestClient(app) as c:
        yield c, {"authorization": f"Bearer {token}"}


def test_api_json(node: Node, client: tuple[TestClient, dict[str, str]]) -> None:
    c, auth = client
    insert(node, mixed())
    resp = c.get("/api/reports/requests", params={"group_by": ["country", "year"]},
                 headers=auth)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    doc = resp.json()
    assert doc["group_by"] == ["country", "year"]
    assert [(r["country"], r["year"], r["count"]) for r in doc["rows"]] == [
        ("BR", 2025, 2), ("KE", 2026, 3)]
    assert doc["totals"]["acknowledge_hours_median"] == 4.0


def test_api_defaults_and_period(node: Node, client: tuple[TestClient, dict[str, str]]
                                 ) -> None:
    c, auth = client
    insert(node, mixed())
    doc = c.get("/api/reports/requests", params={"since": "2026-01-01"}, headers=auth).json()
    assert doc["group_by"] == list(GROUP_KEYS)
    assert doc["since"] == "2026-01-01T00:00:00.000000Z"
    assert doc["totals"]["count"] == 3
    doc = c.get("/api/reports/requests", params={"until": "2026-01-01T01:00:00+01:00"},
                headers=auth).json()
    assert doc["until"] == "2026-01-01T00:00:00.000000Z"
    assert doc["totals"]["count"] == 2


def test_api_csv(node: Node, client: tuple[TestClient, dict[str, str]]) -> None:
    c, auth = client
    insert(node, mixed())
    resp = c.get("/api/reports/requests",
                 params={"group_by": "direction", "format": "csv"}, headers=auth)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = resp.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="requests-report-')
    assert disposition.endswith('.csv"')
    assert resp.text.split("\r\n")[:3] == [
        "direction," + ",".join(COLUMNS), "in,2,2,0,0,2,0,6.0,6.8,,",
        "out,3,2,0,0,3,0,2.0,2.8,,"]


@pytest.mark.parametrize(("params", "slug"), [
    ({"group_by": "colour"}, "invalid-report"),
    ({"group_by": ["type", "type"]}, "invalid-report"),
    ({"since": "2026-02-01", "until": "2026-01-01"}, "invalid-report"),
    ({"group_by": [*GROUP_KEYS, "year"]}, "invalid-request"),
    ({"format": "xlsx"}, "invalid-request"),
    ({"since": "yesterday"}, "invalid-request"),
])
def test_api_refuses_bad_parameters(client: tuple[TestClient, dict[str, str]],
                                    params: dict[str, Any], slug: str) -> None:
    c, auth = client
    resp = c.get("/api/reports/requests", params=params, headers=auth)
    assert resp.status_code == 422
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert problem["type"] == f"urn:comity:problem:{slug}"
    assert problem["status"] == 422


def test_api_needs_a_token(client: tuple[TestClient, dict[str, str]]) -> None:
    c, _ = client
    assert c.get("/api/reports/requests").status_code == 401
    assert c.get("/api/reports/requests",
                 headers={"authorization": "Bearer nope"}).status_code == 401


# -- command line ----------------------------------------------------------------------------

def run_cli(node: Node, *args: str, code: int = 0) -> str:
    """``comity report ...`` with the node's database, as an operator would give it."""
    import typer

    root = typer.Typer()
    root.add_typer(report_app, name="report")
    env = {"COMITY_DATABASE_URL": node.settings.database_url} \
        if node.settings.database_url else {}
    result = CliRunner().invoke(root, ["report", *args, "--data-dir",
                                       str(node.settings.data_dir)], env=env)
    assert result.exit_code == code, result.output
    return result.output


def test_cli_formats(node: Node, tmp_path: Path) -> None:
    insert(node, mixed())
    doc = json.loads(run_cli(node, "requests", "--group-by", "country", "--format", "json"))
    assert [(r["country"], r["count"]) for r in doc["rows"]] == [("BR", 2), ("KE", 3)]
    out = run_cli(node, "requests", "--group-by", "year", "--format", "csv",
                  "--since", "2026-01-01")
    assert out.splitlines() == ["year," + ",".join(COLUMNS), "2026,3,3,0,0,3,0,3.0,4.6,,"]
    table = run_cli(node, "requests", "--group-by", "direction")
    lines = [line.split() for line in table.splitlines()]
    assert ["in", "2", "2", "0", "0", "2", "0", "6.0", "6.8", "—", "—"] in lines
    assert ["out", "3", "2", "0", "0", "3", "0", "2.0", "2.8", "—", "—"] in lines
    assert ["total", "5", "4", "0", "0", "5", "0", "4.0", "6.4", "—", "—"] in lines


def test_cli_output_file(node: Node, tmp_path: Path) -> None:
    insert(node, mixed())
    target = tmp_path / "r.csv"
    run_cli(node, "requests", "--group-by", "type", "--format", "csv", "--output",
            str(target))
    assert target.read_bytes().split(b"\r\n")[0] == ("type," + ",".join(COLUMNS)).encode()
    target = tmp_path / "r.json"
    run_cli(node, "requests", "--format", "json", "--output", str(target))
    assert json.loads(target.read_text())["totals"]["count"] == 5
    target = tmp_path / "r.txt"
    run_cli(node, "requests", "--output", str(target))
    assert "expedited-preservation" in target.read_text()  # never folded or cut


def test_cli_refuses_bad_input(node: Node) -> None:
    out = run_cli(node, "requests", "--group-by", "colour", code=1)
    assert "invalid-report" in out
    out = run_cli(node, "requests", "--since", "last week", code=2)
    assert "ISO 8601" in out
