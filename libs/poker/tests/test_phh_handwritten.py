"""Hand-written PHH cases for what the dev set lacks: heads-up, nine-handed (with antes and a
straddle) and several side pots with an odd chip. Each file's finishing stacks were worked out by
hand (the comments in the files show the sums) and PokerKit replays each file to the same stacks."""

import json
import warnings
from pathlib import Path

import pytest
from pokerkit import HandHistory as PokerKitHistory

from tablium_poker.cli import main
from tablium_poker.phh import dump_phh, history_from_hand, load_phh, replay

FILES = sorted((Path(__file__).parent / "phh").glob("*.phh"))


def test_the_three_cases_are_there() -> None:
    assert [p.stem for p in FILES] == ["heads_up_all_in", "nine_max_straddle_antes", "three_side_pots_odd_chip"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_replays_to_hand_computed_stacks_like_pokerkit(path: Path) -> None:
    text = path.read_text()
    history = load_phh(text)
    hand = replay(history)
    assert tuple(hand.stack) == history.finishing_stacks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        states = list(PokerKitHistory.loads(text))
    assert tuple(states[-1].stacks) == history.finishing_stacks
    again = replay(load_phh(dump_phh(history_from_hand(hand))))
    assert again.stack == hand.stack


def test_heads_up_positions_and_uncalled_bet() -> None:
    hand = replay(load_phh((FILES[0]).read_text()))
    kinds = [(e.kind, e.seat, e.amount) for e in hand.events]
    assert ("small_blind", 1, 50) in kinds  # p2, the button
    assert ("big_blind", 0, 100) in kinds
    assert ("uncalled_bet_returned", 0, 400) in kinds
    assert [e.seat for e in hand.events if e.kind == "show"] == [0, 1]  # last aggressor first


def test_side_pots_and_odd_chip() -> None:
    hand = replay(load_phh(FILES[2].read_text()))
    pots = [(e.seat, e.amount) for e in hand.events if e.kind == "pot"]
    wins = [(e.seat, e.amount) for e in hand.events if e.kind == "win"]
    assert pots == [(0, 80), (1, 93), (2, 138)]
    assert wins == [(0, 80), (1, 47), (3, 46), (3, 138)]


def test_cli_replays_the_hand_written_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", *map(str, FILES)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        {"file": str(p), "finishing_stacks": list(load_phh(p.read_text()).finishing_stacks or ())} for p in FILES
    ]
