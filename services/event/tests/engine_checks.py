"""Invariants of the engine, checked after every fact in the property and scenario tests."""

from __future__ import annotations

from tablium_event.domain.engine import Tournament
from tablium_event.domain.simulator import TableRunner


def check_invariants(tournament: Tournament, runner: TableRunner | None = None) -> None:
    entries = tournament.entries
    seen: dict[int, tuple[int, int]] = {}
    for table in tournament.tables.values():
        for seat, entry_id in enumerate(table.seats):
            if entry_id is None:
                continue
            assert entry_id not in seen, f"entry {entry_id} seated twice"
            seen[entry_id] = (table.id, seat)
            entry = entries[entry_id]
            assert not entry.busted
            assert (entry.table, entry.seat) == (table.id, seat)
        assert table.n == sum(1 for e in table.seats if e is not None)
        for seat, entry_id in table.reserved.items():
            assert table.seats[seat] is None, "a reserved seat is occupied"
            source = tournament.tables[entries[entry_id].table]
            assert source.outgoing[entry_id] == (table.id, seat)
        for entry_id, (to_table, to_seat) in table.outgoing.items():
            assert entries[entry_id].table == table.id
            assert tournament.tables[to_table].reserved[to_seat] == entry_id
            assert table.in_hand, "a move is waiting at a table that is between hands"
    live = {e.id for e in entries.values() if not e.busted}
    assert set(seen) == live, "a live player is not seated, or a busted one is"
    assert tournament.remaining == len(live)
    keys = sorted(t.key() for t in tournament.tables.values() if not t.breaking)
    assert list(tournament.order) == keys, "the balance index is stale"
    # The movers index, rebuilt from scratch: each open table's candidate [11A] (not locked, not leaving)
    # with how often they moved. The pick over it is exact only if it is never stale.
    movers = []
    for table in tournament.tables.values():
        key = tournament.balancing.mover_key(table)
        if not table.breaking and key is not None:
            movers.append(key)
    assert list(tournament.movers) == sorted(movers), "the movers index is stale"
    if tournament.status == "running" and len(keys) > 1:
        spread = keys[-1][0] - keys[0][0]
        assert spread <= tournament.tolerance, f"tables {keys[0]} and {keys[-1]} differ by {spread}"
    if runner is not None:
        assert runner.where == seen, "the table runner's picture differs from the engine's"
        assert runner.moves_mid_hand == 0


def check_finished(tournament: Tournament) -> None:
    """Places unique and complete (ties share a range); prize money left the pool exactly once."""
    total = len(tournament.entries)
    covered: list[int] = []
    ranges: dict[tuple[int, int], int] = {}
    for entry in tournament.entries.values():
        assert entry.place >= 1, f"entry {entry.id} has no place"
        ranges[(entry.place, entry.place_to)] = ranges.get((entry.place, entry.place_to), 0) + 1
    for (first, last), members in ranges.items():
        assert members == last - first + 1, f"places {first}-{last} shared by {members}"
        covered.extend(range(first, last + 1))
    assert sorted(covered) == list(range(1, total + 1))
    assert tournament.prizes_paid == tournament.prize_pool
    assert sum(e.prize for e in tournament.entries.values()) == tournament.prize_pool
