"""Invariants 1–6 of allocation.md on random scenarios (hypothesis), with random values of
every depth setting (horizon, freeze window, minimum fill, pack sizes, share mode, custom
factors, quotes): a reservation inside its line's freeze window counts as fixed."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from hypothesis import HealthCheck, given, settings

from allocation.engine import ExistingAllocation, allocate, item_groups, period_key
from tests.engine.strategies import scenarios

FIXED = ("released", "pinned")
ZERO = Decimal(0)
EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _pool_totals(inp):
    totals = defaultdict(Decimal)
    keep = (Decimal(100) - Decimal(str(inp.stale_feed_buffer_pct))) / Decimal(100)
    for row in inp.on_hand:
        totals[(row.item, row.location, None)] += row.available * keep if row.stale else row.available
    for row in inp.inbound:
        totals[(row.item, row.location, row.ref)] += row.quantity
    return totals


def _dims(line):
    return {"customer": line.customer, "customer_segment": line.customer_segment,
            "customer_tier": str(line.customer_tier), "channel": line.channel, "order_kind": line.order_kind, "item": line.item,
            "item_class": line.item_class, "location": line.ship_from or line.home_location,
            "region": line.customer_region}


def _matches(line, scope):
    dims = _dims(line)
    return all(dims.get(name) == value for name, value in scope)


def _existing_of(inp):
    by_line = defaultdict(list)
    for alloc in inp.existing:
        by_line[alloc.line_key].append(alloc)
    return by_line


def _strategy(line):
    return "fill" if line.credit_hold else line.settings.strategy


def _ceiling(line, existing):
    strategy = _strategy(line)
    if strategy == "lose":
        return ZERO
    if strategy == "fill":
        return min(line.quantity, sum((a.quantity for a in existing), ZERO))
    return line.quantity


def _frozen_ids(inp):
    """Existing reserved allocations inside their line's freeze window (fixed like pinned)."""
    lines = {ln.key: ln for ln in inp.lines}
    found = set()
    for alloc in inp.existing:
        line = lines.get(alloc.line_key)
        if (line is not None and alloc.state == "reserved" and line.settings.freeze_days > 0
                and (alloc.confirmed_date - inp.as_of).days < line.settings.freeze_days):
            found.add(alloc.id)
    return found


def _is_fixed(alloc, frozen):
    return alloc.state in FIXED or alloc.id in frozen


def _beyond(inp, line):
    days = line.settings.allocation_horizon_days
    return days is not None and ((line.promised_date or line.requested_date) - inp.as_of).days > days


def _new(decision, frozen=frozenset()):
    return [a for a in decision.allocations
            if a.state not in FIXED and (a.existing_id is None or a.existing_id not in frozen)]


@EXAMPLES
@given(scenarios())
def test_invariant_1_no_supply_or_line_oversubscribed(inp):
    result = allocate(inp)
    totals = _pool_totals(inp)
    lines = {ln.key: ln for ln in inp.lines}
    frozen = _frozen_ids(inp)
    new_at, fixed_at = defaultdict(Decimal), defaultdict(Decimal)
    for alloc in inp.existing:
        if _is_fixed(alloc, frozen) and alloc.line_key in lines:
            fixed_at[(alloc.item, alloc.location, alloc.supply_ref)] += alloc.quantity
    for decision in result.lines:
        line = lines[decision.line_key]
        new_allocations = _new(decision, frozen)
        fixed = sum((a.quantity for a in decision.allocations), ZERO) - sum(
            (a.quantity for a in new_allocations), ZERO)
        new = sum((a.quantity for a in new_allocations), ZERO)
        assert new <= max(ZERO, line.quantity - fixed)
        for alloc in new_allocations:
            assert alloc.quantity > 0
            new_at[(alloc.item, alloc.location, alloc.supply_ref)] += alloc.quantity
    for key, quantity in new_at.items():
        assert key in totals
        assert quantity <= max(ZERO, totals[key] - fixed_at[key]), key


@EXAMPLES
@given(scenarios())
def test_invariant_2_fixed_allocations_unchanged(inp):
    result = allocate(inp)
    by_line = {d.line_key: d for d in result.lines}
    frozen = _frozen_ids(inp)
    for alloc in inp.existing:
        if not _is_fixed(alloc, frozen):
            continue
        kept = [a for a in by_line[alloc.line_key].allocations if a.existing_id == alloc.id]
        assert [(a.item, a.location, a.supply_ref, a.quantity, a.confirmed_date, a.state)
                for a in kept] == [(alloc.item, alloc.location, alloc.supply_ref, alloc.quantity,
                                    alloc.confirmed_date, alloc.state)]


@EXAMPLES
@given(scenarios())
def test_invariant_3_ceilings_and_floors(inp):
    result = allocate(inp)
    existing = _existing_of(inp)
    lines = {ln.key: ln for ln in inp.lines}
    kinds = defaultdict(set)
    for exception in result.exceptions:
        kinds[exception.line_key].add(exception.type)
    frozen = _frozen_ids(inp)
    for decision in result.lines:
        line = lines[decision.line_key]
        held = existing[line.key]
        fixed = sum((a.quantity for a in held if _is_fixed(a, frozen)), ZERO)
        new = sum((a.quantity for a in _new(decision, frozen)), ZERO)
        assert new <= max(ZERO, _ceiling(line, held) - fixed)
        total = fixed + new
        assert decision.shortfall == max(ZERO, line.quantity - total)
        # Shortfall reasons: on every short line, exclusive, summing to the shortfall.
        assert sum((r.quantity for r in decision.shortfall_reasons), ZERO) == decision.shortfall
        assert all(r.quantity > 0 for r in decision.shortfall_reasons)
        assert all(r.text for r in decision.shortfall_reasons)
        if decision.shortfall == 0:
            assert decision.projected_date is None and not decision.actionable
        if _beyond(inp, line):
            assert new == 0 and not kinds[line.key]  # takes nothing, raises nothing
            continue
        if new > 0 and not line.ship_complete and line.settings.min_fill_pct > 0:
            assert total * 100 >= line.quantity * Decimal(str(line.settings.min_fill_pct))
        # The due date (allocation.md "Supply"): never before the as-of date.
        due = max(line.promised_date or line.requested_date, inp.as_of)
        latest = max((a.confirmed_date for a in decision.allocations), default=None)
        at_risk = total < line.quantity or (
            latest is not None and (latest - due).days > line.settings.promise_risk_tolerance_days
        )
        if line.credit_hold:
            # A credit-held line raises only credit_hold, and only when short or at risk.
            assert kinds[line.key] == ({"credit_hold"} if at_risk else set())
            continue
        assert ("promise_at_risk" in kinds[line.key]) == at_risk
        on_time = sum((a.quantity for a in decision.allocations if a.confirmed_date <= due), ZERO)
        below = (
            (line.settings.strategy == "win" and on_time < line.quantity)
            or (line.settings.strategy == "gain"
                and total < min(line.quantity, sum((a.quantity for a in held), ZERO)))
            or (line.customer_tier == 1 and total < line.quantity)
        )
        assert ("priority_shortage" in kinds[line.key]) == below


def _candidates(inp, line):
    if line.ship_from:
        return [line.ship_from]
    lanes = sorted((lane.transit_days, lane.cost_per_unit, lane.location)
                   for lane in inp.lanes if lane.region == line.customer_region)
    order = [location for _, _, location in lanes] or sorted(inp.locations)
    if line.home_location in order:
        order.remove(line.home_location)
        order.insert(0, line.home_location)
    return order


@EXAMPLES
@given(scenarios())
def test_invariant_4_no_lower_line_holds_what_a_higher_line_could_use(inp):
    result = allocate(inp)
    existing = _existing_of(inp)
    lines = {ln.key: ln for ln in inp.lines}
    substitutes = {item.sku: item.substitutes for item in inp.items}
    confidence = {(row.item, row.location, row.ref): row.confidence for row in inp.inbound}
    protected = {(p.sku, p.location) for p in inp.protections}
    pack = {item.sku: item.pack_size for item in inp.items}
    frozen = _frozen_ids(inp)
    decisions = sorted(result.lines, key=lambda d: d.rank)
    for high_index, high in enumerate(decisions):
        line = lines[high.line_key]
        held = existing[line.key]
        total = sum((a.quantity for a in high.allocations), ZERO)
        if (line.credit_hold or line.ship_complete or not line.settings.allow_partial
                or line.settings.min_fill_pct > 0 or _beyond(inp, line)
                or total >= _ceiling(line, held)
                or any(_matches(line, quota.scope) for quota in inp.quotas)):
            continue
        need = _ceiling(line, held) - total
        usable_items = {line.item}
        if line.allow_substitute and line.settings.allow_substitutes:
            usable_items.update(substitutes.get(line.item, ()))
        candidates = set(_candidates(inp, line))
        used = {a.location for a in high.allocations}
        for low in decisions[high_index + 1:]:
            low_line = lines[low.line_key]
            low_held = {(a.item, a.location, a.supply_ref) for a in existing[low_line.key]
                        if a.state not in FIXED}
            if (high.strategy, high.priority_class) == (low.strategy, low.priority_class) and any(
                    ln.settings.share_mode != "rank" for ln in inp.lines):
                continue  # fair share: a lower line of the class may hold its share
            for alloc in _new(low, frozen):
                key = (alloc.item, alloc.location, alloc.supply_ref)
                if _strategy(low_line) == "gain" and key in low_held:
                    continue  # what a gain line keeps is exempt
                if alloc.quantity < pack[alloc.item] and alloc.quantity < need:
                    continue  # less than a pack, and it would not complete the line
                if alloc.item not in usable_items or alloc.location not in candidates:
                    continue
                if alloc.supply_ref is None and (alloc.item, alloc.location) in protected:
                    continue
                if alloc.supply_ref is not None and confidence[key] < line.settings.inbound_min_confidence:
                    continue
                if alloc.location not in used and len(used) >= line.settings.max_split_locations:
                    continue
                raise AssertionError(
                    f"{low_line.order}/{low_line.line} (rank {low.rank}) holds {alloc} that "
                    f"{line.order}/{line.line} (rank {high.rank}) could use"
                )


def _as_existing(result):
    out = []
    for decision in result.lines:
        for alloc in decision.allocations:
            out.append(ExistingAllocation(len(out) + 1, alloc.line_key, alloc.item, alloc.location,
                                          alloc.supply_ref, alloc.quantity, alloc.confirmed_date,
                                          alloc.state))
    return tuple(out)


def _shape(result):
    return {d.line_key: sorted((a.item, a.location, a.supply_ref or "", a.quantity, a.confirmed_date,
                                a.state) for a in d.allocations) for d in result.lines}


@EXAMPLES
@given(scenarios())
def test_invariant_5_deterministic_and_rerun_changes_nothing(inp):
    first = allocate(inp)
    assert allocate(inp) == first
    from dataclasses import replace

    again = allocate(replace(inp, existing=_as_existing(first)))
    assert _shape(again) == _shape(first)
    assert [d.fingerprint for d in again.lines] == [d.fingerprint for d in first.lines]
    assert all(a.existing_id is not None for d in again.lines for a in d.allocations)


@EXAMPLES
@given(scenarios())
def test_invariant_6_credit_held_lines_get_nothing_new(inp):
    result = allocate(inp)
    existing = _existing_of(inp)
    lines = {ln.key: ln for ln in inp.lines}
    for decision in result.lines:
        if not lines[decision.line_key].credit_hold:
            continue
        before = defaultdict(Decimal)
        for alloc in existing[decision.line_key]:
            if alloc.state not in FIXED:
                before[(alloc.item, alloc.location, alloc.supply_ref)] += alloc.quantity
        after = defaultdict(Decimal)
        for alloc in _new(decision, _frozen_ids(inp)):
            after[(alloc.item, alloc.location, alloc.supply_ref)] += alloc.quantity
        for key, quantity in after.items():
            assert quantity <= before[key]


@EXAMPLES
@given(scenarios())
def test_protections_and_quotas_bound_what_lines_consume(inp):
    result = allocate(inp)
    totals = _pool_totals(inp)
    lines = {ln.key: ln for ln in inp.lines}
    item_class = {item.sku: item.item_class for item in inp.items}
    frozen = _frozen_ids(inp)
    for protection in inp.protections:
        key = (protection.sku, protection.location, None)
        others = [p for p in inp.protections if (p.sku, p.location) == (protection.sku, protection.location)]
        held_back = min(sum((p.quantity for p in others), ZERO), totals.get(key, ZERO))
        outsiders = sum((a.quantity for d in result.lines for a in _new(d, frozen)
                         if (a.item, a.location, a.supply_ref) == key
                         and not any(_matches(lines[d.line_key], p.scope) for p in others)), ZERO)
        assert outsiders <= max(ZERO, totals.get(key, ZERO) - held_back)
    for quota in inp.quotas:
        new, fixed = defaultdict(Decimal), defaultdict(Decimal)
        for decision in result.lines:
            line = lines[decision.line_key]
            if not _matches(line, quota.scope):
                continue
            period = period_key(quota.period, line.requested_date)
            for alloc in decision.allocations:
                if quota.sku is not None and alloc.item != quota.sku:
                    continue
                if quota.item_class is not None and item_class[alloc.item] != quota.item_class:
                    continue
                is_fixed = alloc.state in FIXED or (alloc.existing_id is not None and alloc.existing_id in frozen)
                (fixed if is_fixed else new)[period] += alloc.quantity
        for period, quantity in new.items():
            assert quantity <= max(ZERO, quota.quantity - fixed[period])


@EXAMPLES
@given(scenarios())
def test_groups_are_independent(inp):
    from dataclasses import replace

    whole = {d.line_key: d for d in allocate(inp).lines}
    for group in item_groups(inp.items, inp.lines, inp.quotas):
        part = replace(inp, lines=tuple(ln for ln in inp.lines if ln.item in group))
        for decision in allocate(part).lines:
            full = whole[decision.line_key]
            assert (decision.allocations, decision.constraints, decision.shortfall, decision.shortfall_reasons,
                    decision.projected_date, decision.actionable) == (
                full.allocations, full.constraints, full.shortfall, full.shortfall_reasons, full.projected_date,
                full.actionable)
