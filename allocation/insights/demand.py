"""Stock, supply and demand per item and location, read set-based for stockout risk and transfers.

A line's location is its ``ship_from``, else its customer's home location; lines with neither
count for no location. Allocations on hand count where they were taken.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import F, Sum
from django.db.models.functions import Coalesce

from allocation.choices import LineStatus, OrderStatus, SupplyStatus
from allocation.models import Allocation, InventoryPosition, OrderLine, Supply

ZERO = Decimal(0)
Key = tuple[str, str]  # (sku, location code)


@dataclass
class ShortLine:
    line_id: int
    order: str
    line: int
    short: Decimal
    unit_price: Decimal
    due: dt.date


@dataclass
class Picture:
    available: dict[Key, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    allocated_on_hand: dict[Key, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    inbound: dict[Key, list[tuple[dt.date, Decimal, float, str]]] = field(default_factory=lambda: defaultdict(list))
    open_demand: dict[Key, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    recent_demand: dict[Key, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    short_lines: dict[Key, list[ShortLine]] = field(default_factory=lambda: defaultdict(list))
    ids: dict[str, dict[str, int]] = field(default_factory=dict)  # "item"/"location": code -> pk


def picture(as_of: dt.date, *, window_days: int = 30) -> Picture:
    """Six queries, whatever the number of lines."""
    from allocation.models import SupplyEstimate

    pic = Picture()
    pic.ids["item"], pic.ids["location"] = {}, {}
    for sku, code, item_id, location_id, on_hand, quality, warehouse in InventoryPosition.objects.values_list(
        "item__sku", "location__code", "item_id", "location_id", "on_hand", "quality_hold", "warehouse_hold"
    ):
        pic.available[(sku, code)] += max(on_hand - quality - warehouse, ZERO)
        pic.ids["item"][sku], pic.ids["location"][code] = item_id, location_id
    for sku, code, quantity in (
        Allocation.objects.filter(supply__isnull=True).values("item__sku", "location__code")
        .annotate(total=Sum("quantity")).values_list("item__sku", "location__code", "total")
    ):
        pic.allocated_on_hand[(sku, code)] += quantity
    used = dict(SupplyEstimate.objects.values_list("supply_id", "confidence_used"))
    for pk, ref, sku, code, quantity, received, eta, confidence in Supply.objects.filter(
        status=SupplyStatus.OPEN, quantity__gt=F("received_quantity")
    ).values_list("pk", "ref", "item__sku", "location__code", "quantity", "received_quantity", "eta", "confidence"):
        pic.inbound[(sku, code)].append((eta, quantity - received, float(used.get(pk, confidence)), ref))
    allocated = dict(
        Allocation.objects.filter(line__status=LineStatus.OPEN).values("line_id").annotate(total=Sum("quantity"))
        .values_list("line_id", "total")
    )
    lines = OrderLine.objects.filter(status=LineStatus.OPEN, order__status=OrderStatus.OPEN).annotate(
        open_quantity=F("quantity") - F("shipped_quantity"),
        at=Coalesce("ship_from__code", "order__customer__home_location__code"),
    )
    for pk, order, number, sku, open_quantity, price, at, promised, requested in lines.filter(open_quantity__gt=0).values_list(
        "pk", "order__number", "line", "item__sku", "open_quantity", "unit_price", "at", "order__promised_date",
        "order__requested_date",
    ):
        if at is None:
            continue
        key = (sku, at)
        pic.open_demand[key] += open_quantity
        short = open_quantity - allocated.get(pk, ZERO)
        if short > 0:
            pic.short_lines[key].append(ShortLine(pk, order, number, short, price, promised or requested))
    since = dt.datetime.combine(as_of - dt.timedelta(days=window_days), dt.time.min, tzinfo=dt.UTC)
    recent = (
        OrderLine.objects.filter(order__created_at__gte=since)
        .annotate(at=Coalesce("ship_from__code", "order__customer__home_location__code"))
        .exclude(at=None).values("item__sku", "at").annotate(total=Sum("quantity")).values_list("item__sku", "at", "total")
    )
    for sku, at, total in recent:
        pic.recent_demand[(sku, at)] += total
    for entries in pic.short_lines.values():
        entries.sort(key=lambda s: (s.due, s.line_id))
    return pic
