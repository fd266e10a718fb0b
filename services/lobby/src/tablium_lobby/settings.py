"""Lobby service settings (environment prefix ``TABLIUM_LOBBY_``)."""

from __future__ import annotations

from tablium_kit.settings import ServiceSettings


class LobbySettings(ServiceSettings, kw_only=True):
    port: int = 8005
    # The kit's 10, plus the hot path's lanes (services/commits.py: LANES connections held open from this
    # pool for good). With 10, the ORM's transactions (the hands' deals and ends, seating) had 4 kept
    # connections and opened and closed overflow ones all along at 500 tables (3-6 new connections every
    # 2 s in the bench's window: a connect and statements prepared anew each; ADR 0012, sixth pass).
    db_pool_size: int = 16
    # The wallet's internal API: buy-ins (a hold posted into the table's escrow), cash-outs, rake.
    wallet_url: str = "http://127.0.0.1:8006"
    # The asset every cash table plays for (its chips are this asset's minor unit).
    asset: str = "USDT"
    # A buy-in hold must outlive the post that follows it by far; the wallet voids it after this.
    hold_timeout_s: int = 300
    # Finishing half-done wallet steps (a crash between recording an intent and its result); 0 turns it off.
    reconcile_interval_s: float = 2.0
    # A step untouched this long is the reconciler's (so it never races the request still finishing it).
    reconcile_grace_s: float = 5.0
    # Pause between the end of one hand and the deal of the next (players read the result).
    between_hands_s: float = 1.0
    # WebSocket: the largest message accepted, and at most this many messages a second per socket.
    ws_max_message_bytes: int = 4096
    ws_messages_per_s: float = 20.0
    # Heartbeat: the server pings this often; a socket silent for ws_idle_timeout_s is closed.
    heartbeat_interval_s: float = 15.0
    # Disconnect is not a free seat: a seated player with no socket is sat out after the grace period
    # (checked or folded when their turn comes), and cashed out, the seat freed, after the longer timeout.
    disconnect_grace_s: float = 30.0
    # The clock of a table's running hand is kept by one instance, the holder of the table's lease in
    # Redis (renewed every lease_renew_s; another instance takes over once it expires).
    # The fencing token of a lease is an epoch in the table's row, checked by every holder-only write.
    # leases=false: every instance keeps every clock, unfenced (tests show what breaks then).
    leases: bool = True
    lease_ttl_s: float = 3.0
    lease_renew_s: float = 1.0
    # This instance's name in the leases it holds ("" = a random one per process). With ``workers`` > 1
    # (TABLIUM_LOBBY_WORKERS: worker processes of one instance, each a lease participant), each worker is
    # ``<instance_id or host-pid of the server>.<pid>``, and a player's action for a table a sibling
    # holds is handed to it (services/forward.py), answered within forward_timeout_s or written here.
    instance_id: str = ""
    forward_timeout_s: float = 2.0
    # How long delivery waits for a missing seq (its writer died after committing) before going on.
    reorder_wait_s: float = 1.0
    sit_out_timeout_s: float = 300.0
    # Actions of several tables arriving together are committed in one transaction (one BEGIN and COMMIT
    # for all; every action still committed before anyone hears of it). ADR 0008. Off: on the loaded
    # benchmark machine it has not yet shown a gain (bench/lobby_bench.py, TABLIUM_LOBBY_GROUP_COMMITS).
    group_commits: bool = False
    # Quick seat and waiting lists: a seat offered to the first in line is held this long; every list
    # is looked at this often (expired offers passed on, new tables offered, the Redis copies refreshed).
    offer_ttl_s: float = 30.0
    matching_interval_s: float = 1.0
    ws_idle_timeout_s: float = 60.0
    # Browsers: a WebSocket ticket (POST /tables/{id}/ws-ticket) is good for one handshake within this time.
    ws_ticket_ttl_s: int = 30
    # A seated player's rejoin token (in join-ack) resumes the seat on a new socket within this time.
    rejoin_ttl_s: int = 300
    # The cyclic garbage collector: a young collection every this many allocations (Python's default is
    # 700), and what start-up made is frozen out of full collections. 0 leaves Python's defaults. With
    # the default, objects that live a few milliseconds (an action's frames, a transaction's ORM objects)
    # outlived two young collections and were promoted, so full collections over every socket's objects
    # ran every few seconds, each a pause of the whole loop (ADR 0012, fifth pass).
    gc_young_threshold: int = 10_000
    # Bench only: a file the stages of every action are appended to (services/stages.py; "" = off).
    stage_trace: str = ""
    # Run the consumer of the club service's events (the membership projection behind club tables).
    consume_events: bool = True


def load_settings() -> LobbySettings:
    return LobbySettings.from_env("lobby")
