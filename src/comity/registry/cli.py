"""``comity registry``: pools, delegations, importing statistics files, distribution figures."""

from __future__ import annotations

import datetime as dt
import enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from comity.clikit import DataDir, JsonOut, console, err, fail, open_node, print_json
from comity.db import read_scope, session_scope
from comity.problems import Problem
from comity.registry.charts import render_all
from comity.registry.importer import ImportSummary, import_delegated
from comity.registry.regions import default_populations
from comity.registry.resources import Kind, parse_block
from comity.registry.services import LOCAL, delegation_dict, pool_dict
from comity.registry.stats import Distribution, distribution

__all__ = ["app"]

app = typer.Typer(help="The number registry: pools, delegations, import, statistics.",
                  no_args_is_help=True)


@app.command("pools")
def pools(data_dir: DataDir,
          authority: Annotated[str | None, typer.Option(
              help="Only this registry's pools ('local' or a council's name).")] = None,
          as_json: JsonOut = False) -> None:
    """The pools this node holds, local and of its councils."""
    node = open_node(data_dir)
    with read_scope(node.sessions) as session:
        items = [pool_dict(p) for p in node.registry.pools(session, authority)]
    if as_json:
        print_json(items)
        return
    table = Table("block", "authority", "name", "size")
    for p in items:
        table.add_row(p["block"], p["authority"], p["name"], str(p["size"]))
    console.print(table)


@app.command("add-pool")
def add_pool(data_dir: DataDir,
             block: Annotated[str, typer.Argument(
                 help="A prefix (45.64.0.0/16, 2a0f:1000::/32), range, or AS range.")],
             name: Annotated[str, typer.Option(help="What the pool is for.")],
             as_json: JsonOut = False) -> None:
    """Add a local pool: space this node's own registry manages (councils' pools come from
    their agreements)."""
    node = open_node(data_dir)
    try:
        b = parse_block(block)
        with session_scope(node.sessions) as session:
            p = pool_dict(node.registry.add_pool(session, registry=LOCAL, block=b, name=name,
                                                 now=node.clock.now()))
    except Problem as e:
        raise fail(e) from e
    if as_json:
        print_json(p)
    else:
        unit = "AS numbers" if b.kind is Kind.ASN else "addresses"
        console.print(f"pool {p['block']} added ({p['size']} {unit})")


@app.command("delegations")
def delegations(data_dir: DataDir,
                authority: Annotated[str | None, typer.Option(
                    help="Only this registry's ('local' or a council's name).")] = None,
                holder: Annotated[str | None, typer.Option(help="Only this holder's.")] = None,
                kind: Annotated[Kind | None, typer.Option(help="Only this kind.")] = None,
                limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
                as_json: JsonOut = False) -> None:
    """Delegations in address order."""
    node = open_node(data_dir)
    with read_scope(node.sessions) as session:
        items = [delegation_dict(d) for d in node.registry.delegations(
            session, registry=authority, holder=holder, kind=kind, limit=limit)]
    if as_json:
        print_json(items)
        return
    table = Table("block", "holder", "country", "status", "authority", "registered")
    for d in items:
        table.add_row(d["block"], d["holder"] or "", d["country"] or "", d["status"],
                      d["authority"], (d["registered_at"] or "")[:10])
    console.print(table)


@app.command("import")
def import_(
    data_dir: DataDir,
    file: Annotated[Path, typer.Argument(help="A delegated-extended statistics file.")],
    authority: Annotated[str, typer.Option(
        help="Whose pools and delegations they become: 'local', or another name that is "
             "not a council's (a council's registry changes only by its decisions).")
    ] = LOCAL,
    as_json: JsonOut = False,
) -> None:
    """Import a registry's delegated-extended statistics file, streamed, with progress.

    Every record's space becomes a pool of the authority; allocated, assigned
    and reserved records become delegations, their holders entities. Bad lines
    and records that overlap (each other, stored delegations, or another
    authority's pool) are listed and left out; the rest is stored in one
    transaction. Fails only if the file cannot be read (or the database fails,
    in which case nothing is stored).
    """
    node = open_node(data_dir)
    with read_scope(node.sessions) as session:
        councils = {c.name for c in node.governance.councils(session)}
    if authority in councils:
        raise fail(ValueError(f"{authority!r} is a council's registry: it changes only by the "
                              "council's decisions, identically on every member"))
    try:
        with open(file, "rb") as fp, Progress(
                "[progress.description]{task.description}", BarColumn(), TaskProgressColumn(),
                console=console, transient=True, disable=as_json) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(phase: str, done: int, total: int | None) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=total)
                bar.update(tasks[phase], completed=done, total=total)

            summary = import_delegated(node.sessions, fp, now=node.clock.now(),
                                       authority=authority, total_bytes=file.stat().st_size,
                                       on_progress=progress)
    except (OSError, ValueError, SQLAlchemyError) as e:
        raise fail(e) from e
    if as_json:
        print_json(summary.to_dict())
        return
    _print_summary(summary)


def _print_summary(s: ImportSummary, shown: int = 20) -> None:
    source = " ".join(x for x in (s.registry, s.serial) if x) or "file"
    console.print(f"{source}: {s.lines} lines, {s.records} records "
                  f"({s.available} available), {s.seconds:.1f} s", markup=False)
    console.print("delegations added: " + ", ".join(
        f"{kind} {n}" for kind, n in s.delegations.items()))
    console.print(f"pools added {s.pools_added}, extended {s.pools_extended}; "
                  f"entities added {s.entities_added} (authority {s.authority})")
    console.print(f"left out: {s.malformed_total} malformed lines, {s.overlaps_in_file} "
                  f"records overlapping others in the file, {s.overlaps_in_database} "
                  f"overlapping stored delegations, {s.in_other_pools} in another "
                  "authority's pool")
    for w in s.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    for title, items, total in (("malformed", s.malformed, s.malformed_total),
                                ("conflicts", s.conflicts, s.overlaps + s.in_other_pools)):
        if items:
            console.print(f"{title}:")
        for line, reason in items[:shown]:
            console.print(f"  line {line}: {reason}", markup=False, highlight=False)
        if total > shown:
            console.print(f"  … and {total - shown} more (see --json)")


# -- stats ---------------------------------------------------------------------------------

class StatsFormat(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


@app.command("stats")
def stats(
    data_dir: DataDir,
    authority: Annotated[str | None, typer.Option(
        help="Only this registry's delegations ('local' or a council's name).")] = None,
    kind: Annotated[Kind | None, typer.Option(help="Only this kind.")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Only delegations registered on or before this day (YYYY-MM-DD, "
                        "UTC); undated delegations are then left out.")] = None,
    charts: Annotated[Path | None, typer.Option(
        "--charts", help="Also write SVG charts into this directory (created if missing).")]
    = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print JSON (the same as --format json).")] = False,
    fmt: Annotated[StatsFormat, typer.Option("--format", help="Output format.")]
    = StatsFormat.TABLE,
) -> None:
    """How held resources (allocated and assigned) are spread across countries and UN M49
    regions: units, shares, units per 1,000 people, Gini, HHI, top-5 shares, Gini by year.

    Units are IPv4 addresses, IPv6 /48 equivalents and AS numbers. EU, AP, ZZ and empty
    country codes are reported apart and left out of shares and concentration figures.
    The Gini is over the countries holding at least one resource of the kind. CSV has
    one line per country, region and non-country code; the summary figures are in the
    table and JSON.
    """
    if as_json and fmt is StatsFormat.CSV:
        raise typer.BadParameter("--json and --format csv contradict each other",
                                 param_hint="--format")
    day = _stats_day(as_of)
    populations = default_populations()
    node = open_node(data_dir)
    try:
        with read_scope(node.sessions) as session:
            report = distribution(session, authority=authority,
                                  kinds=tuple(Kind) if kind is None else (kind,),
                                  as_of=day, populations=populations)
    finally:
        node.close()
    if as_json or fmt is StatsFormat.JSON:
        print_json(report.to_json())
    elif fmt is StatsFormat.CSV:
        typer.echo(report.to_csv(), nl=False)
    else:
        _stats_tables(report)
    if charts is not None:
        _stats_charts(report, charts)


def _stats_day(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as e:
        raise typer.BadParameter(f"not a date (YYYY-MM-DD): {value!r}",
                                 param_hint="--as-of") from e


def _stats_charts(report: Distribution, directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, svg in render_all(report).items():
            path = directory / f"{name}.svg"
            path.write_text(svg, encoding="utf-8")
            err.print(f"chart written to {escape(str(path))}")
    except OSError as e:
        raise fail(e) from e


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _amount(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def _stats_tables(report: Distribution) -> None:
    doc = report.to_json()
    scope = f"authority {report.authority}" if report.authority else "all authorities"
    if report.as_of is not None:
        scope += f", as of {report.as_of.isoformat()}"
    console.print(f"Held resources (allocated, assigned), {escape(scope)}; population: "
                  f"{escape(report.population_source or 'unknown')}")
    for k in report.kinds:
        _stats_kind(doc["kinds"][k.kind.value])
    years = _stats_table("Gini at the end of each year (countries' cumulative holdings)",
                         "year", *[f"Gini {k.kind.value}" for k in report.kinds], text=1)
    by_year = {k.kind.value: {p.year: p.gini for p in k.by_year} for k in report.kinds}
    for year in sorted({y for g in by_year.values() for y in g}):
        years.add_row(str(year), *[_num(by_year[k.kind.value].get(year))
                                   for k in report.kinds])
    console.print(years)


def _stats_kind(k: dict[str, Any]) -> None:
    top = ", ".join(f"{t['country']} {100 * t['share']:.1f}%" for t in k["top"])
    console.print(
        f"\n[bold]{k['kind']}[/bold] ({escape(k['unit'])}): {_amount(k['units'])} in "
        f"{k['delegations']:,} delegations; countries {_amount(k['country_units'])}, "
        f"non-country {_amount(k['non_country_units'])}; undated "
        f"{k['undated']['delegations']:,}\n"
        f"Gini {_num(k['gini'])} over {escape(k['gini_population'])}\n"
        f"HHI {_num(k['hhi'])}; top 5: {escape(top) or '—'}")
    per = "per 1,000\npeople"
    countries = _stats_table(f"{k['kind']} by country", "country", "region", "units",
                             "share", "delegations", "population", per, text=2)
    for c in k["by_country"]:
        countries.add_row(c["country"], c["region"] or "—", _amount(c["units"]),
                          _percent(c["share"]), f"{c['delegations']:,}",
                          _population(c["population"]), _num(c["per_1000_people"], 4))
    console.print(countries)
    regions = _stats_table(f"{k['kind']} by region", "region", "countries", "units",
                           "share", "delegations", "population", per, text=1)
    for r in k["by_region"]:
        regions.add_row(r["region"], str(r["countries"]), _amount(r["units"]),
                        _percent(r["share"]), f"{r['delegations']:,}",
                        _population(r["population"]), _num(r["per_1000_people"], 4))
    console.print(regions)
    if k["non_country"]:
        others = _stats_table(f"{k['kind']}: not countries", "code", "meaning", "units",
                              "share of all", "delegations", text=2)
        for x in k["non_country"]:
            # Codes come from imported data: printed as text, never as markup.
            others.add_row(escape(x["code"] or "—"), escape(x["meaning"]),
                           _amount(x["units"]), _percent(x["share_of_all"]),
                           f"{x['delegations']:,}")
        console.print(others)


def _stats_table(title: str, *headers: str, text: int) -> Table:
    """A table whose first ``text`` columns are text and the rest numbers (right-aligned)."""
    table = Table(title=title, box=box.SIMPLE_HEAD)
    for i, header in enumerate(headers):
        # Numbers and codes never fold; only descriptive text may.
        table.add_column(header, justify="left" if i < text else "right",
                         no_wrap=i == 0 or i >= text)
    return table


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{100 * share:.2f}%"


def _population(value: int | None) -> str:
    return "population unknown" if value is None else f"{value:,}"
