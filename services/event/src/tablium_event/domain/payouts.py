"""Prize pool, payout tables, tie splits, ICM and chip-chop deals. Integers only.

Rounding rule (one rule everywhere): every amount is rounded *down*, and what rounding
leaves over goes to a stated place — first place for a payout table, the members of a
tie (in entry order) one unit each for a split, the largest fractional parts for a deal.
So every distribution sums exactly to the amount distributed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from tablium_event.domain.config import PayoutRule, TournamentRuleError

# Places 1-9 are paid one by one, then in tiers of these sizes (10-11, 12-13, 14-17, 18-26, ...).
TIER_SIZES = (2, 2, 4, 9, 9, 9, 9, 9, 18, 18, 18, 18, 27, 27, 27, 27, 45, 45, 45, 45, 90, 90, 90, 90)
SMALL_FIELD_SHARES: dict[int, tuple[int, ...]] = {1: (10_000,), 2: (6_500, 3_500), 3: (5_000, 3_000, 2_000)}


@dataclass(frozen=True, slots=True)
class PrizePool:
    collected: int
    overlay: int

    @property
    def total(self) -> int:
        return self.collected + self.overlay


def prize_pool(*, entries: int, buy_in: int, guarantee: int = 0, extra: int = 0) -> PrizePool:
    """Buy-ins of every entry (re-entries included) plus rebuys/add-ons; a guarantee tops it up."""
    collected = entries * buy_in + extra
    return PrizePool(collected=collected, overlay=max(0, guarantee - collected))


def split_evenly(amount: int, parts: int) -> list[int]:
    """``amount`` in ``parts`` integer shares; the first ``amount % parts`` get one unit more."""
    base, rest = divmod(amount, parts)
    return [base + (1 if i < rest else 0) for i in range(parts)]


def auto_first_share(entries: int) -> float:
    """The winner's share of the pool: ~30% at 100 entries, falling to 12% from ~1,700 entries on."""
    if entries <= 100:
        return min(0.40, 0.30 + 0.10 * (100 - entries) / 90)
    return max(0.12, 0.30 - 0.14 * math.log10(entries / 100))


def tiers(paid: int) -> list[tuple[int, int]]:
    """Place ranges (first, last), 1-based, sharing one amount."""
    result = [(place, place) for place in range(1, min(paid, 9) + 1)]
    place = 10
    sizes = iter(TIER_SIZES)
    while place <= paid:
        size = next(sizes, 180)
        last = min(paid, place + size - 1)
        result.append((place, last))
        place = last + 1
    return result


def payout_table(pool: int, entries: int, buy_in: int, rule: PayoutRule) -> list[int]:
    """Amount per place (index 0 = first place); sums exactly to ``pool``; never increasing."""
    if pool <= 0 or entries <= 0:
        return []
    if rule.fixed_bp is not None:
        _check_shares(rule.fixed_bp)
        # A field smaller than the table pays only the places it has; the shares of the others are
        # spread over those in proportion (rounded down, remainder to first), so the whole pool is paid.
        return _from_shares(pool, rule.fixed_bp[:entries])
    if entries <= 10:
        paid = 1 if entries <= 4 else 2 if entries <= 7 else 3
        return _from_shares(pool, SMALL_FIELD_SHARES[paid])
    reference = buy_in if buy_in > 0 else pool // entries
    min_cash = max(1, math.ceil(rule.min_cash_multiple * reference))
    paid = max(1, min(math.ceil(entries * rule.paid_fraction), pool // min_cash, entries))
    if paid <= 3:
        return _from_shares(pool, SMALL_FIELD_SHARES[paid])
    first_share = rule.first_share if rule.first_share is not None else auto_first_share(entries)
    raw = _curve(pool, paid, min_cash, first_share)
    amounts: list[int] = []
    unit = max(1, rule.round_to)
    ceiling = pool
    for first, last in tiers(paid):
        mean = sum(raw[first - 1 : last]) / (last - first + 1)
        amount = min(ceiling, int(mean // unit) * unit)
        amounts.extend([amount] * (last - first + 1))
        ceiling = amount
    amounts[0] += pool - sum(amounts)
    return amounts


def _curve(pool: int, paid: int, min_cash: int, first_share: float) -> list[float]:
    """min_cash + extra * w_i, w_i = i^-a - paid^-a, with ``a`` chosen so first place gets ``first_share``."""
    extra = pool - paid * min_cash

    def amounts(alpha: float) -> list[float]:
        floor = paid**-alpha
        weights = [i**-alpha - floor for i in range(1, paid + 1)]
        total = sum(weights)
        return [min_cash + extra * w / total for w in weights]

    target = first_share * pool
    low, high = 0.05, 6.0
    for _ in range(50):
        middle = (low + high) / 2
        if amounts(middle)[0] < target:
            low = middle
        else:
            high = middle
    return amounts((low + high) / 2)


def _check_shares(shares_bp: tuple[int, ...]) -> None:
    if sum(shares_bp) != 10_000 or any(share < 0 for share in shares_bp):
        raise TournamentRuleError("payout shares must be non-negative and sum to 10,000 basis points")


def _from_shares(pool: int, shares_bp: tuple[int, ...]) -> list[int]:
    """``pool`` cut in proportion to ``shares_bp`` (rounded down; the remainder to first place)."""
    total = sum(shares_bp)
    amounts = [pool * share // total for share in shares_bp] if total else [0] * len(shares_bp)
    amounts[0] += pool - sum(amounts)
    return amounts


def satellite_table(pool: int, seat_value: int, entries: int) -> list[int]:
    """Satellites: as many seats as the pool buys (at most one per entry), the remainder in cash to the
    next place, or to first place when every entry wins a seat."""
    seats = min(pool // seat_value, entries)
    rest = pool - seats * seat_value
    if seats == entries and seats:
        return [seat_value + rest] + [seat_value] * (seats - 1)
    return [seat_value] * seats + ([rest] if rest else [])


def split_places(amounts: list[int], first_place: int, last_place: int, members: int) -> list[int]:
    """Players tied over places first..last share those places' prizes (rounding: one unit each, in order)."""
    total = sum(amounts[first_place - 1 : last_place]) if first_place <= len(amounts) else 0
    return split_evenly(total, members)


def _largest_remainder(total: int, weights: list[Fraction]) -> list[int]:
    """Integer shares of ``total`` proportional to ``weights`` (which sum to 1), summing exactly."""
    exact = [total * w for w in weights]
    floors = [math.floor(x) for x in exact]
    rest = total - sum(floors)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:rest]:
        floors[i] += 1
    return floors


def icm_equities(stacks: list[int], prizes: list[int]) -> list[Fraction]:
    """Malmuth-Harville: P(i finishes k-th) from stack shares; returns each player's exact equity."""
    players = len(stacks)
    if players > 12:
        raise TournamentRuleError("ICM is offered for at most 12 players")
    if any(stack <= 0 for stack in stacks):
        raise TournamentRuleError("ICM needs positive stacks")
    prizes = (prizes + [0] * players)[:players]
    equity = [Fraction(0)] * players
    # reach[mask]: probability that exactly the players in ``mask`` took the top places.
    reach: dict[int, Fraction] = {0: Fraction(1)}
    for mask in sorted(range(1 << players), key=int.bit_count):
        probability = reach.get(mask)
        if probability is None:
            continue
        place = mask.bit_count()
        if place == players:
            continue
        left = [i for i in range(players) if not mask >> i & 1]
        chips = sum(stacks[i] for i in left)
        for i in left:
            p = probability * Fraction(stacks[i], chips)
            equity[i] += p * prizes[place]
            reach[mask | 1 << i] = reach.get(mask | 1 << i, Fraction(0)) + p
    return equity


def icm_deal(stacks: list[int], prizes: list[int]) -> list[int]:
    """ICM deal amounts for the remaining prizes; sums exactly to ``sum(prizes[:len(stacks)])``."""
    total = sum(prizes[: len(stacks)])
    equities = icm_equities(stacks, prizes)
    return _largest_remainder(total, [e / total for e in equities]) if total else [0] * len(stacks)


def chip_chop_deal(stacks: list[int], prizes: list[int]) -> list[int]:
    """Everyone locks up the lowest remaining prize; the rest is split in proportion to chips."""
    players = len(stacks)
    remaining = (prizes + [0] * players)[:players]
    floor = remaining[-1]
    extra = sum(remaining) - floor * players
    chips = sum(stacks)
    if chips <= 0:
        raise TournamentRuleError("a chip chop needs chips in play")
    shares = _largest_remainder(extra, [Fraction(stack, chips) for stack in stacks])
    return [floor + share for share in shares]
