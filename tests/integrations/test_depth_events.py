"""Issue 15 fields of the canonical events: item ``pack_size``, order ``kind`` and ``expires_at``."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from allocation.models import Item, Order, OrderLine
from integrations.services import ingest
from tests.integrations.conftest import envelope, ingest_and_apply, line, order_event

pytestmark = pytest.mark.django_db


def item_event(event_id: str, **extra) -> dict:
    data = {"sku": "VALVE-10", "description": "Valve", "item_class": "valves", "uom": "EA", "unit_cost": "60", **extra}
    return envelope(event_id, "item.upserted", data, occurred_at=extra.pop("occurred_at", "2026-05-31T19:00:00Z"))


def quote_event(event_id: str, number: str, *, kind: str | None = "quote", expires_at: str | None = "2026-06-05T12:00:00Z",
                occurred_at: str = "2026-05-31T18:00:00Z", lines: list[dict] | None = None) -> dict:
    event = order_event(event_id, number, lines or [line(1)], occurred_at=occurred_at)
    if kind is not None:
        event["data"]["kind"] = kind
    if expires_at is not None:
        event["data"]["expires_at"] = expires_at
    return event


def errors_of(event: dict) -> list[dict]:
    return ingest([event]).results[0]["errors"]


def test_item_pack_size_is_stored_kept_when_absent_and_reset_by_null(master):
    assert Item.objects.get(sku="VALVE-10").pack_size == Decimal(1)  # the default

    ingest_and_apply([item_event("p-1", pack_size="12")])
    assert Item.objects.get(sku="VALVE-10").pack_size == Decimal(12)

    ingest_and_apply([envelope("p-2", "item.upserted", {"sku": "VALVE-10", "description": "Valve", "item_class": "valves",
                                                         "uom": "EA", "unit_cost": "61"}, occurred_at="2026-05-31T20:00:00Z")])
    item = Item.objects.get(sku="VALVE-10")
    assert (item.unit_cost, item.pack_size) == (Decimal(61), Decimal(12))

    ingest_and_apply([envelope("p-3", "item.upserted", {"sku": "VALVE-10", "description": "Valve", "item_class": "valves",
                                                         "uom": "EA", "unit_cost": "61", "pack_size": None},
                               occurred_at="2026-05-31T21:00:00Z")])
    assert Item.objects.get(sku="VALVE-10").pack_size == Decimal(1)
    assert Item.history.filter(sku="VALVE-10", pack_size=Decimal(12)).exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "must be > 0"),
        ("-2", "must be >= 0"),
        ("1.2345", "must have at most 3 decimal places"),
        ("1e20", "must be less than 100000000000"),
        ("NaN", "must be a decimal number"),
        (True, "must be a decimal number"),
        ([12], "must be a decimal number"),
    ],
)
def test_item_pack_size_refuses_what_cannot_be_a_pack(master, value, message):
    assert errors_of(item_event("bad-pack", pack_size=value)) == [{"field": "data.pack_size", "message": message}]


def test_quote_is_stored_with_its_expiry_and_kind_defaults_to_order(master):
    ingest_and_apply([quote_event("q-1", "Q-1"), order_event("o-1", "SO-1", [line(1)])])

    quote = Order.objects.get(number="Q-1")
    assert (quote.kind, quote.expires_at) == ("quote", dt.datetime(2026, 6, 5, 12, tzinfo=dt.UTC))
    order = Order.objects.get(number="SO-1")
    assert (order.kind, order.expires_at) == ("order", None)


def test_a_date_only_expiry_ends_with_that_day(master, settings):
    settings.TIME_ZONE = "UTC"
    ingest_and_apply([quote_event("q-1", "Q-1", expires_at="2026-06-05")])

    assert Order.objects.get(number="Q-1").expires_at == dt.datetime(2026, 6, 6, tzinfo=dt.UTC)


def test_expires_at_on_an_order_is_ignored(master):
    ingest_and_apply([quote_event("o-1", "SO-1", kind="order")])

    assert Order.objects.get(number="SO-1").expires_at is None


def test_an_order_of_the_same_number_converts_the_quote_in_place(master):
    ingest_and_apply([quote_event("q-1", "Q-1", lines=[line(1), line(2, quantity="5")])])
    first = {row.line: row.pk for row in OrderLine.objects.filter(order__number="Q-1")}

    ingest_and_apply([quote_event("q-2", "Q-1", kind="order", expires_at=None, occurred_at="2026-05-31T19:00:00Z",
                                  lines=[line(1), line(2, quantity="5")])])

    order = Order.objects.get(number="Q-1")
    assert (order.kind, order.expires_at, order.status) == ("order", None, "open")
    # The same rows (so the same allocations) now belong to an order.
    assert {row.line: row.pk for row in OrderLine.objects.filter(order__number="Q-1", status="open")} == first
    assert list(Order.history.filter(number="Q-1").order_by("history_id").values_list("kind", flat=True)) == ["quote", "order"]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"kind": "estimate"}, "data.kind", "must be one of order, quote"),
        ({"kind": "quote", "expires_at": "next week"}, "data.expires_at", "must be an RFC 3339 timestamp with zone"),
        ({"kind": "quote", "expires_at": "2026-06-05T12:00:00"}, "data.expires_at", "must be an RFC 3339 timestamp with zone"),
        ({"kind": "quote", "expires_at": "2026-02-30"}, "data.expires_at", "must be an ISO date (YYYY-MM-DD)"),
        ({"kind": "quote", "expires_at": 1780000000}, "data.expires_at", "must be an RFC 3339 timestamp with zone"),
    ],
)
def test_order_kind_and_expiry_are_checked_at_the_edge(master, data, field, message):
    event = order_event("bad", "Q-9", [line(1)])
    event["data"].update(data)

    assert errors_of(event) == [{"field": field, "message": message}]
