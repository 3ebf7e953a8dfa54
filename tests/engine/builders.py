"""Small builders for engine inputs in tests: defaults from policies-v1, override what matters."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from allocation.engine import (
    DEFAULT_WEIGHTS,
    EngineInput,
    ExistingAllocation,
    Inbound,
    Item,
    Lane,
    Line,
    LineSettings,
    OnHand,
)

AS_OF = date(2026, 6, 1)
D = Decimal


def settings(**overrides) -> LineSettings:
    values = dict(
        strategy="redistribute", priority_class=5, weights=tuple(DEFAULT_WEIGHTS.items()),
        urgency_horizon_days=14, allow_partial=True, max_split_locations=2,
        inbound_min_confidence=0.7, allow_substitutes=True, substitute_needs_approval=True,
        auto_release_max_value=None, override_approval_min_value=D("10000"), margin_floor_pct=None,
    )
    values.update(overrides)
    return LineSettings(**values)


_next_key = [1000]


def line(order: str, number: int = 1, *, item: str = "A", quantity="10", key: int | None = None,
         tier: int = 3, settings_: LineSettings | None = None, **overrides) -> Line:
    if key is None:
        _next_key[0] += 1
        key = _next_key[0]
    values = dict(
        key=key, order=order, line=number, customer=f"C-{order}", customer_tier=tier,
        customer_segment="industrial", customer_region="east", late_penalty_per_day=D("0"),
        channel="b2b", item=item, item_class="widgets", quantity=D(quantity),
        unit_price=D("100"), unit_cost=D("60"), requested_date=AS_OF, promised_date=None,
        order_created_at=datetime(2026, 5, 25, 10, 0, tzinfo=UTC),
        allow_substitute=False, ship_from=None, home_location=None, ship_complete=False,
        credit_hold=False, settings=settings_ or settings(),
    )
    values.update(overrides)
    return Line(**values)


def engine_input(lines, *, on_hand=(), inbound=(), existing=(), items=None, lanes=None,
                 locations=("L1", "L2", "L3"), **extra) -> EngineInput:
    lines = tuple(lines)
    if items is None:
        skus = sorted({ln.item for ln in lines} | {o.item for o in on_hand} | {i.item for i in inbound})
        items = tuple(Item(sku, "widgets", ()) for sku in skus)
    if lanes is None:
        lanes = tuple(Lane(loc, "east", position + 1, D("1")) for position, loc in enumerate(locations))
    return EngineInput(
        as_of=extra.pop("as_of", AS_OF), lines=lines, items=tuple(items), locations=tuple(locations),
        lanes=tuple(lanes), on_hand=tuple(on_hand), inbound=tuple(inbound),
        existing=tuple(existing), **extra,
    )


def oh(item: str, location: str, available, stale: bool = False) -> OnHand:
    return OnHand(item, location, D(str(available)), stale)


def po(ref: str, item: str, location: str, quantity, eta: date, confidence: float = 0.9) -> Inbound:
    return Inbound(ref, item, location, D(str(quantity)), eta, confidence)


def held(alloc_id: int, ln: Line, location: str, quantity, *, item: str | None = None,
         ref: str | None = None, confirmed: date = AS_OF, state: str = "reserved") -> ExistingAllocation:
    return ExistingAllocation(alloc_id, ln.key, item or ln.item, location, ref, D(str(quantity)),
                              confirmed, state)


def allocations_of(result, ln: Line) -> list[tuple]:
    """(location, item, supply_ref, quantity as str, confirmed iso, state) of a line's decision."""
    decision = next(d for d in result.lines if d.line_key == ln.key)
    return [
        (a.location, a.item, a.supply_ref, format(a.quantity.normalize(), "f"),
         a.confirmed_date.isoformat(), a.state)
        for a in decision.allocations
    ]


def decision_of(result, ln: Line):
    return next(d for d in result.lines if d.line_key == ln.key)


def exception_types(result, ln: Line) -> list[str]:
    return sorted(e.type for e in result.exceptions if e.line_key == ln.key)


def as_existing(result, start_id: int = 1) -> tuple[ExistingAllocation, ...]:
    """The decisions of a run as the existing allocations of the next one."""
    out = []
    next_id = start_id
    for decision in result.lines:
        for a in decision.allocations:
            alloc_id = a.existing_id if a.existing_id is not None else None
            if alloc_id is None:
                next_id += 1
                alloc_id = 100000 + next_id
            out.append(ExistingAllocation(alloc_id, a.line_key, a.item, a.location, a.supply_ref,
                                          a.quantity, a.confirmed_date, a.state))
    return tuple(out)


__all__ = ["AS_OF", "D", "settings", "line", "engine_input", "oh", "po", "held",
           "allocations_of", "decision_of", "exception_types", "as_existing"]
