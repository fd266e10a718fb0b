"""The 300 real hands of the shared PHH dev set replay to their recorded finishing stacks."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tablium_poker.cli import main
from tablium_poker.phh import dump_phh, history_from_hand, load_phh, replay

REPO_ROOT = Path(__file__).resolve().parents[3]
DEV = REPO_ROOT.parent / "shared" / "data" / "phh" / "dev"
FILES = sorted(DEV.glob("*.phh"))

pytestmark = pytest.mark.skipif(not FILES, reason="shared PHH dev set not present")


def test_dev_set_has_300_hands() -> None:
    assert len(FILES) == 300


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_replays_to_recorded_finishing_stacks(path: Path) -> None:
    history = load_phh(path.read_text())
    hand = replay(history)
    assert history.finishing_stacks is not None
    assert tuple(hand.stack) == history.finishing_stacks
    assert sum(hand.stack) == sum(history.starting_stacks)


def test_manifest_agrees_with_files() -> None:
    with (DEV / "manifest.csv").open() as f:
        rows = {row["file"]: [int(x) for x in row["finishing_stacks"].split()] for row in csv.DictReader(f)}
    for path in FILES:
        assert list(load_phh(path.read_text()).finishing_stacks or ()) == rows[path.name]


@pytest.mark.parametrize("path", FILES[::25], ids=lambda p: p.name)
def test_export_round_trips(path: Path) -> None:
    hand = replay(load_phh(path.read_text()))
    again = replay(load_phh(dump_phh(history_from_hand(hand))))
    assert again.stack == hand.stack
    assert again.board == hand.board


def test_cli_prints_one_json_object_per_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.phh"
    broken.write_text("variant = 'NT'\n")
    status = main(["replay", str(FILES[0]), str(broken)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 1
    expected = list(load_phh(FILES[0].read_text()).finishing_stacks or ())
    assert lines[0] == {"file": str(FILES[0]), "finishing_stacks": expected}
    assert lines[1]["file"] == str(broken)
    assert "missing required field" in lines[1]["error"]


def test_console_script_runs() -> None:
    script = Path(sys.executable).with_name("tablium-poker")
    out = subprocess.run([str(script), "replay", str(FILES[1])], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["finishing_stacks"]
