"""``comity requests``: the catalog, drafting (from a JSON or YAML file, or interactively),
approval, sending, every act, listing with filters, a request's timeline, deadlines due."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
import yaml
from rich.table import Table

from comity.clikit import DataDir, JsonOut, console, err, fail, open_node, print_json
from comity.db import read_scope, session_scope
from comity.node import Node
from comity.problems import Problem
from comity.requests.deadlines import Period
from comity.requests.errors import RequestValidationError
from comity.requests.services import EventInput, RequestFilter

__all__ = ["app"]

app = typer.Typer(help="Cross-border cybercrime requests: draft, approve, send, act, follow.",
                  no_args_is_help=True)

By = Annotated[str | None, typer.Option("--by", help="Who acts (recorded in the timeline).")]


def _show_errors(e: Problem) -> typer.Exit:
    if isinstance(e, RequestValidationError):
        err.print(f"[red]error ({e.slug}):[/red] the request has {len(e.problems)} problem(s):")
        for p in e.problems:
            err.print(f"  • [bold]{p['field']}[/bold]: {p['message']}")
        return typer.Exit(1)
    return fail(e)


def _do(node: Node, action: Callable[[Any], Any], request_id: str | None = None
        ) -> dict[str, Any]:
    try:
        with session_scope(node.sessions) as session:
            row = action(session)
            rid = request_id or row.request_id
        with read_scope(node.sessions) as session:
            shown: dict[str, Any] = node.requests.show(session, rid)
            return shown
    except Problem as e:
        raise _show_errors(e) from e


def _load_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise fail(e) from e
    try:
        data = (yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml")
                else orjson.loads(text))
    except (yaml.YAMLError, orjson.JSONDecodeError) as e:
        raise fail(ValueError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {e}")
                   ) from e
    if not isinstance(data, dict):
        raise fail(ValueError(f"{path}: the request must be an object"))
    return data


def _print_request(shown: dict[str, Any]) -> None:
    console.print(f"[bold]{shown['type_title']}[/bold] {shown['id']} ({shown['direction']}, "
                  f"{shown['legal_basis']}): [bold]{shown['state']}[/bold]")
    console.print(f"  reference {shown['reference']}"
                  + (f", theirs {shown['recipient_reference']}"
                     if shown["recipient_reference"] else ""))
    for d in shown["deadlines"]:
        console.print(f"  due {d['due']} ({d['kind']}, {d['status']}): {d['basis']}")
    table = Table("at", "event", "side", "applied", "transport", "details")
    for e in shown["timeline"]:
        detail = ", ".join(f"{k}={v}" for k, v in e["data"].items() if k != "evidence")
        if e["data"].get("evidence"):
            detail += f" [{len(e['data']['evidence'])} evidence package(s)]"
        table.add_row(e["at"], e["event"], e["side"],
                      "yes" if e["applied"] else f"no: {e['note']}", e["transport"] or "",
                      detail)
    console.print(table)
    if shown["allowed_events"]:
        console.print("  next: " + ", ".join(shown["allowed_events"]))


def _interactive(node: Node) -> dict[str, Any]:
    cat = node.requests.catalog
    console.print("Request types: " + ", ".join(sorted(cat.types)))
    rtype = typer.prompt("Type")
    spec = cat.type(rtype) if rtype in cat.types else None
    if spec is None:
        raise fail(ValueError(f"unknown request type {rtype!r}"))
    instrument = typer.prompt(f"Instrument ({', '.join(spec.legal_basis)})",
                              default=next(iter(spec.legal_basis)))
    doc: dict[str, Any] = {
        "type": rtype, "instrument": instrument,
        "reference": typer.prompt("Your reference"),
        "language": typer.prompt("Language", default="en"),
        "offence": typer.prompt(f"Offence ({', '.join(cat.offences)})"),
        "data_categories": [c.strip() for c in typer.prompt(
            "Data categories (comma-separated, or -)", default="-").split(",")
            if c.strip() not in ("", "-")],
        "flags": {"urgent": typer.confirm("Urgent?", default=False),
                  "emergency": spec.emergency or typer.confirm("Emergency?", default=False)},
        "fields": {},
    }
    for name, article in spec.required_for(instrument).items():
        doc["fields"][name] = typer.prompt(
            f"{cat.fields[name].title} [{cat.cite(instrument, article)}]")
    if doc["flags"]["emergency"] and "emergency_facts" not in doc["fields"]:
        doc["fields"]["emergency_facts"] = typer.prompt(cat.fields["emergency_facts"].title)
    return doc


@app.command("catalog")
def catalog(data_dir: DataDir, as_json: JsonOut = False) -> None:
    """The request types this node knows, their legal bases and mandatory elements."""
    node = open_node(data_dir)
    cat = node.requests.catalog
    if as_json:
        print_json(cat.to_dict())
        return
    table = Table("type", "legal basis", "mandatory elements", "from → to", "answer within")
    for t in cat.types.values():
        basis = "; ".join(cat.cite(i, a) for i, a in t.legal_basis.items())
        table.add_row(f"{t.slug}\n{t.title}", basis, ", ".join(t.required),
                      f"{', '.join(t.sender_kinds)} → {', '.join(t.recipient_kinds)}",
                      str(t.response_period))
    console.print(table)


@app.command("create")
def create(
    data_dir: DataDir,
    to: Annotated[str, typer.Option(help="Node id of the requested party.")],
    agreement: Annotated[str, typer.Option(help="Agreement the request is made under.")],
    file: Annotated[Path | None, typer.Option(
        "--file", help="The request as a JSON or YAML file (omit to be asked).")] = None,
    by: By = None,
    as_json: JsonOut = False,
) -> None:
    """Draft a request; every missing or malformed element is listed with its article."""
    node = open_node(data_dir)
    doc = _load_file(file) if file else _interactive(node)
    shown = _do(node, lambda s: node.requests.create(s, doc, to=to, agreement_id=agreement,
                                                     by=by))
    if as_json:
        print_json(shown)
    else:
        console.print(f"Drafted request {shown['id']} ({shown['type']}); submit it for "
                      f"approval with `comity requests submit {shown['id']}`")


def _step(name: str, doc: str) -> None:
    def command(data_dir: DataDir, request_id: str, by: By = None,
                as_json: JsonOut = False) -> None:
        node = open_node(data_dir)
        shown = _do(node, lambda s: node.requests.local_step(s, request_id, name, by=by),
                    request_id)
        if as_json:
            print_json(shown)
        else:
            console.print(f"Request {request_id}: {shown['state']}")

    command.__doc__ = doc
    app.command(name)(command)


_step("submit", "Submit a draft for approval.")
_step("approve", "Approve a request (someone other than its author).")
_step("return", "Send a request awaiting approval back to draft.")
_step("send", "Send an approved request to the requested party (signed, logged, queued).")


@app.command("act")
def act(
    data_dir: DataDir,
    request_id: str,
    event: Annotated[str, typer.Argument(help="acknowledge, preserve, refuse, execute, ...")],
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="An element as name=value (repeatable); grounds take a comma list.")]
    = None,
    data_file: Annotated[Path | None, typer.Option(
        "--data", help="The event's elements as a JSON or YAML file.")] = None,
    evidence: Annotated[list[Path] | None, typer.Option(
        "--evidence", help="A file to return as evidence (repeatable; one package).")] = None,
    by: By = None,
    as_json: JsonOut = False,
) -> None:
    """Act on a sent request: every act is a signed message to the other party."""
    from comity.evidence.cli import prepare_with_progress

    node = open_node(data_dir)
    data: dict[str, Any] = _load_file(data_file) if data_file else {}
    if evidence:
        try:
            data["evidence"] = [prepare_with_progress(node, request_id, evidence)]
        except (Problem, OSError) as e:
            raise fail(e) from e
    for item in set_ or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise fail(ValueError(f"--set {item!r}: expected name=value"))
        data[name] = [g.strip() for g in value.split(",")] if name == "grounds" else value
    try:
        shown = _do(node, lambda s: node.requests.act(s, request_id, EventInput(event, data),
                                                      by=by), request_id)
    except typer.Exit:
        for signed in data.get("evidence", []) if evidence else []:
            node.evidence.discard_unattached(signed["manifest"]["package_id"])
        raise
    if as_json:
        print_json(shown)
    else:
        _print_request(shown)


@app.command("show")
def show(data_dir: DataDir, request_id: str, as_json: JsonOut = False) -> None:
    """A request with its timeline, deadlines and the acts allowed now."""
    node = open_node(data_dir)
    try:
        with read_scope(node.sessions) as session:
            shown = node.requests.show(session, request_id)
    except Problem as e:
        raise fail(e) from e
    if as_json:
        print_json(shown)
    else:
        _print_request(shown)


def _table(items: list[dict[str, Any]]) -> Table:
    table = Table("id", "dir", "country", "type", "offence", "reference", "state", "due")
    for r in items:
        due = r["due"]
        table.add_row(r["id"], r["direction"], r["country"], r["type"], r["offence"],
                      r["reference"], r["state"],
                      f"{due['at']} ({due['status']})" if due else "")
    return table


@app.command("list")
def list_requests(
    data_dir: DataDir,
    direction: Annotated[str | None, typer.Option(help="in or out.")] = None,
    state: Annotated[list[str] | None, typer.Option("--state", help="Repeatable.")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Request type.")] = None,
    peer: Annotated[str | None, typer.Option(help="Peer node id.")] = None,
    offence: Annotated[str | None, typer.Option(help="Offence category.")] = None,
    country: Annotated[str | None, typer.Option(help="Partner country (ISO alpha-2).")] = None,
    overdue: Annotated[bool, typer.Option(help="Only overdue requests.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    cursor: Annotated[str | None, typer.Option(help="Next page, as printed.")] = None,
    as_json: JsonOut = False,
) -> None:
    """Requests, newest first, filtered."""
    node = open_node(data_dir)
    f = RequestFilter(direction=direction, states=tuple(state or ()), type=type_, peer=peer,
                      offence=offence, country=country, overdue=overdue)
    try:
        with read_scope(node.sessions) as session:
            page = node.requests.listing(session, f, cursor=cursor, limit=limit)
    except Problem as e:
        raise fail(e) from e
    if as_json:
        print_json({"items": page.items, "next": page.next})
        return
    console.print(_table(page.items))
    if page.next:
        console.print(f"more: --cursor {page.next}")


@app.command("due")
def due(
    data_dir: DataDir,
    within: Annotated[str, typer.Option(help="Horizon, e.g. 48h, 7d, 1m.")] = "7d",
    as_json: JsonOut = False,
) -> None:
    """Requests with a deadline within the horizon, overdue ones first."""
    node = open_node(data_dir)
    try:
        period = Period.parse(within)
    except ValueError as e:
        raise fail(e) from e
    with read_scope(node.sessions) as session:
        items = node.requests.due(session, within=period)
    if as_json:
        print_json(items)
    else:
        console.print(_table(items))
