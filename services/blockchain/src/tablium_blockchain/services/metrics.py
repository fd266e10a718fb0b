"""Prometheus metrics of the chain and the watcher (served on /metrics by the kit)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

HEAD_BLOCK = Gauge("tablium_chain_head_block", "The chain's head block number as last seen", ["chain_id"])
WATCHER_LAG_BLOCKS = Gauge("tablium_chain_watcher_lag_blocks", "Blocks between the head and the watcher", ["chain_id"])
RPC_ERRORS = Counter("tablium_chain_rpc_errors_total", "Watcher polls that failed on the node or database")
DEPOSITS = Counter("tablium_chain_deposits_total", "Deposit status changes", ["asset", "status"])
REORGS = Counter("tablium_chain_reorgs_total", "Forks found by the watcher", ["deep"])
WITHDRAWALS = Counter("tablium_chain_withdrawals_total", "Withdrawal status changes", ["asset", "status"])
WITHDRAWALS_PENDING = Gauge(
    "tablium_chain_withdrawals_pending", "Withdrawals held, signed or sent, not yet settled", ["chain_id"]
)
BROADCAST_REFUSALS = Counter(
    "tablium_chain_broadcast_refusals_total",
    "Signed transactions the node refused (not an 'already known'), by purpose",
    ["purpose"],
)
WITHDRAWALS_GIVEN_UP = Counter(
    "tablium_chain_withdrawals_given_up_total",
    "Withdrawals failed because the node kept refusing their transaction (alert: a human looks)",
    ["asset"],
)
STUCK_REPLACED = Counter(
    "tablium_chain_stuck_replaced_total", "Transactions re-signed with higher fees after replace_after_s", ["purpose"]
)
SWEEPS_GIVEN_UP = Counter(
    "tablium_chain_sweeps_given_up_total",
    "Sweeps failed because the node kept refusing the hot wallet's gas transfer (alert)",
    ["asset"],
)
