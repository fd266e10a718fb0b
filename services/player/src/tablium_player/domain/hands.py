"""``lobby.hand_completed`` as the player service reads it, and what one hand means for one player. Pure.

Only the fields used here are declared; the lobby's others are ignored. Amounts are decimal strings
on the wire (ADR 0007) and ``int`` from :meth:`HandPlayer.outcome` on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import msgspec

from tablium_kit.money import Amount, PositiveAmount, parse_amount
from tablium_player.domain.progress import hand_xp


class HandPlayer(msgspec.Struct, kw_only=True, frozen=True):
    player_id: uuid.UUID
    stack_before: Amount
    stack_after: Amount
    rake: Amount = "0"
    # Chips pushed to the player from the pots (after rake), their own contribution included.
    won: Amount = "0"
    # Put chips in voluntarily preflop (blinds and antes don't count); raised (or bet) preflop.
    vpip: bool = False
    pfr: bool = False


class HandCompleted(msgspec.Struct, kw_only=True, frozen=True):
    hand_id: uuid.UUID
    table_id: uuid.UUID
    tournament_id: uuid.UUID | None = None
    # The stake currency of a cash table; a tournament's chips are no asset's.
    asset: str | None = None
    big_blind: PositiveAmount
    players: list[HandPlayer]

    @property
    def cash(self) -> bool:
        """Whether the chips are money: a cash table's hand, in an asset."""
        return self.tournament_id is None and bool(self.asset)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One player's hand in integers."""

    player_id: uuid.UUID
    stack_before: int
    stack_after: int
    rake: int
    won: int
    vpip: bool
    pfr: bool
    xp: int

    @property
    def net(self) -> int:
        """What the hand did to the player's chips; rake is already out of ``stack_after``."""
        return self.stack_after - self.stack_before


def outcomes(hand: HandCompleted) -> list[Outcome]:
    """Each player's outcome, in player-id order (the order rows are locked in, so that two
    transactions recording hands of the same players wait for each other instead of deadlocking)."""
    big_blind = parse_amount(hand.big_blind)
    result = []
    for player in sorted(hand.players, key=lambda p: p.player_id):
        before, after = parse_amount(player.stack_before), parse_amount(player.stack_after)
        result.append(
            Outcome(
                player_id=player.player_id,
                stack_before=before,
                stack_after=after,
                rake=parse_amount(player.rake),
                won=parse_amount(player.won),
                vpip=player.vpip,
                pfr=player.pfr,
                xp=hand_xp(net=after - before, big_blind=big_blind),
            )
        )
    return result
