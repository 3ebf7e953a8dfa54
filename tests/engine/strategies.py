"""Hypothesis strategies: small random scenarios that exercise every engine rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from allocation.engine import (
    DEFAULT_WEIGHTS,
    STRATEGY_ORDER,
    EngineInput,
    ExistingAllocation,
    Inbound,
    Item,
    Lane,
    Line,
    LineSettings,
    OnHand,
    Protection,
    Quota,
)

AS_OF = date(2026, 6, 1)
LOCATIONS = ("L1", "L2", "L3")
REGIONS = ("east", "west")
ITEMS = (Item("A", "valves", ("B",)), Item("B", "valves", ()), Item("C", "pumps", ("D",)),
         Item("D", "pumps", ()))
SEGMENTS = ("healthcare", "retail")
CHANNELS = ("ecommerce", "b2b")


def _quantity(low: int = 1, high: int = 12):
    return st.integers(low, high).map(Decimal)


@st.composite
def line_settings(draw) -> LineSettings:
    return LineSettings(
        strategy=draw(st.sampled_from(STRATEGY_ORDER)),
        priority_class=draw(st.integers(1, 3)),
        weights=tuple(DEFAULT_WEIGHTS.items()),
        urgency_horizon_days=14,
        allow_partial=draw(st.booleans()),
        max_split_locations=draw(st.integers(1, 3)),
        inbound_min_confidence=draw(st.sampled_from((0.5, 0.7, 0.9))),
        allow_substitutes=draw(st.booleans()),
        substitute_needs_approval=draw(st.booleans()),
        auto_release_max_value=None,
        override_approval_min_value=Decimal("10000"),
        margin_floor_pct=draw(st.sampled_from((None, 30.0))),
        # Depth settings (allocation.md "Depth settings"), defaults most often.
        allocation_horizon_days=draw(st.sampled_from((None, None, 0, 3))),
        freeze_days=draw(st.sampled_from((0, 0, 1, 3))),
        min_fill_pct=draw(st.sampled_from((0.0, 0.0, 40.0, 75.0))),
        share_mode=draw(st.sampled_from(("rank", "rank", "pro_rata", "equal"))),
        factor_plugins=draw(st.sampled_from(((), (("sample", 0.3),)))),
        promise_risk_tolerance_days=draw(st.sampled_from((0, 0, 2))),
    )


@st.composite
def scenarios(draw) -> EngineInput:
    items = tuple(Item(item.sku, item.item_class, item.substitutes, Decimal(draw(st.sampled_from((1, 1, 2, 3)))))
                  for item in ITEMS)
    lanes = []
    for location in LOCATIONS:
        for region in REGIONS:
            if draw(st.booleans()):
                lanes.append(Lane(location, region, draw(st.integers(1, 3)), Decimal(draw(st.integers(1, 3)))))
    on_hand = [
        OnHand(item.sku, location, draw(_quantity(0, 15)), draw(st.booleans()))
        for item in ITEMS for location in LOCATIONS if draw(st.integers(0, 2))
    ]
    inbound = []
    for index in range(draw(st.integers(0, 4))):
        inbound.append(Inbound(
            f"PO-{index}", draw(st.sampled_from([item.sku for item in ITEMS])),
            draw(st.sampled_from(LOCATIONS)), draw(_quantity(1, 15)),
            AS_OF + timedelta(days=draw(st.integers(0, 10))), draw(st.sampled_from((0.6, 0.8, 1.0))),
        ))
    lines: list[Line] = []
    order_number = 0
    for index in range(draw(st.integers(1, 10))):
        joins = lines and draw(st.integers(0, 3)) == 0
        if not joins:
            order_number += 1
            order = dict(
                order=f"SO-{order_number}", customer=f"C{draw(st.integers(1, 4))}",
                customer_tier=draw(st.integers(1, 4)), customer_segment=draw(st.sampled_from(SEGMENTS)),
                customer_region=draw(st.sampled_from(REGIONS)), channel=draw(st.sampled_from(CHANNELS)),
                requested_date=AS_OF + timedelta(days=draw(st.integers(-2, 6))),
                promised_date=draw(st.one_of(st.none(), st.just(AS_OF + timedelta(days=3)))),
                order_created_at=datetime(2026, 5, draw(st.integers(1, 31)), tzinfo=UTC),
                ship_complete=draw(st.integers(0, 3)) == 0, credit_hold=draw(st.integers(0, 6)) == 0,
                home_location=draw(st.one_of(st.none(), st.sampled_from(LOCATIONS))),
                ship_from=draw(st.one_of(st.none(), st.none(), st.sampled_from(LOCATIONS))),
                settings=draw(line_settings()),
            )
            number = 0
        number += 1
        item = draw(st.sampled_from(ITEMS))
        price = Decimal(draw(st.integers(50, 150)))
        lines.append(Line(
            key=index + 1, line=number, late_penalty_per_day=Decimal(draw(st.sampled_from((0, 500)))),
            item=item.sku, item_class=item.item_class, quantity=draw(_quantity(1, 12)),
            unit_price=price, unit_cost=Decimal(draw(st.integers(30, 120))),
            allow_substitute=draw(st.booleans()),
            plugin_factors=draw(st.sampled_from(((), (("sample", 0.9),), (("sample", 0.2),)))),
            order_kind=draw(st.sampled_from(("order", "order", "quote"))), **order,
        ))
    existing = []
    refs = {(row.item, row.location): row.ref for row in inbound}
    for ln in lines:
        for _ in range(draw(st.integers(0, 2))):
            item = draw(st.sampled_from((ln.item, *next(i.substitutes for i in ITEMS if i.sku == ln.item))))
            location = draw(st.sampled_from(LOCATIONS))
            ref = refs.get((item, location)) if draw(st.booleans()) else None
            existing.append(ExistingAllocation(
                len(existing) + 1, ln.key, item, location, ref, draw(_quantity(1, 6)),
                AS_OF + timedelta(days=draw(st.integers(0, 5))),
                draw(st.sampled_from(("reserved", "reserved", "proposed", "pinned", "released"))),
            ))
    protections = [
        Protection(index, draw(st.sampled_from([i.sku for i in ITEMS])), draw(st.sampled_from(LOCATIONS)),
                   draw(_quantity(1, 8)), draw(st.sampled_from(((("customer_segment", "healthcare"),),
                                                                (("channel", "ecommerce"),),
                                                                (("order_kind", "quote"),)))))
        for index in range(draw(st.integers(0, 2)))
    ]
    quotas = []
    for index in range(draw(st.integers(0, 2))):
        by_sku = draw(st.booleans())
        quotas.append(Quota(
            index, draw(st.sampled_from(("A", "C"))) if by_sku else None,
            None if by_sku else draw(st.sampled_from(("valves", "pumps"))),
            draw(st.sampled_from(((), (("channel", "ecommerce"),)))),
            draw(st.sampled_from(("day", "week", "month"))), draw(_quantity(2, 15)),
        ))
    return EngineInput(
        as_of=AS_OF, lines=tuple(lines), items=items, locations=LOCATIONS, lanes=tuple(lanes),
        on_hand=tuple(on_hand), inbound=tuple(inbound), existing=tuple(existing),
        protections=tuple(protections), quotas=tuple(quotas),
        stale_feed_buffer_pct=draw(st.sampled_from((10.0, 50.0))),
    )
