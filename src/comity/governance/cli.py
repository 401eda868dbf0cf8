"""``comity council``: councils, proposals, ballots and decisions from the command line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table
from sqlalchemy.orm import Session

from comity.agreements.schemas import ProposalKind
from comity.clikit import DataDir, JsonOut, console, fail, open_node, print_json
from comity.db import read_scope, session_scope
from comity.governance.documents import Choice
from comity.node import Node
from comity.problems import Problem

__all__ = ["app"]

app = typer.Typer(help="Councils that govern the number registry by vote.",
                  no_args_is_help=True)

Proposal = Annotated[str, typer.Argument(help="The proposal's id.")]


def _show(item: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(item)
        return
    console.print(f"[bold]{item['title']}[/bold] ({item['kind']}) — {item['stage']}"
                  + (f", round {item['round']}" if item.get("round") else ""))
    console.print(f"id {item['id']}, proposed by {item['proposer']}")
    if item.get("window_until"):
        console.print(f"window open until {item['window_until']}")
    for s in item.get("stages", []):
        console.print(f"  n={s['n']:<4} {s['stage']:<11} log entry {s['log_index']}")
    if item.get("outcome"):
        o = item["outcome"]
        console.print(f"tally: {o['yes']} yes, {o['no']} no, {o['abstain']} abstain of "
                      f"{o['members']} members (quorum {o['quorum']}, {o['majority']} "
                      f"majority): {'passed' if o['passed'] else 'not passed'}")


def _act(data_dir: Path, as_json: bool,
         work: Callable[[Node, Session], dict[str, Any]]) -> None:
    node = open_node(data_dir)
    try:
        with session_scope(node.sessions) as session:
            item = work(node, session)
    except Problem as e:
        raise fail(e) from e
    _show(item, as_json)


@app.command("list")
def councils(data_dir: DataDir, as_json: JsonOut = False) -> None:
    """The councils this node is a member of: rules in force, members, registry digest."""
    node = open_node(data_dir)
    with read_scope(node.sessions) as session:
        items = [node.governance.status(session, c.council_id)
                 for c in node.governance.councils(session)]
    if as_json:
        print_json(items)
        return
    table = Table("council", "name", "chair", "members", "decisions", "digest")
    for c in items:
        table.add_row(c["council"], c["name"], c["chair"][:8], str(len(c["members"])),
                      str(c["decisions"]), c["digest"][:16])
    console.print(table)


@app.command("proposals")
def proposals(data_dir: DataDir,
              council: Annotated[str | None, typer.Option(help="Only this council's.")] = None,
              stage: Annotated[str | None, typer.Option(help="Only at this stage.")] = None,
              as_json: JsonOut = False) -> None:
    """Proposals, newest first."""
    node = open_node(data_dir)
    with read_scope(node.sessions) as session:
        items = node.governance.proposals(session, council, stage)
    if as_json:
        print_json(items)
        return
    table = Table("id", "kind", "title", "stage", "until")
    for p in items:
        table.add_row(p["id"], p["kind"], p["title"], p["stage"], p["window_until"] or "")
    console.print(table)


@app.command("show")
def show(data_dir: DataDir, proposal: Proposal, as_json: JsonOut = False) -> None:
    """A proposal with its stages (each a log entry), tally and ballots."""
    _act(data_dir, as_json, lambda node, s: node.governance.show(s, proposal))


@app.command("propose")
def propose(
    data_dir: DataDir,
    council: Annotated[str, typer.Argument(help="The council's agreement id.")],
    kind: Annotated[ProposalKind, typer.Option(help="What the proposal is.")],
    title: Annotated[str, typer.Option(help="A short title.")],
    text: Annotated[str, typer.Option(help="The proposal's text.")] = "",
    effect_file: Annotated[Path | None, typer.Option(
        "--effect", help="JSON or YAML file with the effect: for an allocation {block, "
        "holder: {handle, name, country}, status, name}; for rules, what they change.",
        exists=True, dir_okay=False)] = None,
    draft: Annotated[bool, typer.Option(help="Keep it here, unseen, until `submit`.")] = False,
    as_json: JsonOut = False,
) -> None:
    """Make a proposal; the chair opens it for discussion (a draft waits for `submit`)."""
    effect: dict[str, Any] = {}
    if effect_file is not None:
        loaded = yaml.safe_load(effect_file.read_text(encoding="utf-8"))
        if not isinstance(loaded, dict):
            raise fail(ValueError(f"{effect_file} must hold a mapping"))
        effect = loaded
    _act(data_dir, as_json, lambda node, s: node.governance.propose(
        s, council, kind=kind, title=title, text=text, effect=effect, draft=draft))


@app.command("vote")
def vote(data_dir: DataDir, proposal: Proposal,
         choice: Annotated[Choice, typer.Argument(help="yes, no or abstain.")],
         as_json: JsonOut = False) -> None:
    """Cast this node's signed ballot (sent to the chair)."""
    node = open_node(data_dir)
    try:
        with session_scope(node.sessions) as session:
            signed = node.governance.cast(session, proposal, choice)
    except Problem as e:
        raise fail(e) from e
    if as_json:
        print_json(signed)
    else:
        console.print(f"ballot cast: {choice.value} on {proposal}")


@app.command("appeal")
def appeal(data_dir: DataDir, proposal: Proposal,
           grounds: Annotated[str, typer.Option(help="Why the decision should be revisited.")],
           as_json: JsonOut = False) -> None:
    """Appeal a decision during its last call: the council votes again, finally."""
    _act(data_dir, as_json, lambda node, s: node.governance.appeal(s, proposal, grounds))


@app.command("open-vote")
def open_vote(data_dir: DataDir, proposal: Proposal, as_json: JsonOut = False) -> None:
    """Chair: open the vote once the discussion window has passed."""
    _act(data_dir, as_json, lambda node, s: node.governance.open_vote(s, proposal))


@app.command("close-vote")
def close_vote(data_dir: DataDir, proposal: Proposal, as_json: JsonOut = False) -> None:
    """Chair: count the signed ballots and decide (needs the quorum)."""
    _act(data_dir, as_json, lambda node, s: node.governance.close_vote(s, proposal))


@app.command("adopt")
def adopt(data_dir: DataDir, proposal: Proposal, as_json: JsonOut = False) -> None:
    """Chair: adopt after a last call without appeal (an allocation is then delegated)."""
    _act(data_dir, as_json, lambda node, s: node.governance.adopt(s, proposal))


@app.command("submit")
def submit(data_dir: DataDir, proposal: Proposal, as_json: JsonOut = False) -> None:
    """Proposer: send a draft to the chair, who opens it for discussion."""
    _act(data_dir, as_json, lambda node, s: node.governance.submit(s, proposal))


@app.command("withdraw")
def withdraw(data_dir: DataDir, proposal: Proposal, as_json: JsonOut = False) -> None:
    """Proposer: withdraw a proposal before it is decided."""
    _act(data_dir, as_json, lambda node, s: node.governance.withdraw(s, proposal))


@app.command("recount")
def recount(data_dir: DataDir,
            record: Annotated[str, typer.Argument(
                help="A settled proposal's public record: a URL "
                     "(https://node/governance/proposals/ID) or a JSON file.")],
            as_json: JsonOut = False) -> None:
    """Recount a decision from its signed ballots, trusting only the signatures.

    Checks the proposal's signature, every ballot's (against the members' cards this node
    holds), that every voter is a member who voted once, and recomputes each tally.
    Exits 1 if anything does not add up.
    """
    import json

    import httpx

    node = open_node(data_dir)
    try:
        if record.startswith(("http://", "https://")):
            with httpx.Client(timeout=node.settings.delivery_timeout_seconds,
                              trust_env=False) as client:
                resp = client.get(record)
                resp.raise_for_status()
                doc = resp.json()
        else:
            doc = json.loads(Path(record).read_text(encoding="utf-8"))
        with read_scope(node.sessions) as session:
            result = node.governance.recount(session, doc)
    except (Problem, OSError, ValueError, httpx.HTTPError) as e:
        raise fail(e) from e
    if as_json:
        print_json(result)
    else:
        for d in result["decisions"]:
            t = d["recounted"] or {}
            verdict = "[green]adds up[/green]" if d["ok"] else "[red]does not add up[/red]"
            console.print(f"n={d['n']} {d['stage']}: {d['ballots_verified']} signed ballots, "
                          f"{t.get('yes')} yes, {t.get('no')} no, {t.get('abstain')} abstain — "
                          f"{verdict}")
            for problem in d["problems"]:
                console.print(f"  - {problem}")
        if not result["decisions"]:
            console.print("[red]no vote in this record to recount[/red]")
    if not result["ok"]:
        raise typer.Exit(1)
