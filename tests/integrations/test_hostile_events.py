"""Hostile input on the event ingestion path (issue 8): every bad value is a named rejection
or a 400, never a 500 and never a stored row that wedges processing; one bad event never
sinks its batch; a row the database refuses or cannot read fails alone; substitute cycles
apply; a negative adjustment clamps at zero and raises ``negative_stock``.

Runs on SQLite and, with DATABASE_URL, on PostgreSQL (where out-of-range timestamps are
dangerous); tests marked ``postgres`` need the latter.
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from allocation.demo import generate_events
from allocation.models import Allocation, InventoryPosition, Item, ItemSubstitute, OrderLine
from allocation.services import run_full
from config.jsonlimits import JSONBodyError, nesting_depth, parse_json
from exceptions.models import DecisionException
from integrations.api.views import _timestamp, webhook_signature
from integrations.models import Event, EventBatch, Source
from integrations.services import ingest, process_pending, register_source
from integrations.validation import TimeWindow, validate_envelope
from tests.integrations.conftest import envelope, ingest_and_apply, line, order_event, scenario

pytestmark = pytest.mark.django_db

EVENTS_URL = "/api/v1/events"
DEEP = b"[" * 100_000
NOW = timezone.now()


def location(event_id: str = "h-1", **data) -> dict:
    return envelope(event_id, "location.upserted", {"code": "DC-H", "name": "Hostile DC", "region": "east", "kind": "warehouse", **data})


def item(sku: str, *substitutes: str, event_id: str | None = None, occurred_at: str = "2026-05-31T18:00:00Z") -> dict:
    data = {"sku": sku, "description": sku, "item_class": "valves", "uom": "EA", "unit_cost": "10"}
    if substitutes:
        data["substitutes"] = [{"sku": s, "priority": n} for n, s in enumerate(substitutes, start=1)]
    return envelope(event_id or f"i-{sku}", "item.upserted", data, occurred_at=occurred_at)


def snapshot(event_id: str, on_hand: str, as_of: str, sku: str = "VALVE-10", occurred_at: str = "2026-05-31T18:00:00Z") -> dict:
    data = {"location": "DC-EAST", "sku": sku, "on_hand": on_hand, "as_of": as_of}
    return envelope(event_id, "inventory.snapshot", data, source="wms", occurred_at=occurred_at)


def errors_of(raw: dict) -> list[dict[str, str]]:
    return validate_envelope(raw, window=TimeWindow.around(NOW)).errors


def fields_of(raw: dict) -> list[str]:
    return [e["field"] for e in errors_of(raw)]


def supply(**data) -> dict:
    return envelope("s-1", "supply.upserted", {"ref": "PO-1", "kind": "purchase_order", "sku": "VALVE-10", "location": "DC-EAST", "quantity": "5", "eta": "2026-06-10", **data})


def order(**data) -> dict:
    event = order_event("o-1", "SO-1", [line(1)])
    event["data"].update(data)
    return event


# ---------------------------------------------------------------- 1. timestamps and dates
OUT_OF_WINDOW = [
    ("occurred_at", lambda: {**location(), "occurred_at": "0001-01-01T00:00:00+05:00"}),
    ("occurred_at", lambda: {**location(), "occurred_at": "9999-12-31T23:59:59-05:00"}),
    ("occurred_at", lambda: {**location(), "occurred_at": "9999-01-01T00:00:00Z"}),
    ("occurred_at", lambda: {**location(), "occurred_at": "2015-01-01T00:00:00Z"}),
    ("data.created_at", lambda: order(created_at="0001-01-01T00:00:00+05:00")),
    ("data.created_at", lambda: order(created_at="9999-12-31T23:59:59-05:00")),
    ("data.requested_date", lambda: order(requested_date="0001-01-01")),
    ("data.promised_date", lambda: order(promised_date="9999-12-31")),
    ("data.expires_at", lambda: order(kind="quote", expires_at="9999-12-31T00:00:00Z")),
    ("data.as_of", lambda: snapshot("w-1", "5", "9999-12-31T23:59:59-05:00")),
    ("data.as_of", lambda: envelope("w-2", "inventory.adjusted", {"location": "DC-EAST", "sku": "VALVE-10", "delta": "1", "reason": "x", "as_of": "0001-01-01T00:00:00+05:00"})),
    ("data.eta", lambda: supply(eta="9999-12-31")),
    ("data.received_at", lambda: envelope("r-1", "supply.received", {"ref": "PO-1", "quantity": "1", "received_at": "0001-01-01T00:00:00+05:00"})),
    ("data.shipped_at", lambda: envelope("sh-1", "shipment.confirmed", {"order": "SO-1", "line": 1, "location": "DC-EAST", "quantity": "1", "shipped_at": "9999-12-31T23:59:59-05:00"})),
]


@pytest.mark.parametrize(("field", "build"), OUT_OF_WINDOW, ids=[f"{f}-{n}" for n, (f, _) in enumerate(OUT_OF_WINDOW)])
def test_a_timestamp_or_date_outside_the_window_is_rejected_naming_its_field(field, build):
    errors = errors_of(build())
    assert [e["field"] for e in errors] == [field]
    assert errors[0]["message"].startswith("must ")


def test_occurred_at_may_be_a_little_but_not_minutes_ahead_of_now(settings):
    settings.ALLOT_EVENT_MAX_FUTURE_MINUTES = 5
    soon = (NOW + dt.timedelta(minutes=1)).isoformat()
    later = (NOW + dt.timedelta(minutes=10)).isoformat()
    assert errors_of({**location(), "occurred_at": soon}) == []
    assert errors_of({**location(), "occurred_at": later}) == [{"field": "occurred_at", "message": "must not be more than 5 minutes in the future"}]


def test_the_window_is_a_setting_around_now(settings):
    settings.ALLOT_EVENT_TIME_WINDOW_YEARS = 1
    two_years_ago = (NOW - dt.timedelta(days=730)).isoformat()
    assert fields_of({**location(), "occurred_at": two_years_ago}) == ["occurred_at"]
    settings.ALLOT_EVENT_TIME_WINDOW_YEARS = 10
    assert fields_of({**location(), "occurred_at": two_years_ago}) == []


def test_the_sample_scenarios_and_the_demo_generator_pass_validation():
    window = TimeWindow.around()
    samples = scenario("valves-1.jsonl") + scenario("valves-2.jsonl")
    demo = itertools.chain(
        generate_events(lines=300, business_date=dt.date(2026, 6, 1)),
        generate_events(lines=300, business_date=timezone.localdate()),
    )
    problems = [(e["id"], validate_envelope(e, window=window).errors) for e in itertools.chain(samples, demo)]
    assert [p for p in problems if p[1]] == []


def test_out_of_range_timestamps_through_the_api_are_rejected_and_the_event_list_still_answers(integration, api_client_for):
    client = api_client_for(integration)
    events = [
        {**location("t-1"), "occurred_at": "0001-01-01T00:00:00+05:00"},
        {**location("t-2"), "occurred_at": "9999-12-31T23:59:59-05:00"},
        order(created_at="0001-01-01T00:00:00+05:00"),
        location("t-ok"),
    ]

    response = client.post(EVENTS_URL, {"events": events}, format="json")

    assert response.status_code == 202
    assert [(r["id"], r["status"], [e["field"] for e in r["errors"]]) for r in response.json()["results"]] == [
        ("t-1", "rejected", ["occurred_at"]),
        ("t-2", "rejected", ["occurred_at"]),
        ("o-1", "rejected", ["data.created_at"]),
        ("t-ok", "accepted", []),
    ]
    assert process_pending().applied == 1
    listed = client.get(EVENTS_URL)
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json()["results"]] == ["t-ok"]


# ---------------------------------------------------------------- 2. text, types, numbers, codes
HOSTILE_TEXT = [
    ("data.name", "must not contain NUL characters", lambda: location(name="East\x00DC")),
    ("data.bad\\u0000key", "name must not contain NUL characters", lambda: {**location(), "data": {**location()["data"], "bad\x00key": 1}}),
    ("data.lines[0].sku", "must not contain unpaired surrogate characters (invalid Unicode)", lambda: order_event("o-1", "SO-1", [line(1, sku="VALVE-\ud800")])),
    ("data.\\ud83d", "name must not contain unpaired surrogate characters (invalid Unicode)", lambda: {**location(), "data": {**location()["data"], "\ud83d": "x"}}),
    ("id", "must not contain NUL characters", lambda: location("h-\x00")),
    ("source", "must not contain NUL characters", lambda: {**location(), "source": "erp\x00"}),
    ("type", "must not contain unpaired surrogate characters (invalid Unicode)", lambda: {**location(), "type": "location.upserted\udfff"}),
]


@pytest.mark.parametrize(("field", "message", "build"), HOSTILE_TEXT, ids=[f for f, _, _ in HOSTILE_TEXT])
def test_nul_and_unpaired_surrogates_anywhere_are_rejected_naming_the_field(field, message, build):
    assert errors_of(build()) == [{"field": field, "message": message}]


@pytest.mark.parametrize(
    ("field", "build"),
    [
        ("type", lambda: {**location(), "type": ["location.upserted"]}),
        ("type", lambda: {**location(), "type": {"a": 1}}),
        ("data.lines[0].quantity", lambda: order_event("o-1", "SO-1", [{**line(1), "quantity": 1e20}])),
        ("data.lines[0].quantity", lambda: order_event("o-1", "SO-1", [{**line(1), "quantity": "1e20"}])),
        ("data.lines[0].quantity", lambda: order_event("o-1", "SO-1", [{**line(1), "quantity": 10**20}])),
        ("data.on_hand", lambda: snapshot("w-1", "99999999999999999999.5", "2026-05-31T17:00:00Z")),
        ("data.lines[0].line", lambda: order_event("o-1", "SO-1", [{**line(1), "line": 10**30}])),
        ("data.timezone", lambda: location(timezone="Mars/Olympus")),
        ("data.timezone", lambda: location(timezone="europe/berlin ")),
        ("source", lambda: {**location(), "source": " erp"}),
        ("source", lambda: {**location(), "source": "erp "}),
        ("data.cutoff_time", lambda: location(cutoff_time="10:00\n")),
        ("data.code", lambda: location(code="X" * 65)),
        ("data.name", lambda: location(name="N" * 201)),
        ("data.kind", lambda: order(kind="auction")),
    ],
)
def test_wrong_types_huge_numbers_unknown_zones_and_padded_codes_are_rejected_naming_the_field(field, build):
    assert fields_of(build()) == [field]


def test_a_real_iana_zone_is_accepted():
    assert errors_of(location(timezone="Europe/Berlin")) == []


def test_nesting_inside_one_event_is_bounded_even_outside_the_http_parser():
    # The ingest command and the services take events that never went through the API parser.
    deep: list = []
    node = deep
    for _ in range(2000):
        node.append([])
        node = node[0]
    errors = errors_of(location(extra=deep))
    assert len(errors) == 1
    assert errors[0]["field"].startswith("data.extra[0]")
    assert errors[0]["message"] == "must not be nested more than 16 levels deep"


def test_a_padded_source_never_becomes_a_second_source(integration, api_client_for):
    response = api_client_for(integration).post(EVENTS_URL, {"events": [{**location(), "source": " erp"}]}, format="json")
    assert response.status_code == 202
    assert response.json()["results"][0]["errors"] == [{"field": "source", "message": "must not start or end with spaces"}]
    assert list(Source.objects.values_list("code", flat=True)) == ["erp"]


# ---------------------------------------------------------------- 3. one bad event never sinks its batch
def test_one_nul_event_is_rejected_and_the_valid_events_beside_it_are_accepted_and_applied(integration, api_client_for):
    client = api_client_for(integration)
    events = [location("ok-1", code="DC-A"), location("bad-\x00", code="DC-\x00"), location("bad-2", name="\ud800"), location("ok-2", code="DC-B")]

    response = client.post(EVENTS_URL, data=json.dumps({"events": events}).encode(), content_type="application/json")

    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 2)
    assert [(r["id"], r["status"]) for r in body["results"]] == [("ok-1", "accepted"), ("bad-\\u0000", "rejected"), ("bad-2", "rejected"), ("ok-2", "accepted")]
    assert body["results"][1]["errors"] == [{"field": "id", "message": "must not contain NUL characters"}, {"field": "data.code", "message": "must not contain NUL characters"}]
    batch = EventBatch.objects.get()
    assert [(r["index"], r["id"]) for r in batch.rejections] == [(1, "bad-\\u0000"), (2, "bad-2")]
    assert process_pending().applied == 2
    assert sorted(Event.objects.values_list("event_id", "status")) == [("ok-1", "applied"), ("ok-2", "applied")]


def test_hostile_bodies_through_the_api_never_answer_500(integration, api_client_for):
    client = api_client_for(integration)
    bad = [
        {**location("x-1"), "type": ["location.upserted"]},
        {**location("x-2"), "type": {"nested": True}},
        {**location("x-3"), "id": {"\ud800": "\x00"}},
        order_event("x-4", "SO-1", [{**line(1), "quantity": 1e20}]),
        {**location("x-5"), "occurred_at": "0001-01-01T00:00:00+05:00"},
        location("x-6", timezone="Mars/Olympus"),
        "not an object",
        None,
    ]
    response = client.post(EVENTS_URL, data=json.dumps({"events": bad}).encode(), content_type="application/json")
    assert response.status_code == 202
    assert [r["status"] for r in response.json()["results"]] == ["rejected"] * len(bad)
    assert [r["id"] for r in response.json()["results"]] == ["x-1", "x-2", None, "x-4", "x-5", "x-6", None, None]
    assert Event.objects.count() == 0


def _corrupt(event_id: str, **data) -> None:
    event = Event.objects.get(event_id=event_id)
    event.data = {**event.data, **data}
    event.save(update_fields=["data"])


def test_an_event_the_database_refuses_to_write_is_failed_with_the_reason_and_the_queue_moves_on(master):
    # Given a stored snapshot whose on-hand slipped past validation (negative: the table's
    # check constraint refuses it) between two good events, and a second batch behind them
    ingest([supply(), snapshot("w-1", "7", "2026-05-31T17:00:00Z"), envelope("s-2", "supply.upserted", {**supply()["data"], "ref": "PO-2"})])
    _corrupt("w-1", on_hand="-7")
    ingest([snapshot("w-2", "9", "2026-05-31T18:30:00Z", sku="PUMP-2")])

    # When the queue is processed
    summary = process_pending()

    # Then only that event fails, with the database's reason; everything else applies
    failed = Event.objects.get(event_id="w-1")
    assert (summary.applied, summary.failed) == (3, 1)
    assert failed.status == "failed"
    assert failed.errors[0]["message"].startswith("could not be applied: ")
    assert "position_quantities_non_negative" in failed.errors[0]["message"]
    assert DecisionException.objects.get(key="event_failed:wms:w-1").status == "open"
    assert Event.objects.filter(status="pending").count() == 0
    assert InventoryPosition.objects.get(item__sku="PUMP-2").on_hand == Decimal("9")
    assert not InventoryPosition.objects.filter(item__sku="VALVE-10").exists()


@pytest.mark.postgres
def test_postgres_a_quantity_too_large_for_its_column_fails_alone(master):
    ingest([supply(), envelope("s-2", "supply.upserted", {**supply()["data"], "ref": "PO-2"})])
    _corrupt("s-1", quantity="1e20")

    summary = process_pending()

    assert (summary.applied, summary.failed) == (1, 1)
    failed = Event.objects.get(event_id="s-1")
    assert failed.status == "failed"
    assert "numeric field overflow" in failed.errors[0]["message"]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the PostgreSQL variant stores a real timestamptz below")
def test_a_stored_row_that_cannot_be_read_is_failed_and_the_rest_applies(master, integration, api_client_for):
    # Given a pending event whose stored occurred_at the driver cannot read, beside good ones
    ingest([location("g-1", code="DC-A"), location("g-2", code="DC-B"), location("g-3", code="DC-C")])
    broken = Event.objects.get(event_id="g-2")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Event._meta.db_table} SET occurred_at = %s WHERE id = %s", ["2026-13-45 00:00:00+00:00", broken.pk])

    # When processing runs
    summary = process_pending()

    # Then that event is failed with the stored text, the others apply, and the list answers
    assert (summary.applied, summary.failed) == (2, 1)
    broken.refresh_from_db()
    assert broken.status == "failed"
    assert broken.errors[0]["field"] == "occurred_at"
    assert broken.errors[0]["message"].startswith("could not be read (occurred_at 2026-13-45")
    assert broken.occurred_at == broken.received_at
    assert DecisionException.objects.get(key="event_failed:erp:g-2").status == "open"
    assert api_client_for(integration).get(EVENTS_URL).status_code == 200


@pytest.mark.postgres
@pytest.mark.parametrize("stored", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_postgres_a_stored_timestamp_python_cannot_hold_fails_alone_and_never_wedges_the_queue(stored, master, integration, api_client_for):
    # Given the value that used to pass validation, stored the way old code stored it
    ingest([location("g-1", code="DC-A"), location("g-2", code="DC-B"), location("g-3", code="DC-C")])
    broken = Event.objects.get(event_id="g-2")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Event._meta.db_table} SET occurred_at = %s::timestamptz WHERE id = %s", [stored, broken.pk])
        cursor.execute(f"SELECT occurred_at::text FROM {Event._meta.db_table} WHERE id = %s", [broken.pk])
        stored_text = cursor.fetchone()[0]

    summary = process_pending()

    assert (summary.applied, summary.failed) == (2, 1)
    broken.refresh_from_db()
    assert (broken.status, broken.occurred_at) == ("failed", broken.received_at)
    assert broken.errors[0]["message"] == f"could not be read (occurred_at {stored_text}); kept with its receipt time"
    assert api_client_for(integration).get(EVENTS_URL).status_code == 200
    assert process_pending().processed == 0


@pytest.mark.postgres
def test_postgres_hostile_values_through_the_api_are_rejected_and_processing_continues(integration, planner, api_client_for, master):
    client = api_client_for(integration)
    events = [
        {**location("p-1"), "occurred_at": "0001-01-01T00:00:00+05:00"},
        {**location("p-2"), "occurred_at": "9999-12-31T23:59:59-05:00"},
        order(created_at="0001-01-01T00:00:00+05:00"),
        snapshot("p-4", "5", "9999-12-31T23:59:59-05:00"),
        location("p-5", name="East\x00DC"),
        location("p-6", code="DC-\ud800"),
        location("p-ok", code="DC-OK"),
    ]
    for event in events:
        event["source"] = "erp"
    response = client.post(EVENTS_URL, data=json.dumps({"events": events}).encode(), content_type="application/json")

    assert response.status_code == 202
    assert [r["status"] for r in response.json()["results"]] == ["rejected"] * 6 + ["accepted"]
    assert process_pending().applied == 1
    assert client.get(EVENTS_URL).status_code == 200
    assert api_client_for(planner).get("/api/v1/orders").status_code == 200


# ---------------------------------------------------------------- 4. one parser, with depth and size limits
def test_parse_json_limits_depth_and_size(settings):
    settings.ALLOT_JSON_MAX_DEPTH = 32
    assert parse_json(b"[" * 32 + b"]" * 32) == parse_json(json.dumps(json.loads("[" * 32 + "]" * 32)))
    for body, message in (
        (b"[" * 33 + b"]" * 33, "the JSON body is nested more than 32 levels deep"),
        (DEEP, "the JSON body is nested more than 32 levels deep"),
        (b"[" * 5000 + b"]" * 5000, "the JSON body is nested more than 32 levels deep"),
        (b'{"a": NaN}', "malformed JSON: NaN is not valid JSON"),
        (b"x" * 11, "the request body is larger than 10 bytes"),
    ):
        with pytest.raises(JSONBodyError) as raised:
            parse_json(body, max_bytes=10 if body.startswith(b"x") else None)
        assert raised.value.message == message
    assert nesting_depth({"a": [{"b": [1]}]}) == 4


def test_deeply_nested_json_is_400_on_the_events_api(integration, api_client_for):
    response = api_client_for(integration).post(EVENTS_URL, data=DEEP, content_type="application/json")
    assert (response.status_code, response.json()) == (400, {"detail": "the JSON body is nested more than 32 levels deep"})
    assert Event.objects.count() == EventBatch.objects.count() == 0


def test_deeply_nested_json_is_400_on_the_webhook(db):
    source = register_source(code="wms")
    stamp = str(int(time.time()))
    response = APIClient().post(
        "/api/v1/webhooks/wms", data=DEEP, content_type="application/json",
        HTTP_X_ALLOT_SIGNATURE=webhook_signature(source.secret, stamp, DEEP), HTTP_X_ALLOT_TIMESTAMP=stamp,
    )
    assert (response.status_code, response.json()) == (400, {"detail": "the JSON body is nested more than 32 levels deep"})


@pytest.mark.parametrize(
    ("persona", "url"),
    [("policy_admin", "/api/v1/policies/import"), ("planner", "/api/v1/runs"), ("planner", "/api/v1/exceptions/bulk/claim")],
)
def test_deeply_nested_json_is_400_on_other_drf_endpoints(persona, url, request, api_client_for):
    client = api_client_for(request.getfixturevalue(persona))
    for body in (DEEP, b'{"a":' * 40 + b"1" + b"}" * 40):
        response = client.post(url, data=body, content_type="application/json")
        assert (response.status_code, response.json()) == (400, {"detail": "the JSON body is nested more than 32 levels deep"})


def test_an_exception_action_with_a_deeply_nested_body_is_400(planner, api_client_for):
    exception = DecisionException.objects.create(type="event_failed", key="k-1", message="m", raised_at=NOW, updated_at=NOW)
    response = api_client_for(planner).post(f"/api/v1/exceptions/{exception.pk}/comment", data=DEEP, content_type="application/json")
    assert (response.status_code, response.json()) == (400, {"detail": "the JSON body is nested more than 32 levels deep"})


def test_a_drf_body_over_the_byte_limit_is_400(planner, api_client_for, settings):
    settings.ALLOT_MAX_BATCH_BYTES = 1000
    response = api_client_for(planner).post("/api/v1/runs", data=b'{"a": "' + b"x" * 2000 + b'"}', content_type="application/json")
    assert (response.status_code, response.json()) == (400, {"detail": "the request body is larger than 1000 bytes"})


# ---------------------------------------------------------------- 5. webhook timestamp overflow
@pytest.mark.parametrize("stamp", ["99999999999999999999", "9" * 400, "²³", "-1", "1e30"])
def test_a_webhook_timestamp_beyond_the_range_is_401_not_500(stamp, db):
    source = register_source(code="wms")
    body = json.dumps(location()).encode()
    response = APIClient().post(
        "/api/v1/webhooks/wms", data=body, content_type="application/json",
        HTTP_X_ALLOT_SIGNATURE=webhook_signature(source.secret, stamp, body), HTTP_X_ALLOT_TIMESTAMP=stamp,
    )
    assert (response.status_code, response.json()) == (401, {"detail": "X-Allot-Timestamp is missing or not a timestamp"})
    assert _timestamp(stamp) is None


# ---------------------------------------------------------------- 7a. substitute cycles
def test_two_items_listing_each_other_in_one_batch_apply_and_so_do_orders_naming_them(master):
    events = [
        order_event("o-1", "SO-9", [line(1, sku="CYC-A"), line(2, sku="CYC-B")], occurred_at="2026-05-31T17:00:00Z"),
        item("CYC-A", "CYC-B"),
        item("CYC-B", "CYC-A"),
    ]
    _, summary = ingest_and_apply(events)

    assert (summary.applied, summary.parked) == (3, 0)
    assert sorted(ItemSubstitute.objects.values_list("item__sku", "substitute__sku", "priority")) == [("CYC-A", "CYC-B", 1), ("CYC-B", "CYC-A", 1)]
    assert sorted(OrderLine.objects.filter(order__number="SO-9").values_list("item__sku", flat=True)) == ["CYC-A", "CYC-B"]
    assert DecisionException.objects.filter(type="event_parked").count() == 0


def test_a_three_item_cycle_applies(master):
    _, summary = ingest_and_apply([item("T-A", "T-B"), item("T-B", "T-C"), item("T-C", "T-A", "VALVE-10"), order_event("o-1", "SO-8", [line(1, sku="T-C")])])

    assert (summary.applied, summary.parked) == (4, 0)
    assert sorted(ItemSubstitute.objects.values_list("item__sku", "substitute__sku")) == [("T-A", "T-B"), ("T-B", "T-C"), ("T-C", "T-A"), ("T-C", "VALVE-10")]


def test_a_cycle_split_across_batches_applies_when_its_second_half_arrives(master):
    # The first item is parked (its substitute is unknown); the second names it back.
    _, first = ingest_and_apply([item("X-A", "X-B"), order_event("o-1", "SO-7", [line(1, sku="X-A")])])
    assert first.parked == 2

    _, second = ingest_and_apply([item("X-B", "X-A", occurred_at="2026-05-31T19:00:00Z")])

    assert Event.objects.filter(status="parked").count() == 0
    assert sorted(ItemSubstitute.objects.values_list("item__sku", "substitute__sku")) == [("X-A", "X-B"), ("X-B", "X-A")]
    assert OrderLine.objects.get(order__number="SO-7").item.sku == "X-A"
    assert second.applied == 3
    assert DecisionException.objects.get(key="event_parked:erp:i-X-A").status == "resolved"


def test_a_cycle_through_an_item_nobody_sends_stays_parked(master):
    _, summary = ingest_and_apply([item("Y-A", "Y-B"), item("Y-B", "Y-A", "Y-MISSING")])

    assert (summary.applied, summary.parked) == (0, 2)
    assert not Item.objects.filter(sku__startswith="Y-").exists()
    assert Event.objects.get(event_id="i-Y-B").parked_references == ["item:Y-A", "item:Y-MISSING"]

    # When the missing item arrives, the cycle closes and both apply
    _, later = ingest_and_apply([item("Y-MISSING", occurred_at="2026-05-31T20:00:00Z")])
    assert later.applied == 3
    assert sorted(ItemSubstitute.objects.values_list("item__sku", "substitute__sku")) == [("Y-A", "Y-B"), ("Y-B", "Y-A"), ("Y-B", "Y-MISSING")]


# ---------------------------------------------------------------- 7b. negative adjustments clamp
def test_an_adjustment_below_zero_clamps_on_hand_raises_negative_stock_and_the_next_snapshot_supersedes(master):
    # Given 10 on hand at DC-EAST and an order for 5
    ingest_and_apply([snapshot("w-1", "10", "2026-05-31T17:00:00Z"), order_event("o-1", "SO-1", [line(1, quantity="5")])])

    # When the warehouse adjusts by -15
    _, summary = ingest_and_apply(
        [envelope("w-2", "inventory.adjusted", {"location": "DC-EAST", "sku": "VALVE-10", "delta": "-15", "reason": "cycle count", "as_of": "2026-06-01T08:00:00Z"}, source="wms")]
    )

    # Then on-hand is 0 and one open negative_stock exception names the 5 missing
    assert (summary.applied, summary.failed) == (1, 0)
    position = InventoryPosition.objects.get(location__code="DC-EAST", item__sku="VALVE-10")
    assert position.on_hand == Decimal("0")
    [raised] = DecisionException.objects.filter(type="negative_stock")
    assert (raised.status, raised.key, raised.item.sku, raised.location.code) == ("open", "negative_stock:wms:w-2", "VALVE-10", "DC-EAST")
    assert raised.message == "Adjustment wms:w-2 takes VALVE-10 at DC-EAST below zero: 5 missing (on hand 10, delta -15); on-hand set to 0"
    assert raised.details["missing"] == "5"

    # And an allocation run allocates nothing from it
    run_full(as_of=dt.date(2026, 6, 1))
    assert not Allocation.objects.filter(location__code="DC-EAST", item__sku="VALVE-10").exists()

    # When the next snapshot arrives, it supersedes: stock is back and the exception resolves
    ingest_and_apply([snapshot("w-3", "12", "2026-06-01T09:00:00Z")])
    position.refresh_from_db()
    raised.refresh_from_db()
    assert position.on_hand == Decimal("12")
    assert (raised.status, raised.resolution_reason) == ("resolved", "superseded by an inventory snapshot")


def test_a_snapshot_later_in_the_same_chunk_supersedes_the_shortfall_before_it_is_raised(master):
    ingest_and_apply([snapshot("w-1", "10", "2026-05-31T17:00:00Z")])
    ingest_and_apply(
        [
            envelope("w-2", "inventory.adjusted", {"location": "DC-EAST", "sku": "VALVE-10", "delta": "-15", "reason": "x", "as_of": "2026-06-01T08:00:00Z"}, source="wms", occurred_at="2026-06-01T08:00:00Z"),
            snapshot("w-3", "4", "2026-06-01T09:00:00Z", occurred_at="2026-06-01T09:00:00Z"),
        ]
    )
    assert Event.objects.get(event_id="w-2").status == "applied"
    assert InventoryPosition.objects.get(location__code="DC-EAST", item__sku="VALVE-10").on_hand == Decimal("4")
    assert not DecisionException.objects.filter(type="negative_stock").exists()
