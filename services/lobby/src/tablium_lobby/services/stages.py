"""Where an action's time goes, stage by stage (ADR 0012, sixth pass).

Always on: Prometheus histograms of each stage of a player's action (``tablium_lobby_action_stage_seconds``)
and of each table message's wait in a socket's queue and its send (``tablium_lobby_socket_stage_seconds``),
and the event loop's lag (``tablium_lobby_loop_lag_seconds``): a few ``observe`` calls an action.

Bench only (``TABLIUM_LOBBY_STAGE_TRACE``, a file path): the same instants as wall-clock times, one record
per action and one per ``action-broadcast`` written to a socket, appended to the file every second, so
bench/lobby_bench.py can join them with its bots' send and receive times (one machine, one clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

import msgspec
from prometheus_client import REGISTRY, Metric
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _Series:
    """One histogram series: a count per bucket (the last is +Inf), then the sum."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: list[float] = [0] * (len(_BUCKETS) + 1) + [0.0]

    def observe(self, seconds: float) -> None:
        counts = self.counts
        counts[bisect_left(_BUCKETS, seconds)] += 1  # "le" buckets: a value equal to a bound is in it
        counts[-1] += seconds


class _Histograms(Collector):
    """Histograms observed from the event loop's thread only, built when ``/metrics`` is scraped (as the kit's
    request metrics): prometheus_client's ``Histogram.observe`` takes a lock per update (~2 µs), and the
    socket stages are observed twice for every message to every socket."""

    def __init__(self, name: str, documentation: str, label: str | None = None) -> None:
        self.name, self.documentation, self.label = name, documentation, label
        self.series: dict[str, _Series] = {}
        REGISTRY.register(self)

    def labels(self, value: str) -> _Series:
        return self.series.setdefault(value, _Series())

    def observe(self, seconds: float) -> None:
        self.labels("").observe(seconds)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=[self.label] if self.label else None)
        bounds = [*(str(bound) for bound in _BUCKETS), "+Inf"]
        for value, series in list(self.series.items()):
            cumulative = list(accumulate(series.counts[:-1]))
            family.add_metric(
                [value] if self.label else [], list(zip(bounds, cumulative, strict=True)), series.counts[-1]
            )
        yield family


ACTION_STAGE = _Histograms(
    "tablium_lobby_action_stage_seconds",
    "A player's action, stage by stage: lock (waiting for the table's runner), decide (the engine and the"
    " messages), lane (waiting for a statement connection), statement (the commit), publish (delivery to"
    " the sockets' queues)",
    "stage",
)
SOCKET_STAGE = _Histograms(
    "tablium_lobby_socket_stage_seconds",
    "A table message to one socket: queue (waiting behind the socket's earlier messages), send (the write)",
    "stage",
)
LOOP_LAG = _Histograms("tablium_lobby_loop_lag_seconds", "How late the event loop woke a 50 ms sleep")
_LOCK, _DECIDE, _LANE, _STATEMENT, _PUBLISH = (
    ACTION_STAGE.labels(stage) for stage in ("lock", "decide", "lane", "statement", "publish")
)
QUEUED, SENT = SOCKET_STAGE.labels("queue"), SOCKET_STAGE.labels("send")

# The bench's trace (None: off): records waiting for the next flush.
_trace: list[tuple[Any, ...]] | None = None


class ActionClock:
    """The instants (``time.time()``) one action passed through; 0.0 where it did not (a locked path)."""

    __slots__ = ("committed", "decided", "lane", "locked", "path", "published", "received")

    def __init__(self, received: float) -> None:
        self.received = received
        self.locked = self.decided = self.lane = self.committed = self.published = 0.0
        self.path = "hot"


def action_done(clock: ActionClock, table_id: uuid.UUID, seq: int) -> None:
    """The action at ``seq`` was committed and delivered to this process's sockets' queues."""
    clock.published = time.time()
    _LOCK.observe(clock.locked - clock.received)
    if clock.path == "hot":
        _DECIDE.observe(clock.decided - clock.locked)
        _LANE.observe(clock.lane - clock.decided)
        _STATEMENT.observe(clock.committed - clock.lane)
    _PUBLISH.observe(clock.published - clock.committed)
    if _trace is not None:
        _trace.append(
            ("a", str(table_id), seq, clock.path, clock.received, clock.locked, clock.decided, clock.lane,
             clock.committed, clock.published)
        )  # fmt: skip


def tracing() -> bool:
    return _trace is not None


def socket_written(table_id: uuid.UUID, seq: int, player: str, queued: float, began: float, ended: float) -> None:
    """An ``action-broadcast`` at ``seq`` was written to ``player``'s socket (the trace only)."""
    if _trace is not None:
        _trace.append(("w", str(table_id), seq, player, queued, began, ended))


async def run(path: str | None, interval_s: float = 0.05) -> None:
    """Forever: sample the loop's lag; with a trace file, flush the trace to it every second."""
    global _trace
    if path:
        _trace = []
    loop = asyncio.get_running_loop()
    flushed = loop.time()
    while True:
        before = loop.time()
        await asyncio.sleep(interval_s)
        now = loop.time()
        lag = max(0.0, now - before - interval_s)
        LOOP_LAG.observe(lag)
        if path and _trace is not None:
            _trace.append(("l", time.time(), lag))
            if now - flushed >= 1.0:
                flushed = now
                records, _trace = _trace, []
                with contextlib.suppress(OSError), open(path, "ab") as out:  # noqa: ASYNC230 - bench only, small
                    out.write(msgspec.json.encode(records) + b"\n")
