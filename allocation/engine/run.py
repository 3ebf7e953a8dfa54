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
"""

from __future__ import annotations

import gc
import hashlib
import itertools
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

from allocation.engine.groups import item_groups
from allocation.engine.scoring import FactorCache, effective_strategy, rank_key_for, score_parts
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

ZERO = Decimal(0)
FIXED_STATES = frozenset({"released", "pinned"})
RESERVED_STATES = frozenset({"reserved", "released", "pinned"})
_HUNDRED = Decimal(100)

PoolKey = tuple[str, str, str | None]  # (item, location, supply ref or None for on-hand)
QuotaKey = tuple[int, str]  # (quota index, period key)


_FORMATTED: dict[Decimal, str] = {}


def fmt_quantity(quantity: Decimal) -> str:
    """A quantity without exponent or trailing zeros: ``Decimal('60.00')`` → ``'60'``."""
    text = _FORMATTED.get(quantity)
    if text is None:
        text = format(quantity, "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        if text in ("", "-0"):
            text = "0"
        if len(_FORMATTED) < 100000:
            # Equal decimals hash alike and format alike once trailing zeros go.
            _FORMATTED[quantity] = text
    return text


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


def scope_text(scope: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{dimension}={value}" for dimension, value in scope) or "everyone"


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


class _ProtectedStock:
    """The part of one on-hand pool a protection holds for matching lines."""

    __slots__ = ("protection", "initial", "remaining")

    def __init__(self, protection: Protection, initial: Decimal) -> None:
        self.protection = protection
        self.initial = initial
        self.remaining = initial


class _Pool:
    """One supply element: on-hand of an item at a location, or one inbound ref."""

    __slots__ = (
        "key", "item", "location", "ref", "eta", "confidence", "inbound",
        "initial_free", "free", "protected",
    )

    def __init__(
        self, item: str, location: str, ref: str | None, quantity: Decimal,
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

    def reset(self) -> None:
        self.free = self.initial_free
        if self.protected is not None:
            for stock in self.protected:
                stock.remaining = stock.initial


class _Take:
    """A quantity a line took from a pool in this run; ``undo`` is set on the record
    that carries the pool and quota deductions (a substitute take split into a
    reserved and a proposed part carries them once)."""

    __slots__ = ("pool", "quantity", "state", "kept", "undo")

    def __init__(self, pool: _Pool, quantity: Decimal, state: str, kept: bool, undo) -> None:
        self.pool = pool
        self.quantity = quantity
        self.state = state
        self.kept = kept
        self.undo = undo


class _LineState:
    """Everything a run tracks for one line while it allocates."""

    __slots__ = (
        "line", "rank", "key", "score", "values", "weights", "strategy", "candidates", "min_confidence",
        "max_split", "substitutes_allowed", "needs_approval", "existing", "fixed", "fixed_quantity",
        "held", "held_before", "substitute_reserved", "total", "takes", "taken", "locations",
        "dimensions", "quota_cache", "match_cache", "split_blocked", "protections_blocked",
        "quotas_blocked", "low_confidence", "notes", "unit_blocked", "prefer_held",
        "allowed_locations",
    )

    def __init__(self, line: Line, rank: int, key: tuple, scored: tuple,
                 candidates: tuple[str, ...], existing: list[ExistingAllocation]) -> None:
        settings = line.settings
        self.line = line
        self.rank = rank
        self.key = key
        self.score, self.values, self.weights = scored
        self.strategy = effective_strategy(line)
        self.candidates = candidates
        self.min_confidence = settings.inbound_min_confidence
        self.max_split = settings.max_split_locations
        self.substitutes_allowed = line.allow_substitute and settings.allow_substitutes
        self.needs_approval = settings.substitute_needs_approval
        self.existing = existing
        self.fixed = []
        self.fixed_quantity = ZERO
        held: dict[PoolKey, Decimal] = {}
        substitute_reserved: dict[PoolKey, Decimal] = {}
        held_before = ZERO
        for alloc in existing:
            if alloc.state in FIXED_STATES:
                self.fixed.append(alloc)
                self.fixed_quantity += alloc.quantity
                held_before += alloc.quantity
                continue
            pool_key = (alloc.item, alloc.location, alloc.supply_ref)
            held[pool_key] = held.get(pool_key, ZERO) + alloc.quantity
            held_before += alloc.quantity
            if alloc.state == "reserved" and alloc.item != line.item:
                substitute_reserved[pool_key] = substitute_reserved.get(pool_key, ZERO) + alloc.quantity
        self.held = held
        self.held_before = held_before
        self.substitute_reserved = substitute_reserved
        self.dimensions: dict[str, str | None] | None = None
        self.quota_cache: dict[str, tuple[QuotaKey, ...]] = {}
        self.match_cache: dict[int, bool] = {}
        # start() runs at the beginning of every pass over the line's group.

    def start(self) -> None:
        """Reset what this run took (fixed allocations always count)."""
        self.total = self.fixed_quantity
        self.takes: list[_Take] = []
        self.taken: dict[PoolKey, Decimal] = {}
        self.locations = {alloc.location for alloc in self.fixed} if self.fixed else set()
        self.split_blocked = False
        # Explanations are rare: their containers are made on first use.
        self.protections_blocked: dict[int, _ProtectedStock] | None = None
        self.quotas_blocked: dict[QuotaKey, None] | None = None
        self.low_confidence: dict[str, float] | None = None
        self.notes: list[str] | None = None
        self.unit_blocked: tuple[int, ...] | None = None
        self.prefer_held = True
        self.allowed_locations: set[str] | None = None

    def note(self, text: str) -> None:
        if self.notes is None:
            self.notes = []
        self.notes.append(text)

    def matches(self, protection_index: int, scope: tuple[tuple[str, str], ...]) -> bool:
        cached = self.match_cache.get(protection_index)
        if cached is None:
            if self.dimensions is None:
                self.dimensions = line_dimensions(self.line)
            dimensions = self.dimensions
            cached = all(dimensions.get(name) == value for name, value in scope)
            self.match_cache[protection_index] = cached
        return cached

    def ceiling(self) -> Decimal:
        strategy = self.strategy
        quantity = self.line.quantity
        if strategy == "fill":
            return min(quantity, self.held_before)
        if strategy == "lose":
            return ZERO
        return quantity


class _Run:
    """Supply pools, memoised sourcing lists and quota counters shared by a run."""

    def __init__(self, inp: EngineInput) -> None:
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
        self.pools: dict[PoolKey, _Pool] = {}
        self.pools_by_item: dict[str, list[_Pool]] = {}
        self.inbound_by_item: dict[str, list[_Pool]] = {}
        keep = (_HUNDRED - Decimal(str(inp.stale_feed_buffer_pct))) / _HUNDRED
        on_hand_totals: dict[tuple[str, str], Decimal] = {}
        for row in inp.on_hand:
            available = row.available if row.available > 0 else ZERO
            if row.stale:
                available = available * keep
            pair = (row.item, row.location)
            on_hand_totals[pair] = on_hand_totals.get(pair, ZERO) + available
        for (item, location), available in on_hand_totals.items():
            pool = _Pool(item, location, None, available)
            self.pools[pool.key] = pool
            self.pools_by_item.setdefault(item, []).append(pool)
        for row in inp.inbound:
            if row.quantity <= 0:
                continue
            key = (row.item, row.location, row.ref)
            existing_pool = self.pools.get(key)
            if existing_pool is not None:
                existing_pool.initial_free += row.quantity
                existing_pool.free = existing_pool.initial_free
                continue
            pool = _Pool(row.item, row.location, row.ref, row.quantity, row.eta, row.confidence)
            self.pools[key] = pool
            self.pools_by_item.setdefault(row.item, []).append(pool)
            self.inbound_by_item.setdefault(row.item, []).append(pool)
        for pools in self.inbound_by_item.values():
            pools.sort(key=lambda pool: (pool.eta, pool.ref))
        for protection in sorted(inp.protections, key=lambda p: p.index):
            pool = self.pools.get((protection.sku, protection.location, None))
            if pool is None or protection.quantity <= 0:
                continue
            held = min(protection.quantity, pool.initial_free)
            pool.initial_free -= held
            pool.free = pool.initial_free
            if pool.protected is None:
                pool.protected = []
            pool.protected.append(_ProtectedStock(protection, held))
        self.quotas: tuple[Quota, ...] = tuple(sorted(inp.quotas, key=lambda q: q.index))
        self.quota_quantity: dict[int, Decimal] = {quota.index: quota.quantity for quota in self.quotas}
        self.quota_period: dict[int, str] = {quota.index: quota.period for quota in self.quotas}
        self.quota_remaining: dict[QuotaKey, Decimal] = {}
        self.candidate_memo: dict[tuple, tuple[str, ...]] = {}
        self.on_hand_memo: dict[tuple, list[_Pool]] = {}
        self.inbound_memo: dict[tuple, list[_Pool]] = {}

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

    # -- quotas -----------------------------------------------------------------------------

    def quota_keys(self, state: _LineState, item: str) -> tuple[QuotaKey, ...]:
        found = state.quota_cache.get(item)
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
            state.quota_cache[item] = found
        return found

    def quota_room(self, key: QuotaKey) -> Decimal:
        remaining = self.quota_remaining.get(key)
        if remaining is None:
            remaining = self.quota_quantity[key[0]]
        return remaining if remaining > 0 else ZERO

    def quota_spend(self, key: QuotaKey, quantity: Decimal) -> None:
        remaining = self.quota_remaining.get(key)
        if remaining is None:
            remaining = self.quota_quantity[key[0]]
        self.quota_remaining[key] = remaining - quantity


def _held_first(pools: list[_Pool], held: dict[PoolKey, Decimal]) -> list[_Pool]:
    """The pools of one step with those the line holds in front: :func:`_source` takes
    what it held from them on that first visit, and more only on the second."""
    if not held:
        return pools
    first = [pool for pool in pools if pool.key in held]
    if not first:
        return pools
    return first + pools


def _confident(run: _Run, state: _LineState, pools: list[_Pool], on_time: bool) -> list[_Pool]:
    """Inbound pools due on or before (``on_time``) or after the requested date that
    reach the line's confidence threshold."""
    requested = state.line.requested_date
    minimum = state.min_confidence
    chosen = []
    for pool in pools:
        if (pool.eta <= requested) is not on_time:
            continue
        if pool.confidence < minimum:
            if pool.free > 0:
                if state.low_confidence is None:
                    state.low_confidence = {}
                state.low_confidence[pool.ref] = pool.confidence
            continue
        chosen.append(pool)
    return chosen


def _sourcing_order(run: _Run, state: _LineState) -> Iterator[_Pool]:
    """Supply pools in the order a line takes them (allocation.md, "Order of supply")."""
    line = state.line
    item = line.item
    candidates = state.candidates
    held = state.held if state.prefer_held else {}
    yield from _held_first(run.on_hand_list(item, candidates), held)
    inbound = run.inbound_list(item, candidates)
    if inbound:
        yield from _held_first(_confident(run, state, inbound, True), held)
    substitutes = run.substitutes.get(item, ()) if state.substitutes_allowed else ()
    for substitute in substitutes:
        yield from _held_first(run.on_hand_list(substitute, candidates), held)
        substitute_inbound = run.inbound_list(substitute, candidates)
        if substitute_inbound:
            yield from _held_first(_confident(run, state, substitute_inbound, True), held)
    if inbound:
        yield from _held_first(_confident(run, state, inbound, False), held)
    for substitute in substitutes:
        substitute_inbound = run.inbound_list(substitute, candidates)
        if substitute_inbound:
            yield from _held_first(_confident(run, state, substitute_inbound, False), held)


def _available_to(state: _LineState, pool: _Pool) -> Decimal:
    available = pool.free
    if pool.protected is not None:
        for stock in pool.protected:
            if stock.remaining > 0 and state.matches(stock.protection.index, stock.protection.scope):
                available += stock.remaining
    return available


def _take(run: _Run, state: _LineState, pool: _Pool, want: Decimal, kept: bool) -> Decimal:
    """Move up to ``want`` from ``pool`` to the line, within protections and quotas."""
    matched: list[_ProtectedStock] | None = None
    available = pool.free
    if pool.protected is not None:
        matched = []
        for stock in pool.protected:
            if stock.remaining <= 0:
                continue
            protection = stock.protection
            if state.matches(protection.index, protection.scope):
                matched.append(stock)
                available += stock.remaining
            else:
                if state.protections_blocked is None:
                    state.protections_blocked = {}
                state.protections_blocked[protection.index] = stock
    if available <= 0:
        return ZERO
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
            return ZERO
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
    line = state.line
    takes = state.takes
    if pool.item != line.item and state.needs_approval:
        reserved_left = state.substitute_reserved.get(pool.key, ZERO)
        reserved = reserved_left if reserved_left < quantity else quantity
        if reserved > 0:
            state.substitute_reserved[pool.key] = reserved_left - reserved
            takes.append(_Take(pool, reserved, "reserved", kept, undo))
            undo = None
        if quantity > reserved:
            takes.append(_Take(pool, quantity - reserved, "proposed", kept, undo))
    else:
        takes.append(_Take(pool, quantity, "reserved", kept, undo))
    state.total += quantity
    state.taken[pool.key] = state.taken.get(pool.key, ZERO) + quantity
    state.locations.add(pool.location)
    return quantity


def _source(run: _Run, state: _LineState, need: Decimal,
            limits: dict[PoolKey, Decimal] | None, kept: bool) -> None:
    """Take up to ``need`` in sourcing order; ``limits`` restricts the line to those
    pools and quantities (keeps, and lines on credit hold)."""
    locations = state.locations
    max_split = state.max_split
    held = state.held if state.prefer_held and state.held else None
    visited: set[PoolKey] = set()
    allowed = state.allowed_locations
    for pool in _sourcing_order(run, state):
        if allowed is not None and pool.location not in allowed:
            continue
        if held is not None and pool.key in held and pool.key not in visited:
            visited.add(pool.key)
            room = held[pool.key] - state.taken.get(pool.key, ZERO)
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
            limit -= state.taken.get(pool.key, ZERO)
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
                return


def _take_within_split(run: _Run, state: _LineState, pool: _Pool, want: Decimal, kept: bool) -> Decimal:
    if pool.location not in state.locations and len(state.locations) >= state.max_split:
        if _available_to(state, pool) > 0:
            state.split_blocked = True
        return ZERO
    return _take(run, state, pool, want, kept)


def _consume_fixed(run: _Run, state: _LineState, alloc: ExistingAllocation) -> None:
    """Fixed allocations consume their supply first, whatever else wants it."""
    pool = run.pools.get((alloc.item, alloc.location, alloc.supply_ref))
    if pool is not None:
        rest = alloc.quantity
        protected = pool.protected or []
        matching = [s for s in protected if state.matches(s.protection.index, s.protection.scope)]
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
            run.quota_spend(key, alloc.quantity)


def _rollback(run: _Run, state: _LineState) -> bool:
    """Give back everything the line took in this run; True when that included keeps."""
    had_keeps = False
    for take in state.takes:
        had_keeps = had_keeps or take.kept
        if take.state == "reserved" and take.pool.item != state.line.item and state.needs_approval:
            state.substitute_reserved[take.pool.key] = (
                state.substitute_reserved.get(take.pool.key, ZERO) + take.quantity
            )
        if take.undo is None:
            continue
        free_part, parts, quota_keys, quantity = take.undo
        take.pool.free += free_part
        if parts:
            for stock, part in parts:
                stock.remaining += part
        for key in quota_keys:
            run.quota_spend(key, -quantity)
    state.takes = []
    state.taken = {}
    state.total = state.fixed_quantity
    state.locations = {alloc.location for alloc in state.fixed}
    return had_keeps


def _fill_unit(run: _Run, unit: list[_LineState]) -> list[_LineState]:
    """Let each line of a unit take free supply up to its ceiling; returns the lines that
    end short of an all-or-nothing requirement (ship-complete, ``allow_partial = false``)."""
    for state in unit:
        need = state.ceiling() - state.total
        if need > 0:
            _source(run, state, need, state.held if state.line.credit_hold else None, kept=False)
    if unit[0].line.ship_complete:
        return [state for state in unit if state.total < state.line.quantity]
    state = unit[0]
    if not state.line.settings.allow_partial and state.total < state.line.quantity:
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
    quantity = state.line.quantity
    limits = state.held if state.line.credit_hold else None
    need = state.ceiling() - state.total
    if need <= 0:
        return state.total >= quantity
    if state.total + need < quantity:
        return False
    _source(run, state, need, limits, kept=False)
    if state.total >= quantity:
        return True
    _rollback(run, state)
    available: dict[str, Decimal] = {}
    for pool in _sourcing_order(run, state):
        amount = _available_to(state, pool)
        if limits is not None:
            amount = min(amount, limits.get(pool.key, ZERO))
        if amount > 0:
            available[pool.location] = available.get(pool.location, ZERO) + amount
    fixed_locations = set(state.locations)
    base = sum((available.get(location, ZERO) for location in fixed_locations), ZERO)
    options = [location for location in state.candidates
               if location in available and location not in fixed_locations]
    for size in range(0, state.max_split - len(fixed_locations) + 1):
        for combination in itertools.combinations(options, size):
            if base + sum((available[location] for location in combination), ZERO) < need:
                continue
            state.allowed_locations = fixed_locations.union(combination)
            _source(run, state, need, limits, kept=False)
            state.allowed_locations = None
            if state.total >= quantity:
                return True
            _rollback(run, state)
    return False


def _allocate_group(run: _Run, units: list[list[_LineState]], items: frozenset[str],
                    no_keep: set[int]) -> set[int]:
    """One pass over a group; returns the keys of lines whose keeps had to be given back."""
    for item in items:
        for pool in run.pools_by_item.get(item, ()):
            pool.reset()
    run.quota_remaining = {}
    for unit in units:
        for state in unit:
            state.start()
            if state.fixed:
                for alloc in state.fixed:
                    _consume_fixed(run, state, alloc)
    # Gain lines keep what they held, in rank order, before anyone takes free supply.
    for unit in units:
        for state in unit:
            if state.strategy == "gain" and state.held and state.line.key not in no_keep:
                need = min(state.line.quantity - state.total, state.held_before - state.fixed_quantity)
                if need > 0:
                    _source(run, state, need, state.held, kept=True)
    lost_keeps: set[int] = set()
    for unit in units:
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
                state.note(
                    f"ship_complete order {state.line.order} blocked: line(s) "
                    + ", ".join(map(str, short_lines)) + " not fully coverable"
                )
        else:
            state = unit[0]
            state.note(f"allow_partial=false: {fmt_quantity(state.line.quantity)} "
                       "not coverable, nothing allocated")
    return lost_keeps - no_keep


# -- results -------------------------------------------------------------------------------

_NO_CONSTRAINTS: tuple[str, ...] = ()


def _step_label(state: _LineState, pool: _Pool) -> str:
    kind = "inbound" if pool.inbound else "on-hand"
    if pool.item != state.line.item:
        kind = "substitute " + kind
    return kind


def _path_entry(state: _LineState, take: _Take) -> str:
    pool = take.pool
    label = f"kept {_step_label(state, pool)}" if take.kept else _step_label(state, pool)
    if pool.inbound:
        label = (f"{label} {pool.ref} {pool.location} {pool.item} {fmt_quantity(take.quantity)}"
                 f" eta {pool.eta.isoformat()}")
    else:
        label = f"{label} {pool.location} {pool.item} {fmt_quantity(take.quantity)}"
    if take.state == "proposed":
        label += " (proposed)"
    return label


def _decide(run: _Run, state: _LineState, factor_cache: FactorCache) -> LineDecision:
    """The decision of one line once its group is allocated."""
    as_of = run.as_of
    line = state.line
    line_key = line.key
    requested = line.requested_date
    on_hand_date = requested if requested >= as_of else as_of
    allocations: list[AllocationDecision] = []
    path: list[str] = []
    for alloc in state.fixed:
        allocations.append(AllocationDecision(
            line_key, alloc.item, alloc.location, alloc.supply_ref, alloc.quantity,
            alloc.confirmed_date, alloc.state, alloc.id,
        ))
        path.append(f"fixed {alloc.state} {alloc.location} {alloc.item} {fmt_quantity(alloc.quantity)}")
    takes = state.takes
    if takes:
        merged: dict[tuple, list] = {}
        for take in takes:
            path.append(_path_entry(state, take))
            slot = merged.get((take.pool.key, take.state))
            if slot is None:
                merged[(take.pool.key, take.state)] = [take.pool, take.quantity, take.state]
            else:
                slot[1] += take.quantity
        unchanged: dict[tuple, list[int]] | None = None
        if len(state.existing) > len(state.fixed):
            unchanged = {}
            for alloc in state.existing:
                if alloc.state not in FIXED_STATES:
                    unchanged.setdefault(
                        (alloc.item, alloc.location, alloc.supply_ref, alloc.state, alloc.quantity,
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
            allocations.append(AllocationDecision(
                line_key, pool.item, pool.location, pool.ref, quantity, confirmed, alloc_state,
                existing_id,
            ))
    quantity = line.quantity
    total = state.total
    shortfall = quantity - total if total < quantity else ZERO
    if shortfall > 0 or state.notes or line.credit_hold or state.strategy == "lose":
        constraints = tuple(_constraints(run, state, shortfall))
    else:
        constraints = _NO_CONSTRAINTS
    parts = [
        f"{alloc.item}@{alloc.location}@{alloc.supply_ref or ''}={fmt_quantity(alloc.quantity)}"
        f"/{alloc.confirmed_date.isoformat()}/{alloc.state}"
        for alloc in allocations
    ]
    if len(parts) > 1:
        parts.sort()  # the same allocations in another order are the same decision
    parts.append(state.strategy)
    parts.append(str(line.settings.priority_class))
    fingerprint = hashlib.blake2b("|".join(parts).encode(), digest_size=16).hexdigest()
    return LineDecision(
        line_key, state.rank, state.key, state.score,
        factor_cache.factors(state.values, state.weights), state.strategy,
        line.settings.priority_class, tuple(allocations), tuple(path), constraints, shortfall,
        fingerprint,
    )


def _constraints(run: _Run, state: _LineState, shortfall: Decimal) -> list[str]:
    line = state.line
    found: list[str] = []
    if line.credit_hold:
        found.append("credit hold: no new allocation")
    if state.strategy == "lose":
        found.append("strategy lose: allocation released")
    if shortfall <= 0 and not state.notes:
        return found
    ceiling_reasons = len(found)
    if state.strategy == "fill" and not line.credit_hold and state.held_before < line.quantity:
        found.append(f"strategy fill: ceiling {fmt_quantity(state.held_before)} (held before the run)")
        ceiling_reasons += 1
    if state.notes:
        found.extend(state.notes)
    if state.split_blocked:
        found.append(f"max_split_locations={state.max_split} reached")
    if state.protections_blocked:
        for index in sorted(state.protections_blocked):
            protection = state.protections_blocked[index].protection
            found.append(
                f"protection #{index} at {protection.location} reserves "
                f"{fmt_quantity(protection.quantity)} for {scope_text(protection.scope)}"
                f" ({protection.sku})"
            )
    if state.quotas_blocked:
        for quota_index, key in state.quotas_blocked:
            found.append(f"quota #{quota_index} {run.quota_period[quota_index]} {key} exhausted")
    if state.low_confidence:
        for ref in sorted(state.low_confidence):
            found.append(
                f"inbound {ref} confidence {state.low_confidence[ref]:g} "
                f"below {state.min_confidence:g}"
            )
    if shortfall > 0 and len(found) == ceiling_reasons:
        found.append(
            f"no more supply of {line.item} at {', '.join(state.candidates) or 'any location'}"
        )
    return found


def _line_exceptions(state: _LineState, decision: LineDecision) -> list[RaisedException]:
    """The exceptions one line raises (allocation.md, "Exceptions a run raises")."""
    line = state.line
    quantity = line.quantity
    due = line.promised_date or line.requested_date
    total = state.total
    shortfall = decision.shortfall
    latest: date | None = None
    covered_by_due = ZERO
    reserved_after = ZERO
    reserved_after_by_due = ZERO
    proposed: list[AllocationDecision] | None = None
    for alloc in decision.allocations:
        confirmed = alloc.confirmed_date
        if latest is None or confirmed > latest:
            latest = confirmed
        on_time = confirmed <= due
        if on_time:
            covered_by_due += alloc.quantity
        if alloc.state in RESERVED_STATES:
            reserved_after += alloc.quantity
            if on_time:
                reserved_after_by_due += alloc.quantity
        elif alloc.state == "proposed":
            if proposed is None:
                proposed = []
            proposed.append(alloc)
    at_risk = shortfall > 0 or (latest is not None and latest > due)
    below_floor = None
    if not line.credit_hold:
        strategy = state.strategy
        if strategy == "win" and covered_by_due < quantity:
            below_floor = (f"win floor: {fmt_quantity(quantity)} by {due.isoformat()}, "
                           f"{fmt_quantity(covered_by_due)} confirmed by then")
        elif strategy == "gain" and total < min(state.held_before, quantity):
            below_floor = (f"gain floor: held {fmt_quantity(min(state.held_before, quantity))} "
                           f"before the run, {fmt_quantity(total)} now")
        elif line.customer_tier == 1 and shortfall > 0:
            below_floor = f"tier-1 customer line short by {fmt_quantity(shortfall)}"
    floor_pct = line.settings.margin_floor_pct
    margin_pct = _margin_pct(line) if floor_pct is not None else 0.0
    below_margin = floor_pct is not None and margin_pct < floor_pct
    reversed_numbers = None
    if state.existing:
        reserved_before = ZERO
        reserved_before_by_due = ZERO
        for alloc in state.existing:
            if alloc.state in RESERVED_STATES:
                reserved_before += alloc.quantity
                if alloc.confirmed_date <= due:
                    reserved_before_by_due += alloc.quantity
        if reserved_after < reserved_before or reserved_after_by_due < reserved_before_by_due:
            reversed_numbers = (reserved_before, reserved_after, reserved_before_by_due,
                                reserved_after_by_due)
    split = state.split_blocked and shortfall > 0
    if not (at_risk or below_floor or proposed or below_margin or reversed_numbers or split):
        return []

    base = {
        "ordered": fmt_quantity(quantity),
        "covered": fmt_quantity(total),
        "shortfall": fmt_quantity(shortfall),
        "covered_by_due": fmt_quantity(covered_by_due),
        "confirmed_date": latest.isoformat() if latest else None,
        "promised": line.promised_date.isoformat() if line.promised_date else None,
        "requested": line.requested_date.isoformat(),
        "strategy": state.strategy,
        "priority_class": line.settings.priority_class,
        "reasons": list(decision.constraints),
    }
    first_location = decision.allocations[0].location if decision.allocations else line.ship_from
    where = f"{line.order}/{line.line} {line.item}"
    raised: list[RaisedException] = []
    key_suffix = f":{line.order}/{line.line}"
    line_key, order, item = line.key, line.order, line.item

    def add(kind: str, message: str, **extra) -> None:
        details = base.copy()
        if extra:
            details.update(extra)
        raised.append(RaisedException(
            kind, kind + key_suffix, line_key, order, item, first_location, message, details,
        ))

    if below_floor is not None:
        add("priority_shortage", f"{where}: {below_floor}", floor=below_floor)
    if at_risk:
        summary = (f"{fmt_quantity(total)} of {fmt_quantity(quantity)} covered"
                   + (f", confirmed {latest.isoformat()}" if latest else "")
                   + f", due {due.isoformat()}")
        if line.credit_hold:
            add("credit_hold", f"{where}: on credit hold, {summary}")
        else:
            add("promise_at_risk", f"{where}: {summary}")
    if proposed:
        add(
            "substitution_proposed",
            f"{where}: substitute proposed, " + ", ".join(
                f"{alloc.item} {fmt_quantity(alloc.quantity)} at {alloc.location}" for alloc in proposed
            ),
            substitutes=[
                {"item": alloc.item, "location": alloc.location, "supply_ref": alloc.supply_ref,
                 "quantity": fmt_quantity(alloc.quantity)}
                for alloc in proposed
            ],
        )
    if below_margin:
        add("margin_below_floor", f"{where}: margin {margin_pct:.2f}% below floor {floor_pct:g}%",
            margin_pct=round(margin_pct, 4), margin_floor_pct=floor_pct)
    if reversed_numbers is not None:
        before, after, before_by_due, after_by_due = reversed_numbers
        add(
            "allocation_reversed",
            f"{where}: reserved {fmt_quantity(before)} → {fmt_quantity(after)}, "
            f"by {due.isoformat()} {fmt_quantity(before_by_due)} → {fmt_quantity(after_by_due)}",
            reserved_before=fmt_quantity(before), reserved_after=fmt_quantity(after),
            reserved_by_due_before=fmt_quantity(before_by_due),
            reserved_by_due_after=fmt_quantity(after_by_due),
        )
    if split:
        add("split_limit",
            f"{where}: needs more than {state.max_split} location(s), short {fmt_quantity(shortfall)}",
            max_split_locations=state.max_split, locations=sorted(state.locations))
    return raised


def _margin_pct(line: Line) -> float:
    price = float(line.unit_price)
    cost = float(line.unit_cost)
    if price <= 0:
        return 0.0 if cost <= 0 else -100.0
    return (price - cost) / price * 100.0


def _ship_complete_exception(order: str, members: list[_LineState]) -> RaisedException:
    short = list(members[0].unit_blocked or ())
    lines = [
        {"line": state.line.line, "item": state.line.item, "ordered": fmt_quantity(state.line.quantity),
         "coverable": state.line.line not in short}
        for state in members
    ]
    reasons: list[str] = []
    for state in members:
        prefix = f"{state.line.order}/{state.line.line}"
        if state.split_blocked:
            reasons.append(f"{prefix}: max_split_locations={state.max_split} reached")
        for index in sorted(state.protections_blocked or ()):
            reasons.append(f"{prefix}: protection #{index}")
        for quota_index, key in state.quotas_blocked or ():
            reasons.append(f"{prefix}: quota #{quota_index} {key} exhausted")
    return RaisedException(
        type="ship_complete_blocked", key=f"ship_complete_blocked:{order}", line_key=None,
        order=order, item=None, location=None,
        message=(f"{order}: ship-complete order blocked, line(s) {', '.join(map(str, short))} "
                 "cannot be fully covered"),
        details={"lines": lines, "short_lines": short, "reasons": reasons},
    )


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
    run = _Run(inp)
    existing_by_line: dict[int, list[ExistingAllocation]] = {}
    for alloc in sorted(inp.existing, key=lambda a: a.id):
        if alloc.quantity > 0:
            existing_by_line.setdefault(alloc.line_key, []).append(alloc)
    ranked = []
    for line in inp.lines:
        scored = score_parts(line, as_of)
        ranked.append((rank_key_for(line, scored[0]), scored, line))
    ranked.sort(key=lambda entry: entry[0])
    # Ship-complete orders are one unit, at the rank of their highest-ranked line.
    units: list[list[tuple]] = []
    order_units: dict[str, list[tuple]] = {}
    for entry in ranked:
        line = entry[2]
        if line.ship_complete:
            unit = order_units.get(line.order)
            if unit is None:
                unit = order_units[line.order] = []
                units.append(unit)
            unit.append(entry)
        else:
            units.append([entry])
    groups = item_groups(inp.items, inp.lines, inp.quotas)
    group_of: dict[str, int] = {sku: index for index, members in enumerate(groups) for sku in members}
    group_units: dict[int, list[list[_LineState]]] = {}
    states: list[_LineState] = []
    no_existing: list[ExistingAllocation] = []
    candidates = run.candidates
    for unit in units:
        unit_states = []
        for key, scored, line in unit:
            state = _LineState(line, len(states) + 1, key, scored, candidates(line),
                               existing_by_line.get(line.key, no_existing))
            unit_states.append(state)
            states.append(state)
        group_units.setdefault(group_of[unit[0][2].item], []).append(unit_states)
    for group_index, members_units in group_units.items():
        no_keep: set[int] = set()
        while True:
            lost = _allocate_group(run, members_units, groups[group_index], no_keep)
            if not lost:
                break
            no_keep |= lost
    factor_cache = FactorCache()
    decisions: list[LineDecision] = []
    exceptions: list[RaisedException] = []
    blocked: dict[str, list[_LineState]] = {}
    for state in states:
        decision = _decide(run, state, factor_cache)
        decisions.append(decision)
        exceptions.extend(_line_exceptions(state, decision))
        if state.unit_blocked is not None:
            members = blocked.setdefault(state.line.order, [])
            members.append(state)
            if len(members) == len(order_units[state.line.order]):
                exceptions.append(_ship_complete_exception(state.line.order, members))
    return EngineResult(lines=tuple(decisions), exceptions=tuple(exceptions))
