"""``tablium-tourney simulate``: the JSON object the issue specifies, key for key."""

from __future__ import annotations

import json

from click.testing import CliRunner
from tablium_event.tourney_cli import main

KEYS = [
    "entrants",
    "tables_at_start",
    "eliminations",
    "moves",
    "max_spread_after_balance",
    "moves_mid_hand",
    "places",
    "prize_pool",
    "prizes_paid",
    "wall_s",
]


def test_simulate_prints_one_json_object_with_exactly_the_specified_keys() -> None:
    result = CliRunner().invoke(main, ["simulate", "--entrants", "200", "--seats", "9", "--seed", "4", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert list(report) == KEYS
    assert (report["entrants"], report["tables_at_start"], report["eliminations"]) == (200, 23, 199)
    assert report["moves_mid_hand"] == 0
    assert report["max_spread_after_balance"] <= 1
    assert report["prizes_paid"] == report["prize_pool"] == 200 * 1_000
    assert sorted(place for _, place in report["places"])[0] == 1
    assert len({player for player, _ in report["places"]}) == 200


def test_bad_arguments_are_usage_errors_not_tracebacks() -> None:
    for args in (["--entrants", "1"], ["--entrants", "20", "--seats", "1"], ["--entrants", "20", "--seats", "11"]):
        result = CliRunner().invoke(main, ["simulate", *args, "--json"])
        assert result.exit_code == 2, (args, result.output)
        assert "Invalid value" in result.output
