"""Typed errors of the poker engine; each message names the rule that was broken."""


class PokerError(Exception):
    """Base class of every error the engine raises on bad input."""


class InvalidSetup(PokerError):
    """The table rules or the hand setup are inconsistent (e.g. fewer than two players)."""


class IllegalAction(PokerError):
    """The action is not allowed in the current state (e.g. checking when facing a bet)."""


class NotYourTurn(IllegalAction):
    """A seat tried to act while another seat is the actor."""


class HandFinished(IllegalAction):
    """An action was sent after the hand ended."""


class InvalidAmount(IllegalAction):
    """A bet or raise amount is outside the legal range."""


class PhhError(PokerError):
    """A PHH hand history is malformed or cannot be replayed."""
