"""``tablium-tourney``: the tournament engine from the command line (no service, no database)."""

from __future__ import annotations

import json

import click

from tablium_event.domain.simulator import simulate


@click.group(help="Tablium tournament engine tools.")
def main() -> None:
    pass


@main.command("simulate", help="Run the engine alone with random bust-outs to a winner.")
# The engine's own limits, checked here so that bad input is a usage error, not a traceback.
@click.option("--entrants", type=click.IntRange(min=2), required=True)
@click.option("--seats", type=click.IntRange(2, 10), default=9, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--no-places", is_flag=True, help="Leave the (long) list of places out.")
def simulate_command(entrants: int, seats: int, seed: int, as_json: bool, no_places: bool) -> None:
    report = simulate(entrants, seats=seats, seed=seed)
    result = report.to_dict(with_places=not no_places)
    if as_json:
        click.echo(json.dumps(result))
        return
    for name, value in result.items():
        if name != "places":
            click.echo(f"{name:>26}: {value}")
