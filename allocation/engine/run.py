"""The allocation run: ranks open lines and hands them supply (allocation.md).

Pure Python over the frozen values of :mod:`allocation.engine.types`; no Django.
A run goes item group by item group (groups are independent): fixed allocations
are consumed first, ``gain`` lines keep what they held, then every unit (a line,
or a ship-complete order) takes free supply in rank order up to its strategy's
ceiling. When a unit that kept supply ends up with nothing (``allow_partial =
false`` or a blocked ship-complete order), its group is re-run without those
keeps, so the supply it gave back is free for every line in rank order. An
all-or-nothing unit that greedy sourcing leaves short gets a second chance on
the smallest candidate-location sets that can cover it, so a re-run on
unchanged inputs changes nothing.

What the machine does per line is kept to what the answer needs:

- **Exact integers.** Quantities are ``Decimal`` at the boundary. Inside a run they are
  integers in units of ``10 ** -places``, where ``places`` is the fewest decimal places
  that represent every input quantity exactly (0 for whole units), so sums, differences
  and comparisons are exact and cheap; decisions convert back to ``Decimal``.
- **Explanations as facts.** A decision records its supply path, constraints and
  exception numbers as small tuples; text is rendered only when read
  (:mod:`allocation.engine.explain`).
- **Shared work.** Policy-derived settings are resolved once per settings object, the
  sourcing sequence once per (item, candidate locations, substitutes, confidence,
  requested date), and units that can take nothing skip sourcing.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import math
from bisect import bisect_right
from datetime import date
from decimal import Decimal

from allocation.engine.explain import FIXED, KEPT, PROPOSED, SUBSTITUTE, fmt_quantity, scope_text
from allocation.engine.groups import item_groups
from allocation.engine.scoring import _LOG_VALUE_CAP, STRATEGY_INDEX, _clip, _weight_vector
from allocation.engine.types import (
    AllocationDecision,
    EngineInput,
    EngineResult,
    ExistingAllocation,
    Line,
    LineDecision,
    Protection,
    Quota,
    RaisedException,
)

__all__ = ["allocate", "fmt_quantity", "line_dimensions", "period_key", "scope_text"]

ZERO = Decimal(0)
# Shared by the lines that hold nothing: never written (a line's own containers are made
# when it holds something).
_NOTHING_HELD: dict = {}
_NOTHING_FIXED: list = []
FIXED_STATES = frozenset({"released", "pinned"})
RESERVED_STATES = frozenset({"reserved", "released", "pinned"})
_HUNDRED = Decimal(100)
_new_tuple = tuple.__new__

PoolKey = tuple[str, str, str | None]  # (item, location, supply ref or None for on-hand)
QuotaKey = tuple[int, str]  # (quota index, period key)


def period_key(period: str, day: date) -> str:
    """The quota period a requested date falls in: ``2026-06-03``, ``2026-W23`` or ``2026-06``."""
    if period == "day":
        return day.isoformat()
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{day.year}-{day.month:02d}"
    raise ValueError(f"unknown quota period {period!r}")


def line_dimensions(line: Line) -> dict[str, str | None]:
    """The values a line has for each scope dimension of policies-v1."""
    return {
        "customer": line.customer,
        "customer_segment": line.customer_segment,
        "customer_tier": str(line.customer_tier),
        "channel": line.channel,
        "item": line.item,
        "item_class": line.item_class,
        "location": line.ship_from or line.home_location,
        "region": line.customer_region,
    }


# -- exact scaled quantities ---------------------------------------------------------------


def _places_of(value: Decimal) -> int:
    """The fewest decimal places that write ``value`` exactly (``60.000`` → 0, ``2.50`` → 1)."""
    _sign, digits, exponent = value.as_tuple()
    if exponent in ("n", "N", "F"):
        raise ValueError(f"quantity {value!r} is not a finite number")
    while exponent < 0 and len(digits) > 1 and digits[-1] == 0:
        digits = digits[:-1]
        exponent += 1
    if exponent < 0 and digits == (0,):
        return 0
    return -exponent if exponent < 0 else 0


class _Scale:
    """Decimal ↔ scaled integer conversions of one run (exact, memoised per distinct value)."""

    __slots__ = ("factor", "places", "to_decimal", "to_units")

    def __init__(self, values: dict[Decimal, None]) -> None:
        self.places = max((_places_of(value) for value in values), default=0)
        self.factor = 10 ** self.places
        places = self.places
        if places:
            self.to_units = {value: int(value.scaleb(places)) for value in values}
        else:
            self.to_units = {value: int(value) for value in values}
        self.to_decimal: dict[int, Decimal] = {}

    def decimal(self, units: int) -> Decimal:
        found = self.to_decimal.get(units)
        if found is None:
            found = Decimal(units).scaleb(-self.places) if self.places else Decimal(units)
            self.to_decimal[units] = found
        return found


# -- supply -------------------------------------------------------------------------------


class _ProtectedStock:
    """The part of one on-hand pool a protection holds for matching lines."""

    __slots__ = ("index", "initial", "protection", "remaining", "scope")

    def __init__(self, protection: Protection, initial: int) -> None:
        self.protection = protection
        self.index = protection.index
        self.scope = protection.scope
        self.initial = initial
        self.remaining = initial


class _Pool:
    """One supply element: on-hand of an item at a location, or one inbound ref."""

    __slots__ = (
        "confidence",
        "eta",
        "fact",
        "free",
        "inbound",
        "initial_free",
        "item",
        "key",
        "location",
        "protected",
        "ref",
    )

    def __init__(
        self, item: str, location: str, ref: str | None, quantity: int,
        eta: date | None = None, confidence: float = 1.0,
    ) -> None:
        self.key: PoolKey = (item, location, ref)
        self.item = item
        self.location = location
        self.ref = ref
        self.eta = eta
        self.confidence = confidence
        self.inbound = ref is not None
        self.initial_free = quantity
        self.free = quantity
        self.protected: list[_ProtectedStock] | None = None
        self.fact = (item, location, ref, eta)  # what a path entry names

    def reset(self) -> None:
        self.free = self.initial_free
        if self.protected is not None:
            for stock in self.protected:
                stock.remaining = stock.initial


class _Sequence:
    """A line's supply pools in sourcing order, flattened, with the confidence checks of
    its inbound steps: ``checks`` holds ``(start, pools below the line's confidence)`` for
    each step that has such pools, ``start`` being the position of the step's first pool.
    A step is reached once the line asks for the pool at its start (or runs out)."""

    __slots__ = ("checks", "pools")

    def __init__(self, pools: list[_Pool], checks: list[tuple[int, list[_Pool]]]) -> None:
        self.pools = pools
        self.checks = checks


class _Settings:
    """What a run derives from one ``LineSettings`` value, shared by every line that has it."""

    __slots__ = (
        "allow_partial",
        "allow_substitutes",
        "horizon",
        "margin_floor_pct",
        "max_split",
        "min_confidence",
        "needs_approval",
        "priority_class",
        "strategy",
        "tolerance_days",
        "weights",
    )

    def __init__(self, settings) -> None:
        self.weights = _weight_vector(settings.weights)
        self.strategy = settings.strategy
        self.priority_class = settings.priority_class
        self.horizon = settings.urgency_horizon_days
        self.min_confidence = settings.inbound_min_confidence
        self.max_split = settings.max_split_locations
        self.allow_substitutes = settings.allow_substitutes
        self.needs_approval = settings.substitute_needs_approval
        self.allow_partial = settings.allow_partial
        self.margin_floor_pct = settings.margin_floor_pct
        self.tolerance_days = settings.promise_risk_tolerance_days


class _LineState:
    """Everything a run tracks for one line while it allocates (quantities in units)."""

    __slots__ = (
        "allowed_locations",
        "candidates",
        "ceiling",
        "dimensions",
        "existing",
        "fixed",
        "fixed_quantity",
        "held",
        "held_before",
        "held_sequence",
        "key",
        "line",
        "locations",
        "low_confidence",
        "match_cache",
        "max_split",
        "min_confidence",
        "needs_approval",
        "notes",
        "plain",
        "prefer_held",
        "protections_blocked",
        "quantity",
        "quota_cache",
        "quotas_blocked",
        "rank",
        "score",
        "settings",
        "split_blocked",
        "strategy",
        "substitute_reserved",
        "substitutes_allowed",
        "taken",
        "takes",
        "total",
        "unit_blocked",
        "values",
    )

    def start(self) -> None:
        """Reset what this run took (fixed allocations always count)."""
        self.total = self.fixed_quantity
        self.takes = []
        if self.held:
            self.taken = {}
        self.locations = {alloc.location for alloc in self.fixed} if self.fixed else set()
        self.split_blocked = False
        # Explanations are rare: their containers are made on first use.
        self.protections_blocked = None
        self.quotas_blocked = None
        self.low_confidence = None
        self.notes = None
        self.unit_blocked = None
        self.prefer_held = True
        self.allowed_locations = None

    def note(self, fact: tuple) -> None:
        if self.notes is None:
            self.notes = []
        self.notes.append(fact)

    def matches(self, protection_index: int, scope: tuple[tuple[str, str], ...]) -> bool:
        match_cache = self.match_cache
        if match_cache is None:
            match_cache = self.match_cache = {}
        cached = match_cache.get(protection_index)
        if cached is None:
            if self.dimensions is None:
                self.dimensions = line_dimensions(self.line)
            dimensions = self.dimensions
            cached = all(dimensions.get(name) == value for name, value in scope)
            match_cache[protection_index] = cached
        return cached


class _Run:
    """Supply pools, memoised sourcing lists and quota counters shared by a run."""

    def __init__(self, inp: EngineInput, scale_values: dict[Decimal, None]) -> None:
        self.as_of = inp.as_of
        self.locations = tuple(sorted(set(inp.locations)))
        self.item_class: dict[str, str] = {item.sku: item.item_class for item in inp.items}
        for line in inp.lines:
            self.item_class.setdefault(line.item, line.item_class)
        self.substitutes: dict[str, tuple[str, ...]] = {
            item.sku: item.substitutes for item in inp.items if item.substitutes
        }
        lanes_by_region: dict[str, dict[str, tuple]] = {}
        for lane in inp.lanes:
            sort_key = (lane.transit_days, lane.cost_per_unit, lane.location)
            current = lanes_by_region.setdefault(lane.region, {}).get(lane.location)
            if current is None or sort_key < current:
                lanes_by_region[lane.region][lane.location] = sort_key
        self.lane_order: dict[str, tuple[str, ...]] = {
            region: tuple(location for location, _ in sorted(by_location.items(), key=lambda kv: kv[1]))
            for region, by_location in lanes_by_region.items()
        }
        # Every quantity the run computes with, so one exact scale fits them all.
        keep = (_HUNDRED - Decimal(str(inp.stale_feed_buffer_pct))) / _HUNDRED
        on_hand_totals: dict[tuple[str, str], Decimal] = {}
        for row in inp.on_hand:
            available = row.available if row.available > 0 else ZERO
            if row.stale:
                available = available * keep
            pair = (row.item, row.location)
            on_hand_totals[pair] = on_hand_totals.get(pair, ZERO) + available
        for available in on_hand_totals.values():
            scale_values[available] = None
        for row in inp.inbound:
            scale_values[row.quantity] = None
        for protection in inp.protections:
            scale_values[protection.quantity] = None
        for quota in inp.quotas:
            scale_values[quota.quantity] = None
        self.scale = scale = _Scale(scale_values)
        units = scale.to_units
        self.pools: dict[PoolKey, _Pool] = {}
        self.pools_by_item: dict[str, list[_Pool]] = {}
        self.inbound_by_item: dict[str, list[_Pool]] = {}
        for (item, location), available in on_hand_totals.items():
            pool = _Pool(item, location, None, units[available])
            self.pools[pool.key] = pool
            self.pools_by_item.setdefault(item, []).append(pool)
        for row in inp.inbound:
            if row.quantity <= 0:
                continue
            key = (row.item, row.location, row.ref)
            existing_pool = self.pools.get(key)
            if existing_pool is not None:
                existing_pool.initial_free += units[row.quantity]
                existing_pool.free = existing_pool.initial_free
                continue
            pool = _Pool(row.item, row.location, row.ref, units[row.quantity], row.eta, row.confidence)
            self.pools[key] = pool
            self.pools_by_item.setdefault(row.item, []).append(pool)
            self.inbound_by_item.setdefault(row.item, []).append(pool)
        for pools in self.inbound_by_item.values():
            pools.sort(key=lambda pool: (pool.eta, pool.ref))
        for protection in sorted(inp.protections, key=lambda p: p.index):
            pool = self.pools.get((protection.sku, protection.location, None))
            if pool is None or protection.quantity <= 0:
                continue
            held = min(units[protection.quantity], pool.initial_free)
            pool.initial_free -= held
            pool.free = pool.initial_free
            if pool.protected is None:
                pool.protected = []
            pool.protected.append(_ProtectedStock(protection, held))
        self.quotas: tuple[Quota, ...] = tuple(sorted(inp.quotas, key=lambda q: q.index))
        self.quota_quantity: dict[int, int] = {quota.index: units[quota.quantity] for quota in self.quotas}
        self.quota_period: dict[int, str] = {quota.index: quota.period for quota in self.quotas}
        self.quota_remaining: dict[QuotaKey, int] = {}
        self.candidate_memo: dict[tuple, tuple[str, ...]] = {}
        self.on_hand_memo: dict[tuple, list[_Pool]] = {}
        self.inbound_memo: dict[tuple, list[_Pool]] = {}
        self.sequence_memo: dict[tuple, tuple[list[date], dict[int, _Sequence]]] = {}

    # -- sourcing lists -------------------------------------------------------------------

    def candidates(self, line: Line) -> tuple[str, ...]:
        memo_key = (line.ship_from, line.customer_region, line.home_location)
        found = self.candidate_memo.get(memo_key)
        if found is None:
            if line.ship_from:
                found = (line.ship_from,)
            else:
                order = self.lane_order.get(line.customer_region) or self.locations
                home = line.home_location
                if home and home in order:
                    found = (home, *(location for location in order if location != home))
                else:
                    found = tuple(order)
            self.candidate_memo[memo_key] = found
        return found

    def on_hand_list(self, item: str, candidates: tuple[str, ...]) -> list[_Pool]:
        memo_key = (item, candidates)
        found = self.on_hand_memo.get(memo_key)
        if found is None:
            pools = self.pools
            found = [pools[(item, location, None)] for location in candidates
                     if (item, location, None) in pools]
            self.on_hand_memo[memo_key] = found
        return found

    def inbound_list(self, item: str, candidates: tuple[str, ...]) -> list[_Pool]:
        memo_key = (item, candidates)
        found = self.inbound_memo.get(memo_key)
        if found is None:
            position = {location: index for index, location in enumerate(candidates)}
            found = sorted(
                (pool for pool in self.inbound_by_item.get(item, ()) if pool.location in position),
                key=lambda pool: (pool.eta, position[pool.location], pool.ref),
            )
            self.inbound_memo[memo_key] = found
        return found

    def steps(self, state: _LineState) -> list[tuple[list[_Pool], list[_Pool]]]:
        """The steps of allocation.md's "Order of supply" for a line: ``(pools it may take
        from, inbound pools below its confidence)`` each."""
        item = state.line.item
        candidates = state.candidates
        requested = state.line.requested_date
        minimum = state.min_confidence

        def confident(pools: list[_Pool], on_time: bool) -> tuple[list[_Pool], list[_Pool]]:
            chosen, below = [], []
            for pool in pools:
                if (pool.eta <= requested) is not on_time:
                    continue
                (below if pool.confidence < minimum else chosen).append(pool)
            return chosen, below

        steps = [(self.on_hand_list(item, candidates), [])]
        inbound = self.inbound_list(item, candidates)
        if inbound:
            steps.append(confident(inbound, True))
        substitutes = self.substitutes.get(item, ()) if state.substitutes_allowed else ()
        for substitute in substitutes:
            steps.append((self.on_hand_list(substitute, candidates), []))
            substitute_inbound = self.inbound_list(substitute, candidates)
            if substitute_inbound:
                steps.append(confident(substitute_inbound, True))
        if inbound:
            steps.append(confident(inbound, False))
        for substitute in substitutes:
            substitute_inbound = self.inbound_list(substitute, candidates)
            if substitute_inbound:
                steps.append(confident(substitute_inbound, False))
        return steps

    def plain_sequence(self, state: _LineState) -> _Sequence:
        """The line's sourcing sequence with nothing it held in front (memoised).

        The requested date only decides which inbound is on time, so lines whose requested
        dates fall between the same two etas of the inbound they can use share a sequence."""
        line = state.line
        candidates = state.candidates
        substitutes = state.substitutes_allowed
        item = line.item
        memo_key = (item, candidates, substitutes, state.min_confidence)
        entry = self.sequence_memo.get(memo_key)
        if entry is None:
            etas = {pool.eta for pool in self.inbound_list(item, candidates)}
            if substitutes:
                for substitute in self.substitutes.get(item, ()):
                    etas.update(pool.eta for pool in self.inbound_list(substitute, candidates))
            entry = self.sequence_memo[memo_key] = (sorted(etas), {})
        etas, sequences = entry
        position = bisect_right(etas, line.requested_date) if etas else 0
        found = sequences.get(position)
        if found is None:
            found = sequences[position] = _flatten(self.steps(state), None)
        return found

    def sequence(self, state: _LineState) -> _Sequence:
        """The sequence :func:`_source` walks: what the line held first in each step while
        it prefers what it held (allocation.md: stability)."""
        if state.prefer_held and state.held:
            found = state.held_sequence
            if found is None:
                found = state.held_sequence = _flatten(self.steps(state), state.held)
            return found
        found = state.plain
        if found is None:
            found = state.plain = self.plain_sequence(state)
        return found

    # -- quotas -----------------------------------------------------------------------------

    def quota_keys(self, state: _LineState, item: str) -> tuple[QuotaKey, ...]:
        quota_cache = state.quota_cache
        if quota_cache is None:
            quota_cache = state.quota_cache = {}
        found = quota_cache.get(item)
        if found is None:
            if state.dimensions is None:
                state.dimensions = line_dimensions(state.line)
            dimensions = state.dimensions
            item_class = self.item_class.get(item)
            keys = []
            for quota in self.quotas:
                if quota.sku is not None and quota.sku != item:
                    continue
                if quota.item_class is not None and quota.item_class != item_class:
                    continue
                if all(dimensions.get(name) == value for name, value in quota.scope):
                    keys.append((quota.index, period_key(quota.period, state.line.requested_date)))
            found = tuple(keys)
            quota_cache[item] = found
        return found

    def quota_room(self, key: QuotaKey) -> int:
        remaining = self.quota_remaining.get(key)
        if remaining is None:
            remaining = self.quota_quantity[key[0]]
        return remaining if remaining > 0 else 0

    def quota_spend(self, key: QuotaKey, quantity: int) -> None:
        remaining = self.quota_remaining.get(key)
        if remaining is None:
            remaining = self.quota_quantity[key[0]]
        self.quota_remaining[key] = remaining - quantity


def _flatten(steps: list[tuple[list[_Pool], list[_Pool]]], held: dict[PoolKey, int] | None) -> _Sequence:
    """One list of the steps' pools; with ``held``, the pools a line holds come first in
    each step too (:func:`_source` takes what it held from them on that first visit)."""
    pools: list[_Pool] = []
    checks: list[tuple[int, list[_Pool]]] = []
    for step, below in steps:
        if below:
            checks.append((len(pools), below))
        if held:
            pools.extend(pool for pool in step if pool.key in held)
        pools.extend(step)
    return _Sequence(pools, checks)


def _check_confidence(state: _LineState, sequence: _Sequence, reached: int) -> None:
    """Record the inbound below the line's confidence in the steps it reached (those that
    still had supply when it got there; the line takes nothing from them, so "then" is now)."""
    for start, below in sequence.checks:
        if start > reached:
            break
        for pool in below:
            if pool.free > 0:
                if state.low_confidence is None:
                    state.low_confidence = {}
                state.low_confidence[pool.ref] = pool.confidence


def _available_to(state: _LineState, pool: _Pool) -> int:
    available = pool.free
    if pool.protected is not None:
        for stock in pool.protected:
            if stock.remaining > 0 and state.matches(stock.index, stock.scope):
                available += stock.remaining
    return available


def _take(run: _Run, state: _LineState, pool: _Pool, want: int, kept: bool) -> int:
    """Move up to ``want`` from ``pool`` to the line, within protections and quotas."""
    matched: list[_ProtectedStock] | None = None
    available = pool.free
    if pool.protected is not None:
        matched = []
        for stock in pool.protected:
            if stock.remaining <= 0:
                continue
            if state.matches(stock.index, stock.scope):
                matched.append(stock)
                available += stock.remaining
            else:
                if state.protections_blocked is None:
                    state.protections_blocked = {}
                state.protections_blocked[stock.index] = stock
    if available <= 0:
        return 0
    quantity = want if want < available else available
    quota_keys: tuple[QuotaKey, ...] = ()
    if run.quotas:
        quota_keys = run.quota_keys(state, pool.item)
        for key in quota_keys:
            room = run.quota_room(key)
            if room < quantity:
                quantity = room
                if state.quotas_blocked is None:
                    state.quotas_blocked = {}
                state.quotas_blocked[key] = None
        if quantity <= 0:
            return 0
    rest = quantity
    parts = None
    if matched:
        parts = []
        for stock in matched:
            part = stock.remaining if stock.remaining < rest else rest
            stock.remaining -= part
            parts.append((stock, part))
            rest -= part
            if rest <= 0:
                break
    pool.free -= rest
    for key in quota_keys:
        run.quota_spend(key, quantity)
    undo = (rest, parts, quota_keys, quantity)
    takes = state.takes
    # A take is (pool, quantity, state, kept, undo); ``undo`` is on the record that carries
    # the pool and quota deductions (a substitute take split into a reserved and a proposed
    # part carries them once).
    if state.needs_approval and pool.item != state.line.item:
        reserved_left = state.substitute_reserved.get(pool.key, 0)
        reserved = reserved_left if reserved_left < quantity else quantity
        if reserved > 0:
            state.substitute_reserved[pool.key] = reserved_left - reserved
            takes.append((pool, reserved, "reserved", kept, undo))
            undo = None
        if quantity > reserved:
            takes.append((pool, quantity - reserved, "proposed", kept, undo))
    else:
        takes.append((pool, quantity, "reserved", kept, undo))
    state.total += quantity
    if state.held:
        # Only read back for what a line held (its room there) and for limits, which are held too.
        taken = state.taken
        taken[pool.key] = taken.get(pool.key, 0) + quantity
    state.locations.add(pool.location)
    return quantity


def _source(run: _Run, state: _LineState, need: int, limits: dict[PoolKey, int] | None, kept: bool) -> None:
    """Take up to ``need`` in sourcing order; ``limits`` restricts the line to those
    pools and quantities (keeps, and lines on credit hold)."""
    sequence = run.sequence(state)
    pools = sequence.pools
    locations = state.locations
    max_split = state.max_split
    held = state.held if state.prefer_held and state.held else None
    allowed = state.allowed_locations
    if held is None and limits is None and allowed is None:
        # The common case: free supply, in sourcing order, within the split limit.
        position = 0
        for pool in pools:
            if pool.location not in locations and len(locations) >= max_split:
                if _available_to(state, pool) > 0:
                    state.split_blocked = True
            elif pool.free > 0 or pool.protected is not None:
                got = _take(run, state, pool, need, kept)
                if got:
                    need -= got
                    if need <= 0:
                        if sequence.checks:
                            _check_confidence(state, sequence, position)
                        return
            position += 1
        if sequence.checks:
            _check_confidence(state, sequence, position)
        return
    visited: set[PoolKey] = set()
    taken = state.taken
    position = -1
    for pool in pools:
        position += 1
        if allowed is not None and pool.location not in allowed:
            continue
        if held is not None and pool.key in held and pool.key not in visited:
            visited.add(pool.key)
            room = held[pool.key] - taken.get(pool.key, 0)
            if room <= 0:
                continue
            if room < need:
                got = _take_within_split(run, state, pool, room, kept)
                need -= got
                continue
        if limits is not None:
            limit = limits.get(pool.key)
            if limit is None:
                continue
            limit -= taken.get(pool.key, 0)
            want = need if need < limit else limit
            if want <= 0:
                continue
        else:
            want = need
        if pool.location not in locations and len(locations) >= max_split:
            if _available_to(state, pool) > 0:
                state.split_blocked = True
            continue
        got = _take(run, state, pool, want, kept)
        if got:
            need -= got
            if need <= 0:
                _check_confidence(state, sequence, position)
                return
    _check_confidence(state, sequence, len(pools))


def _take_within_split(run: _Run, state: _LineState, pool: _Pool, want: int, kept: bool) -> int:
    if pool.location not in state.locations and len(state.locations) >= state.max_split:
        if _available_to(state, pool) > 0:
            state.split_blocked = True
        return 0
    return _take(run, state, pool, want, kept)


def _consume_fixed(run: _Run, state: _LineState, alloc: ExistingAllocation, quantity: int) -> None:
    """Fixed allocations consume their supply first, whatever else wants it."""
    pool = run.pools.get((alloc.item, alloc.location, alloc.supply_ref))
    if pool is not None:
        rest = quantity
        protected = pool.protected or []
        matching = [s for s in protected if state.matches(s.index, s.scope)]
        others = [s for s in protected if s not in matching]
        for stock in matching:
            part = min(stock.remaining, rest)
            stock.remaining -= part
            rest -= part
        part = min(pool.free, rest)
        pool.free -= part
        rest -= part
        for stock in others:
            part = min(stock.remaining, rest)
            stock.remaining -= part
            rest -= part
    if run.quotas:
        for key in run.quota_keys(state, alloc.item):
            run.quota_spend(key, quantity)


def _rollback(run: _Run, state: _LineState) -> bool:
    """Give back everything the line took in this run; True when that included keeps."""
    had_keeps = False
    item = state.line.item
    for pool, quantity, take_state, kept, undo in state.takes:
        had_keeps = had_keeps or kept
        if take_state == "reserved" and pool.item != item and state.needs_approval:
            state.substitute_reserved[pool.key] = state.substitute_reserved.get(pool.key, 0) + quantity
        if undo is None:
            continue
        free_part, parts, quota_keys, taken = undo
        pool.free += free_part
        if parts:
            for stock, part in parts:
                stock.remaining += part
        for key in quota_keys:
            run.quota_spend(key, -taken)
    state.takes = []
    if state.held:
        state.taken = {}
    state.total = state.fixed_quantity
    state.locations = {alloc.location for alloc in state.fixed}
    return had_keeps


def _fill_unit(run: _Run, unit: list[_LineState]) -> list[_LineState]:
    """Let each line of a unit take free supply up to its ceiling; returns the lines that
    end short of an all-or-nothing requirement (ship-complete, ``allow_partial = false``)."""
    for state in unit:
        need = state.ceiling - state.total
        if need > 0:
            _source(run, state, need, state.held if state.line.credit_hold else None, kept=False)
    if unit[0].line.ship_complete:
        return [state for state in unit if state.total < state.quantity]
    state = unit[0]
    if not state.settings.allow_partial and state.total < state.quantity:
        return [state]
    return []


def _fill_unit_searching(run: _Run, unit: list[_LineState]) -> bool:
    """Second chance for an all-or-nothing unit that greedy sourcing left short.

    Greedy sourcing may spend the split limit on locations that cannot finish the
    line (or prefer what the line held), while other candidate locations could cover
    it whole. Each line is tried in plain sourcing order, then restricted to the
    smallest sets of candidate locations (in candidate order) whose supply adds up.
    True when every line of the unit ends fully covered; otherwise nothing is taken.
    """
    for state in unit:
        state.prefer_held = False
        if not _fill_line_searching(run, state):
            for member in unit:
                _rollback(run, member)
            return False
    return True


def _fill_line_searching(run: _Run, state: _LineState) -> bool:
    quantity = state.quantity
    limits = state.held if state.line.credit_hold else None
    need = state.ceiling - state.total
    if need <= 0:
        return state.total >= quantity
    if state.total + need < quantity:
        return False
    _source(run, state, need, limits, kept=False)
    if state.total >= quantity:
        return True
    _rollback(run, state)
    available: dict[str, int] = {}
    sequence = run.sequence(state)
    for pool in sequence.pools:
        amount = _available_to(state, pool)
        if limits is not None:
            amount = min(amount, limits.get(pool.key, 0))
        if amount > 0:
            available[pool.location] = available.get(pool.location, 0) + amount
    _check_confidence(state, sequence, len(sequence.pools))
    fixed_locations = set(state.locations)
    base = sum(available.get(location, 0) for location in fixed_locations)
    options = [location for location in state.candidates
               if location in available and location not in fixed_locations]
    for size in range(state.max_split - len(fixed_locations) + 1):
        for combination in itertools.combinations(options, size):
            if base + sum(available[location] for location in combination) < need:
                continue
            state.allowed_locations = fixed_locations.union(combination)
            _source(run, state, need, limits, kept=False)
            state.allowed_locations = None
            if state.total >= quantity:
                return True
            _rollback(run, state)
    return False


def _allocate_group(run: _Run, units: list[list[_LineState]], items: frozenset[str],
                    no_keep: set[int], first_pass: bool) -> set[int]:
    """One pass over a group; returns the keys of lines whose keeps had to be given back."""
    for item in items:
        for pool in run.pools_by_item.get(item, ()):
            pool.reset()
    run.quota_remaining = {}
    to_units = run.scale.to_units
    gains: list[_LineState] = []
    for unit in units:
        for state in unit:
            if not first_pass:
                state.start()
            if state.fixed:
                for alloc in state.fixed:
                    _consume_fixed(run, state, alloc, to_units[alloc.quantity])
            if state.strategy == "gain" and state.held:
                gains.append(state)
    # Gain lines keep what they held, in rank order, before anyone takes free supply.
    for state in gains:
        if state.line.key not in no_keep:
            need = min(state.quantity - state.total, state.held_before - state.fixed_quantity)
            if need > 0:
                _source(run, state, need, state.held, kept=True)
    lost_keeps: set[int] = set()
    for unit in units:
        if len(unit) == 1:
            # A single line (the common unit): inline what _fill_unit does for it.
            state = unit[0]
            need = state.ceiling - state.total
            if need > 0:
                _source(run, state, need, state.held if state.line.credit_hold else None, kept=False)
            if state.total >= state.quantity or (state.settings.allow_partial and not state.line.ship_complete):
                continue
            short = [state]
        else:
            short = _fill_unit(run, unit)
            if not short:
                continue
        gave_back_keeps = False
        for state in unit:
            gave_back_keeps = _rollback(run, state) or gave_back_keeps
        if gave_back_keeps:
            lost_keeps.update(state.line.key for state in unit)
        elif _fill_unit_searching(run, unit):
            continue
        if unit[0].line.ship_complete:
            short_lines = tuple(state.line.line for state in short)
            for state in unit:
                state.unit_blocked = short_lines
                state.note(("ship_complete_blocked", state.line.order, short_lines))
        else:
            state = unit[0]
            state.note(("all_or_nothing", state.quantity))
    return lost_keeps - no_keep


# -- results -------------------------------------------------------------------------------

_NO_FACTS: tuple = ()


class _Results:
    """What turning line states into decisions shares: memoised fingerprint texts."""

    __slots__ = ("as_of", "decimal", "fingerprint_memo", "part_memo", "places", "run", "short_memo", "to_units")

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.as_of = run.as_of
        self.places = run.scale.places
        self.decimal = run.scale.decimal
        self.to_units = run.scale.to_units
        self.part_memo: dict[tuple, str] = {}
        self.fingerprint_memo: dict[str, str] = {}
        self.short_memo: dict[tuple, str] = {}

    def fingerprint(self, allocations: list[AllocationDecision], strategy: str, priority_class: int) -> str:
        """A stable hash of a line's allocations, strategy and class (order-independent)."""
        part_memo = self.part_memo
        parts = []
        for alloc in allocations:
            memo_key = alloc[1:7]
            part = part_memo.get(memo_key)
            if part is None:
                part = part_memo[memo_key] = (
                    f"{alloc.item}@{alloc.location}@{alloc.supply_ref or ''}={fmt_quantity(alloc.quantity)}"
                    f"/{alloc.confirmed_date.isoformat()}/{alloc.state}"
                )
            parts.append(part)
        if len(parts) > 1:
            parts.sort()  # the same allocations in another order are the same decision
        parts.append(strategy)
        parts.append(str(priority_class))
        text = "|".join(parts)
        found = self.fingerprint_memo.get(text)
        if found is None:
            found = self.fingerprint_memo[text] = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
        return found


def _decide(results: _Results, state: _LineState) -> tuple[LineDecision, list[RaisedException] | None]:
    """The decision of one line once its group is allocated, and the exceptions it raises."""
    line = state.line
    line_key = line.key
    requested = line.requested_date
    as_of = results.as_of
    on_hand_date = requested if requested >= as_of else as_of
    allocations: list[AllocationDecision] = []
    units: list[int] = []  # each allocation's quantity in units
    path: list[tuple] = []
    to_units = results.to_units
    for alloc in state.fixed:
        allocations.append(_new_tuple(AllocationDecision, (
            line_key, alloc.item, alloc.location, alloc.supply_ref, alloc.quantity,
            alloc.confirmed_date, alloc.state, alloc.id,
        )))
        units.append(to_units[alloc.quantity])
        path.append((FIXED, alloc.state, alloc.location, alloc.item, alloc.quantity))
    takes = state.takes
    if takes:
        item = line.item
        decimal = results.decimal
        merged: dict[tuple, list] = {}
        for pool, quantity, take_state, kept, _undo in takes:
            flags = KEPT if kept else 0
            if pool.item != item:
                flags |= SUBSTITUTE
            if take_state == "proposed":
                flags |= PROPOSED
            path.append((flags, pool.fact, quantity))
            slot = merged.get((pool, take_state))
            if slot is None:
                merged[(pool, take_state)] = [pool, quantity, take_state]
            else:
                slot[1] += quantity
        unchanged: dict[tuple, list[int]] | None = None
        if len(state.existing) > len(state.fixed):
            unchanged = {}
            for alloc in state.existing:
                if alloc.state not in FIXED_STATES:
                    unchanged.setdefault(
                        (alloc.item, alloc.location, alloc.supply_ref, alloc.state, to_units[alloc.quantity],
                         alloc.confirmed_date), []
                    ).append(alloc.id)
        for pool, quantity, alloc_state in merged.values():
            if pool.inbound:
                confirmed = requested if requested >= pool.eta else pool.eta
            else:
                confirmed = on_hand_date
            existing_id = None
            if unchanged is not None:
                ids = unchanged.get((pool.item, pool.location, pool.ref, alloc_state, quantity, confirmed))
                if ids:
                    existing_id = ids.pop(0)
            allocations.append(_new_tuple(AllocationDecision, (
                line_key, pool.item, pool.location, pool.ref, decimal(quantity), confirmed, alloc_state,
                existing_id,
            )))
            units.append(quantity)
    quantity = state.quantity
    total = state.total
    shortfall = quantity - total if total < quantity else 0
    strategy = state.strategy
    if shortfall > 0 or state.notes or line.credit_hold or strategy == "lose":
        constraints = _constraint_facts(results.run, state, shortfall)
    else:
        constraints = _NO_FACTS
    priority_class = state.settings.priority_class
    if len(allocations) > 1:
        fingerprint = results.fingerprint(allocations, strategy, priority_class)
    else:
        # Most lines hold one allocation or none: memoise on what the text would say.
        memo_key = (allocations[0][1:7], strategy, priority_class) if allocations else (strategy, priority_class)
        fingerprint = results.short_memo.get(memo_key)
        if fingerprint is None:
            fingerprint = results.short_memo[memo_key] = results.fingerprint(allocations, strategy, priority_class)
    decision = _new_tuple(LineDecision, (
        line_key, state.rank, state.key, state.score, state.values, state.settings.weights, strategy,
        priority_class, tuple(allocations), tuple(path), constraints, results.decimal(shortfall),
        fingerprint, results.places,
    ))
    return decision, _line_exceptions(results, state, allocations, units, shortfall, constraints)


def _constraint_facts(run: _Run, state: _LineState, shortfall: int) -> tuple:
    line = state.line
    found: list[tuple] = []
    if line.credit_hold:
        found.append(("credit_hold",))
    if state.strategy == "lose":
        found.append(("lose",))
    if shortfall <= 0 and not state.notes:
        return tuple(found)
    ceiling_reasons = len(found)
    if state.strategy == "fill" and not line.credit_hold and state.held_before < state.quantity:
        found.append(("fill_ceiling", state.held_before))
        ceiling_reasons += 1
    if state.notes:
        found.extend(state.notes)
    if state.split_blocked:
        found.append(("split", state.max_split))
    if state.protections_blocked:
        for index in sorted(state.protections_blocked):
            protection = state.protections_blocked[index].protection
            found.append(("protection", index, protection.location, protection.quantity, protection.scope,
                          protection.sku))
    if state.quotas_blocked:
        for quota_index, key in state.quotas_blocked:
            found.append(("quota", quota_index, run.quota_period[quota_index], key))
    if state.low_confidence:
        for ref in sorted(state.low_confidence):
            found.append(("low_confidence", ref, state.low_confidence[ref], state.min_confidence))
    if shortfall > 0 and len(found) == ceiling_reasons:
        found.append(("no_supply", line.item, state.candidates))
    return tuple(found)


def _line_exceptions(results: _Results, state: _LineState, allocations: list[AllocationDecision],
                     units: list[int], shortfall: int, constraints: tuple) -> list[RaisedException] | None:
    """The exceptions one line raises (allocation.md, "Exceptions a run raises")."""
    line = state.line
    quantity = state.quantity
    # The due date: the promised (else requested) date, or the as-of date when that is past
    # (allocation.md "Supply"): a past-due line covered today is as good as it can be.
    due = line.promised_date or line.requested_date
    if due < results.as_of:
        due = results.as_of
    total = state.total
    latest: date | None = None
    covered_by_due = 0
    reserved_after = 0
    reserved_after_by_due = 0
    proposed: list[tuple] | None = None
    for alloc, amount in zip(allocations, units):
        confirmed = alloc.confirmed_date
        if latest is None or confirmed > latest:
            latest = confirmed
        on_time = confirmed <= due
        if on_time:
            covered_by_due += amount
        if alloc.state in RESERVED_STATES:
            reserved_after += amount
            if on_time:
                reserved_after_by_due += amount
        elif alloc.state == "proposed":
            if proposed is None:
                proposed = []
            proposed.append((alloc.item, alloc.location, alloc.supply_ref, amount))
    tolerance = state.settings.tolerance_days
    at_risk = shortfall > 0 or (latest is not None and (latest - due).days > tolerance)
    if line.credit_hold:
        # A line on credit hold raises only ``credit_hold``, and only when short or at risk.
        if not at_risk:
            return None
        line_facts = (
            results.places, line.order, line.line, line.item, quantity, total, shortfall, covered_by_due, latest,
            line.promised_date, line.requested_date, due, state.strategy, state.settings.priority_class,
            constraints, True,
        )
        first_location = allocations[0].location if allocations else line.ship_from
        return [_new_tuple(RaisedException, (
            "credit_hold", f"credit_hold:{line.order}/{line.line}", line.key, line.order, line.item, first_location,
            (line_facts, None),
        ))]
    below_floor = None
    strategy = state.strategy
    if strategy == "win" and covered_by_due < quantity:
        below_floor = ("win", quantity, due, covered_by_due)
    elif strategy == "gain" and total < min(state.held_before, quantity):
        below_floor = ("gain", min(state.held_before, quantity), total)
    elif line.customer_tier == 1 and shortfall > 0:
        below_floor = ("tier1", shortfall)
    floor_pct = state.settings.margin_floor_pct
    margin_pct = _margin_pct(line) if floor_pct is not None else 0.0
    below_margin = floor_pct is not None and margin_pct < floor_pct
    reversed_numbers = None
    if state.existing:
        to_units = results.to_units
        reserved_before = 0
        reserved_before_by_due = 0
        for alloc in state.existing:
            if alloc.state in RESERVED_STATES:
                amount = to_units[alloc.quantity]
                reserved_before += amount
                if alloc.confirmed_date <= due:
                    reserved_before_by_due += amount
        if reserved_after < reserved_before or reserved_after_by_due < reserved_before_by_due:
            reversed_numbers = (reserved_before, reserved_after, reserved_before_by_due,
                                reserved_after_by_due)
    split = state.split_blocked and shortfall > 0
    if not (at_risk or below_floor or proposed or below_margin or reversed_numbers or split):
        return None

    line_facts = (
        results.places, line.order, line.line, line.item, quantity, total, shortfall, covered_by_due, latest,
        line.promised_date, line.requested_date, due, strategy, state.settings.priority_class, constraints,
        line.credit_hold,
    )
    first_location = allocations[0].location if allocations else line.ship_from
    raised: list[RaisedException] = []
    key_suffix = f":{line.order}/{line.line}"
    line_key, order, item = line.key, line.order, line.item

    def add(kind: str, extra) -> None:
        raised.append(_new_tuple(RaisedException, (
            kind, kind + key_suffix, line_key, order, item, first_location, (line_facts, extra),
        )))

    if below_floor is not None:
        add("priority_shortage", below_floor)
    if at_risk:
        add("promise_at_risk", None)
    if proposed:
        add("substitution_proposed", tuple(proposed))
    if below_margin:
        add("margin_below_floor", (margin_pct, floor_pct))
    if reversed_numbers is not None:
        add("allocation_reversed", reversed_numbers)
    if split:
        add("split_limit", (state.max_split, tuple(sorted(state.locations))))
    return raised


def _margin_pct(line: Line) -> float:
    price = float(line.unit_price)
    cost = float(line.unit_cost)
    if price <= 0:
        return 0.0 if cost <= 0 else -100.0
    return (price - cost) / price * 100.0


def _ship_complete_exception(places: int, order: str, members: list[_LineState]) -> RaisedException:
    short = tuple(members[0].unit_blocked or ())
    lines = tuple(
        (state.line.line, state.line.item, state.quantity, state.line.line not in short) for state in members
    )
    reasons: list[tuple] = []
    for state in members:
        prefix = f"{state.line.order}/{state.line.line}"
        if state.split_blocked:
            reasons.append((prefix, "split", state.max_split))
        for index in sorted(state.protections_blocked or ()):
            reasons.append((prefix, "protection", index))
        for quota_index, key in state.quotas_blocked or ():
            reasons.append((prefix, "quota", quota_index, key))
    return _new_tuple(RaisedException, (
        "ship_complete_blocked", f"ship_complete_blocked:{order}", None, order, None, None,
        (places, order, lines, short, tuple(reasons)),
    ))


def allocate(inp: EngineInput) -> EngineResult:
    """Run the allocation on ``inp`` and return every line's decision and the exceptions.

    A pure, deterministic function of its input (allocation.md): lines are ranked
    by :func:`rank_key`, fixed allocations are kept, ``gain`` lines keep what they
    held, and the rest of the supply goes to lines in rank order up to each
    strategy's ceiling, within sourcing, split, partial, ship-complete, protection
    and quota limits. Existing allocations of lines not in ``inp.lines`` are ignored.
    Decisions come back in rank order; exceptions in the order of their lines, a
    blocked ship-complete order's after its last line.
    """
    # A run makes many small acyclic objects; cyclic collections in between only cost time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _allocate(inp)
    finally:
        if collecting:
            gc.enable()


def _allocate(inp: EngineInput) -> EngineResult:
    as_of = inp.as_of
    lines = inp.lines
    scale_values: dict[Decimal, None] = dict.fromkeys(line.quantity for line in lines)
    existing_by_line: dict[int, list[ExistingAllocation]] = {}
    for alloc in sorted(inp.existing, key=lambda a: a.id):
        if alloc.quantity > 0:
            existing_by_line.setdefault(alloc.line_key, []).append(alloc)
            scale_values[alloc.quantity] = None
    run = _Run(inp, scale_values)
    to_units = run.scale.to_units

    # Score and rank (scoring.factor_values and rank_key_for, with their sub-results memoised).
    settings_memo: dict[int, tuple] = {}
    tier_memo: dict[int, float] = {}
    urgency_memo: dict[tuple, float] = {}
    age_memo: dict = {}
    log10 = math.log10
    keys: list[tuple] = []
    scored: list[tuple] = []
    for line in lines:
        settings = line.settings
        found = settings_memo.get(id(settings))
        if found is None:
            found = settings_memo[id(settings)] = (_Settings(settings), settings)
        profile = found[0]
        tier = tier_memo.get(line.customer_tier)
        if tier is None:
            tier = tier_memo[line.customer_tier] = _clip((5 - line.customer_tier) / 4)
        due = line.promised_date or line.requested_date
        horizon = profile.horizon
        urgency = urgency_memo.get((due, horizon))
        if urgency is None:
            days_ahead = (due - as_of).days
            if days_ahead <= 0:
                urgency = 1.0
            elif horizon <= 0:
                urgency = 0.0
            else:
                urgency = _clip(1.0 - days_ahead / horizon)
            urgency_memo[(due, horizon)] = urgency
        price = float(line.unit_price)
        margin = _clip((price - float(line.unit_cost)) / price) if price > 0 else 0.0
        line_value = float(line.quantity) * price
        value = _clip(log10(1 + line_value) / _LOG_VALUE_CAP) if line_value > 0 else 0.0
        created = line.order_created_at
        age = age_memo.get(created)
        if age is None:
            age = age_memo[created] = _clip((as_of - created.date()).days / 30)
        penalty = _clip(float(line.late_penalty_per_day) / 1000)
        risk = _clip(float(line.risk))
        w = profile.weights
        total = (0.0 + w[0] * tier + w[1] * urgency + w[2] * margin + w[3] * value + w[4] * age
                 + w[5] * penalty + w[6] * risk)
        if line.credit_hold:
            strategy = "fill"
        else:
            strategy = profile.strategy
            if strategy not in STRATEGY_INDEX:
                raise ValueError(f"line {line.order}/{line.line}: unknown strategy {strategy!r}")
        keys.append((STRATEGY_INDEX[strategy], profile.priority_class, -round(total, 6), line.requested_date,
                     created, line.order, line.line))
        scored.append((total, (tier, urgency, margin, value, age, penalty, risk), profile, strategy))
    order = sorted(range(len(lines)), key=keys.__getitem__)

    # Ship-complete orders are one unit, at the rank of their highest-ranked line; lines are
    # numbered in processing order (a unit's lines one after the other).
    units: list[list[int]] = []
    order_positions: dict[str, list[int]] = {}
    for position in order:
        line = lines[position]
        if line.ship_complete:
            unit_positions = order_positions.get(line.order)
            if unit_positions is None:
                unit_positions = order_positions[line.order] = []
                units.append(unit_positions)
            unit_positions.append(position)
        else:
            units.append([position])
    groups = item_groups(inp.items, lines, inp.quotas)
    group_of: dict[str, int] = {sku: index for index, members in enumerate(groups) for sku in members}
    group_units: dict[int, list[list[_LineState]]] = {}
    order_units: dict[str, list[_LineState]] = {}
    states: list[_LineState] = []
    no_existing: list[ExistingAllocation] = []
    candidates = run.candidates
    new_state = _LineState.__new__
    for position in itertools.chain.from_iterable(units):
        line = lines[position]
        total, values, profile, strategy = scored[position]
        state = new_state(_LineState)
        state.line = line
        state.rank = len(states) + 1
        state.key = keys[position]
        state.score = total
        state.values = values
        state.settings = profile
        state.strategy = strategy
        state.candidates = candidates(line)
        state.min_confidence = profile.min_confidence
        state.max_split = profile.max_split
        state.substitutes_allowed = line.allow_substitute and profile.allow_substitutes
        state.needs_approval = profile.needs_approval
        quantity = state.quantity = to_units[line.quantity]
        existing = existing_by_line.get(line.key, no_existing)
        state.existing = existing
        fixed = _NOTHING_FIXED
        fixed_quantity = 0
        held = _NOTHING_HELD  # read-only; a line's own dicts only when it held something
        substitute_reserved = _NOTHING_HELD
        held_before = 0
        if existing:
            fixed = []
            held = {}
            substitute_reserved = {}
            for alloc in existing:
                amount = to_units[alloc.quantity]
                held_before += amount
                if alloc.state in FIXED_STATES:
                    fixed.append(alloc)
                    fixed_quantity += amount
                    continue
                pool_key = (alloc.item, alloc.location, alloc.supply_ref)
                held[pool_key] = held.get(pool_key, 0) + amount
                if alloc.state == "reserved" and alloc.item != line.item:
                    substitute_reserved[pool_key] = substitute_reserved.get(pool_key, 0) + amount
        state.fixed = fixed
        state.fixed_quantity = fixed_quantity
        state.held = held
        state.held_before = held_before
        state.substitute_reserved = substitute_reserved
        if strategy == "fill":
            state.ceiling = quantity if quantity < held_before else held_before
        elif strategy == "lose":
            state.ceiling = 0
        else:
            state.ceiling = quantity
        state.dimensions = None
        state.quota_cache = None
        state.match_cache = None
        state.plain = None
        state.held_sequence = None
        # What start() resets at the beginning of every later pass over the line's group.
        state.total = fixed_quantity
        state.takes = []
        state.taken = {} if held else _NOTHING_HELD
        state.locations = {alloc.location for alloc in fixed} if fixed else set()
        state.split_blocked = False
        state.protections_blocked = None
        state.quotas_blocked = None
        state.low_confidence = None
        state.notes = None
        state.unit_blocked = None
        state.prefer_held = True
        state.allowed_locations = None
        states.append(state)
        if line.ship_complete:
            unit = order_units.get(line.order)
            if unit is None:
                unit = order_units[line.order] = []
                group_units.setdefault(group_of[line.item], []).append(unit)
            unit.append(state)
        else:
            group_index = group_of[line.item]
            found_units = group_units.get(group_index)
            if found_units is None:
                found_units = group_units[group_index] = []
            found_units.append([state])
    for group_index, members_units in group_units.items():
        no_keep: set[int] = set()
        first_pass = True
        while True:
            lost = _allocate_group(run, members_units, groups[group_index], no_keep, first_pass)
            first_pass = False
            if not lost:
                break
            no_keep |= lost
    results = _Results(run)
    decisions: list[LineDecision] = []
    exceptions: list[RaisedException] = []
    blocked: dict[str, list[_LineState]] = {}
    for state in states:
        decision, raised = _decide(results, state)
        decisions.append(decision)
        if raised:
            exceptions.extend(raised)
        if state.unit_blocked is not None:
            members = blocked.setdefault(state.line.order, [])
            members.append(state)
            if len(members) == len(order_units[state.line.order]):
                exceptions.append(_ship_complete_exception(results.places, state.line.order, members))
    return EngineResult(lines=tuple(decisions), exceptions=tuple(exceptions))
