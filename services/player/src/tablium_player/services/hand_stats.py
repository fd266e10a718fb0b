"""Recording a completed hand into each player's stats, XP and level (docs/adr/0009-player-stats.md).

Runs in the caller's transaction (the kit consumer's, which also holds the inbox row). Once per hand
per player: the ``played_hands`` row is inserted first, keyed on (hand, player); a hand already there
adds nothing, whichever envelope or consumer brought it, and a concurrent transaction inserting the
same key waits for this one and then finds it. Every total is a sum (or a maximum) of per-hand facts,
so the order hands arrive in does not matter; XP only grows, so each level is crossed, and
``player.level_up`` written to the outbox, exactly once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tablium_kit.money import parse_amount
from tablium_player.db.models import PlayedHand, Player, PlayerAssetStats
from tablium_player.domain.hands import HandCompleted, Outcome, outcomes
from tablium_player.domain.progress import level_for
from tablium_player.events import publish_level_up

log = structlog.get_logger("tablium.player.hands")


@dataclass(frozen=True, slots=True)
class LevelUp:
    player_id: uuid.UUID
    old_level: int
    new_level: int


async def record_hand(session: AsyncSession, hand: HandCompleted, *, finished_at: datetime) -> list[LevelUp]:
    """Add ``hand`` to the stats of every player in it not counted yet; the levels crossed."""
    results = outcomes(hand)
    known = set(await session.scalars(select(Player.id).where(Player.id.in_([o.player_id for o in results]))))
    level_ups = []
    for outcome in results:
        if outcome.player_id not in known:
            # Accounts are never deleted, so this is a player id no account here has: nothing to add to.
            log.warning("hand for an unknown player", hand_id=str(hand.hand_id), player_id=str(outcome.player_id))
            continue
        if not await _first_time(session, hand, outcome, finished_at):
            continue
        level_up = await _add_to_player(session, hand, outcome)
        if level_up is not None:
            level_ups.append(level_up)
        if hand.cash:
            await _add_to_asset(session, hand, outcome)
    return level_ups


async def _first_time(session: AsyncSession, hand: HandCompleted, outcome: Outcome, finished_at: datetime) -> bool:
    inserted = await session.scalar(
        insert(PlayedHand)
        .values(
            hand_id=hand.hand_id,
            player_id=outcome.player_id,
            table_id=hand.table_id,
            tournament_id=hand.tournament_id,
            asset=hand.asset or "",
            big_blind=parse_amount(hand.big_blind),
            stack_before=outcome.stack_before,
            stack_after=outcome.stack_after,
            rake=outcome.rake,
            won=outcome.won,
            vpip=outcome.vpip,
            pfr=outcome.pfr,
            xp=outcome.xp,
            finished_at=finished_at,
        )
        .on_conflict_do_nothing()
        .returning(PlayedHand.player_id)
    )
    return inserted is not None


async def _add_to_player(session: AsyncSession, hand: HandCompleted, outcome: Outcome) -> LevelUp | None:
    xp, level = (
        await session.execute(
            update(Player)
            .where(Player.id == outcome.player_id)
            .values(
                hands_played=Player.hands_played + 1,
                hands_vpip=Player.hands_vpip + int(outcome.vpip),
                hands_pfr=Player.hands_pfr + int(outcome.pfr),
                xp=Player.xp + outcome.xp,
            )
            .returning(Player.xp, Player.level)
            .execution_options(synchronize_session=False)
        )
    ).one()
    new_level = level_for(xp)
    if new_level <= level:
        return None
    # The row is locked by the update above until this transaction ends: nobody else sees this crossing.
    await session.execute(
        update(Player)
        .where(Player.id == outcome.player_id)
        .values(level=new_level)
        .execution_options(synchronize_session=False)
    )
    await publish_level_up(
        session, player_id=outcome.player_id, old_level=level, new_level=new_level, xp=xp, hand_id=hand.hand_id
    )
    return LevelUp(outcome.player_id, level, new_level)


async def _add_to_asset(session: AsyncSession, hand: HandCompleted, outcome: Outcome) -> None:
    row = insert(PlayerAssetStats).values(
        player_id=outcome.player_id,
        asset=hand.asset,
        hands_played=1,
        net_winnings=outcome.net,
        rake_paid=outcome.rake,
        biggest_pot_won=outcome.won,
    )
    stats = PlayerAssetStats.__table__.c
    await session.execute(
        row.on_conflict_do_update(
            index_elements=[stats.player_id, stats.asset],
            set_={
                "hands_played": stats.hands_played + 1,
                "net_winnings": stats.net_winnings + row.excluded.net_winnings,
                "rake_paid": stats.rake_paid + row.excluded.rake_paid,
                "biggest_pot_won": func.greatest(stats.biggest_pot_won, row.excluded.biggest_pot_won),
            },
        )
    )
