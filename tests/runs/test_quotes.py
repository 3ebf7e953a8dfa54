"""Quotes through the real stack (issue 15): ranked by policy via ``order_kind``, cancelled at
expiry by the beat task (history, supply freed by a re-allocation, ``quote.expired`` out),
converted in place by an order of the same number."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from allocation.models import Allocation, AllocationRun, Order, OrderLine
from allocation.quotes import expire_quotes
from allocation.services import run_full
from integrations.models import OutboxMessage

pytestmark = pytest.mark.django_db

# Real "now" decides expiry (loading and the sweep read the clock), so quotes expire a month ahead.
EXPIRES = (timezone.now() + dt.timedelta(days=30)).replace(microsecond=0)


def event(event_id: str, type_: str, data: dict, occurred_at: str = "2026-05-31T18:00:00Z") -> dict:
    return {"id": event_id, "type": type_, "source": "erp", "occurred_at": occurred_at, "data": data}


def order(event_id: str, number: str, customer: str, quantity: str, *, kind: str = "order", occurred_at: str = "2026-05-31T18:00:00Z") -> dict:
    data = {
        "number": number, "customer": customer, "channel": "b2b", "created_at": "2026-05-25T10:00:00Z",
        "requested_date": "2026-06-02", "kind": kind,
        "lines": [{"line": 1, "sku": "WIDGET", "quantity": quantity, "unit_price": "100", "unit_cost": "60"}],
    }
    if kind == "quote":
        data["expires_at"] = EXPIRES.isoformat()
    return event(event_id, "order.upserted", data, occurred_at)


MASTER = [
    event("m-1", "location.upserted", {"code": "DC-EAST", "name": "East", "region": "east", "kind": "warehouse"}),
    event("m-2", "lane.upserted", {"location": "DC-EAST", "region": "east", "transit_days": 1, "cost_per_unit": 1}),
    event("m-3", "item.upserted", {"sku": "WIDGET", "description": "Widget", "item_class": "widgets", "uom": "EA", "unit_cost": "60"}),
    event("m-4", "customer.upserted", {"code": "BIG", "name": "Big", "tier": 1, "segment": "industrial", "region": "east"}),
    event("m-5", "customer.upserted", {"code": "SMALL", "name": "Small", "tier": 4, "segment": "industrial", "region": "east"}),
    event("m-6", "inventory.snapshot", {"location": "DC-EAST", "sku": "WIDGET", "on_hand": 20, "as_of": "2026-05-31T18:00:00Z"}),
]


def held(number: str) -> Decimal:
    return sum((a.quantity for a in Allocation.objects.filter(line__order__number=number)), Decimal(0))


@pytest.fixture
def book(ingest_events):
    """A tier-1 customer's quote Q-1 for 10 and a tier-4 customer's order SO-1 for 15; 20 on hand."""
    ingest_events([*MASTER, order("q-1", "Q-1", "BIG", "10", kind="quote"), order("o-1", "SO-1", "SMALL", "15")])
    run = run_full(as_of=dt.date(2026, 6, 1))
    assert run.status == "succeeded", run.error
    return run


def test_a_quote_ranks_like_an_order(book):
    assert (held("Q-1"), held("SO-1")) == (Decimal(10), Decimal(10))


def test_a_policy_ranks_quotes_by_order_kind(ingest_events):
    from policies.services import import_document

    import_document({"name": "quotes last", "rules": [
        {"scope": {}, "settings": {}},
        {"scope": {"order_kind": "quote"}, "settings": {"priority_class": 9}},
    ]}, actor=None, activate=True)
    ingest_events([*MASTER, order("q-1", "Q-1", "BIG", "10", kind="quote"), order("o-1", "SO-1", "SMALL", "15")])
    assert run_full(as_of=dt.date(2026, 6, 1)).status == "succeeded"

    # The tier-1 quote now comes after the tier-4 order.
    assert (held("Q-1"), held("SO-1")) == (Decimal(5), Decimal(15))


def test_expiry_cancels_the_quote_frees_its_supply_and_sends_quote_expired(book, django_capture_on_commit_callbacks):
    assert expire_quotes(now=EXPIRES - dt.timedelta(seconds=1)).orders == []  # not yet

    with django_capture_on_commit_callbacks(execute=True):
        result = expire_quotes(now=EXPIRES)

    assert (result.orders, result.lines, result.skus, result.messages) == (["Q-1"], 1, ["WIDGET"], 1)
    quote = Order.objects.get(number="Q-1")
    assert (quote.status, quote.cancel_reason) == ("cancelled", f"quote expired at {EXPIRES.isoformat()}")
    assert OrderLine.objects.get(order=quote).status == "cancelled"
    assert OrderLine.history.filter(order_id=quote.pk, status="cancelled").get().history_change_reason.startswith("quote expired at")
    # The re-allocation the sweep asked for ran: the order takes what the quote held.
    run = AllocationRun.objects.get(pk=result.run_id)
    assert (run.trigger, run.status, run.scope_items) == ("quote_expiry", "succeeded", ["WIDGET"])
    assert (held("Q-1"), held("SO-1")) == (Decimal(0), Decimal(15))
    message = OutboxMessage.objects.get(type="quote.expired")
    assert message.message_id == f"quote.expired:Q-1:{EXPIRES.isoformat()}"
    assert message.payload == {
        "order": "Q-1", "expires_at": EXPIRES.isoformat(), "cancelled_at": EXPIRES.isoformat(),
        "lines": [{"line": 1, "sku": "WIDGET", "quantity": "10"}],
    }
    # A second sweep finds nothing more to do.
    assert expire_quotes(now=EXPIRES + dt.timedelta(hours=1)).orders == []
    assert OutboxMessage.objects.filter(type="quote.expired").count() == 1


def test_the_beat_schedule_runs_the_sweep_every_minute(settings):
    from allocation.tasks import expire_quotes_task

    entry = settings.CELERY_BEAT_SCHEDULE["expire-quotes"]
    assert (entry["task"], entry["schedule"]) == ("allocation.tasks.expire_quotes_task", 60.0)
    assert expire_quotes_task.name == entry["task"]


def test_a_quote_past_its_expiry_takes_nothing_before_the_sweep(ingest_events):
    ingest_events([*MASTER, order("q-1", "Q-1", "BIG", "10", kind="quote"), order("o-1", "SO-1", "SMALL", "15")])
    Order.objects.filter(number="Q-1").update(expires_at=timezone.now() - dt.timedelta(minutes=1))

    assert run_full(as_of=dt.date(2026, 6, 1)).status == "succeeded"

    assert (held("Q-1"), held("SO-1")) == (Decimal(0), Decimal(15))
    assert Order.objects.get(number="Q-1").status == "open"  # cancelling is the sweep's job


def test_an_order_of_the_same_number_converts_the_quote_and_keeps_what_it_holds(book, ingest_events):
    kept = list(Allocation.objects.filter(line__order__number="Q-1").values_list("id", "quantity"))

    ingest_events([order("q-2", "Q-1", "BIG", "10", occurred_at="2026-05-31T19:00:00Z")])

    converted = Order.objects.get(number="Q-1")
    assert (converted.kind, converted.expires_at, converted.status) == ("order", None, "open")
    assert held("Q-1") == Decimal(10)
    assert sorted(q for _, q in Allocation.objects.filter(line__order__number="Q-1").values_list("id", "quantity")) == [q for _, q in kept]
    # An order never expires.
    assert expire_quotes(now=EXPIRES + dt.timedelta(days=1)).orders == []
    assert held("Q-1") == Decimal(10)
