"""Hand histories: PHH export (only the cards the caller may see) and the provably-fair check."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID

from litestar import Controller, Response, get
from litestar.params import FromPath

from tablium_kit.auth import BEARER, caller
from tablium_kit.deps import DbSession
from tablium_kit.errors import Conflict, Forbidden, NotFound
from tablium_lobby.db.models import HandRecord
from tablium_poker import Hand, commitment, deck_from_seed, parse_cards
from tablium_poker.cards import format_cards
from tablium_poker.phh import dump_phh, history_from_hand


async def _finished_hand(db_session: DbSession, hand_id: UUID) -> tuple[HandRecord, Hand]:
    record = await db_session.get(HandRecord, hand_id)
    if record is None:
        raise NotFound(f"no hand {hand_id}")
    if record.status == "running":
        raise Conflict("the hand is still being played")
    return record, Hand.from_dict(record.state)


def _viewer_seat(record: HandRecord, viewer: str) -> int | None:
    return next((int(seat) for seat, player in record.players.items() if player == viewer), None)


def phh_for(hand: Hand, viewer_seat: int | None) -> str:
    """The PHH text with every hole card the viewer may not see written as ``????``."""
    history = history_from_hand(hand)
    hidden = {
        f"p{i + 1}": format_cards(hand.hole[i])
        for i, seat in enumerate(hand.seats)
        if seat != viewer_seat and not hand.shown[i]
    }
    actions = []
    for action in history.actions:
        words = action.split(" ")
        if words[:2] == ["d", "dh"] and words[2] in hidden:
            words[3] = "????"
        actions.append(" ".join(words))
    return dump_phh(replace(history, actions=tuple(actions)))


class HandController(Controller):
    path = "/api/v1/hands"
    tags = ["hands"]
    security = BEARER

    @get("/{file:str}", summary="A finished hand as PHH (`<hand id>.phh`), with only the cards you may see")
    async def phh(self, file: FromPath[str], db_session: DbSession) -> Response[str]:
        name, dot, suffix = file.partition(".")
        try:
            hand_id = UUID(name)
        except ValueError:
            raise NotFound("hand histories are at /api/v1/hands/<hand id>.phh") from None
        if dot != "." or suffix != "phh":
            raise NotFound("hand histories are at /api/v1/hands/<hand id>.phh")
        record, hand = await _finished_hand(db_session, hand_id)
        text = phh_for(hand, _viewer_seat(record, caller().subject))
        return Response(text, media_type="application/toml")

    @get("/{hand_id:uuid}/verify", summary="Recompute a finished hand's deck from its revealed seed")
    async def verify(self, hand_id: FromPath[UUID], db_session: DbSession) -> dict[str, Any]:
        record, _ = await _finished_hand(db_session, hand_id)
        me = caller()
        # The seed gives the whole deck (every hole card): only players dealt in, and admins, get it.
        if _viewer_seat(record, me.subject) is None and not me.has_role("admin"):
            raise Forbidden("only players dealt into the hand may verify its deal")
        dealt = list(parse_cards(record.state["deck"]))
        recomputed = deck_from_seed(record.seed, len(dealt))
        return {
            "handId": str(record.id),
            "seed": record.seed.hex(),
            "commitment": record.commitment,
            "commitmentMatches": commitment(record.seed) == record.commitment,
            "deck": format_cards(recomputed),
            "deckMatches": recomputed == dealt,
        }
