"""Fixtures of the exceptions tests: a small distributor with one contested item, and
exceptions built through the same records run sync writes."""
import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from allocation.choices import AllocationState
from allocation.models import (
    Allocation,
    Customer,
    InventoryPosition,
    Item,
    ItemSubstitute,
    Location,
    Order,
    OrderLine,
    Supply,
)
from exceptions.choices import ExceptionType
from exceptions.models import DecisionException

NOW = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)


class World:
    """Builders for the records an exception is about."""

    def __init__(self):
        self.east = Location.objects.create(code="DC-EAST", name="East", region="east", kind="warehouse")
        self.west = Location.objects.create(code="DC-WEST", name="West", region="west", kind="warehouse")
        self.item = Item.objects.create(sku="VALVE-10", item_class="valves", unit_cost=Decimal("5"))
        self.substitute = Item.objects.create(sku="VALVE-10B", item_class="valves", unit_cost=Decimal("5"))
        ItemSubstitute.objects.create(item=self.item, substitute=self.substitute, priority=1)
        self.hospital = Customer.objects.create(
            code="HOSP", name="Hospital", tier=1, segment="healthcare", region="east", home_location=self.east
        )
        self.shop = Customer.objects.create(
            code="SHOP", name="Shop", tier=3, segment="retail", region="west", home_location=self.west
        )
        self._orders = 0

    def stock(self, location, quantity, item=None):
        return InventoryPosition.objects.create(
            location=location, item=item or self.item, on_hand=Decimal(quantity), as_of=NOW
        )

    def inbound(self, ref, location, quantity, eta, item=None):
        return Supply.objects.create(
            ref=ref, kind="purchase_order", item=item or self.item, location=location, quantity=Decimal(quantity), eta=eta
        )

    def line(self, customer, quantity, unit_price="10", allow_substitute=False, promised=None):
        self._orders += 1
        order = Order.objects.create(
            number=f"SO-{self._orders}",
            customer=customer,
            channel="b2b_contract",
            created_at=NOW - dt.timedelta(days=3),
            requested_date=dt.date(2026, 6, 3),
            promised_date=promised,
        )
        return OrderLine.objects.create(
            order=order,
            line=1,
            item=self.item,
            quantity=Decimal(quantity),
            unit_price=Decimal(unit_price),
            unit_cost=Decimal("5"),
            allow_substitute=allow_substitute,
        )

    def allocate(self, line, location, quantity, state=AllocationState.RESERVED, supply=None, item=None):
        return Allocation.objects.create(
            line=line,
            item=item or self.item,
            location=location,
            supply=supply,
            quantity=Decimal(quantity),
            confirmed_date=dt.date(2026, 6, 3),
            state=state,
        )

    def exception(self, line=None, type=ExceptionType.PRIORITY_SHORTAGE, raised_at=NOW, value=None, route=True, **extra):
        exception = DecisionException.objects.create(
            type=type,
            key=f"{type}:{line.pk if line else DecisionException.objects.count()}:{extra.pop('suffix', '')}",
            message=f"{type} on {line}",
            line=line,
            order=line.order if line else None,
            item=line.item if line else None,
            value=value if value is not None else (line.value if line else 0),
            raised_at=raised_at,
            updated_at=raised_at,
            **extra,
        )
        if route:
            from exceptions.services import route as route_exceptions

            route_exceptions([exception])
            exception.refresh_from_db()
        return exception


@pytest.fixture
def world(db):
    from django.apps import apps

    from exceptions.models import Queue

    if not Queue.objects.exists():
        # A transactional test before this one flushed the data migration's queues.
        import importlib

        importlib.import_module("exceptions.migrations.0003_default_queues").create_defaults(apps, None)
    return World()


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def recorded_runs(monkeypatch, in_process_tasks):
    """Replace allocation runs with a recorder, for tests about the action itself (a real run
    would also sync exceptions raised by hand in these tests). Tasks in-process: with a broker
    the action would only queue its run (tests/exceptions/test_background_runs.py)."""
    from allocation import services as allocation_services

    calls = []

    def run_incremental(skus, *, trigger="event", actor=None, as_of=None):
        calls.append({"skus": list(skus), "trigger": trigger, "actor": actor})
        return None

    monkeypatch.setattr(allocation_services, "run_incremental", run_incremental)
    return calls
