"""Ingestion and application of canonical events through integrations.services."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

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
    SupplyReceipt,
)
from exceptions.models import DecisionException
from integrations.models import DuplicateDelivery, Event, EventBatch, ParkedReference, Source
from integrations.services import ingest, process_pending, retry_event
from tests.integrations.conftest import (
    SCENARIOS,
    envelope,
    ingest_and_apply,
    line,
    order_event,
    scenario,
)

pytestmark = pytest.mark.django_db


def position(location: str, sku: str) -> InventoryPosition:
    return InventoryPosition.objects.get(location__code=location, item__sku=sku)


def test_ingest_command_applies_valves_1_and_reports_duplicates_on_reingest():
    # Given the valves-1 scenario file, when it is ingested twice
    first, second = StringIO(), StringIO()
    call_command("ingest", str(SCENARIOS / "valves-1.jsonl"), stdout=first)
    call_command("ingest", str(SCENARIOS / "valves-1.jsonl"), stdout=second)

    # Then the first run stores and applies 23 events, the second stores nothing new
    assert first.getvalue().strip() == "stored 23, duplicates 0, rejected 0, applied 23, stale 0, parked 0, failed 0, pending 0"
    assert second.getvalue().strip() == "stored 0, duplicates 23, rejected 0, applied 0, stale 0, parked 0, failed 0, pending 0"
    assert Event.objects.count() == 23
    assert Event.objects.filter(status="applied").count() == 23
    assert (Location.objects.count(), Item.objects.count(), Customer.objects.count(), Lane.objects.count()) == (2, 3, 4, 4)
    assert (Supply.objects.count(), Order.objects.count(), OrderLine.objects.count()) == (2, 4, 5)
    assert list(ItemSubstitute.objects.values_list("item__sku", "substitute__sku", "priority")) == [("VALVE-10", "VALVE-10X", 1)]
    east = position("DC-EAST", "VALVE-10")
    assert (east.on_hand, east.quality_hold, east.available) == (Decimal("100"), Decimal("10"), Decimal("90"))
    assert OrderLine.objects.get(order__number="SO-2", line=1).allow_substitute is True
    assert Order.objects.get(number="SO-4").ship_complete is True
    assert Customer.objects.get(code="HOSP-1").home_location.code == "DC-EAST"
    assert Supply.objects.get(ref="PO-2").confidence == Decimal("0.5")
    # Domain history is written with the event as the change reason.
    assert Order.history.get(number="SO-1").history_change_reason == "event erp:erp-0020"


def test_valves_2_adjustment_leaves_50_available_at_dc_east(run_requests, apply_with_hooks):
    ingest_and_apply(scenario("valves-1.jsonl"), via="file")

    result, summary = apply_with_hooks(scenario("valves-2.jsonl"), via="file")

    assert (result.accepted, summary.applied) == (1, 1)
    east = position("DC-EAST", "VALVE-10")
    assert (east.on_hand, east.quality_hold, east.available) == (Decimal("60"), Decimal("10"), Decimal("50"))
    assert east.as_of == dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)
    assert run_requests == [["VALVE-10"]]


def test_batch_with_one_invalid_event_rejects_exactly_that_event(master):
    events = [
        order_event("o-1", "SO-1", [line(1)]),
        order_event("o-2", "SO-2", [line(1, quantity="-5")]),
        order_event("o-3", "SO-3", [line(1)]),
    ]

    result, summary = ingest_and_apply(events)

    assert [(r["id"], r["status"]) for r in result.results] == [("o-1", "accepted"), ("o-2", "rejected"), ("o-3", "accepted")]
    assert result.results[1]["errors"] == [{"field": "data.lines[0].quantity", "message": "must be >= 0"}]
    assert result.results[0]["errors"] == []
    assert summary.applied == 2
    assert sorted(Order.objects.values_list("number", flat=True)) == ["SO-1", "SO-3"]
    assert not Event.objects.filter(event_id="o-2").exists()
    batch = EventBatch.objects.get(pk=result.batch_id)
    assert (batch.accepted, batch.duplicates, batch.rejected) == (2, 0, 1)
    assert batch.rejections == [{"index": 1, "id": "o-2", "errors": [{"field": "data.lines[0].quantity", "message": "must be >= 0"}]}]


def test_envelope_errors_name_each_field(db):
    result = ingest(
        [
            {"id": "", "type": "order.shipped", "source": "erp", "occurred_at": "yesterday", "data": {}},
            {"id": "x-1", "type": "inventory.snapshot", "source": "wms", "occurred_at": "2026-05-31T18:00:00", "data": {"location": "DC-EAST", "sku": "VALVE-10", "on_hand": "abc", "as_of": "2026-05-31T17:00:00Z"}},
        ]
    )
    assert result.results[0]["errors"] == [
        {"field": "id", "message": "must be 1-200 characters"},
        {"field": "type", "message": "must be one of the event types of events-v1"},
        {"field": "occurred_at", "message": "must be an RFC 3339 timestamp with zone"},
    ]
    assert result.results[1]["errors"] == [
        {"field": "occurred_at", "message": "must be an RFC 3339 timestamp with zone"},
        {"field": "data.on_hand", "message": "must be a decimal number"},
    ]
    assert Event.objects.count() == 0


def test_unknown_source_is_rejected_when_sources_are_not_auto_registered(db, settings):
    settings.ALLOT_AUTO_REGISTER_SOURCES = False
    result = ingest([envelope("e-1", "location.upserted", {"code": "DC-1", "name": "One", "region": "east", "kind": "hub"}, source="newsys")])
    assert result.results == [{"id": "e-1", "status": "rejected", "errors": [{"field": "source", "message": "is not a registered source"}]}]
    assert (Source.objects.count(), Event.objects.count()) == (0, 0)


def test_stale_inventory_snapshot_is_recorded_stale_and_not_applied(master):
    newer = envelope("w-1", "inventory.snapshot", {"location": "DC-EAST", "sku": "VALVE-10", "on_hand": "100", "as_of": "2026-05-31T17:00:00Z"}, source="wms")
    older = envelope("w-2", "inventory.snapshot", {"location": "DC-EAST", "sku": "VALVE-10", "on_hand": "70", "as_of": "2026-05-31T12:00:00Z"}, source="wms", occurred_at="2026-05-31T19:00:00Z")
    ingest_and_apply([newer])

    _, summary = ingest_and_apply([older])

    assert (summary.applied, summary.stale) == (0, 1)
    assert Event.objects.get(event_id="w-2").status == "stale"
    assert position("DC-EAST", "VALVE-10").on_hand == Decimal("100")


def test_older_order_version_arriving_late_is_stale(master):
    ingest_and_apply([order_event("o-2", "SO-1", [line(1, quantity="20")], occurred_at="2026-05-31T20:00:00Z")])
    _, summary = ingest_and_apply([order_event("o-1", "SO-1", [line(1, quantity="5")], occurred_at="2026-05-31T19:00:00Z")])
    assert summary.stale == 1
    assert OrderLine.objects.get(order__number="SO-1").quantity == Decimal("20")


def test_events_in_one_batch_apply_in_occurred_order_and_references_may_come_later(db):
    # The order names a customer, item and location that come later in the same batch.
    events = [
        order_event("o-1", "SO-1", [line(1)], customer="NEW-1"),
        envelope("c-1", "customer.upserted", {"code": "NEW-1", "name": "New", "tier": 2, "segment": "retail", "region": "east", "home_location": "DC-EAST"}),
        envelope("i-1", "item.upserted", {"sku": "VALVE-10", "description": "Valve", "item_class": "valves", "uom": "EA", "unit_cost": "60"}),
        envelope("l-1", "location.upserted", {"code": "DC-EAST", "name": "East", "region": "east", "kind": "warehouse"}),
    ]
    _, summary = ingest_and_apply(events)
    assert (summary.applied, summary.parked) == (4, 0)
    assert Order.objects.get(number="SO-1").customer.code == "NEW-1"


def test_order_naming_unknown_customer_is_parked_then_applied_when_customer_arrives(master):
    _, summary = ingest_and_apply([order_event("o-1", "SO-9", [line(1)], customer="LATE-1")])

    event = Event.objects.get(event_id="o-1")
    assert (summary.parked, event.status, event.parked_references) == (1, "parked", ["customer:LATE-1"])
    assert event.errors == [{"field": "data", "message": "unknown reference customer:LATE-1"}]
    exception = DecisionException.objects.get(key="event_parked:erp:o-1")
    assert (exception.type, exception.status, exception.severity, exception.source) == ("event_parked", "open", "medium", "erp")

    _, summary = ingest_and_apply(
        [envelope("c-9", "customer.upserted", {"code": "LATE-1", "name": "Late", "tier": 3, "segment": "retail", "region": "west"})]
    )

    event.refresh_from_db()
    exception.refresh_from_db()
    assert (summary.applied, event.status, event.attempts) == (2, "applied", 2)
    assert Order.objects.get(number="SO-9").customer.code == "LATE-1"
    assert (exception.status, exception.resolution_reason) == ("resolved", "event applied")
    assert ParkedReference.objects.count() == 0


def test_duplicate_with_a_different_body_is_acknowledged_and_the_difference_recorded(master):
    original = order_event("o-1", "SO-1", [line(1, quantity="10")])
    changed = order_event("o-1", "SO-1", [line(1, quantity="99")])
    ingest_and_apply([original])

    result, summary = ingest_and_apply([original, changed])

    assert [r["status"] for r in result.results] == ["duplicate", "duplicate"]
    assert summary.processed == 0
    assert OrderLine.objects.get(order__number="SO-1").quantity == Decimal("10")
    recorded = DuplicateDelivery.objects.get()
    assert (recorded.event.event_id, recorded.body["data"]["lines"][0]["quantity"]) == ("o-1", "99")


def test_same_id_twice_in_one_batch_stores_the_first(master):
    result = ingest([order_event("o-1", "SO-1", [line(1)]), order_event("o-1", "SO-1", [line(1)])])
    assert [r["status"] for r in result.results] == ["accepted", "duplicate"]
    assert Event.objects.filter(event_id="o-1").count() == 1
    assert DuplicateDelivery.objects.count() == 0


def test_order_upserted_replaces_lines_and_cancels_missing_ones(master, run_requests, apply_with_hooks):
    ingest_and_apply([order_event("o-1", "SO-1", [line(1), line(2, sku="PUMP-2", quantity="3")])])

    apply_with_hooks([order_event("o-2", "SO-1", [line(1, quantity="12"), line(3, sku="PUMP-2", quantity="4")], occurred_at="2026-05-31T19:00:00Z")])

    lines = {row.line: (row.status, row.quantity, row.item.sku) for row in OrderLine.objects.filter(order__number="SO-1").select_related("item")}
    assert lines == {
        1: ("open", Decimal("12"), "VALVE-10"),
        2: ("cancelled", Decimal("3"), "PUMP-2"),
        3: ("open", Decimal("4"), "PUMP-2"),
    }
    assert run_requests == [["PUMP-2", "VALVE-10"]]


def test_order_cancelled_cancels_open_lines(master):
    ingest_and_apply([order_event("o-1", "SO-1", [line(1), line(2)])])
    ingest_and_apply([envelope("o-2", "order.cancelled", {"number": "SO-1", "reason": "customer request"}, occurred_at="2026-05-31T19:00:00Z")])
    order = Order.objects.get(number="SO-1")
    assert (order.status, order.cancel_reason) == ("cancelled", "customer request")
    assert set(order.lines.values_list("status", flat=True)) == {"cancelled"}


def test_credit_hold_changed_on_customer_and_on_order(master):
    ingest_and_apply([order_event("o-1", "SO-1", [line(1)])])
    ingest_and_apply(
        [
            envelope("h-1", "credit.hold_changed", {"customer": "HOSP-1", "on_hold": True, "reason": "overdue"}, occurred_at="2026-05-31T19:00:00Z"),
            envelope("h-2", "credit.hold_changed", {"order": "SO-1", "on_hold": True, "reason": "limit"}, occurred_at="2026-05-31T19:00:00Z"),
        ]
    )
    customer, order = Customer.objects.get(code="HOSP-1"), Order.objects.get(number="SO-1")
    assert (customer.credit_hold, customer.credit_hold_reason) == (True, "overdue")
    assert (order.credit_hold, order.credit_hold_reason) == (True, "limit")


def test_supply_received_moves_stock_to_on_hand_and_records_a_receipt(master, run_requests, apply_with_hooks):
    ingest_and_apply(
        [
            envelope("s-1", "supply.upserted", {"ref": "PO-1", "kind": "purchase_order", "sku": "VALVE-10", "location": "DC-EAST", "quantity": "200", "eta": "2026-06-10"}),
            envelope("w-1", "inventory.snapshot", {"location": "DC-EAST", "sku": "VALVE-10", "on_hand": "100", "as_of": "2026-05-31T17:00:00Z"}, source="wms"),
        ]
    )

    ingest_and_apply([envelope("r-1", "supply.received", {"ref": "PO-1", "quantity": "150", "received_at": "2026-06-12T09:00:00Z"}, occurred_at="2026-06-12T09:00:00Z")])

    supply = Supply.objects.get(ref="PO-1")
    assert (supply.received_quantity, supply.status) == (Decimal("150"), "open")
    assert position("DC-EAST", "VALVE-10").on_hand == Decimal("250")
    receipt = SupplyReceipt.objects.get()
    assert (receipt.quantity, receipt.eta, receipt.days_late, receipt.event_id) == (Decimal("150"), dt.date(2026, 6, 10), 2, "r-1")

    apply_with_hooks([envelope("r-2", "supply.received", {"ref": "PO-1", "quantity": "50", "received_at": "2026-06-13T09:00:00Z"}, occurred_at="2026-06-13T09:00:00Z")])

    supply.refresh_from_db()
    assert (supply.received_quantity, supply.status) == (Decimal("200"), "received")
    assert position("DC-EAST", "VALVE-10").on_hand == Decimal("300")
    assert run_requests == [["VALVE-10"]]


def test_supply_received_at_a_location_without_stock_creates_the_position(master):
    ingest_and_apply(
        [
            envelope("s-1", "supply.upserted", {"ref": "PO-7", "kind": "asn", "sku": "PUMP-2", "location": "DC-WEST", "quantity": "5", "eta": "2026-06-10"}),
            envelope("r-1", "supply.received", {"ref": "PO-7", "quantity": "5", "received_at": "2026-06-09T09:00:00Z"}, occurred_at="2026-06-09T09:00:00Z"),
        ]
    )
    assert position("DC-WEST", "PUMP-2").on_hand == Decimal("5")
    assert SupplyReceipt.objects.get().days_late == -1
    assert Supply.objects.get(ref="PO-7").status == "received"


def test_shipment_confirmed_consumes_allocation_and_on_hand(master):
    ingest_and_apply(
        [
            order_event("o-1", "SO-1", [line(1, quantity="10")]),
            envelope("w-1", "inventory.snapshot", {"location": "DC-EAST", "sku": "VALVE-10", "on_hand": "100", "as_of": "2026-05-31T17:00:00Z"}, source="wms"),
        ]
    )
    order_line = OrderLine.objects.get(order__number="SO-1", line=1)
    allocation = Allocation.objects.create(
        line=order_line, item=order_line.item, location=Location.objects.get(code="DC-EAST"), quantity=Decimal("10"), confirmed_date=dt.date(2026, 6, 1), state="released"
    )

    ingest_and_apply([envelope("t-1", "shipment.confirmed", {"order": "SO-1", "line": 1, "location": "DC-EAST", "quantity": "4", "shipped_at": "2026-06-01T10:00:00Z"}, source="tms")])

    allocation.refresh_from_db()
    order_line.refresh_from_db()
    assert allocation.quantity == Decimal("6")
    assert (order_line.shipped_quantity, order_line.status) == (Decimal("4"), "open")
    assert position("DC-EAST", "VALVE-10").on_hand == Decimal("96")

    ingest_and_apply([envelope("t-2", "shipment.confirmed", {"order": "SO-1", "line": 1, "location": "DC-EAST", "quantity": "6", "shipped_at": "2026-06-01T11:00:00Z"}, source="tms")])

    order_line.refresh_from_db()
    assert not Allocation.objects.filter(pk=allocation.pk).exists()
    assert (order_line.shipped_quantity, order_line.status) == (Decimal("10"), "shipped")
    assert position("DC-EAST", "VALVE-10").on_hand == Decimal("90")


def test_adjustment_below_zero_clamps_on_hand_at_zero_and_applies_beside_the_others(master):
    # events-v1.md: a delta taking on-hand below zero sets it to zero (negative_stock is raised;
    # tests/integrations/test_hostile_events.py covers the exception and the next snapshot).
    ingest_and_apply([envelope("w-1", "inventory.snapshot", {"location": "DC-EAST", "sku": "VALVE-10", "on_hand": "5", "as_of": "2026-05-31T17:00:00Z"}, source="wms")])

    _, summary = ingest_and_apply(
        [
            envelope("w-2", "inventory.adjusted", {"location": "DC-EAST", "sku": "VALVE-10", "delta": "-8", "reason": "damaged", "as_of": "2026-06-01T08:00:00Z"}, source="wms"),
            envelope("w-3", "inventory.snapshot", {"location": "DC-WEST", "sku": "VALVE-10", "on_hand": "7", "as_of": "2026-06-01T08:00:00Z"}, source="wms"),
        ]
    )

    assert (summary.applied, summary.failed, Event.objects.get(event_id="w-2").status) == (2, 0, "applied")
    assert position("DC-EAST", "VALVE-10").on_hand == Decimal("0")
    assert position("DC-WEST", "VALVE-10").on_hand == Decimal("7")


def test_shipment_of_an_unknown_line_fails_alone_with_an_exception_and_can_be_retried(master, integration):
    ingest_and_apply(
        [
            envelope("w-1", "inventory.snapshot", {"location": "DC-EAST", "sku": "VALVE-10", "on_hand": "20", "as_of": "2026-05-31T17:00:00Z"}, source="wms"),
            order_event("o-1", "SO-1", [line(1)]),
        ]
    )
    shipment = {"order": "SO-1", "line": 2, "location": "DC-EAST", "quantity": "4", "shipped_at": "2026-06-01T09:00:00Z"}

    _, summary = ingest_and_apply(
        [
            envelope("s-1", "shipment.confirmed", shipment, source="wms", occurred_at="2026-06-01T09:00:00Z"),
            envelope("w-3", "inventory.snapshot", {"location": "DC-WEST", "sku": "VALVE-10", "on_hand": "7", "as_of": "2026-06-01T08:00:00Z"}, source="wms"),
        ]
    )

    failed = Event.objects.get(event_id="s-1")
    assert (summary.applied, summary.failed, failed.status) == (1, 1, "failed")
    assert failed.errors == [{"field": "data.line", "message": "order SO-1 has no line 2"}]
    assert position("DC-EAST", "VALVE-10").on_hand == Decimal("20")
    assert position("DC-WEST", "VALVE-10").on_hand == Decimal("7")
    assert DecisionException.objects.get(key="event_failed:wms:s-1").status == "open"

    # The order gains line 2, the integration admin retries: the shipment now applies.
    ingest_and_apply([order_event("o-2", "SO-1", [line(1), line(2)], occurred_at="2026-06-01T08:30:00Z")])
    retry_event(failed.pk, actor=integration)
    process_pending()

    failed.refresh_from_db()
    assert (failed.status, failed.errors, failed.retried_by) == ("applied", [], integration)
    assert position("DC-EAST", "VALVE-10").on_hand == Decimal("16")
    assert DecisionException.objects.get(key="event_failed:wms:s-1").status == "resolved"


def test_retry_refuses_an_applied_event(master, integration):
    from integrations.errors import EventNotRetryable

    event = Event.objects.get(event_id="m-1")
    with pytest.raises(EventNotRetryable):
        retry_event(event.pk, actor=integration)
    event.refresh_from_db()
    assert event.status == "applied"


def test_item_substitutes_are_replaced(master):
    ingest_and_apply([envelope("i-1", "item.upserted", {"sku": "VALVE-10", "description": "Valve", "item_class": "valves", "uom": "EA", "unit_cost": "60", "substitutes": [{"sku": "PUMP-2", "priority": 2}]}, occurred_at="2026-05-31T19:00:00Z")])
    assert list(ItemSubstitute.objects.values_list("substitute__sku", "priority")) == [("PUMP-2", 2)]
    ingest_and_apply([envelope("i-2", "item.upserted", {"sku": "VALVE-10", "description": "Valve", "item_class": "valves", "uom": "EA", "unit_cost": "60", "substitutes": []}, occurred_at="2026-05-31T20:00:00Z")])
    assert ItemSubstitute.objects.count() == 0


def test_ingest_schedules_processing_on_commit(master, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        ingest([order_event("o-1", "SO-1", [line(1)])])
    assert len(callbacks) >= 1
    assert Event.objects.get(event_id="o-1").status == "applied"


def test_storing_an_id_another_delivery_stored_meanwhile_keeps_the_first(master):
    # Given an event stored by another delivery after this batch checked for duplicates
    from django.utils import timezone

    from integrations.services import _store_events

    source = Source.objects.get(code="erp")
    batch = EventBatch.objects.create(via="api")
    now = timezone.now()
    data = {"number": "SO-1", "reason": "x"}
    rows = [
        (source.pk, "m-1", "order.cancelled", now, data, '{"number":"SO-1","reason":"x"}', "h1", "order:SO-1"),
        (source.pk, "fresh-1", "order.cancelled", now, data, '{"number":"SO-1","reason":"x"}', "h2", "order:SO-1"),
    ]

    # When both are stored, only the new one is reported stored; the first copy of m-1 stays
    stored = _store_events(rows, batch, now)

    assert stored == {(source.pk, "fresh-1")}
    assert Event.objects.get(event_id="m-1").type == "location.upserted"
    assert Event.objects.get(event_id="fresh-1").batch == batch


def test_an_event_the_database_refuses_fails_alone_and_the_rest_of_its_chunk_applies(db):
    # Given three stored events, one holding data that slipped past validation (tier 9)
    events = [
        envelope(f"c-{n}", "customer.upserted", {"code": f"C-{n}", "name": "x", "tier": 2, "segment": "retail", "region": "east"})
        for n in range(3)
    ]
    ingest(events)
    broken = Event.objects.get(event_id="c-1")
    broken.data = {**broken.data, "tier": 9}
    broken.save(update_fields=["data"])

    # When they are processed together
    summary = process_pending()

    # Then only that event fails, with the database's reason, and the others apply
    broken.refresh_from_db()
    assert (summary.applied, summary.failed) == (2, 1)
    assert sorted(Customer.objects.values_list("code", flat=True)) == ["C-0", "C-2"]
    assert broken.status == "failed"
    assert broken.errors[0]["field"] == ""
    assert broken.errors[0]["message"].startswith("could not be applied: ")
    assert "customer_tier_1_to_4" in broken.errors[0]["message"]
    assert DecisionException.objects.get(key="event_failed:erp:c-1").status == "open"
