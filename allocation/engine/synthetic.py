"""Random but reproducible engine inputs, for benchmarks and property tests.

``synthetic_input(100_000, seed=1)`` builds a distributor-shaped workload: a few
hundred items (some with substitutes), a handful of locations and regions with
lanes, on-hand and inbound that cover part of the demand, a mix of strategies and
customer tiers, ship-complete orders, a share of lines already holding
allocations (some pinned or released), and optional protections and quotas.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from allocation.engine.types import (
    DEFAULT_WEIGHTS,
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

_STRATEGY_MIX = ("win", "gain", "redistribute", "redistribute", "redistribute", "fill", "lose")
_SEGMENTS = ("healthcare", "manufacturing", "municipal", "retail")
_CHANNELS = ("b2b_contract", "field_sales", "ecommerce")


def _settings(strategy: str, priority_class: int, rng: random.Random) -> LineSettings:
    return LineSettings(
        strategy=strategy, priority_class=priority_class, weights=tuple(DEFAULT_WEIGHTS.items()),
        urgency_horizon_days=14, allow_partial=rng.random() > 0.1,
        max_split_locations=rng.choice((1, 2, 2, 3)), inbound_min_confidence=0.7,
        allow_substitutes=True, substitute_needs_approval=rng.random() > 0.3,
        auto_release_max_value=None, override_approval_min_value=Decimal("10000"),
        margin_floor_pct=rng.choice((None, None, 20.0)),
    )


def synthetic_input(
    n_lines: int,
    *,
    seed: int = 0,
    as_of: date = date(2026, 6, 1),
    n_items: int | None = None,
    n_locations: int = 6,
    n_regions: int = 4,
    supply_ratio: float = 0.9,
    existing_ratio: float = 0.3,
    with_protections: bool = True,
    with_quotas: bool = True,
) -> EngineInput:
    """A reproducible random :class:`EngineInput` with ``n_lines`` open lines."""
    rng = random.Random(seed)
    n_items = n_items or max(4, n_lines // 200)
    locations = tuple(f"DC-{index:02d}" for index in range(n_locations))
    regions = tuple(f"R{index}" for index in range(n_regions))
    lanes = []
    for region in regions:
        for location in rng.sample(locations, k=min(len(locations), rng.randint(2, 4))):
            lanes.append(Lane(location, region, rng.randint(1, 5), Decimal(rng.randint(1, 30)) / 10))
    classes = ("valves", "pumps", "fittings", "pipes")
    skus = [f"SKU-{index:05d}" for index in range(n_items)]
    items = []
    for index, sku in enumerate(skus):
        substitutes: tuple[str, ...] = ()
        if index % 10 == 0 and index + 1 < n_items:
            substitutes = (skus[index + 1],)
        items.append(Item(sku, classes[index % len(classes)], substitutes))
    policies = {
        (strategy, priority): _settings(strategy, priority, rng)
        # dict.fromkeys, not set: set order of str varies per process (PYTHONHASHSEED).
        for strategy in dict.fromkeys(_STRATEGY_MIX) for priority in (1, 3, 5)
    }
    customers = []
    for index in range(max(10, n_lines // 20)):
        customers.append((
            f"CUST-{index:05d}", rng.randint(1, 4), rng.choice(_SEGMENTS), rng.choice(regions),
            rng.choice((None, rng.choice(locations))), Decimal(rng.choice((0, 0, 100, 500))),
        ))
    lines: list[Line] = []
    demand: dict[str, Decimal] = {}
    order_number = 0
    base = datetime(2026, 5, 1, tzinfo=UTC)
    while len(lines) < n_lines:
        order_number += 1
        customer, tier, segment, region, home, penalty = rng.choice(customers)
        channel = rng.choice(_CHANNELS)
        created = base + timedelta(minutes=rng.randint(0, 44000))
        requested = as_of + timedelta(days=rng.choice((-2, 0, 0, 1, 2, 3, 5, 7, 10, 14, 21)))
        promised = requested + timedelta(days=rng.randint(0, 3)) if rng.random() < 0.4 else None
        ship_complete = rng.random() < 0.05
        ship_from = rng.choice(locations) if rng.random() < 0.1 else None
        credit_hold = rng.random() < 0.02
        strategy = "win" if segment == "healthcare" and rng.random() < 0.5 else rng.choice(_STRATEGY_MIX)
        policy = policies[(strategy, rng.choice((1, 3, 5)))]
        for number in range(1, rng.choice((1, 1, 1, 2, 3)) + 1):
            if len(lines) >= n_lines:
                break
            item = rng.choice(skus)
            quantity = Decimal(rng.randint(1, 60))
            price = Decimal(rng.randint(10, 500))
            demand[item] = demand.get(item, Decimal(0)) + quantity
            lines.append(Line(
                key=len(lines) + 1, order=f"SO-{order_number:07d}", line=number, customer=customer,
                customer_tier=tier, customer_segment=segment, customer_region=region,
                late_penalty_per_day=penalty, channel=channel, item=item,
                item_class=items[int(item[4:])].item_class, quantity=quantity, unit_price=price,
                unit_cost=(price * Decimal(rng.randint(50, 95)) / 100).quantize(Decimal("0.01")),
                requested_date=requested, promised_date=promised, order_created_at=created,
                allow_substitute=rng.random() < 0.3, ship_from=ship_from, home_location=home,
                ship_complete=ship_complete, credit_hold=credit_hold, settings=policy,
            ))
    on_hand: list[OnHand] = []
    inbound: list[Inbound] = []
    for sku in skus:
        total = demand.get(sku, Decimal(0)) * Decimal(str(supply_ratio))
        spots = rng.sample(locations, k=rng.randint(1, min(3, len(locations))))
        for location in spots:
            share = (total * Decimal(rng.randint(10, 40)) / 100).to_integral_value()
            if share > 0:
                on_hand.append(OnHand(sku, location, share, rng.random() < 0.05))
        for number in range(rng.randint(0, 2)):
            inbound.append(Inbound(
                f"PO-{sku}-{number}", sku, rng.choice(locations),
                (total * Decimal(rng.randint(5, 30)) / 100).to_integral_value() + 1,
                as_of + timedelta(days=rng.randint(1, 30)), rng.choice((0.5, 0.8, 0.9, 1.0)),
            ))
    existing: list[ExistingAllocation] = []
    supply_rows = [(row.item, row.location, None) for row in on_hand]
    supply_by_item: dict[str, list[tuple]] = {}
    for row in supply_rows:
        supply_by_item.setdefault(row[0], []).append(row)
    for row in inbound:
        supply_by_item.setdefault(row.item, []).append((row.item, row.location, row.ref))
    for line in lines:
        if rng.random() >= existing_ratio or line.item not in supply_by_item:
            continue
        item, location, ref = rng.choice(supply_by_item[line.item])
        state = rng.choices(("reserved", "proposed", "released", "pinned"), (85, 3, 6, 6))[0]
        if state == "proposed":
            state = "reserved"
        quantity = Decimal(rng.randint(1, int(line.quantity)))
        existing.append(ExistingAllocation(
            len(existing) + 1, line.key, item, location, ref,
            quantity if state in ("reserved",) else min(quantity, Decimal(5)),
            max(line.requested_date, as_of), state,
        ))
    protections: list[Protection] = []
    quotas: list[Quota] = []
    if with_protections and on_hand:
        for index, row in enumerate(rng.sample(on_hand, k=min(len(on_hand), max(1, n_items // 20)))):
            protections.append(Protection(
                index, row.item, row.location, (row.available / 3).to_integral_value(),
                (("customer_segment", "healthcare"),),
            ))
    if with_quotas:
        quotas.append(Quota(0, None, "valves", (("channel", "ecommerce"),), "week",
                            Decimal(max(50, n_lines // 10))))
        quotas.append(Quota(1, skus[1 % n_items], None, (("customer_tier", "4"),), "month",
                            Decimal(100)))
    return EngineInput(
        as_of=as_of, lines=tuple(lines), items=tuple(items), locations=locations, lanes=tuple(lanes),
        on_hand=tuple(on_hand), inbound=tuple(inbound), existing=tuple(existing),
        protections=tuple(protections), quotas=tuple(quotas),
    )
