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
from decimal import ROUND_CEILING, Decimal

from allocation.engine.explain import (
    FIXED,
    FROZEN,
    KEPT,
    PROPOSED,
    SUBSTITUTE,
    fmt_quantity,
    scope_text,
)
from allocation.engine.groups import item_groups
from allocation.engine.scoring import _LOG_VALUE_CAP, STRATEGY_INDEX, _clip, _weight_vector
from allocation.engine.types import (
    AllocationDecision,
    EngineInput,
    EngineResult,
    ExistingAllocation,
    Factor,
    FairnessPrice,
    Line,
    LineDecision,
    Protection,
    Quota,
    RaisedException,
    ShortfallReason,
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
        "order_kind": line.order_kind,
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
        "pack",
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
        self.pack = 0  # pack size in units when it is not 1 (allocation.md "Pack size")

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
        "allocation_horizon_days",
        "allow_partial",
        "allow_substitutes",
        "factor_plugins",
        "freeze_days",
        "horizon",
        "margin_floor_pct",
        "max_split",
        "min_confidence",
        "min_fill_pct",
        "needs_approval",
        "priority_class",
        "share_mode",
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
        self.allocation_horizon_days = settings.allocation_horizon_days
        self.freeze_days = settings.freeze_days or 0
        self.min_fill_pct = float(settings.min_fill_pct or 0.0)
        self.share_mode = settings.share_mode or "rank"
        self.factor_plugins = tuple(settings.factor_plugins or ())
        self.tolerance_days = settings.promise_risk_tolerance_days


class _LineState:
    """Everything a run tracks for one line while it allocates (quantities in units)."""

    __slots__ = (
        "allowed_locations",
        "beyond_horizon",
        "candidates",
        "coverable",
        "ceiling",
        "dimensions",
        "existing",
        "fixed",
        "fixed_quantity",
        "frozen_ids",
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
        "plugin",
        "projected",
        "protections_blocked",
        "quantity",
        "quota_cache",
        "quotas_blocked",
        "actionable",
        "rank",
        "reasons",
        "required",
        "score",
        "settings",
        "shared",
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
        self.coverable = 0
        self.shared = False

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
        packs = {item.sku: item.pack_size for item in inp.items
                 if item.pack_size is not None and item.pack_size > 0 and item.pack_size != 1}
        for pack in packs.values():
            scale_values[pack] = None
        self.scale = scale = _Scale(scale_values)
        units = scale.to_units
        self.pack_size: dict[str, Decimal] = packs
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
        if packs:
            for pool in self.pools.values():
                pack = packs.get(pool.item)
                if pack is not None:
                    pool.pack = units[pack]
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
    pack = pool.pack
    if pack and quantity % pack and state.total + quantity < state.ceiling:
        # Whole packs, except the take that completes the line or takes back what it held there.
        if not state.held or state.held.get(pool.key, 0) - state.taken.get(pool.key, 0) != quantity:
            quantity -= quantity % pack
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
        if run.pack_size and need > 0:
            _sweep_remainders(run, state, pools, need, kept)
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
    if run.pack_size and need > 0 and limits is None:
        _sweep_remainders(run, state, pools, need, kept)
    _check_confidence(state, sequence, len(pools))


def _sweep_remainders(run: _Run, state: _LineState, pools: list[_Pool], need: int, kept: bool) -> None:
    """Pack sizes: a part-pack an element had left when the line passed it may be its last
    take once it completes the line, so a line left short sweeps its sequence once more."""
    allowed = state.allowed_locations
    for pool in pools:
        if need <= 0:
            return
        if allowed is not None and pool.location not in allowed:
            continue
        if pool.location not in state.locations and len(state.locations) >= state.max_split:
            continue
        if pool.free > 0 or pool.protected is not None:
            need -= _take(run, state, pool, need, kept)


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
    if state.total < state.required:
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
    quantity = state.required  # the whole open quantity, or its minimum fill
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
    target = quantity - state.total
    for size in range(state.max_split - len(fixed_locations) + 1):
        for combination in itertools.combinations(options, size):
            if base + sum(available[location] for location in combination) < target:
                continue
            state.allowed_locations = fixed_locations.union(combination)
            _source(run, state, need, limits, kept=False)
            state.allowed_locations = None
            if state.total >= quantity:
                return True
            _rollback(run, state)
    return False


def _allocate_group(run: _Run, units: list[list[_LineState]], items: frozenset[str],
                    no_keep: set[int], first_pass: bool, fairness: list | None = None) -> set[int]:
    """One pass over a group; returns the keys of lines whose keeps had to be given back.
    Classes that share in ``pro_rata``/``equal`` mode append their fill figures to ``fairness``."""
    for item in items:
        for pool in run.pools_by_item.get(item, ()):
            pool.reset()
    run.quota_remaining = {}
    to_units = run.scale.to_units
    gains: list[_LineState] = []
    sharing = False
    for unit in units:
        for state in unit:
            if not first_pass:
                state.start()
            if state.fixed:
                for alloc in state.fixed:
                    _consume_fixed(run, state, alloc, to_units[alloc.quantity])
            if state.strategy == "gain" and state.held and not state.beyond_horizon:
                gains.append(state)
        if unit[0].settings.share_mode != "rank":
            sharing = True
    # Gain lines keep what they held, in rank order, before anyone takes free supply.
    for state in gains:
        if state.line.key not in no_keep:
            need = min(state.quantity - state.total, state.held_before - state.fixed_quantity)
            if need > 0:
                _source(run, state, need, state.held, kept=True)
    lost_keeps: set[int] = set()
    if not sharing:
        for unit in units:
            _fill_and_settle(run, unit, lost_keeps)
        return lost_keeps - no_keep
    index, count = 0, len(units)
    while index < count:
        unit = units[index]
        head = unit[0]
        mode = head.settings.share_mode
        end = index + 1
        if mode != "rank":
            class_key = (head.strategy, head.settings.priority_class)
            while end < count and (units[end][0].strategy, units[end][0].settings.priority_class) == class_key:
                end += 1
        if end - index > 1:
            _share_class(run, units[index:end], items, mode, lost_keeps, fairness)
        else:
            _fill_and_settle(run, unit, lost_keeps)
        index = end
    return lost_keeps - no_keep


def _fill_and_settle(run: _Run, unit: list[_LineState], lost_keeps: set[int]) -> None:
    """A unit takes free supply up to its ceilings in rank order; an all-or-nothing unit
    (ship-complete, ``allow_partial = false``, ``min_fill_pct``) that ends short gives back
    what it took, gets its second chance, or is noted as blocked."""
    if len(unit) == 1:
        # A single line (the common unit): inline what _fill_unit does for it.
        state = unit[0]
        if state.beyond_horizon:
            return
        need = state.ceiling - state.total
        if need > 0:
            _source(run, state, need, state.held if state.line.credit_hold else None, kept=False)
        if state.total >= state.required:
            return
        short = [state]
    else:
        if unit[0].beyond_horizon:
            return
        short = _fill_unit(run, unit)
        if not short:
            return
    gave_back_keeps = False
    for state in unit:
        state.coverable = state.total - state.fixed_quantity
        gave_back_keeps = _rollback(run, state) or gave_back_keeps
    if gave_back_keeps:
        lost_keeps.update(state.line.key for state in unit)
    elif _fill_unit_searching(run, unit):
        return
    if unit[0].line.ship_complete:
        short_lines = tuple(state.line.line for state in short)
        for state in unit:
            state.unit_blocked = short_lines
            state.note(("ship_complete_blocked", state.line.order, short_lines))
    else:
        state = unit[0]
        if state.settings.allow_partial:
            state.note(("below_min_fill", state.settings.min_fill_pct, state.coverable))
        else:
            state.note(("all_or_nothing", state.quantity))


# -- fair share within a class (allocation.md "Depth settings") ----------------------------


def _class_caps(run: _Run, class_units: list[list[_LineState]], mode: str) -> dict[int, int]:
    """Each line's cap (units) where its class's open demand for its item exceeds the free
    supply of that item at the class's candidate locations; lines not capped are absent."""
    demand: dict[str, list[tuple[_LineState, int]]] = {}
    for unit in class_units:
        for state in unit:
            if state.beyond_horizon:
                continue
            need = state.ceiling - state.total
            if need > 0:
                demand.setdefault(state.line.item, []).append((state, need))
    caps: dict[int, int] = {}
    for item, wanting in demand.items():
        if len(wanting) < 2:
            continue
        pools: dict[PoolKey, _Pool] = {}
        for state, _need in wanting:
            for pool in run.plain_sequence(state).pools:
                if pool.item == item:
                    pools[pool.key] = pool
        supply = 0
        for pool in pools.values():
            supply += pool.free
            if pool.protected is not None:
                for stock in pool.protected:
                    if stock.remaining > 0 and any(state.matches(stock.index, stock.scope) for state, _ in wanting):
                        supply += stock.remaining
        total = sum(need for _state, need in wanting)
        if total <= supply:
            continue
        pack = run.scale.to_units[run.pack_size[item]] if item in run.pack_size else 0
        if mode == "equal":
            shares = _water_fill([need for _state, need in wanting], supply)
        else:
            shares = [supply * need // total for _state, need in wanting]
        for (state, need), share in zip(wanting, shares):
            if share < need and pack:
                share -= share % pack
            caps[state.line.key] = share if share < need else need
    return caps


def _water_fill(needs: list[int], supply: int) -> list[int]:
    """The same cap for every need (none above its need), as high as ``supply`` allows, in
    whole units: ``[2, 9, 9]`` sharing 12 → ``[2, 5, 5]``."""
    order = sorted(range(len(needs)), key=needs.__getitem__)
    shares = [0] * len(needs)
    left, remaining = supply, len(needs)
    for position in order:
        level = left // remaining
        share = needs[position] if needs[position] <= level else level
        shares[position] = share
        left -= share
        remaining -= 1
    # The level is the same for every capped need (the ones after the first that hit it).
    capped = [shares[p] for p in order if shares[p] < needs[p]]
    if capped:
        level = min(capped)
        shares = [min(need, level) for need in needs]
    return shares


def _class_fill(class_units: list[list[_LineState]]) -> tuple[float, float, int]:
    """``(Σ score × covered, Σ score × open, lines)`` of a class, unweighted when every score is 0."""
    states = [state for unit in class_units for state in unit]
    weighted = any(state.score > 0 for state in states)
    covered = wanted = 0.0
    for state in states:
        weight = state.score if weighted else 1.0
        got = state.total if state.total < state.quantity else state.quantity
        covered += weight * got
        wanted += weight * state.quantity
    return covered, wanted, len(states)


def _snapshot(run: _Run, items: frozenset[str], states: list[_LineState]) -> tuple:
    pools = [(pool, pool.free, [stock.remaining for stock in pool.protected] if pool.protected else None)
             for item in items for pool in run.pools_by_item.get(item, ())]
    lines = [(state, state.total, list(state.takes), dict(state.taken) if state.held else None,
              set(state.locations), state.split_blocked, dict(state.protections_blocked or {}) or None,
              dict(state.quotas_blocked or {}) or None, dict(state.low_confidence or {}) or None,
              list(state.notes) if state.notes else None, state.unit_blocked, state.prefer_held,
              dict(state.substitute_reserved) if state.substitute_reserved else None, state.coverable)
             for state in states]
    return pools, dict(run.quota_remaining), lines


def _restore(run: _Run, snapshot: tuple) -> None:
    pools, quota_remaining, lines = snapshot
    for pool, free, remaining in pools:
        pool.free = free
        if remaining is not None:
            for stock, left in zip(pool.protected, remaining):
                stock.remaining = left
    run.quota_remaining = quota_remaining
    for (state, total, takes, taken, locations, split_blocked, protections_blocked, quotas_blocked,
         low_confidence, notes, unit_blocked, prefer_held, substitute_reserved, coverable) in lines:
        state.total = total
        state.takes = takes
        if taken is not None:
            state.taken = taken
        state.locations = locations
        state.split_blocked = split_blocked
        state.protections_blocked = protections_blocked
        state.quotas_blocked = quotas_blocked
        state.low_confidence = low_confidence
        state.notes = notes
        state.unit_blocked = unit_blocked
        state.prefer_held = prefer_held
        if substitute_reserved is not None:
            state.substitute_reserved = substitute_reserved
        state.coverable = coverable
        state.allowed_locations = None


def _share_class(run: _Run, class_units: list[list[_LineState]], items: frozenset[str], mode: str,
                 lost_keeps: set[int], fairness: list | None) -> None:
    """Fair share among the units of one strategy and priority class: each line first takes
    up to its cap in rank order, then what is left goes in rank order as usual. The class's
    rank-mode fill, from the same supply, is measured by a shadow pass that is undone."""
    caps = _class_caps(run, class_units, mode)
    if not caps:
        for unit in class_units:
            _fill_and_settle(run, unit, lost_keeps)
        if fairness is not None:
            covered, wanted, lines = _class_fill(class_units)
            head = class_units[0][0]
            fairness.append((head.strategy, head.settings.priority_class, mode, lines, covered, wanted,
                             covered, wanted))
        return
    rank_covered = rank_wanted = 0.0
    if fairness is not None:
        states = [state for unit in class_units for state in unit]
        snapshot = _snapshot(run, items, states)
        ignored: set[int] = set()
        for unit in class_units:
            _fill_and_settle(run, unit, ignored)
        rank_covered, rank_wanted, _lines = _class_fill(class_units)
        _restore(run, snapshot)
    done: set[int] = set()
    for position, unit in enumerate(class_units):
        head = unit[0]
        if head.beyond_horizon:
            continue
        if head.line.ship_complete or not head.settings.allow_partial:
            # All-or-nothing: within its shares it takes now, else it waits for the rest.
            if all(state.ceiling - state.total <= caps.get(state.line.key, state.ceiling) for state in unit):
                _fill_and_settle(run, unit, lost_keeps)
                done.add(position)
            continue
        cap = caps.get(head.line.key)
        if cap is None or head.total + cap < head.required:
            continue  # not capped, or its share is below its minimum fill: it waits for the rest
        need = min(cap, head.ceiling - head.total)
        head.shared = True
        if need > 0:
            _source(run, head, need, head.held if head.line.credit_hold else None, kept=False)
    for position, unit in enumerate(class_units):
        if position not in done:
            _fill_and_settle(run, unit, lost_keeps)
    if fairness is not None:
        covered, wanted, lines = _class_fill(class_units)
        head = class_units[0][0]
        fairness.append((head.strategy, head.settings.priority_class, mode, lines, rank_covered, rank_wanted,
                         covered, wanted))


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
        frozen = state.frozen_ids is not None and alloc.id in state.frozen_ids
        path.append((FROZEN if frozen else FIXED, alloc.state, alloc.location, alloc.item, alloc.quantity))
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
            frozen_ids = state.frozen_ids
            for alloc in state.existing:
                if alloc.state not in FIXED_STATES and (frozen_ids is None or alloc.id not in frozen_ids):
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
        fingerprint, results.places, state.reasons, state.projected, state.actionable, state.plugin,
    ))
    if state.beyond_horizon:
        return decision, None  # beyond the horizon: no exception (allocation.md "Depth settings")
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
    if state.beyond_horizon:
        found.append(("beyond_horizon", max(line.promised_date or line.requested_date, run.as_of),
                      state.settings.allocation_horizon_days))
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


# -- depth: custom factors, shortfall reasons, projected dates, price of fairness ------------


def _plugin_factors(weights: tuple[tuple[str, float], ...], values: tuple[tuple[str, float], ...]) -> tuple:
    """The custom factors of a line, in ``factor_plugins`` order: each weight times the
    line's value for that name (clipped to [0, 1]; 0 when the line has none)."""
    given = dict(values) if values else {}
    found = []
    for name, weight in weights:
        value = given.get(name)
        value = _clip(float(value)) if value is not None else 0.0
        weight = float(weight)
        found.append(Factor(name, value, weight, weight * value))
    return tuple(found)


def _explain_shortfalls(run: _Run, states: list[_LineState], short_states: list[_LineState]) -> None:
    """Every short line's shortfall as exclusive reasons whose quantities sum to it, and
    whether an action today could change it (some supply it could use is not fixed)."""
    # Who holds what at each supply element: (state, units, how).
    ledger: dict[PoolKey, list[tuple[_LineState, int, str]]] = {}
    fixed_at: dict[PoolKey, int] = {}
    units_of = run.scale.to_units
    for state in states:
        for alloc in state.fixed:
            pool_key = (alloc.item, alloc.location, alloc.supply_ref)
            amount = units_of[alloc.quantity]
            ledger.setdefault(pool_key, []).append((state, amount, "fixed", None))
            fixed_at[pool_key] = fixed_at.get(pool_key, 0) + amount
        for pool, quantity, _take_state, kept, undo in state.takes:
            parts = undo[1] if undo is not None else None
            ledger.setdefault(pool.key, []).append((state, quantity, "kept" if kept else "ranked", parts))
    for entries in ledger.values():
        if len(entries) > 1:
            entries.sort(key=lambda entry: entry[0].rank)
    decimal = run.scale.decimal
    for state in short_states:
        state.reasons, state.actionable = _reasons_of(run, state, ledger, fixed_at, decimal)


def _reasons_of(run: _Run, state: _LineState, ledger: dict, fixed_at: dict, decimal) -> tuple[tuple, bool]:
    line = state.line
    left = state.quantity - state.total
    found: dict[tuple, list] = {}  # (code, key) -> [units, subject or lines dict]

    def add(code: str, key, amount: int, subject) -> int:
        nonlocal left
        amount = amount if amount < left else left
        if amount <= 0:
            return 0
        slot = found.get((code, key))
        if slot is None:
            found[(code, key)] = [amount, subject]
        else:
            slot[0] += amount
        left -= amount
        return amount

    def add_line(code: str, other: _LineState, amount: int, how: str) -> None:
        amount = amount if amount < left else left
        if amount <= 0:
            return
        slot = found.get((code, None))
        if slot is None:
            slot = found[(code, None)] = [0, {}]
        lines = slot[1]
        entry = lines.get(other.line.key)
        lines[other.line.key] = (other, (entry[1] if entry else 0) + amount, how)
        slot[0] += amount
        add_amount(amount)

    def add_amount(amount: int) -> None:
        nonlocal left
        left -= amount

    settings = state.settings
    if state.beyond_horizon:
        due = max(line.promised_date or line.requested_date, run.as_of)
        add("beyond_horizon", None, left, (due, settings.allocation_horizon_days))
    ceiling = state.ceiling if not state.beyond_horizon else state.quantity
    if ceiling < state.quantity:
        add("strategy_ceiling", None, state.quantity - max(ceiling, state.total),
            (state.strategy, decimal(ceiling), line.credit_hold))
    absorbed = 0  # supply the line passed over that its minimum fill already explains
    if state.coverable > 0 and state.total == state.fixed_quantity:
        order = line.order if line.ship_complete else None
        pct = settings.min_fill_pct if settings.allow_partial and not line.ship_complete else 100.0
        absorbed = add("below_min_fill", None, state.coverable, (pct, decimal(state.coverable), order))
    sequence = state.plain or run.plain_sequence(state)
    pools = sequence.pools
    checks = sequence.checks
    own: dict[PoolKey, int] = {}
    for pool, quantity, _take_state, _kept, _undo in state.takes:
        own[pool.key] = own.get(pool.key, 0) + quantity
    blocked_split = len(state.locations) >= state.max_split
    quota_key = next(iter(state.quotas_blocked)) if state.quotas_blocked else None
    actionable = False
    for pool, low_confidence in (_visits(pools, checks) if checks else zip(pools, itertools.repeat(False))):
        whole = pool.initial_free + (sum(stock.initial for stock in pool.protected) if pool.protected else 0)
        if whole - fixed_at.get(pool.key, 0) - own.get(pool.key, 0) > 0:
            actionable = True
        if left <= 0:
            if actionable:
                break
            continue
        if low_confidence:
            add("inbound_below_confidence", pool.ref, whole - own.get(pool.key, 0),
                (pool.ref, pool.confidence, state.min_confidence))
            continue
        passed = 0
        for other, amount, how, parts in ledger.get(pool.key, ()):
            if other is state:
                continue
            if how != "ranked" or other.rank < state.rank:
                add_line("taken_by_higher_rank", other, amount, how)
            elif other.shared and other.strategy == state.strategy \
                    and other.settings.priority_class == settings.priority_class:
                add_line("fair_share", other, amount, "shared")
            else:
                if parts:
                    # Protected stock a lower-ranked line matching the protection took.
                    for stock, part in parts:
                        if not state.matches(stock.index, stock.scope):
                            protection = stock.protection
                            amount -= add("protected_for", stock.index, part, (
                                stock.index, protection.sku, protection.location, protection.quantity,
                                protection.scope))
                passed += amount
        passed += pool.free
        if pool.protected is not None:
            for stock in pool.protected:
                if stock.remaining <= 0:
                    continue
                if state.matches(stock.index, stock.scope):
                    passed += stock.remaining
                else:
                    protection = stock.protection
                    add("protected_for", stock.index, stock.remaining,
                        (stock.index, protection.sku, protection.location, protection.quantity, protection.scope))
        if absorbed and passed:
            part = passed if passed < absorbed else absorbed
            passed -= part
            absorbed -= part
        if passed <= 0:
            continue
        if blocked_split and pool.location not in state.locations:
            add("split_limit", None, passed, (state.max_split, tuple(sorted(state.locations))))
        elif quota_key is not None:
            add("quota_exhausted", quota_key, passed, (quota_key[0], run.quota_period[quota_key[0]], quota_key[1]))
        elif line.credit_hold:
            add("strategy_ceiling", None, passed, (state.strategy, decimal(state.ceiling), True))
        elif pool.pack and passed < pool.pack:
            add("pack_size", pool.item, passed, (pool.item, run.pack_size[pool.item]))
        elif state.split_blocked:
            add("split_limit", None, passed, (state.max_split, tuple(sorted(state.locations))))
    if left > 0:
        add("no_supply", None, left, (line.item, state.candidates))
    reasons = []
    for (code, _key), (amount, subject) in found.items():
        if code in ("taken_by_higher_rank", "fair_share"):
            subject = tuple(
                (other.line.key, other.line.order, other.line.line, decimal(units), how)
                for other, units, how in sorted(subject.values(), key=lambda entry: entry[0].rank)
            )
        reasons.append(_new_tuple(ShortfallReason, (code, decimal(amount), subject)))
    return tuple(reasons), actionable and not state.beyond_horizon


def _visits(pools: list[_Pool], checks: list[tuple[int, list[_Pool]]]):
    """A sequence's pools in order, each step's inbound below the line's confidence where
    that step starts: ``(pool, below confidence)``."""
    check_index = 0
    for position, pool in enumerate(pools):
        while check_index < len(checks) and checks[check_index][0] <= position:
            for below in checks[check_index][1]:
                yield below, True
            check_index += 1
        yield pool, False
    while check_index < len(checks):
        for below in checks[check_index][1]:
            yield below, True
        check_index += 1


def _project_dates(run: _Run, short_states: list[_LineState]) -> None:
    """A short line's projected date: the eta of the inbound (any confidence) that would
    cover its shortfall if all the open inbound left went to short lines in rank order."""
    left: dict[PoolKey, int] = {}
    memo: dict[tuple, list[_Pool]] = {}
    for state in short_states:
        line = state.line
        substitutes = run.substitutes.get(line.item, ()) if state.substitutes_allowed else ()
        memo_key = (line.item, state.candidates, substitutes)
        pools = memo.get(memo_key)
        if pools is None:
            pools = [pool for pool in run.inbound_list(line.item, state.candidates) if pool.free > 0]
            for substitute in substitutes:
                pools.extend(pool for pool in run.inbound_list(substitute, state.candidates) if pool.free > 0)
            pools.sort(key=lambda pool: (pool.eta, pool.ref or ""))
            memo[memo_key] = pools
        need = state.quantity - state.total
        for pool in pools:
            available = left.get(pool.key)
            if available is None:
                available = pool.free
            if available <= 0:
                continue
            take = need if need < available else available
            left[pool.key] = available - take
            need -= take
            if need <= 0:
                state.projected = pool.eta
                break


def _fairness_prices(parts: list[tuple]) -> tuple[FairnessPrice, ...]:
    totals: dict[tuple, list] = {}
    for strategy, priority_class, mode, lines, rank_covered, rank_wanted, covered, wanted in parts:
        slot = totals.get((strategy, priority_class, mode))
        if slot is None:
            slot = totals[(strategy, priority_class, mode)] = [0, 0.0, 0.0, 0.0, 0.0]
        slot[0] += lines
        slot[1] += rank_covered
        slot[2] += rank_wanted
        slot[3] += covered
        slot[4] += wanted
    found = []
    for (strategy, priority_class, mode), (lines, rank_covered, rank_wanted, covered, wanted) in sorted(
            totals.items(), key=lambda kv: (STRATEGY_INDEX[kv[0][0]], kv[0][1], kv[0][2])):
        rank_fill = rank_covered / rank_wanted if rank_wanted else 1.0
        fill = covered / wanted if wanted else 1.0
        found.append(FairnessPrice(strategy, priority_class, mode, lines, round(rank_fill, 6), round(fill, 6),
                                   round(rank_fill - fill, 6)))
    return tuple(found)


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
        plugin = _NO_FACTS
        if profile.factor_plugins:
            plugin = _plugin_factors(profile.factor_plugins, line.plugin_factors)
            for factor in plugin:
                total += factor.contribution
        if line.credit_hold:
            strategy = "fill"
        else:
            strategy = profile.strategy
            if strategy not in STRATEGY_INDEX:
                raise ValueError(f"line {line.order}/{line.line}: unknown strategy {strategy!r}")
        keys.append((STRATEGY_INDEX[strategy], profile.priority_class, -round(total, 6), line.requested_date,
                     created, line.order, line.line))
        scored.append((total, (tier, urgency, margin, value, age, penalty, risk), profile, strategy, plugin))
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
        total, values, profile, strategy, plugin = scored[position]
        state = new_state(_LineState)
        state.line = line
        state.rank = len(states) + 1
        state.key = keys[position]
        state.score = total
        state.values = values
        state.plugin = plugin
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
        frozen_ids = None
        if existing:
            fixed = []
            held = {}
            substitute_reserved = {}
            freeze_days = profile.freeze_days
            for alloc in existing:
                amount = to_units[alloc.quantity]
                held_before += amount
                if alloc.state in FIXED_STATES:
                    fixed.append(alloc)
                    fixed_quantity += amount
                    continue
                if freeze_days > 0 and alloc.state == "reserved" and (alloc.confirmed_date - as_of).days < freeze_days:
                    # Inside the freeze window: fixed like a pinned allocation.
                    fixed.append(alloc)
                    fixed_quantity += amount
                    if frozen_ids is None:
                        frozen_ids = set()
                    frozen_ids.add(alloc.id)
                    continue
                pool_key = (alloc.item, alloc.location, alloc.supply_ref)
                held[pool_key] = held.get(pool_key, 0) + amount
                if alloc.state == "reserved" and alloc.item != line.item:
                    substitute_reserved[pool_key] = substitute_reserved.get(pool_key, 0) + amount
        state.fixed = fixed
        state.frozen_ids = frozen_ids
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
        state.beyond_horizon = False
        horizon_days = profile.allocation_horizon_days
        if horizon_days is not None:
            due = line.promised_date or line.requested_date
            if (due - as_of).days > horizon_days:
                # Ranked, but takes and keeps nothing this run (fixed allocations stay).
                state.beyond_horizon = True
                state.ceiling = fixed_quantity if fixed_quantity < state.ceiling else state.ceiling
        if line.ship_complete or not profile.allow_partial:
            state.required = quantity
        elif profile.min_fill_pct > 0:
            state.required = int((Decimal(str(profile.min_fill_pct)) * quantity / _HUNDRED)
                                 .to_integral_value(rounding=ROUND_CEILING))
        else:
            state.required = 0
        state.coverable = 0
        state.shared = False
        state.reasons = _NO_FACTS
        state.projected = None
        state.actionable = False
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
    for unit in order_units.values():
        if len(unit) > 1 and any(state.beyond_horizon for state in unit):
            # A ship-complete order is one unit: beyond the horizon when any of its lines is.
            for state in unit:
                state.beyond_horizon = True
                state.ceiling = state.fixed_quantity if state.fixed_quantity < state.ceiling else state.ceiling
    fairness_parts: list[tuple] = []
    for group_index, members_units in group_units.items():
        no_keep: set[int] = set()
        first_pass = True
        while True:
            group_fairness: list[tuple] = []
            lost = _allocate_group(run, members_units, groups[group_index], no_keep, first_pass, group_fairness)
            first_pass = False
            if not lost:
                break
            no_keep |= lost
        fairness_parts.extend(group_fairness)
    results = _Results(run)
    short_states = [state for state in states if state.total < state.quantity]
    if short_states:
        _explain_shortfalls(run, states, short_states)
        _project_dates(run, short_states)
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
    return EngineResult(lines=tuple(decisions), exceptions=tuple(exceptions),
                        fairness=_fairness_prices(fairness_parts))
