"""Load the engine's input from the database in a handful of set-based queries.

``load_input`` builds an :class:`~allocation.engine.types.EngineInput` for every open line
(full scope) or for the item groups of some SKUs (``expand_item_groups``). Each kind of row is
read with one ``values_list`` query; nothing is queried per line. Policy settings are resolved
once per distinct combination of scope dimensions and shared between the lines that have it.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import F, Q
from django.utils import timezone

from allocation import plugins
from allocation.choices import LineStatus, OrderKind, OrderStatus, SupplyStatus
from allocation.engine import types as et
from allocation.models import (
    Allocation,
    Customer,
    InventoryPosition,
    Item,
    ItemSubstitute,
    Lane,
    Location,
    Order,
    OrderLine,
    Supply,
)
from allocation.policy_bridge import PolicyContext, dimension_values

ZERO = Decimal(0)
CHUNK = 5000
# Depth fields of the engine's values (issue 15), passed when the engine has them.
LINE_HAS_ORDER_KIND = "order_kind" in et.Line.__dataclass_fields__
ITEM_HAS_PACK_SIZE = "pack_size" in et.Item.__dataclass_fields__


def _chunks(values: list, size: int = CHUNK):
    for start in range(0, len(values), size):
        yield values[start : start + size]


@dataclass
class LoadedInput:
    """The engine input plus what persisting and simulating need to know about the scope.

    ``skus`` is ``None`` for a full run, else every SKU of the item groups in scope.
    ``line_facts`` maps a line key to the facts reports need (segment, channel, quantity,
    tier, penalty, value, promised-else-requested date).
    """

    engine_input: et.EngineInput
    skus: frozenset[str] | None
    line_ids: list[int]
    order_numbers: set[str]
    line_facts: dict[int, dict[str, Any]] = field(default_factory=dict)
    query_count: int = 0
    # Stale sources whose on-hand in scope was discounted: [{"source", "locations"}] (the run
    # records it as AllocationRun.degraded_feeds).
    degraded_feeds: list[dict[str, Any]] = field(default_factory=list)
    # What the run skipped without failing (a factor plugin that raised or was slow; allocation.plugins).
    warnings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_full(self) -> bool:
        return self.skus is None


def expand_item_groups(skus: Iterable[str], context: PolicyContext) -> frozenset[str]:
    """Every SKU in the item groups of ``skus``: linked by substitution, ship-complete orders, class quotas.

    Expands to a fixpoint with one query per link kind and round (usually one or two rounds).
    """
    quota_classes = {quota.item_class for quota in context.quotas if quota.item_class}
    found = set(skus)
    frontier = set(found)
    while frontier:
        new: set[str] = set()
        for item_sku, substitute_sku in ItemSubstitute.objects.filter(
            Q(item__sku__in=frontier) | Q(substitute__sku__in=frontier)
        ).values_list("item__sku", "substitute__sku"):
            new.add(item_sku)
            new.add(substitute_sku)
        complete_orders = OrderLine.objects.filter(
            item__sku__in=frontier,
            order__ship_complete=True,
            order__status=OrderStatus.OPEN,
            status=LineStatus.OPEN,
        ).values("order_id")
        new.update(
            OrderLine.objects.filter(order_id__in=complete_orders, status=LineStatus.OPEN).values_list(
                "item__sku", flat=True
            )
        )
        if quota_classes:
            classes = set(
                Item.objects.filter(sku__in=frontier, item_class__in=quota_classes).values_list("item_class", flat=True)
            )
            if classes:
                new.update(Item.objects.filter(item_class__in=classes).values_list("sku", flat=True))
        frontier = new - found
        found |= new
    return frozenset(found)


def _stale_sources(context: PolicyContext, now: dt.datetime) -> set[str]:
    """Codes of event sources whose feed is stale: silent longer than their own cadence, else the
    policy's ``stale_feed_minutes`` (the rule of ``integrations.freshness``, which raises the case)."""
    try:
        from integrations import freshness
    except ImportError:  # integrations not installed: no feed freshness to apply
        return set()
    return freshness.stale_source_codes(now, default_minutes=context.stale_feed_minutes)


def _feed_locations(stale: set[str]) -> dict[str, list[str]]:
    """The locations each stale source feeds (``integrations.freshness.feed_locations``)."""
    if not stale:
        return {}
    from integrations import freshness

    return freshness.feed_locations(sorted(stale))


def load_input(
    *,
    as_of: dt.date,
    context: PolicyContext,
    skus: Iterable[str] | None = None,
    expanded: frozenset[str] | None = None,
    now: dt.datetime | None = None,
) -> LoadedInput:
    """Build the engine input for all open lines, or for the item groups of ``skus``.

    Pass ``expanded`` when the caller already expanded (and locked) the item groups. Lines are
    read without joins and completed from per-order, per-customer and per-item dictionaries,
    so each order's and customer's fields are read and converted once, not once per line.
    ``now`` (default: the clock) decides which feeds are stale.
    """
    if expanded is None and skus is not None:
        expanded = expand_item_groups(skus, context)
    scope = expanded

    def by_item(queryset, path: str):
        return queryset if scope is None else queryset.filter(**{f"{path}__in": scope})

    item_rows = list(by_item(Item.objects.all(), "sku").values_list("id", "sku", "item_class", "pack_size"))
    items_by_id = {pk: (sku, cls) for pk, sku, cls, _pack in item_rows}
    location_codes = dict(Location.objects.values_list("id", "code"))

    # No join on orders here: the open orders are read below, and lines of other orders skipped.
    open_lines = OrderLine.objects.filter(status=LineStatus.OPEN)
    if scope is not None:
        open_lines = open_lines.filter(item_id__in=list(items_by_id))
    line_rows = list(
        open_lines.annotate(open_quantity=F("quantity") - F("shipped_quantity"))
        .filter(open_quantity__gt=0)
        .order_by("id")
        .values_list(
            "id", "order_id", "line", "item_id", "open_quantity", "unit_price", "unit_cost", "allow_substitute",
            "ship_from_id",
        )
    )
    order_ids = sorted({row[1] for row in line_rows})
    orders: dict[int, tuple] = {}
    order_fields = (
        "id", "number", "customer_id", "channel", "created_at", "requested_date", "promised_date", "ship_complete",
        "credit_hold", "kind",
    )
    # A quote past its expiry takes nothing, even before the expiry sweep cancels its lines.
    open_orders = Order.objects.filter(status=OrderStatus.OPEN).exclude(
        kind=OrderKind.QUOTE, expires_at__lte=now or timezone.now()
    )
    if scope is None:
        orders = {row[0]: row for row in open_orders.values_list(*order_fields)}
    else:
        for chunk in _chunks(order_ids):
            orders.update({row[0]: row for row in open_orders.filter(id__in=chunk).values_list(*order_fields)})
    customer_fields = ("id", "code", "tier", "segment", "region", "late_penalty_per_day", "home_location_id", "credit_hold")
    customers: dict[int, tuple] = {}
    if scope is None:
        customers = {row[0]: row for row in Customer.objects.values_list(*customer_fields)}
    else:
        for chunk in _chunks(sorted({order[2] for order in orders.values()})):
            customers.update({row[0]: row for row in Customer.objects.filter(id__in=chunk).values_list(*customer_fields)})

    lines: list[et.Line] = []
    line_facts: dict[int, dict[str, Any]] = {}
    order_numbers: set[str] = set()
    settings_for = context.settings_for
    # Depth inputs the engine takes when it has the fields (allocation/engine/types.py).
    kind_fields = {kind: ({"order_kind": kind} if LINE_HAS_ORDER_KIND else {}) for kind in OrderKind.values}
    for key, order_id, number, item_id, open_quantity, unit_price, unit_cost, allow_substitute, ship_from_id in line_rows:
        order_row = orders.get(order_id)
        if order_row is None:  # the order is cancelled or closed
            continue
        _, order, customer_id, channel, created, requested, promised, ship_complete, order_hold, kind = order_row
        _, customer, tier, segment, region, penalty, home_id, customer_hold = customers[customer_id]
        sku, item_class = items_by_id[item_id]
        ship_from = location_codes[ship_from_id] if ship_from_id else None
        home = location_codes[home_id] if home_id else None
        lines.append(
            et.Line(
                key=key,
                order=order,
                line=number,
                customer=customer,
                customer_tier=tier,
                customer_segment=segment,
                customer_region=region,
                late_penalty_per_day=penalty,
                channel=channel,
                item=sku,
                item_class=item_class,
                quantity=open_quantity,
                unit_price=unit_price,
                unit_cost=unit_cost,
                requested_date=requested,
                promised_date=promised,
                order_created_at=created,
                allow_substitute=allow_substitute,
                ship_from=ship_from,
                home_location=home,
                ship_complete=ship_complete,
                credit_hold=order_hold or customer_hold,
                settings=settings_for((customer, segment, tier, channel, kind, sku, item_class, ship_from or home, region)),
                **kind_fields[kind],
            )
        )
        order_numbers.add(order)
        line_facts[key] = {
            "order": order,
            "line": number,
            "segment": segment,
            "region": region,
            "channel": channel,
            "order_kind": kind,
            "tier": tier,
            "penalty": penalty,
            "quantity": open_quantity,
            "value": open_quantity * unit_price,
            "due": max(promised or requested, as_of),  # allocation.md: the due date
            "promised": promised,
            "requested": requested,
        }

    substitutes: dict[str, list[str]] = defaultdict(list)
    for item_sku, substitute_sku in by_item(ItemSubstitute.objects.all(), "item__sku").order_by(
        "item__sku", "priority", "substitute__sku"
    ).values_list("item__sku", "substitute__sku"):
        substitutes[item_sku].append(substitute_sku)
    items = tuple(
        et.Item(sku=sku, item_class=cls, substitutes=tuple(substitutes[sku]), **({"pack_size": pack} if ITEM_HAS_PACK_SIZE else {}))
        for _, sku, cls, pack in sorted(item_rows, key=lambda r: r[1])
    )

    locations = tuple(sorted(location_codes.values()))
    lanes = tuple(
        et.Lane(location=code, region=region, transit_days=days, cost_per_unit=cost)
        for code, region, days, cost in Lane.objects.order_by("location__code", "region").values_list(
            "location__code", "region", "transit_days", "cost_per_unit"
        )
    )

    stale = _stale_sources(context, now or timezone.now())
    position_rows = list(
        by_item(InventoryPosition.objects.all(), "item__sku")
        .order_by("item__sku", "location__code")
        .values_list("item__sku", "location__code", "on_hand", "quality_hold", "warehouse_hold", "source")
    )
    # A stale source's locations (those whose positions it feeds) are stale as a whole: every
    # position there is discounted, whichever event created it (allocation.md: "while the
    # location's inventory feed is stale").
    fed_by = _feed_locations(stale)
    stale_locations = {location for locations in fed_by.values() for location in locations}
    on_hand = tuple(
        et.OnHand(
            item=sku,
            location=code,
            available=max(quantity - quality - warehouse, ZERO),
            stale=code in stale_locations,
        )
        for sku, code, quantity, quality, warehouse, source in position_rows
    )
    in_scope = {code for _, code, _, _, _, _ in position_rows}
    degraded = {source: set(locations) & in_scope for source, locations in fed_by.items()}
    degraded = {source: locations for source, locations in degraded.items() if locations}
    inbound = tuple(
        et.Inbound(ref=ref, item=sku, location=code, quantity=quantity - received, eta=eta, confidence=float(confidence))
        for ref, sku, code, quantity, received, eta, confidence in by_item(
            Supply.objects.filter(status=SupplyStatus.OPEN, quantity__gt=F("received_quantity")), "item__sku"
        )
        .order_by("eta", "ref")
        .values_list("ref", "item__sku", "location__code", "quantity", "received_quantity", "eta", "confidence")
    )
    existing = tuple(
        et.ExistingAllocation(
            id=pk,
            line_key=line_id,
            item=sku,
            location=code,
            supply_ref=ref,
            quantity=quantity,
            confirmed_date=confirmed,
            state=state,
        )
        for pk, line_id, sku, code, ref, quantity, confirmed, state in by_item(Allocation.objects.all(), "item__sku")
        .order_by("id")
        .values_list("id", "line_id", "item__sku", "location__code", "supply__ref", "quantity", "confirmed_date", "state")
    )

    # Custom factors (allocation.plugins): computed once, in bulk, for the lines whose policy names them.
    engine_lines, plugin_warnings = plugins.apply(lines)
    engine_input = et.EngineInput(
        as_of=as_of,
        lines=engine_lines,
        items=items,
        locations=locations,
        lanes=lanes,
        on_hand=on_hand,
        inbound=inbound,
        existing=existing,
        protections=context.protections_for(scope),
        quotas=context.quotas_for(scope),
        stale_feed_buffer_pct=context.stale_feed_buffer_pct,
    )
    return LoadedInput(
        engine_input=engine_input,
        skus=scope,
        line_ids=[line.key for line in lines],
        order_numbers=order_numbers,
        line_facts=line_facts,
        degraded_feeds=[{"source": code, "locations": sorted(codes)} for code, codes in sorted(degraded.items())],
        warnings=plugin_warnings,
    )


def with_policy(loaded: LoadedInput, context: PolicyContext) -> LoadedInput:
    """The same loaded data under another policy (a simulated draft): settings, protections, quotas."""
    from dataclasses import replace

    source = loaded.engine_input
    # The draft may weight other factor plugins: computed again under its settings.
    lines, plugin_warnings = plugins.apply(
        [replace(line, settings=context.settings_for(dimension_values(line))) for line in source.lines]
    )
    engine_input = replace(
        source,
        lines=lines,
        protections=context.protections_for(loaded.skus),
        quotas=context.quotas_for(loaded.skus),
        stale_feed_buffer_pct=context.stale_feed_buffer_pct,
    )
    return LoadedInput(
        engine_input=engine_input,
        skus=loaded.skus,
        line_ids=loaded.line_ids,
        order_numbers=loaded.order_numbers,
        line_facts=loaded.line_facts,
        degraded_feeds=loaded.degraded_feeds,
        warnings=plugin_warnings,
    )


def item_group_partition(context: PolicyContext) -> list[frozenset[str]]:
    """Every SKU partitioned into item groups (substitution, ship-complete orders, class quotas).

    Three queries and a union-find; used to fan a full run out into independent chunks.
    """
    parent: dict[str, str] = {}

    def find(sku: str) -> str:
        parent.setdefault(sku, sku)
        while parent[sku] != sku:
            parent[sku] = parent[parent[sku]]
            sku = parent[sku]
        return sku

    def union(first: str, second: str) -> None:
        root_first, root_second = find(first), find(second)
        if root_first != root_second:
            parent[max(root_first, root_second)] = min(root_first, root_second)

    quota_classes = {quota.item_class for quota in context.quotas if quota.item_class}
    class_anchor: dict[str, str] = {}
    for sku, item_class in Item.objects.values_list("sku", "item_class"):
        find(sku)
        if item_class in quota_classes:
            union(class_anchor.setdefault(item_class, sku), sku)
    for item_sku, substitute_sku in ItemSubstitute.objects.values_list("item__sku", "substitute__sku"):
        union(item_sku, substitute_sku)
    order_anchor: dict[int, str] = {}
    for order_id, sku in OrderLine.objects.filter(
        order__ship_complete=True, order__status=OrderStatus.OPEN, status=LineStatus.OPEN
    ).values_list("order_id", "item__sku"):
        union(order_anchor.setdefault(order_id, sku), sku)
    groups: dict[str, set[str]] = defaultdict(set)
    for sku in list(parent):
        groups[find(sku)].add(sku)
    return [frozenset(members) for members in groups.values()]
