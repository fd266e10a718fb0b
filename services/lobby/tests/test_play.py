"""Full hands over real WebSockets against a running lobby process, the real wallet, Postgres, Redis and
RabbitMQ: bots play, every chip is accounted for, and nobody ever sees a hole card that isn't theirs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import websockets
from lobby_support import Ledger, LobbyProcess, bearer, new_table, user_token
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from tablium_lobby.bots import POLICIES, Bot

FUNDS = 10_000


class Table:
    def __init__(self, lobby: LobbyProcess, http: httpx.AsyncClient, info: dict[str, Any]) -> None:
        self.lobby = lobby
        self.http = http
        self.info = info
        self.id = info["id"]
        self.ws = f"{lobby.ws_url}/api/v1/tables/{self.id}/ws"

    async def state(self, player: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/v1/tables/{self.id}/state", headers=bearer(player))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def seat_bots(
    lobby: LobbyProcess,
    http: httpx.AsyncClient,
    ledger: Ledger,
    buy_ins: list[int],
    policy: str,
    seed: int,
    **table: Any,
) -> tuple[Table, list[Bot]]:
    info = await new_table(http, seats=max(len(buy_ins), 2), **table)
    rng = random.Random(seed)
    bots: list[Bot] = []
    t = Table(lobby, http, info)
    for _ in buy_ins:
        player = str(uuid.uuid4())
        await ledger.fund(player, FUNDS)
        bot = Bot(t.ws, user_token(player), player, POLICIES[policy], rng=random.Random(rng.random()))
        await bot.connect()  # connected before anyone sits: it sees every hand from the first
        bots.append(bot)
    for seat, (bot, amount) in enumerate(zip(bots, buy_ins, strict=True)):
        response = await http.post(
            f"/api/v1/tables/{t.id}/seats", json={"seat": seat, "buy_in": str(amount)}, headers=bearer(bot.player_id)
        )
        assert response.status_code == 201, response.text
    return t, bots


def hole_card_leaks(bots: list[Bot], spectators: list[tuple[str, list[dict[str, Any]]]] = ()) -> list[str]:
    """Every message any client received that shows hole cards other than its own, outside a showdown."""
    leaks: list[str] = []
    audience = [(b.player_id, b.received) for b in bots] + list(spectators)
    for me, received in audience:
        my_seats: set[int] = set()
        for message in received:
            kind = message.get("type")
            if kind == "hand-start":
                my_seats = {p["seat"] for p in message["players"] if p["userId"] == me}
            if kind == "new-player-card" and message["seat"] not in my_seats:
                leaks.append(f"{me} got {message}")
            hand = message.get("hand") if kind == "snapshot" else None
            if hand:
                for player in hand["players"]:
                    if player["hole_cards"] and player["userId"] != me:
                        leaks.append(f"{me} saw {player} in a snapshot")
                for event in hand["events"]:
                    if event["kind"] == "hole_cards" and event["cards"] and event["seat"] not in my_seats:
                        leaks.append(f"{me} saw {event} in a snapshot")
    return leaks


async def escrow_and_rake(ledger: Ledger, table_id: str) -> tuple[int, int]:
    escrow = await ledger.balance(await ledger.account(f"table:{table_id}", "table_escrow"))
    rake = -await ledger.balance(await ledger.account("house", "house_rake"))
    return escrow, -rake


async def wait_for(check: Callable[[], Awaitable[bool]], timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await check():  # noqa: ASYNC110 - polling another process's state
            await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
async def lobby(start_lobby: Any) -> LobbyProcess:
    process: LobbyProcess = await start_lobby(between_hands_s="0.02")
    return process


async def play_and_account(
    lobby: LobbyProcess, ledger: Ledger, buy_ins: list[int], policy: str, hands: int, seed: int, **table: Any
) -> tuple[Table, list[Bot]]:
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        rake_account = await ledger.account("house", "house_rake")
        rake_before = await ledger.balance(rake_account)
        t, bots = await seat_bots(lobby, http, ledger, buy_ins, policy, seed, **table)
        spectator = str(uuid.uuid4())
        seen: list[dict[str, Any]] = []
        async with websockets.connect(t.ws, additional_headers=bearer(spectator)) as watcher:

            async def watch() -> None:
                async for raw in watcher:
                    seen.append(json.loads(raw))

            watching = asyncio.create_task(watch())
            playing = [asyncio.create_task(bot.play(10**6, timeout_s=120)) for bot in bots]

            async def enough() -> bool:
                if all(bot.hands_ended >= hands for bot in bots):
                    return True
                # Or play is over: no hand running and fewer than two seated players have chips.
                state = await t.state(bots[0].player_id)
                return state["hand"] is None and sum(int(p["stack"]) > 0 for p in state["players"]) < 2

            try:
                await wait_for(enough, 30)
            except TimeoutError:
                pytest.fail(f"play stalled: {[(b.hands_ended, b.errors[-3:], b.received[-6:]) for b in bots]}")
            # Everyone leaves while play goes on (after the hand in progress); the money ends where it should.
            for bot in bots:
                left = await http.delete(f"/api/v1/tables/{t.id}/seats/me", headers=bearer(bot.player_id))
                assert left.status_code == 200, left.text

            async def all_out() -> bool:
                view = (await http.get(f"/api/v1/tables/{t.id}")).json()
                return view["players"] == []

            try:
                await wait_for(all_out, 30)
            except TimeoutError:
                bots_saw = [(b.errors[-3:], b.received[-4:]) for b in bots]
                pytest.fail(f"players still seated: {await t.state(bots[0].player_id)}; the bots: {bots_saw}")
            for task in [*playing, watching]:
                task.cancel()
            await asyncio.gather(*playing, watching, return_exceptions=True)
            for bot in bots:
                await bot.close()
        assert any(m["type"] == "round-result" for m in seen), "the spectator watched the hands"
        assert not any(m["type"] == "new-player-card" for m in seen)
        assert hole_card_leaks(bots, [(spectator, seen)]) == []

        escrow_account = await ledger.account(f"table:{t.id}", "table_escrow")

        async def settled() -> bool:
            return await ledger.balance(escrow_account) == 0

        await wait_for(settled, 15)
        balances = [await ledger.player_balance(bot.player_id) for bot in bots]
        rake = (
            -(await ledger.balance(rake_account) - rake_before)
            if False
            else (await ledger.balance(rake_account)) - rake_before
        )
        assert sum(balances) + rake == FUNDS * len(bots), (balances, rake)
        return t, bots


async def test_heads_up_hands_conserve_chips_and_hide_hole_cards(lobby: LobbyProcess, ledger: Ledger) -> None:
    _, bots = await play_and_account(lobby, ledger, [200, 150], "random", hands=6, seed=1, rake_bps=500)
    results = [m for m in bots[0].received if m["type"] == "round-result"]
    assert results, "at least one hand; six unless a player went broke first"
    for message in bots[0].received:
        if message["type"] in ("hand-start", "turn", "action-broadcast", "round-result", "new-table-card"):
            assert isinstance(message["seq"], int)
    seqs = [m["seq"] for m in bots[0].received if isinstance(m.get("seq"), int)]
    assert seqs == sorted(seqs), "seq never goes back on one socket"


async def test_six_way_all_ins_make_side_pots_and_conserve_chips(lobby: LobbyProcess, ledger: Ledger) -> None:
    # Different stacks, everyone all in: several side pots each hand until one player has every chip.
    _, bots = await play_and_account(
        lobby,
        ledger,
        [40, 55, 70, 85, 100, 120],
        "shove",
        hands=1,
        seed=2,
        rake_bps=500,
        rake_cap="7",
        min_buy_in_bb=20,
        max_buy_in_bb=100,
    )
    results = [m for m in bots[0].received if m["type"] == "round-result"]
    assert max(len(m["pots"]) for m in results) >= 3, "a main pot and two or more side pots in a hand"
    shown = [m for m in bots[0].received if m["type"] == "showdown" and "cards" in m]
    assert len(shown) >= 2, "all-in hands are tabled"


async def test_nine_bots_play_tight_and_random(lobby: LobbyProcess, ledger: Ledger) -> None:
    await play_and_account(lobby, ledger, [100, 120, 140, 160, 180, 200, 90, 110, 130], "tag", hands=3, seed=3)


async def test_the_hand_is_recorded_published_and_verifiable(
    lobby: LobbyProcess, ledger: Ledger, settings: Any
) -> None:
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        t, bots = await seat_bots(lobby, http, ledger, [200, 200], "random", seed=4)
        await asyncio.gather(*(bot.play(1, timeout_s=60) for bot in bots))
        start = next(m for m in bots[0].received if m["type"] == "hand-start")
        hand_id = start["handId"]
        assert len(start["commitment"]) == 64
        me = bots[0]
        mine = next(m for m in me.received if m["type"] == "new-player-card")
        my_cards = "".join(c["rank"] + c["suit"] for c in mine["cards"])

        phh = await http.get(f"/api/v1/hands/{hand_id}.phh", headers=bearer(me.player_id))
        assert phh.status_code == 200, phh.text
        assert my_cards in phh.text
        other = next(m for m in bots[1].received if m["type"] == "new-player-card")
        other_cards = "".join(c["rank"] + c["suit"] for c in other["cards"])
        showdown = any(m["type"] == "showdown" and m.get("cards") for m in me.received)
        assert (other_cards in phh.text) == showdown, "an opponent's cards only if tabled"
        spectator = await http.get(f"/api/v1/hands/{hand_id}.phh", headers=bearer(str(uuid.uuid4())))
        assert my_cards not in spectator.text or showdown

        verify = await http.get(f"/api/v1/hands/{hand_id}/verify", headers=bearer(me.player_id))
        assert verify.status_code == 200, verify.text
        body = verify.json()
        assert body["commitment"] == start["commitment"]
        assert body["commitmentMatches"]
        assert body["deckMatches"]
        assert my_cards[:2] in body["deck"]
        outsider = await http.get(f"/api/v1/hands/{hand_id}/verify", headers=bearer(str(uuid.uuid4())))
        assert outsider.status_code == 403
        assert (await http.get(f"/api/v1/hands/{uuid.uuid4()}.phh", headers=bearer(me.player_id))).status_code == 404

        # lobby.hand_completed went through the outbox with what the issue lists.
        engine = create_async_engine(lobby.database_url)
        try:
            async with engine.connect() as connection:
                row = (
                    await connection.execute(
                        text(
                            "SELECT envelope FROM outbox WHERE type = 'lobby.hand_completed' AND subject = :t "
                            "ORDER BY seq"
                        ),
                        {"t": t.id},
                    )
                ).first()
        finally:
            await engine.dispose()
        assert row is not None
        data = row[0]["data"]
        assert data["hand_history_id"] == hand_id
        assert data["table_id"] == t.id
        assert {p["player_id"] for p in data["players"]} == {b.player_id for b in bots}
        for player in data["players"]:
            assert set(player) >= {"stack_before", "stack_after", "rake", "vpip", "pfr", "won"}
            assert isinstance(player["stack_before"], str)
        assert data["winners"]
        for bot in bots:
            await bot.close()


async def test_bad_messages_get_an_error_and_change_nothing(lobby: LobbyProcess, ledger: Ledger) -> None:
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        t, bots = await seat_bots(lobby, http, ledger, [200, 200], "random", seed=5, action_clock_s=30)
        first, second = bots

        async def until(bot: Bot, kind: str) -> dict[str, Any]:
            async with asyncio.timeout(10):
                while True:
                    message = json.loads(await bot.socket.recv())
                    bot.received.append(message)
                    if message["type"] == kind:
                        return message

        turn = await until(first, "turn")
        actor = next(b for b in bots if b.player_id == turn["userId"])
        waiting = second if actor is first else first
        private = await until(actor, "turn") if "legal" not in turn else turn
        if "legal" not in private:
            private = await until(actor, "turn")
        before = await t.state(actor.player_id)
        seq = before["seq"]
        legal = private["legal"]

        async def refused(bot: Bot, raw: str | bytes) -> dict[str, Any]:
            await bot.socket.send(raw)
            message = await until(bot, "error")
            after = await t.state(actor.player_id)
            assert after["seq"] == seq, f"{raw!r} changed the table"
            assert after["hand"] == before["hand"]
            return message

        await refused(actor, "{not json")
        await refused(actor, json.dumps({"type": "action", "action": "call", "seq": seq, "extra": 1}))
        await refused(actor, "x" * 5000)
        await refused(actor, json.dumps({"type": "dance"}))
        await refused(actor, json.dumps({"type": "action", "action": "raise", "seq": seq}))
        await refused(actor, json.dumps({"type": "action", "action": "raise", "amount": "1", "seq": seq}))
        too_much = str(int(legal["maxRaiseTo"]) + 1)
        await refused(actor, json.dumps({"type": "action", "action": "raise", "amount": too_much, "seq": seq}))
        await refused(actor, json.dumps({"type": "action", "action": "raise", "amount": "-5", "seq": seq}))
        await refused(actor, json.dumps({"type": "action", "action": "raise", "amount": 40, "seq": seq}))
        await refused(actor, json.dumps({"type": "action", "action": "check", "amount": "4", "seq": seq}))
        await refused(actor, json.dumps({"type": "action", "action": "call", "seq": seq - 1}))
        await refused(waiting, json.dumps({"type": "action", "action": "fold", "seq": seq}))
        if not legal["check"]:
            await refused(actor, json.dumps({"type": "action", "action": "check", "seq": seq}))

        # A spectator can't act; a socket without a token is refused at the handshake.
        async with websockets.connect(t.ws, additional_headers=bearer(str(uuid.uuid4()))) as spectator_socket:
            watcher = Bot(t.ws, "", "spectator", POLICIES["random"])
            watcher.socket = spectator_socket
            await refused(watcher, json.dumps({"type": "action", "action": "fold", "seq": seq}))
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with websockets.connect(t.ws):
                pass

        # The real action is accepted once; the same message again (a replay) is refused.
        action = {"type": "action", "action": "call" if not legal["check"] else "check", "seq": seq}
        await actor.socket.send(json.dumps(action))
        broadcast = await until(actor, "action-broadcast")
        assert broadcast["userId"] == actor.player_id
        assert broadcast["seq"] == seq + 1
        await actor.socket.send(json.dumps(action))
        replay = await until(actor, "error")
        assert "stale" in replay["error"] or "turn" in replay["error"]
        for bot in bots:
            await bot.close()


async def test_a_player_who_does_not_act_is_checked_or_folded_at_the_deadline(
    lobby: LobbyProcess, ledger: Ledger
) -> None:
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        _, bots = await seat_bots(lobby, http, ledger, [200, 200], "random", seed=6, action_clock_s=1, time_bank_s=1)
        sleeper = bots[0]
        timeouts: list[dict[str, Any]] = []
        async with asyncio.timeout(30):
            while len(timeouts) < 2:
                message = json.loads(await sleeper.socket.recv())
                sleeper.received.append(message)
                if message["type"] == "time-bank":
                    timeouts.append(message)
                if message["type"] == "action-broadcast" and message["action"] in ("fold", "check"):
                    timeouts.append(message)
        banks = [m for m in sleeper.received if m["type"] == "time-bank"]
        assert banks, "the time bank was used before the default action"
        acted = [m for m in sleeper.received if m["type"] == "action-broadcast" and m["action"] in ("fold", "check")]
        assert acted
        for bot in bots:
            await bot.close()


def passive(legal: dict[str, Any], cards: str, rng: random.Random) -> tuple[str, int | None]:
    """Check, else call: every hand is the same dozen actions to a showdown, and nobody goes broke."""
    return ("check", None) if legal["check"] else ("call", None)


async def test_a_flood_from_one_socket_does_not_slow_the_table(lobby: LobbyProcess, ledger: Ledger) -> None:
    """A socket flooding a table (out-of-turn actions, broken JSON, as fast as it can send) is closed by the
    server, again each time it comes back, and the table keeps pace with a twin table in the same process
    all along: progress is compared in hands played, never timed."""
    hands = 6
    async with httpx.AsyncClient(base_url=lobby.url, timeout=30) as http:
        t, bots = await seat_bots(lobby, http, ledger, [200, 200, 200], "random", seed=7)
        _, twin_bots = await seat_bots(lobby, http, ledger, [200, 200, 200], "random", seed=8)
        for bot in [*bots, *twin_bots]:
            bot.policy = passive  # hands of one length: the two tables' counts are comparable
        flooder = str(uuid.uuid4())
        floods_closed = 0

        async def drain(socket: Any) -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for _ in socket:
                    pass

        async def flood_again_and_again() -> None:
            nonlocal floods_closed
            junk = json.dumps({"type": "action", "action": "raise", "amount": "999", "seq": 1})
            while True:
                async with websockets.connect(t.ws, additional_headers=bearer(flooder)) as flood:
                    draining = asyncio.create_task(drain(flood))  # read what it is told (errors, the close)
                    with contextlib.suppress(websockets.ConnectionClosed):
                        while True:  # ends only when the server closes the socket: the test never does
                            await flood.send(junk)
                            await flood.send("{broken")
                    await draining
                floods_closed += 1

        flooding = asyncio.create_task(flood_again_and_again())
        playing = [asyncio.create_task(bot.play(10**6, timeout_s=600)) for bot in [*bots, *twin_bots]]
        flooded_when_twin_done: int | None = None
        try:
            async with asyncio.timeout(300):  # a hang guard only: what is asserted is counted, not timed
                while True:
                    flooded, twin = bots[0].hands_ended, twin_bots[0].hands_ended
                    if twin >= hands and flooded_when_twin_done is None:
                        flooded_when_twin_done = flooded
                    if min(flooded, twin) >= hands and floods_closed >= 3:
                        break
                    assert not flooding.done(), flooding
                    await asyncio.sleep(0.02)
        except TimeoutError:
            pytest.fail(f"stalled: hands {flooded} flooded, {twin} twin; floods closed {floods_closed}")
        finally:
            for task in [flooding, *playing]:
                task.cancel()
            await asyncio.gather(flooding, *playing, return_exceptions=True)
        assert flooded_when_twin_done is not None
        assert flooded_when_twin_done >= hands // 2, (
            f"the flooded table played {flooded_when_twin_done} hands while its twin played {hands}"
        )
        state = await t.state(bots[0].player_id)
        assert all(p["userId"] != flooder for p in state["players"])
        for bot in [*bots, *twin_bots]:
            await bot.close()
