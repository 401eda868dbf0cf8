"""``comity registry``: pools, delegations, importing statistics files, distribution figures."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from comity.clikit import DataDir, JsonOut, console, fail, open_node, print_json
from comity.db import read_scope, session_scope
from comity.problems import Problem
from comity.registry.resources import Kind, parse_block
from comity.registry.services import LOCAL, delegation_dict, pool_dict

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
