"""Prize pool, payout tables, tie splits, ICM and chip-chop deals. Integers and exact fractions only.

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


# Fixed-point arithmetic for the payout curve: integers scaled by 2^FRACTION_BITS. Every operation below
# is on Python integers (or Fractions), so a payout table is the same on every machine and every
# replay: no float, no libm (a float ``log10`` or ``**`` may round differently on another platform).
FRACTION_BITS = 32
ONE = 1 << FRACTION_BITS
# log10(2), truncated to 15 decimals: a constant of the rule, not a computation.
LOG10_2 = Fraction(301_029_995_663_981, 10**15)


def log2_fixed(n: int) -> int:
    """log2(n) of a positive integer in fixed point, rounded down (bit by bit: square the mantissa)."""
    whole = n.bit_length() - 1
    mantissa = (n << FRACTION_BITS) >> whole  # in [1, 2), fixed point
    fraction = 0
    for bit in range(FRACTION_BITS - 1, -1, -1):
        mantissa = (mantissa * mantissa) >> FRACTION_BITS
        if mantissa >= 2 * ONE:
            mantissa >>= 1
            fraction |= 1 << bit
    return (whole << FRACTION_BITS) | fraction


def auto_first_share(entries: int) -> Fraction:
    """The winner's share of the pool: ~30% at 100 entries, falling to 12% from ~1,930 entries on
    (30% - 14% · log10(entries / 100), the logarithm in fixed point); 40% down to 30% below 100."""
    if entries <= 100:
        return min(Fraction(2, 5), Fraction(3, 10) + Fraction(100 - entries, 900))
    log10 = Fraction(log2_fixed(entries) - log2_fixed(100), ONE) * LOG10_2
    return max(Fraction(3, 25), Fraction(3, 10) - Fraction(7, 50) * log10)


def exact(value: float | int) -> Fraction:
    """A configured ratio (JSON gives floats) as the decimal it was written as: 0.15 is 15/100."""
    return Fraction(str(value))


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
    min_cash = _min_cash(pool, entries, buy_in, rule)
    paid = max(1, min(math.ceil(entries * exact(rule.paid_fraction)), pool // min_cash, entries))
    if paid <= 3:
        return _from_shares(pool, SMALL_FIELD_SHARES[paid])
    first_share = exact(rule.first_share) if rule.first_share is not None else auto_first_share(entries)
    places = tiers(paid)
    weights = _chain_weights(pool, paid, min_cash, first_share, places)
    total = sum(weight * (last - first + 1) for weight, (first, last) in zip(weights, places, strict=True))
    extra = pool - paid * min_cash
    amounts: list[int] = []
    unit = max(1, rule.round_to)
    ceiling = pool
    for k, ((first, last), weight) in enumerate(zip(places, weights, strict=True)):
        # min_cash + extra · w_k / Σw, rounded down to the unit, exactly; places 2-9 to a round amount.
        step = _round_step(unit, min_cash + extra * weight // total) if 1 <= k <= 8 else unit
        amount = min(ceiling, (min_cash * total + extra * weight) // (total * step) * step)
        amounts.extend([amount] * (last - first + 1))
        ceiling = amount
    amounts[0] += pool - sum(amounts)
    return amounts


def _round_step(unit: int, amount: int) -> int:
    """The unit a top place is rounded down to: ``unit`` times the power of ten that leaves it three
    significant figures (144,747 -> 144,000; 19,044 -> 19,000), never less than ``unit``."""
    step = unit
    while step * 1_000 <= amount:
        step *= 10
    return step


# The curve (rules version 5): from one tier to the next, the amount above the min cash falls by a
# fraction q_k of itself. q_2 = steepness · 6/5 (second place), q_k = max(1/50, steepness - 19/1000 · (k - 1))
# after it: the falls shrink tier by tier and the table flattens towards the min cash, as in
# TOURNAMENT.md's 1,710-entry example (fitted: every listed place within 2%). The steepness is solved so
# that first place gets ``first_share``; the last tier is the min cash.
CHAIN_GAP = (6, 5)
CHAIN_SLOPE = 19 * ONE // 1_000
CHAIN_FLOOR = ONE // 50
CHAIN_CAP = 95 * ONE // 100
STEEPNESS_BITS = 16


def _chain(steepness: int, count: int) -> list[int]:
    """Each tier's weight above the last tier's (fixed point), for a steepness in units of 2^-16."""
    q_first = (steepness << (FRACTION_BITS - STEEPNESS_BITS)) * CHAIN_GAP[0] // CHAIN_GAP[1]
    level = steepness << (FRACTION_BITS - STEEPNESS_BITS)
    weights = [ONE]
    for k in range(1, count):
        fall = q_first if k == 1 else max(CHAIN_FLOOR, level - CHAIN_SLOPE * (k - 1))
        weights.append(weights[-1] * (ONE - min(fall, CHAIN_CAP)) >> FRACTION_BITS)
    return [weight - weights[-1] for weight in weights]


def _chain_weights(
    pool: int, paid: int, min_cash: int, first_share: Fraction, places: list[tuple[int, int]]
) -> list[int]:
    """The weights of the smallest steepness (a multiple of 2^-16 in [0, 0.95]) for which first place
    (min_cash + extra · w_1 / Σw) gets at least ``first_share`` of the pool; the steepest if none does."""
    extra = pool - paid * min_cash
    sizes = [last - first + 1 for first, last in places]

    def first_reaches_share(steepness: int) -> bool:
        w = _chain(steepness, len(places))
        total = sum(weight * size for weight, size in zip(w, sizes, strict=True))
        return total > 0 and (min_cash * total + extra * w[0]) >= first_share * pool * total

    low, high = 0, 95 * (1 << STEEPNESS_BITS) // 100
    if first_reaches_share(low):
        return _chain(low, len(places))
    while high - low > 1:  # first place's amount grows with the steepness
        middle = (low + high) // 2
        if first_reaches_share(middle):
            high = middle
        else:
            low = middle
    return _chain(high, len(places))


def _check_shares(shares_bp: tuple[int, ...]) -> None:
    if sum(shares_bp) != 10_000 or any(share < 0 for share in shares_bp):
        raise TournamentRuleError("payout shares must be non-negative and sum to 10,000 basis points")


def _from_shares(pool: int, shares_bp: tuple[int, ...]) -> list[int]:
    """``pool`` cut in proportion to ``shares_bp`` (rounded down; the remainder to first place)."""
    total = sum(shares_bp)
    amounts = [pool * share // total for share in shares_bp] if total else [0] * len(shares_bp)
    amounts[0] += pool - sum(amounts)
    return amounts


def _min_cash(pool: int, entries: int, buy_in: int, rule: PayoutRule) -> int:
    reference = buy_in if buy_in > 0 else pool // entries
    return max(1, math.ceil(exact(rule.min_cash_multiple) * reference))


def places_paid(pool: int, entries: int, buy_in: int, rule: PayoutRule) -> int:
    """How many places ``payout_table`` pays, without computing their amounts (cheap in any field)."""
    if pool <= 0 or entries <= 0:
        return 0
    if rule.fixed_bp is not None:
        return len(_from_shares(pool, rule.fixed_bp[:entries]))
    if entries <= 10:
        return len(SMALL_FIELD_SHARES[1 if entries <= 4 else 2 if entries <= 7 else 3])
    min_cash = _min_cash(pool, entries, buy_in, rule)
    paid = max(1, min(math.ceil(entries * exact(rule.paid_fraction)), pool // min_cash, entries))
    return len(SMALL_FIELD_SHARES[paid]) if paid <= 3 else paid


def satellite_places_paid(pool: int, seat_value: int, entries: int) -> int:
    """How many places ``satellite_table`` pays (seats, and the next place's cash remainder)."""
    return len(satellite_table(pool, seat_value, entries))


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
