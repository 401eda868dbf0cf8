"""Distribution statistics, charts, the API route and the CLI command, on both backends."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import text
from typer.testing import CliRunner

from comity.db import read_scope, session_scope
from comity.node import Node
from comity.registry import stats as stats_module
from comity.registry.charts import Bar, Series, bar_chart, chart_names, line_chart, render_all
from comity.registry.cli import app as registry_app
from comity.registry.regions import (
    ISO_CODES,
    REGION_OF,
    CountryInfoPopulations,
    Populations,
    Region,
    StaticPopulations,
    default_populations,
    is_country,
    non_country_meaning,
    region_of,
)
from comity.registry.resources import Kind, parse_block
from comity.registry.services import LOCAL
from comity.registry.stats import (
    CSV_COLUMNS,
    Distribution,
    distribution,
    gini,
    hhi,
    units,
)
from tests.support import LocalFederation, PeerNode

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
SVG = "{http://www.w3.org/2000/svg}"


def on(year: int, month: int = 6) -> dt.datetime:
    return dt.datetime(year, month, 1, tzinfo=dt.UTC)


def held(node: Node, block: str, country: str | None, *, status: str = "allocated",
         registered: dt.datetime | None = None, registry: str = LOCAL) -> None:
    with session_scope(node.sessions) as s:
        node.registry.delegate(s, registry=registry, block=parse_block(block), status=status,
                               now=NOW, country=country, registered_at=registered)


def report(node: Node, **kw: Any) -> Distribution:
    with read_scope(node.sessions) as s:
        return distribution(s, **kw)


@pytest.fixture
def peer(fed: LocalFederation) -> PeerNode:
    p = fed.add("x")
    with session_scope(p.node.sessions) as s:
        for block, registry in (("0.0.0.0/1", LOCAL), ("128.0.0.0/1", "council-x"),
                                ("2000::/3", LOCAL), ("AS0-AS4294967295", LOCAL)):
            p.node.registry.add_pool(s, registry=registry, block=parse_block(block),
                                     name="all", now=NOW)
    return p


@pytest.fixture
def node(peer: PeerNode) -> Node:
    return peer.node


def mixed(node: Node) -> None:
    """IPv4: KE and NG a /15 each, EU, ZZ, XK, no country, one reserved, one undated.
    IPv6: KE a /32, ZA a /48. ASN: US 10, BR 1."""
    held(node, "10.0.0.0/16", "KE", registered=on(2020))
    held(node, "10.1.0.0/16", "KE", status="assigned", registered=on(2021))
    held(node, "10.2.0.0/15", "NG", registered=on(2021))
    held(node, "10.4.0.0/24", "EU", registered=on(2021))
    held(node, "10.5.0.0/24", "ZZ", registered=on(2021))
    held(node, "10.6.0.0/24", None)
    held(node, "10.7.0.0/16", "FR", status="reserved", registered=on(2021))
    held(node, "10.8.0.0/23", "XK", registered=on(2021))
    held(node, "2001:db8::/32", "KE", registered=on(2020))
    held(node, "2001:db9::/48", "ZA", status="assigned", registered=on(2021))
    held(node, "AS1-AS10", "US", registered=on(2019))
    held(node, "AS11", "BR", registered=on(2020))


# -- measures --------------------------------------------------------------------------------

@pytest.mark.parametrize("values", [[7], [5, 5, 5], [2**100] * 4])
def test_gini_of_equal_holdings_is_zero(values: list[int]) -> None:
    assert gini(values) == 0.0


@pytest.mark.parametrize("n", [2, 3, 10, 250])
def test_gini_when_one_holds_everything_is_n_minus_1_over_n(n: int) -> None:
    # The population form, without the n/(n-1) small-sample correction.
    assert gini([0] * (n - 1) + [12345]) == (n - 1) / n


def test_gini_known_values() -> None:
    assert gini([10, 30]) == 0.25          # |10 - 30| * 2 / (2 * 4 * 20)
    assert gini([1, 2, 3, 4]) == 0.25      # (2 * 30 - 5 * 10) / (4 * 10)
    assert gini([3, 1, 2, 4]) == 0.25      # order does not matter
    assert gini([]) is None
    assert gini([0, 0]) is None
    with pytest.raises(ValueError, match="negative"):
        gini([1, -1])


def test_hhi() -> None:
    assert hhi([1, 1, 1, 1]) == 0.25
    assert hhi([3, 1]) == 0.625
    assert hhi([42]) == 1.0
    assert hhi([]) is None


def test_units() -> None:
    assert units(Kind.IPV6, parse_block("2001:db8::/32").size) == 65536
    assert units(Kind.IPV6, parse_block("2001:db8::/48").size) == 1
    assert units(Kind.IPV6, parse_block("2001:db8::/56").size) == 1 / 256
    assert units(Kind.IPV4, parse_block("10.0.0.0/8").size) == 2**24
    assert units(Kind.ASN, parse_block("AS1-AS10").size) == 10


# -- regions ---------------------------------------------------------------------------------

def test_region_table_covers_iso_3166() -> None:
    assert len(ISO_CODES) == 249
    assert all(len(c) == 2 and c.isupper() for c in ISO_CODES)
    for region in Region:
        assert sum(1 for r in REGION_OF.values() if r is region) > 20
    assert [c for c, r in REGION_OF.items() if r is None] == ["AQ"]
    assert region_of("ke") is Region.AFRICA
    assert region_of("BR") is Region.AMERICAS
    assert region_of("TW") is Region.ASIA
    assert region_of("FR") is Region.EUROPE
    assert region_of("NZ") is Region.OCEANIA


@pytest.mark.parametrize("code", ["EU", "AP", "ZZ", "", None, "XK", "=1"])
def test_non_countries(code: str | None) -> None:
    assert not is_country(code)
    assert region_of(code) is None
    assert non_country_meaning(code)


# -- the report ------------------------------------------------------------------------------

def test_units_shares_and_non_country_buckets(node: Node) -> None:
    mixed(node)
    r = report(node)
    v4 = r.kind(Kind.IPV4)
    assert [(c.country, c.size, c.delegations) for c in v4.countries] == [
        ("KE", 131072, 2), ("NG", 131072, 1)]
    assert {(x.code, x.size) for x in v4.non_country} == {
        ("EU", 256), ("ZZ", 256), ("", 256), ("XK", 512)}
    doc = r.to_json()["kinds"]["ipv4"]
    assert doc["units"] == 131072 * 2 + 256 * 3 + 512
    assert doc["country_units"] == 262144
    assert doc["non_country_units"] == 1280
    assert doc["delegations"] == 7      # the reserved one is not held
    assert doc["countries"] == 2
    assert doc["gini"] == 0.0
    assert doc["hhi"] == 0.5
    assert doc["top"] == [{"country": "KE", "share": 0.5}, {"country": "NG", "share": 0.5}]
    assert doc["by_country"][0]["share_of_all"] == 131072 / 263424
    assert "the 2 countries holding at least one ipv4" in doc["gini_population"]
    eu = next(x for x in doc["non_country"] if x["code"] == "EU")
    assert eu["meaning"].startswith("EU: European Union")
    assert doc["undated"] == {"delegations": 1, "units": 256}
    africa = next(x for x in doc["by_region"] if x["region"] == "Africa")
    assert (africa["countries"], africa["units"], africa["share"]) == (2, 262144, 1.0)
    assert [x["region"] for x in doc["by_region"]] == [g.value for g in Region]


def test_ipv6_counts_48s(node: Node) -> None:
    mixed(node)
    doc = report(node, kinds=(Kind.IPV6,)).to_json()
    assert list(doc["kinds"]) == ["ipv6"]
    v6 = doc["kinds"]["ipv6"]
    assert v6["unit"] == "/48 equivalents"
    assert [(c["country"], c["units"]) for c in v6["by_country"]] == [("KE", 65536),
                                                                     ("ZA", 1)]
    assert v6["gini"] == (65536 - 1) / (2 * 65537)


def test_gini_by_year(node: Node) -> None:
    held(node, "AS1-AS10", "KE", registered=on(2020, 1))
    held(node, "AS11-AS20", "NG", registered=on(2020, 12))
    held(node, "AS21-AS40", "KE", registered=on(2021))
    held(node, "AS41-AS1000", "KE")                  # undated: in the totals only
    held(node, "AS1001-AS2000", "EU", registered=on(2019))  # not a country: no year
    k = report(node, kinds=(Kind.ASN,)).kind(Kind.ASN)
    assert [(p.year, p.countries, p.size, p.gini) for p in k.by_year] == [
        (2020, 2, 20, 0.0), (2021, 2, 40, 0.25)]
    assert k.undated_delegations == 1


def test_gini_by_year_fills_years_without_registrations(node: Node) -> None:
    held(node, "AS1", "KE", registered=on(2018))
    held(node, "AS2-AS4", "NG", registered=on(2021))
    k = report(node, kinds=(Kind.ASN,)).kind(Kind.ASN)
    assert [(p.year, p.gini) for p in k.by_year] == [
        (2018, 0.0), (2019, 0.0), (2020, 0.0), (2021, 0.25)]


def test_year_is_the_utc_year(node: Node, backend: str) -> None:
    held(node, "AS1", "KE", registered=dt.datetime(2020, 12, 31, 23, 30, tzinfo=dt.UTC))
    held(node, "AS2-AS4", "NG", registered=dt.datetime(2021, 1, 1, 0, 30, tzinfo=dt.UTC))
    with read_scope(node.sessions) as s:
        if backend == "postgresql":
            # A session in UTC+14 must not move 2020-12-31T23:30Z into 2021.
            s.execute(text("SET LOCAL TIME ZONE 'Pacific/Kiritimati'"))
        k = distribution(s, kinds=(Kind.ASN,)).kind(Kind.ASN)
    assert [(p.year, p.countries, p.gini) for p in k.by_year] == [(2020, 1, 0.0),
                                                                   (2021, 2, 0.25)]


def test_as_of_and_authority(node: Node) -> None:
    mixed(node)
    held(node, "128.0.0.0/8", "ZA", registry="council-x", registered=on(2020))
    r = report(node, as_of=dt.date(2020, 12, 31))
    assert [(c.country, c.size) for c in r.kind(Kind.IPV4).countries] == [
        ("ZA", 2**24), ("KE", 65536)]
    assert r.kind(Kind.IPV4).undated_delegations == 0   # undated rows are left out
    assert r.to_json()["as_of"] == "2020-12-31"
    # The last moment of the day counts; the first of the next does not.
    held(node, "10.9.0.0/24", "KE", registered=dt.datetime(2020, 12, 31, 23, 59, 59,
                                                            tzinfo=dt.UTC))
    held(node, "10.9.1.0/24", "KE", registered=dt.datetime(2021, 1, 1, tzinfo=dt.UTC))
    r = report(node, as_of=dt.date(2020, 12, 31), authority=LOCAL)
    assert [(c.country, c.size) for c in r.kind(Kind.IPV4).countries] == [("KE", 65792)]
    assert r.to_json()["authority"] == LOCAL


def test_streams_in_batches(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    mixed(node)
    whole = report(node).to_json()
    monkeypatch.setattr(stats_module, "_BATCH", 2)
    assert report(node).to_json() == whole


def test_empty_registry(node: Node) -> None:
    doc = report(node).to_json()
    for k in doc["kinds"].values():
        assert (k["units"], k["countries"], k["gini"], k["hhi"], k["top"]) == (0, 0, None,
                                                                                 None, [])
        assert k["gini_by_year"] == []
        assert k["lorenz"] == [[0.0, 0.0]]


def test_kinds_must_be_distinct(node: Node) -> None:
    with pytest.raises(ValueError, match="kinds"):
        report(node, kinds=(Kind.ASN, Kind.ASN))
    with pytest.raises(ValueError, match="kinds"):
        report(node, kinds=())


def test_per_capita_only_where_population_is_known(node: Node) -> None:
    mixed(node)
    pops = StaticPopulations({"KE": 2_000_000, "US": 0}, "test figures")
    doc = report(node, populations=pops).to_json()
    assert doc["population_source"] == "test figures"
    v4 = {c["country"]: c for c in doc["kinds"]["ipv4"]["by_country"]}
    assert v4["KE"]["population"] == 2_000_000
    assert v4["KE"]["per_1000_people"] == 131072 * 1000 / 2_000_000
    assert v4["NG"]["population"] is None
    assert v4["NG"]["per_1000_people"] is None
    africa = next(x for x in doc["kinds"]["ipv4"]["by_region"] if x["region"] == "Africa")
    # NG's population is unknown, so its units are not divided by KE's people.
    assert africa["population"] == 2_000_000
    assert africa["per_1000_people"] == 131072 * 1000 / 2_000_000
    assert "NG" in africa["population_unknown"]
    assert "KE" not in africa["population_unknown"]
    v6 = {c["country"]: c for c in doc["kinds"]["ipv6"]["by_country"]}
    assert v6["KE"]["per_1000_people"] == 65536 * 1000 / 2_000_000   # /48s, not addresses
    us = doc["kinds"]["asn"]["by_country"][0]
    assert (us["country"], us["population"], us["per_1000_people"]) == ("US", None, None)
    americas = next(x for x in doc["kinds"]["asn"]["by_region"] if x["region"] == "Americas")
    assert americas["population"] is None


def test_without_population_data_nothing_is_per_capita(node: Node) -> None:
    mixed(node)
    doc = report(node).to_json()
    assert doc["population_source"] is None
    for k in doc["kinds"].values():
        for row in k["by_country"] + k["by_region"]:
            assert row["per_1000_people"] is None


def test_countryinfo_populations() -> None:
    pytest.importorskip("countryinfo")
    pops: Populations = CountryInfoPopulations()
    assert pops.source is not None
    assert pops.source.startswith("countryinfo ")
    population = pops.of("KE")
    assert population is not None
    assert population > 1_000_000
    assert pops.of("AQ") is None      # the package says 0: unknown, not zero people
    assert pops.of("XK") is None


def test_csv(node: Node) -> None:
    mixed(node)
    held(node, "10.10.0.0/24", "=1", registered=on(2021))
    text = report(node, kinds=(Kind.IPV4,)).to_csv()
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    by = {(r[1], r[2]): r for r in rows[1:]}
    assert by["country", "KE"] == ["ipv4", "country", "KE", "Africa", "131072", "2",
                                   repr(0.5), repr(131072 / 263680), "", ""]
    assert by["region", "Africa"][4] == "262144"
    assert by["non-country", "EU"][6] == ""           # no share of the countries' total
    assert ("non-country", "'=1") in by              # a formula is neutralised
    assert text.endswith("\r\n")


# -- charts ----------------------------------------------------------------------------------

def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title") is not None
    assert root.find(f"{SVG}desc") is not None
    return root


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_charts_parse_and_are_labelled(node: Node) -> None:
    mixed(node)
    r = report(node, authority=LOCAL)
    charts = render_all(r)
    assert list(charts) == chart_names()
    assert list(charts) == ["top-ipv4", "top-ipv6", "top-asn", "lorenz-ipv4", "lorenz-ipv6",
                            "lorenz-asn", "gini-by-year"]
    for svg in charts.values():
        parse(svg)
    top = parse(charts["top-ipv4"])
    assert "IPv4 addresses: top countries by share (authority local)" in (
        top.find(f"{SVG}title").text or "")  # type: ignore[union-attr]
    assert {"KE", "NG", "50.0% · 131,072"} <= set(texts(top))
    assert not {"EU", "ZZ", "XK"} & set(texts(top))   # non-countries are not charted
    tips = [t.text for t in top.iter(f"{SVG}title")]
    assert "KE: 131,072 addresses (50.0%)" in tips
    lorenz = parse(charts["lorenz-ipv6"])
    assert any(t.startswith("Gini 0.500 over 2 countries") for t in texts(lorenz))
    assert lorenz.find(f"{SVG}polyline") is not None
    years = parse(charts["gini-by-year"])
    assert {"IPv4", "IPv6", "AS numbers", "2019", "2021"} <= set(texts(years))
    assert render_all(report(node, authority=LOCAL)) == charts   # deterministic


def test_charts_of_nothing_parse(node: Node) -> None:
    for svg in render_all(report(node)).values():
        assert "No data." in texts(parse(svg))


def test_labels_are_escaped() -> None:
    evil = '<script>alert(1)</script> & "quoted" \x01 ]]>'
    svg = bar_chart(title=evil, desc=evil, bars=[Bar(evil, 0.5, evil)])
    root = parse(svg)
    assert not [e for e in root.iter() if e.tag.endswith("script")]
    assert root.find(f"{SVG}title").text == evil.replace("\x01", "\ufffd")  # type: ignore[union-attr]
    assert evil.replace("\x01", "\ufffd") in texts(root)
    assert "<script>" not in svg
    svg = line_chart(title="t", desc="d", y_label=evil,
                     series=[Series(evil, [(2020, 0.5)], "#000000", "2 3")])
    assert evil.replace("\x01", "\ufffd") in texts(parse(svg))


# -- HTTP ------------------------------------------------------------------------------------

def test_api_returns_the_services_json(peer: PeerNode) -> None:
    mixed(peer.node)
    auth = {"authorization": f"Bearer {peer.token}"}
    resp = peer.client.get("/api/registry/stats", headers=auth)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    pops = default_populations()
    assert resp.json() == report(peer.node, populations=pops).to_json()
    resp = peer.client.get("/api/registry/stats", headers=auth,
                           params={"kind": "asn", "authority": LOCAL, "as_of": "2019-12-31"})
    assert resp.json() == report(peer.node, kinds=(Kind.ASN,), authority=LOCAL,
                                 as_of=dt.date(2019, 12, 31), populations=pops).to_json()
    resp = peer.client.get("/api/registry/stats", headers=auth, params={"kind": "ipv5"})
    assert resp.status_code == 422


def test_api_charts(peer: PeerNode) -> None:
    mixed(peer.node)
    auth = {"authorization": f"Bearer {peer.token}"}
    for name in chart_names():
        resp = peer.client.get(f"/api/registry/stats/charts/{name}.svg", headers=auth)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == "image/svg+xml"
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'none'" in resp.headers["content-security-policy"]
        assert resp.text == render_all(report(
            peer.node, populations=default_populations()))[name]
    resp = peer.client.get("/api/registry/stats/charts/pie.svg", headers=auth)
    assert resp.status_code == 404
    assert resp.json()["type"] == "urn:comity:problem:registry-not-found"


def test_api_needs_a_token(peer: PeerNode) -> None:
    for path in ("/api/registry/stats", "/api/registry/stats/charts/top-ipv4.svg"):
        assert peer.client.get(path).status_code == 401
        assert peer.client.get(path, headers={"authorization": "Bearer nope"}
                               ).status_code == 401


# -- command line ----------------------------------------------------------------------------

def run_cli(node: Node, *args: str, code: int = 0) -> str:
    """``comity registry ...`` with the node's database, as an operator would give it."""
    root = typer.Typer()
    root.add_typer(registry_app, name="registry")
    env = {"COMITY_DATABASE_URL": node.settings.database_url} \
        if node.settings.database_url else {}
    result = CliRunner().invoke(root, ["registry", *args, "--data-dir",
                                       str(node.settings.data_dir)], env=env)
    assert result.exit_code == code, result.output
    return result.output


def test_cli_writes_the_charts(node: Node, tmp_path: Path) -> None:
    mixed(node)
    out = tmp_path / "charts" / "new"
    text = run_cli(node, "stats", "--charts", str(out))
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f"{n}.svg" for n in chart_names())
    for name in written:
        assert f"chart written to {out / name}" in text.replace("\n", "")
        parse((out / name).read_text(encoding="utf-8"))
    assert "Gini" in text
    assert "population unknown" in text or "per 1,000" in text


def test_cli_formats(node: Node) -> None:
    mixed(node)
    held(node, "10.10.0.0/24", "[b", registered=on(2021))   # not markup in a table
    doc = json.loads(run_cli(node, "stats", "--json", "--kind", "ipv4"))
    with read_scope(node.sessions) as s:
        expected = distribution(s, kinds=(Kind.IPV4,),
                                populations=default_populations())
    assert doc == json.loads(json.dumps(expected.to_json()))
    assert json.loads(run_cli(node, "stats", "--format", "json", "--kind", "ipv4")) == doc
    lines = run_cli(node, "stats", "--format", "csv", "--kind", "asn").splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS)
    assert lines[1].startswith("asn,country,US,Americas,10,1,")
    table = run_cli(node, "stats", "--kind", "ipv4")
    assert "[B" in table
    assert "KE" in table
    assert "non-country" in table


def test_cli_refuses_bad_input(node: Node) -> None:
    assert "YYYY-MM-DD" in run_cli(node, "stats", "--as-of", "last year", code=2)
    run_cli(node, "stats", "--json", "--format", "csv", code=2)
    run_cli(node, "stats", "--kind", "ipv5", code=2)
