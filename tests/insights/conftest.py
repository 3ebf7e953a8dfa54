"""Small hand-made worlds for decision support (ORM rows; business date 2026-06-01)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

DAY = dt.date(2026, 6, 1)


@pytest.fixture
def make_receipts(db):
    """``make_receipts(supplier, location, kind, [days_late, ...])``: received supplies with that history."""
    from allocation.models import Item, Location, Supply, SupplyReceipt

    counter = {"n": 0}

    def build(supplier: str, location: str, kind: str, lates: list[int], *, start: dt.date = dt.date(2026, 1, 1),
              confidence: str = "1", sku: str = "R-ITEM"):
        item, _ = Item.objects.get_or_create(sku=sku, defaults={"item_class": "hardware"})
        place, _ = Location.objects.get_or_create(code=location, defaults={"name": location, "region": "east", "kind": "warehouse"})
        receipts = []
        for index, late in enumerate(lates):
            counter["n"] += 1
            eta = start + dt.timedelta(days=3 * index)
            supply = Supply.objects.create(
                ref=f"H-{supplier}-{counter['n']}", kind=kind, item=item, location=place, quantity=10, received_quantity=10,
                eta=eta, supplier=supplier, confidence=Decimal(confidence), status="received",
            )
            received = dt.datetime.combine(eta + dt.timedelta(days=late), dt.time(12), tzinfo=dt.UTC)
            receipts.append(SupplyReceipt(supply=supply, quantity=10, received_at=received, eta=eta, days_late=late))
        SupplyReceipt.objects.bulk_create(receipts)

    return build


@pytest.fixture
def two_warehouses(db):
    """WH-A (region east) holds 50 WIDGET nobody there needs; WH-B (region west) has none and
    two lines of CUST-W (home WH-B, ship_from WH-B) short by 30 and 10. Lane WH-A -> west: 2 days."""
    from allocation.models import (
        Customer,
        InventoryPosition,
        Item,
        Lane,
        Location,
        Order,
        OrderLine,
    )

    a = Location.objects.create(code="WH-A", name="A", region="east", kind="warehouse")
    b = Location.objects.create(code="WH-B", name="B", region="west", kind="warehouse")
    Lane.objects.create(location=a, region="west", transit_days=2, cost_per_unit=Decimal("0.40"))
    Lane.objects.create(location=a, region="east", transit_days=1, cost_per_unit=Decimal("0.10"))
    Lane.objects.create(location=b, region="west", transit_days=1, cost_per_unit=Decimal("0.10"))
    item = Item.objects.create(sku="WIDGET", item_class="hardware")
    now = dt.datetime(2026, 5, 30, 10, tzinfo=dt.UTC)
    InventoryPosition.objects.create(location=a, item=item, on_hand=50, as_of=now)
    InventoryPosition.objects.create(location=b, item=item, on_hand=0, as_of=now)
    customer = Customer.objects.create(code="CUST-W", name="W", tier=2, segment="industry", region="west", home_location=b)
    lines = []
    for number, quantity, price in (("B-1", 30, "20.00"), ("B-2", 10, "15.00")):
        order = Order.objects.create(number=number, customer=customer, channel="b2b_contract", created_at=now, requested_date=DAY)
        lines.append(OrderLine.objects.create(order=order, line=1, item=item, quantity=quantity, unit_price=Decimal(price), ship_from=b))
    return {"a": a, "b": b, "item": item, "lines": lines}
