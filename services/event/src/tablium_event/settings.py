"""Event service settings (environment prefix ``TABLIUM_EVENT_``)."""

from __future__ import annotations

from tablium_kit.settings import ServiceSettings


class EventSettings(ServiceSettings, kw_only=True):
    port: int = 8004
    # The wallet's internal API: registration holds, buy-ins, fees, prizes, refunds.
    wallet_url: str = "http://127.0.0.1:8006"
    # A registration hold must outlive the wait for the start; the wallet voids it after this.
    hold_timeout_s: int = 14 * 24 * 3600
    # Background work: the tournament clock, and finishing half-done wallet steps (0 turns it off).
    clock_interval_s: float = 1.0
    reconcile_interval_s: float = 5.0
    # The reconciler finishes a late registration left held (a crash after the hold) once it has been
    # untouched this long, so it never races the request still finishing it.
    late_entry_grace_s: float = 30.0
    # The engine's whole state is snapshotted every this many facts (and at start, finish, cancel);
    # between snapshots each fact is one journal row (docs/adr/0006-tournament-engine.md, "Persistence").
    snapshot_every: int = 200
    # Journal pruning: facts up to a snapshot older than the latest this many are deleted when a snapshot
    # is taken. 0 keeps the whole journal (the audit trail); at least the latest snapshot and the facts
    # after it always remain.
    keep_snapshots: int = 0
    # Live engines kept in process (least recently used dropped beyond this); finished/cancelled ones are dropped.
    live_engines_max: int = 64
    # Entries posted per step of a start (one commit each), their fees in one wallet batch (at most 200).
    wallet_batch_size: int = 100
    # Prizes of a tie (players busted in the same hand sharing places) wait this long before they are paid,
    # so a director can still order the tie (docs/adr/0006, "The director's ordering of a tie"); 0 pays at once.
    tie_review_s: float = 0.0
    # Consume wallet.transfer_voided (a hold that expired). Tests that share a broker turn it off.
    consume_events: bool = True


def load_settings() -> EventSettings:
    return EventSettings.from_env("event")
