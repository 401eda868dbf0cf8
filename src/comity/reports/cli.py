"""``comity report``: statistics on this node's requests, as a table, JSON or CSV.

Reads the node's own database directly (the server need not run) in a
read-only transaction; writes only the ``--output`` file, if asked.

Example::

    comity report requests --data-dir ./fr --group-by country --group-by year \\
        --since 2025-01-01 --until 2026-01-01 --format csv --output 2025.csv
"""

from __future__ import annotations

import datetime as dt
import enum
from pathlib import Path
from typing import Annotated, Any, TextIO

import orjson
import typer
from rich import box
from rich.console import Console
from rich.table import Table

from comity.clikit import DataDir, console, err, fail, open_node, print_json
from comity.db import read_scope
from comity.problems import Problem
from comity.reports.requests import COLUMNS, GROUP_KEYS, RequestReport, request_report

__all__ = ["app"]

app = typer.Typer(help="Reports on this node's records (requests sent and received).",
                  no_args_is_help=True)


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def _instant(value: str | None, option: str) -> dt.datetime | None:
    """An ISO 8601 date or date-time; without a zone it is UTC."""
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError as e:
        raise typer.BadParameter(f"not an ISO 8601 date or date-time: {value!r}",
                                 param_hint=option) from e
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


# Short headers and no vertical rules keep the table narrow; it is printed at
# its natural width all the same, since folding keys or numbers would garble them.
_HEADERS = ("count", "acked", "executed", "refused", "open", "overdue",
            "ack h\nmedian", "ack h\np90", "exec h\nmedian", "exec h\np90")


def _table(report: RequestReport) -> Table:
    table = Table(title=f"Requests sent, as of {report.as_of:%Y-%m-%d %H:%M} UTC",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for key in report.group_by:
        table.add_column(key, no_wrap=True)
    for header in _HEADERS:
        table.add_column(header, justify="right", no_wrap=True)

    def add(cells: list[str], values: dict[str, Any]) -> None:
        table.add_row(*cells, *[str(values[k]) for k in COLUMNS[:6]],
                      *[_hours(values[k]) for k in COLUMNS[6:]])

    for row in report.rows:
        values = row.to_dict()
        add([str(values[k]) for k in report.group_by], values)
    if report.rows:
        table.add_section()
    totals = ["total", *[""] * (len(report.group_by) - 1)] if report.group_by else []
    add(totals, report.totals.to_dict())
    return table


def _print_table(table: Table, file: TextIO | None) -> None:
    """Print at the table's natural width (like psql), wider than the terminal if need be."""
    need = Console(width=10_000).measure(table).maximum
    if file is None:
        Console(width=max(console.width, need)).print(table)
    else:
        Console(file=file, width=need, no_color=True).print(table)


def _write(report: RequestReport, fmt: Format, output: Path | None) -> None:
    if fmt is Format.TABLE:
        if output is None:
            _print_table(_table(report), None)
            return
        with output.open("w", encoding="utf-8") as fh:
            _print_table(_table(report), fh)
    elif fmt is Format.JSON:
        if output is None:
            print_json(report.to_json())
            return
        output.write_bytes(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
    elif output is None:
        typer.echo(report.to_csv(), nl=False)
        return
    else:
        output.write_text(report.to_csv(), encoding="utf-8", newline="")
    err.print(f"Report written to {output}")


@app.command("requests")
def requests(
    data_dir: DataDir,
    group_by: Annotated[list[str] | None, typer.Option(
        "--group-by", help=f"Group by one of {', '.join(GROUP_KEYS)} (repeatable, in "
                           "column order; default: all).")] = None,
    since: Annotated[str | None, typer.Option(
        help="Only requests sent at or after this ISO date/date-time (UTC if no zone).")]
    = None,
    until: Annotated[str | None, typer.Option(
        help="Only requests sent before this ISO date/date-time (exclusive).")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
    output: Annotated[Path | None, typer.Option(
        "--output", help="Write the report to this file instead of standard output.")]
    = None,
) -> None:
    """Counts, outcomes and acknowledge/execute times (median, p90) of sent requests."""
    start, end = _instant(since, "--since"), _instant(until, "--until")
    node = open_node(data_dir)
    try:
        with read_scope(node.sessions) as session:
            report = request_report(session, now=node.clock.now(),
                                    group_by=GROUP_KEYS if group_by is None else group_by,
                                    since=start, until=end)
    except Problem as e:
        raise fail(e) from e
    finally:
        node.close()
    _write(report, fmt, output)
