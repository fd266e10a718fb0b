"""The catalog of event types: who publishes each, who consumes it (ARCHITECTURE.md §4).

An event type is ``<publishing service>.<snake_case fact>``: the first segment names its one publisher,
whose ``source`` consumers demand and whose broker user alone may publish that routing key on the
``tablium.events`` topic exchange. Grow the catalog here, in one place, and render it as AsyncAPI
with :func:`asyncapi`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from tablium_kit.messaging.envelope import CONTENT_TYPE, CloudEvent

SERVICES = ("player", "club", "rakeback", "event", "lobby", "wallet", "blockchain")


@dataclass(frozen=True)
class EventSpec:
    summary: str
    consumers: tuple[str, ...] = ()


CATALOG: dict[str, EventSpec] = {
    "player.registered": EventSpec("A player account was created.", ("wallet",)),
    "player.level_up": EventSpec("A player's XP crossed one or more levels: old and new level.", ("rakeback",)),
    "club.created": EventSpec("A club was created (docs/events/club.md has every club payload).", ("rakeback",)),
    "club.member_joined": EventSpec(
        "A join request was approved; the player is a member.", ("rakeback", "lobby", "event")
    ),
    "club.member_left": EventSpec("A member left or was removed from a club.", ("rakeback", "lobby", "event")),
    "club.deal_changed": EventSpec("A club's or agent's rakeback deal changed.", ("rakeback",)),
    "club.closed": EventSpec("A club was closed.", ("rakeback", "lobby", "event")),
    "club.member_updated": EventSpec("A member's role or recruiting agent changed.", ("rakeback", "lobby", "event")),
    "club.union_joined": EventSpec("A union's owner approved a club into the union.", ("rakeback", "lobby", "event")),
    "club.union_left": EventSpec("A club left a union or was removed from it.", ("rakeback", "lobby", "event")),
    "club.union_dissolved": EventSpec(
        "A union's owner ended the union; each of its clubs' club.union_left came first.", ()
    ),
    "wallet.transfer_posted": EventSpec(
        "A transfer was posted (single-phase or a pending one).", ("blockchain", "rakeback")
    ),
    "wallet.transfer_voided": EventSpec("A pending transfer was voided or timed out.", ("blockchain", "event")),
    "wallet.limit_exceeded": EventSpec("A transfer was refused by a player's limit.", ("player",)),
    "lobby.table_opened": EventSpec("A cash or tournament table opened.", ("club", "event")),
    "lobby.table_closed": EventSpec("A table closed.", ("club", "event")),
    "lobby.player_seated": EventSpec("A player took a seat.", ("event",)),
    "lobby.player_left": EventSpec("A player left a seat.", ("event",)),
    "lobby.hand_completed": EventSpec(
        "A hand ended: table, tournament if any, players with stacks before/after, rake per player, "
        "winners, hand-history id.",
        ("player", "rakeback", "event"),
    ),
    "event.tournament_created": EventSpec("A tournament was created.", ("lobby",)),
    "event.registration_opened": EventSpec("A tournament opened its registration.", ("lobby",)),
    "event.tournament_started": EventSpec("A tournament started; tables are drawn.", ("lobby",)),
    "event.level_changed": EventSpec("Blinds moved to the next level.", ("lobby",)),
    "event.break_started": EventSpec("A synchronized break started.", ("lobby",)),
    "event.break_ended": EventSpec("A break ended.", ("lobby",)),
    "event.player_moved": EventSpec("Balancing moved a player to another seat.", ("lobby",)),
    "event.player_eliminated": EventSpec("A player busted out, with place.", ("lobby", "player")),
    "event.elimination_undone": EventSpec(
        "A director undid a bust-out: the entry is back in play; the place it had is given back "
        "(the places corrected follow as event.player_eliminated).",
        ("lobby", "player"),
    ),
    "event.entry_fee_paid": EventSpec(
        "The house's fee of one paid entry, re-entry, rebuy or add-on (docs/events/event.md), with the "
        "tournament's club and union: the rakeback service accrues it like a hand's rake.",
        ("rakeback",),
    ),
    "event.entry_fee_refunded": EventSpec(
        "A fee stated by event.entry_fee_paid was given back (a tournament cancelled after its start refunds "
        "every entry and purchase; docs/events/event.md): the rakeback service reverses what it accrued from it.",
        ("rakeback",),
    ),
    "event.tie_ordered": EventSpec(
        "A director ordered a tie (entries best place first): each entry's own place and prize follow as "
        "event.player_eliminated and event.prize_awarded, replacing the tie's shared ones.",
        ("lobby", "player"),
    ),
    "event.tournament_finished": EventSpec("A tournament ended.", ("lobby", "player")),
    "event.prize_awarded": EventSpec("A prize was awarded to a player.", ("wallet", "player")),
    "event.tournament_cancelled": EventSpec("A tournament was cancelled; every entry refunded.", ("lobby", "player")),
    "event.table_instructions": EventSpec(
        "What the lobby must do at a tournament's tables, in order: seat, move, hold, resume, break, new level.",
        ("lobby",),
    ),
    "rakeback.accrued": EventSpec(
        "A player's rake in a hand was split among its receivers (docs/events/rakeback.md); a later deal version "
        "in force at the hand's time restates it with a higher deal_version."
    ),
    "rakeback.tier_changed": EventSpec("A player outside clubs moved to another rakeback tier (per asset)."),
    "rakeback.payout_requested": EventSpec("A rakeback payout was requested.", ("wallet",)),
    "rakeback.payout_completed": EventSpec("A rakeback payout was credited by the wallet.", ("player",)),
    "blockchain.deposit_detected": EventSpec("A deposit was seen on chain, not yet confirmed."),
    "blockchain.deposit_confirmed": EventSpec("A deposit reached N confirmations.", ("wallet",)),
    "blockchain.deposit_reverted": EventSpec(
        "A detected deposit left the canonical chain: before N confirmations (no credit), or after (a reorg deeper"
        " than N: was_confirmed).",
        ("wallet",),
    ),
    "blockchain.withdrawal_requested": EventSpec("A withdrawal was queued for sending."),
    "blockchain.withdrawal_sent": EventSpec("A withdrawal transaction was broadcast."),
    "blockchain.withdrawal_confirmed": EventSpec("A withdrawal reached N confirmations.", ("wallet",)),
    "blockchain.withdrawal_failed": EventSpec("A withdrawal failed for good.", ("wallet",)),
}


def publisher(event_type: str) -> str:
    """The one service that publishes ``event_type`` (its first segment)."""
    return event_type.split(".", 1)[0]


def source_of(event_type: str) -> str:
    """The CloudEvents ``source`` of every genuine ``event_type`` event: its publisher's."""
    return f"/services/{publisher(event_type)}"


def asyncapi(catalog: dict[str, EventSpec] = CATALOG, *, exchange: str = "tablium.events") -> dict[str, Any]:
    """The catalog as an AsyncAPI 3.0 document: one channel per routing key, send/receive operations."""
    (envelope_ref,), schemas = msgspec.json.schema_components([CloudEvent], ref_template="#/components/schemas/{name}")
    exchange_binding = {"name": exchange, "type": "topic", "durable": True, "autoDelete": False, "vhost": "/"}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event_type, spec in sorted(catalog.items()):
        message_id = event_type.replace(".", "_")
        messages[message_id] = {
            "name": event_type,
            "summary": spec.summary,
            "contentType": CONTENT_TYPE,
            "payload": envelope_ref,
        }
        channels[message_id] = {
            "address": event_type,
            "messages": {message_id: {"$ref": f"#/components/messages/{message_id}"}},
            "bindings": {"amqp": {"is": "routingKey", "exchange": exchange_binding}},
        }
        channel_ref = {"$ref": f"#/channels/{message_id}"}
        operations[f"{publisher(event_type)}_sends_{message_id}"] = {"action": "send", "channel": channel_ref}
        for consumer in spec.consumers:
            operations[f"{consumer}_receives_{message_id}"] = {
                "action": "receive",
                "channel": channel_ref,
                "bindings": {"amqp": {"ack": True}},
            }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Tablium events", "version": "1.0.0"},
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }
