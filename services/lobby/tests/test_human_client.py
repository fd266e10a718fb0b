"""The terminal client of ``tablium-bots sit-in``: what a person types becomes a legal action or an explanation."""

from tablium_lobby.bots.human import parse_decision


def test_a_person_s_typed_decision_is_checked_against_the_legal_actions() -> None:
    legal = {"fold": True, "check": False, "call": "4", "minRaiseTo": "8", "maxRaiseTo": "200"}
    assert parse_decision("f", legal) == ("fold", None)
    assert parse_decision("c", legal) == ("call", None)
    assert parse_decision("k", legal) == "you can't check: call or fold"
    assert parse_decision("r 8", legal) == ("raise", 8)
    assert parse_decision("raise 200", legal) == ("raise", 200)
    assert parse_decision("r 7", legal) == "raise to between 8 and 200"
    assert parse_decision("r", legal) == "raise to how much? from 8 to 200"
    assert parse_decision("a", legal) == ("all_in", None)
    assert parse_decision("", legal).startswith("type f (fold)")
    # Facing no bet, a call is a check.
    assert parse_decision("c", {**legal, "check": True, "call": "0"}) == ("check", None)
