"""Property-based fuzzing of the event API (events-v1.md) through the batch endpoint and webhooks.

A batch is a consistent little world of valid events (locations, items with substitutes that
may name each other, customers, lanes, stock, supply, orders, cancellations, credit holds)
with mutants mixed in: copies of valid events with one thing broken (a wrong type, a list
instead of a string, NUL, a lone surrogate, an out-of-range timestamp or date, a huge
number, an over-long value, a missing field, an unknown type), or with an extra field or a
deeply nested value added. Codes use every character the spec allows, ``/`` included.

The properties: no 5xx ever; ``202`` with one result per event, in order, each mutant that
breaks a rule ``rejected`` with an error naming its field, every valid event ``accepted``
(or, only when a mutant nests too deep for the parser, ``400`` with a message and nothing
stored); after processing every valid event is applied, or stale because another event of
the batch touched the same record, never failed or parked because of a neighbour; and the
event list still answers ``200``.

CI runs a fixed, derandomized profile; ``ALLOT_FUZZ_EXAMPLES=500`` runs more, randomly.
"""
from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import itertools
import json
import os
import time
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.choices import EventStatus
from integrations.models import Event, EventBatch
from integrations.services import process_pending, register_source

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("ALLOT_FUZZ_EXAMPLES", "0")) or None
FUZZ = settings(
    max_examples=EXAMPLES or 75,
    derandomize=EXAMPLES is None,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

ID = "<ID>"  # replaced by a unique id per example (ids and codes must not collide across examples)
TAG = "<P>"  # replaced by a per-example prefix in every code
NOW = timezone.now()
UNIQUE = itertools.count(1)

DECIMAL_FIELDS = {
    "unit_cost", "late_penalty_per_day", "cost_per_unit", "on_hand", "quality_hold",
    "warehouse_hold", "delta", "quantity", "confidence", "unit_price",
}
INTEGER_FIELDS = {"release_capacity_per_day", "tier", "sla_days", "transit_days", "line", "priority"}
TIMESTAMP_FIELDS = {"occurred_at", "created_at", "as_of", "received_at"}
DATE_FIELDS = {"requested_date", "promised_date", "eta"}
REQUIRED_DATA = {
    "location.upserted": "code", "item.upserted": "sku", "customer.upserted": "code",
    "lane.upserted": "location", "inventory.snapshot": "location", "inventory.adjusted": "delta",
    "supply.upserted": "ref", "supply.received": "ref", "order.upserted": "number",
    "order.cancelled": "number", "credit.hold_changed": "on_hold",
}

# ---------------------------------------------------------------------------------- valid events

CODE_CHARS = st.sampled_from(list("ABCDEFGHKMNPRSTX0123456789-_./ %#?&+:=éüß中"))
codes = st.text(CODE_CHARS, min_size=1, max_size=14).filter(lambda s: s.strip() == s).map(lambda s: TAG + s)
words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)
names = words.filter(lambda s: s.strip() != "")
quantities = st.integers(0, 99_999).map(lambda n: f"{n / 4:g}")
prices = st.integers(0, 999_999).map(lambda n: f"{n / 100:.2f}")


def moment(seconds_ago: int) -> str:
    return (NOW - dt.timedelta(seconds=seconds_ago)).isoformat()


timestamps = st.integers(60, 30 * 86_400).map(moment)
dates = st.integers(-200, 400).map(lambda days: (NOW.date() + dt.timedelta(days=days)).isoformat())


def envelope(type_: str, data: dict, occurred_at: str) -> dict:
    return {"id": ID, "type": type_, "source": "erp", "occurred_at": occurred_at, "data": data}


@st.composite
def worlds(draw) -> list[dict]:
    """Valid events whose references all resolve within the batch (in any order)."""
    locations = draw(st.lists(codes, min_size=1, max_size=2, unique=True))
    skus = draw(st.lists(codes, min_size=1, max_size=3, unique=True))
    customers = draw(st.lists(codes, min_size=1, max_size=2, unique=True))
    events: list[dict] = []
    for code in locations:
        data = {"code": code, "name": draw(names), "region": draw(codes), "kind": draw(st.sampled_from(["warehouse", "hub", "store"]))}
        if draw(st.booleans()):
            data["release_capacity_per_day"] = draw(st.integers(0, 5000))
            data["cutoff_time"] = f"{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}"
            data["timezone"] = draw(st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]))
        events.append(envelope("location.upserted", data, draw(timestamps)))
    for sku in skus:
        data = {"sku": sku, "description": draw(words), "item_class": draw(codes), "uom": "EA", "unit_cost": draw(prices)}
        others = [s for s in skus if s != sku]
        if others and draw(st.booleans()):  # two items may list each other: a cycle within the batch
            chosen = draw(st.lists(st.sampled_from(others), min_size=1, unique=True))
            data["substitutes"] = [{"sku": s, "priority": rank} for rank, s in enumerate(chosen, start=1)]
        events.append(envelope("item.upserted", data, draw(timestamps)))
    for code in customers:
        data = {"code": code, "name": draw(names), "tier": draw(st.integers(1, 4)), "segment": draw(codes), "region": draw(codes)}
        if draw(st.booleans()):
            data.update(home_location=draw(st.sampled_from(locations)), sla_days=draw(st.integers(0, 30)),
                        late_penalty_per_day=draw(prices), credit_hold=draw(st.booleans()))
        events.append(envelope("customer.upserted", data, draw(timestamps)))
    if draw(st.booleans()):
        events.append(envelope("lane.upserted", {"location": draw(st.sampled_from(locations)), "region": draw(codes),
                                                 "transit_days": draw(st.integers(0, 20)), "cost_per_unit": draw(prices)}, draw(timestamps)))
    for _ in range(draw(st.integers(0, 2))):
        data = {"location": draw(st.sampled_from(locations)), "sku": draw(st.sampled_from(skus)), "on_hand": draw(quantities), "as_of": draw(timestamps)}
        if draw(st.booleans()):
            data.update(quality_hold="0", warehouse_hold="0.5")
        events.append(envelope("inventory.snapshot", data, draw(timestamps)))
    for _ in range(draw(st.integers(0, 2))):  # a delta below what is on hand clamps at zero (the spec)
        data = {"location": draw(st.sampled_from(locations)), "sku": draw(st.sampled_from(skus)),
                "delta": str(draw(st.integers(-500, 500))), "reason": draw(names), "as_of": draw(timestamps)}
        events.append(envelope("inventory.adjusted", data, draw(timestamps)))
    refs = draw(st.lists(codes, max_size=2, unique=True))
    for ref in refs:
        data = {"ref": ref, "kind": draw(st.sampled_from(["purchase_order", "asn", "transfer"])), "sku": draw(st.sampled_from(skus)),
                "location": draw(st.sampled_from(locations)), "quantity": draw(quantities), "eta": draw(dates)}
        if draw(st.booleans()):
            data.update(supplier=draw(codes), confidence=draw(st.sampled_from(["0", "0.5", "0.95", "1"])), status="open")
        events.append(envelope("supply.upserted", data, draw(timestamps)))
        if draw(st.booleans()):
            events.append(envelope("supply.received", {"ref": ref, "quantity": draw(quantities), "received_at": draw(timestamps)}, draw(timestamps)))
    numbers = draw(st.lists(codes, max_size=2, unique=True))
    for number in numbers:
        line_numbers = draw(st.lists(st.integers(1, 999), min_size=1, max_size=3, unique=True))
        lines = []
        for line_number in line_numbers:
            line = {"line": line_number, "sku": draw(st.sampled_from(skus)), "quantity": draw(quantities),
                    "unit_price": draw(prices), "unit_cost": draw(prices), "allow_substitute": draw(st.booleans())}
            if draw(st.booleans()):
                line["ship_from"] = draw(st.sampled_from(locations))
            lines.append(line)
        data = {"number": number, "customer": draw(st.sampled_from(customers)), "channel": draw(codes), "created_at": draw(timestamps),
                "requested_date": draw(dates), "ship_complete": draw(st.booleans()), "lines": lines}
        if draw(st.booleans()):
            data["promised_date"] = draw(dates)
        events.append(envelope("order.upserted", data, draw(timestamps)))
        if draw(st.integers(0, 3)) == 0:
            events.append(envelope("order.cancelled", {"number": number, "reason": draw(names)}, draw(timestamps)))
    if draw(st.booleans()):
        target = {"order": draw(st.sampled_from(numbers))} if numbers and draw(st.booleans()) else {"customer": draw(st.sampled_from(customers))}
        events.append(envelope("credit.hold_changed", {**target, "on_hold": draw(st.booleans()), "reason": draw(names)}, draw(timestamps)))
    return draw(st.permutations(events))


# ---------------------------------------------------------------------------------- mutants

def leaves(value: Any, path: str = "") -> list[tuple[str, tuple, Any]]:
    """(error path, access path, value) of every scalar in an envelope."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        access = (key,)
        shown = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)
        if isinstance(child, (dict, list)):
            found += [(p, access + a, v) for p, a, v in leaves(child, shown)]
        else:
            found.append((shown, access, child))
    return found


def put(event: dict, access: tuple, value: Any) -> None:
    target = event
    for key in access[:-1]:
        target = target[key]
    target[access[-1]] = value


def field_kind(access: tuple) -> str:
    name = next((k for k in reversed(access) if isinstance(k, str)), "")
    if name in TIMESTAMP_FIELDS:
        return "timestamp"
    if name in DATE_FIELDS:
        return "date"
    if name in DECIMAL_FIELDS:
        return "decimal"
    if name in INTEGER_FIELDS:
        return "integer"
    return "text"


BAD_TIMESTAMPS = [
    "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "9999-01-01T00:00:00Z",
    "1900-01-01T00:00:00Z", "2026-13-01T00:00:00Z", "2026-06-01T10:00:00", "yesterday",
]
BAD_DATES = ["0001-01-01", "9999-12-31", "1900-01-01", "2026-02-30", "20260601", "June 1"]
HUGE_DECIMALS = [1e20, "1e20", 10**30, "NaN", "Infinity", "-Infinity", 1e308, "1e-400", 99999999999999999999]
HUGE_INTEGERS = [10**20, 99999999999999999999, 2**63, -1, 1.5, 1e20]
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20), st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfffy", "𝄞"]),
)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


@st.composite
def mutants(draw, template: dict, future_limit_seconds: int = 3600) -> tuple[dict, str, str | None]:
    """A copy of ``template`` with one thing changed: (event, kind, field the error must name).

    ``kind`` is ``reject`` (the event breaks a rule of the spec or the bounds), ``maybe``
    (an extra field: accepting or rejecting it are both fine) or ``deep`` (an extra field
    nested deeper than a parser may allow: the batch may be refused as a whole).
    """
    event = copy.deepcopy(template)
    scalars = [leaf for leaf in leaves(event) if leaf[1] != ("source",)]
    mutation = draw(st.sampled_from(["wrong_type", "nul", "surrogate", "bad_time", "bad_date", "huge", "too_long",
                                     "missing", "unknown_type", "future", "extra", "deep"]))
    strings = [leaf for leaf in scalars if isinstance(leaf[2], str)]
    if mutation == "wrong_type":
        path, access, value = draw(st.sampled_from(scalars))
        put(event, access, draw(st.sampled_from([[value], {"value": value}])))
        return event, "reject", path
    if mutation in ("nul", "surrogate", "too_long"):
        path, access, value = draw(st.sampled_from(strings))
        if mutation == "too_long":
            put(event, access, value + "X" * 400)
        else:
            at = draw(st.integers(0, len(value)))
            put(event, access, value[:at] + ("\x00" if mutation == "nul" else draw(st.sampled_from(["\ud800", "\udc00", "\udfff"]))) + value[at:])
        return event, "reject", path
    if mutation == "bad_time":
        path, access, _ = draw(st.sampled_from([leaf for leaf in scalars if field_kind(leaf[1]) == "timestamp"]))
        put(event, access, draw(st.sampled_from(BAD_TIMESTAMPS)))
        return event, "reject", path
    if mutation == "future":  # occurred_at may be at most a few minutes ahead of now
        event["occurred_at"] = (timezone.now() + dt.timedelta(seconds=future_limit_seconds)).isoformat()
        return event, "reject", "occurred_at"
    if mutation == "bad_date":
        candidates = [leaf for leaf in scalars if field_kind(leaf[1]) == "date"]
        if candidates:
            path, access, _ = draw(st.sampled_from(candidates))
            put(event, access, draw(st.sampled_from(BAD_DATES)))
            return event, "reject", path
        mutation = "huge"
    if mutation == "huge":
        candidates = [leaf for leaf in scalars if field_kind(leaf[1]) in ("decimal", "integer")]
        if candidates:
            path, access, _ = draw(st.sampled_from(candidates))
            put(event, access, draw(st.sampled_from(HUGE_DECIMALS if field_kind(access) == "decimal" else HUGE_INTEGERS)))
            return event, "reject", path
        mutation = "missing"
    if mutation == "missing":
        name = draw(st.sampled_from(["id", "type", "occurred_at", "data", "data." + REQUIRED_DATA[template["type"]]]))
        if name.startswith("data."):
            del event["data"][name[5:]]
        else:
            del event[name]
        return event, "reject", name
    if mutation == "unknown_type":
        event["type"] = draw(st.sampled_from(["order.deleted", "ORDER.UPSERTED", "", "order.upserted ", "item"]))
        return event, "reject", "type"
    parent = draw(st.sampled_from([event, event["data"]]))
    if mutation == "extra":
        parent["x_" + draw(st.text("abcdef", min_size=1, max_size=6))] = draw(json_values)
        return event, "maybe", None
    depth = draw(st.sampled_from([8, 40, 200, 3000, 50_000]))
    parent["x_deep"] = json.loads("[" * depth + "]" * depth) if depth < 500 else DeepValue(depth)
    return event, "deep", None


class DeepValue:
    """A nested list too deep to build as Python objects: written straight into the JSON text."""

    def __init__(self, depth: int) -> None:
        self.depth = depth

    def marker(self) -> str:
        return f"__DEEP_{self.depth}__"


@st.composite
def batches(draw) -> list[tuple[dict, str, str | None]]:
    world = draw(worlds())
    entries: list[tuple[dict, str, str | None]] = [(event, "valid", None) for event in world]
    for _ in range(draw(st.integers(0, 6))):
        template = draw(st.sampled_from(world))
        entries.insert(draw(st.integers(0, len(entries))), draw(mutants(template)))
    return entries


# ---------------------------------------------------------------------------------- delivery

def finish(entries: list[tuple[dict, str, str | None]], source: str) -> list[tuple[dict, str, str | None]]:
    """Unique ids and codes for this example, and the delivering source on every envelope."""
    prefix = f"f{next(UNIQUE)}."

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(TAG, prefix)
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    done = []
    for event, kind, path in entries:
        event = fill(event)
        if isinstance(event.get("id"), str):
            event["id"] = event["id"].replace(ID, f"{prefix}{next(UNIQUE)}")
        elif isinstance(event.get("id"), list):
            event["id"] = [v.replace(ID, f"{prefix}{next(UNIQUE)}") for v in event["id"] if isinstance(v, str)]
        elif isinstance(event.get("id"), dict):
            event["id"] = {"value": f"{prefix}{next(UNIQUE)}"}
        if "source" in event:
            event["source"] = source
        done.append((event, kind, path))
    return done


def encode(events: list[dict]) -> bytes:
    text = json.dumps({"events": events}, default=lambda v: v.marker() if isinstance(v, DeepValue) else str(v))
    for depth in (3000, 50_000):
        text = text.replace(f'"__DEEP_{depth}__"', "[" * depth + "]" * depth)
    return text.encode()


def signed(body: bytes, secret: str) -> dict[str, str]:
    """Webhook headers: X-Allot-Timestamp and the HMAC-SHA256 of ``<timestamp>.<body>``."""
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"HTTP_X_ALLOT_TIMESTAMP": stamp, "HTTP_X_ALLOT_SIGNATURE": f"sha256={digest}"}


@pytest.fixture
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def channels(_fast_password_hashing, integration, api_client_for):
    """How a batch gets in: the batch API as the integration user, or the signed webhook of ``wms``."""
    erp = register_source(code="erp", integration_users=[integration])  # the token may post erp's events
    wms = register_source(code="wms")
    client = api_client_for(integration)

    def deliver(channel: str, body: bytes):
        if channel == "api":
            return client.post("/api/v1/events", data=body, content_type="application/json")
        return client.generic("POST", "/api/v1/webhooks/wms", data=body, content_type="application/json", **signed(body, wms.secret))

    return {"deliver": deliver, "client": client, "sources": {"api": erp, "webhook": wms}}


def touched(event: dict, batch: list[dict]) -> set[str]:
    """Keys of the records an event writes (for deciding whether it may legitimately be stale)."""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    kind = event.get("type")
    keys = set()
    for name in ("code", "sku", "ref", "number", "customer", "order"):
        if isinstance(data.get(name), str):
            keys.add(f"{name}:{data[name]}")
    if kind in ("inventory.snapshot", "inventory.adjusted"):
        keys = {f"position:{data.get('location')}:{data.get('sku')}"}
    if kind == "lane.upserted":
        keys = {f"lane:{data.get('location')}:{data.get('region')}"}
    if kind == "supply.received":
        for other in batch:
            other_data = other.get("data") if isinstance(other.get("data"), dict) else {}
            if other.get("type") == "supply.upserted" and other_data.get("ref") == data.get("ref"):
                keys.add(f"position:{other_data.get('location')}:{other_data.get('sku')}")
    if kind == "order.upserted":
        keys = {f"number:{data.get('number')}"}
    if kind in ("order.cancelled",):
        keys = {f"number:{data.get('number')}"}
    if kind == "credit.hold_changed":
        keys = {f"number:{data['order']}"} if "order" in data else {f"code:{data.get('customer')}"}
    if kind == "customer.upserted":
        keys = {f"code:{data.get('code')}", f"customer:{data.get('code')}"}
    return keys


def clean(value: Any) -> bool:
    """A storable id: a string of 1-200 characters, no NUL, no lone surrogate (an answer may show
    another id escaped or shortened)."""
    return (
        isinstance(value, str) and 1 <= len(value) <= 200 and "\x00" not in value
        and not any("\ud800" <= ch <= "\udfff" for ch in value)
    )


def check_delivery(channels, channel: str, entries) -> None:
    source = channels["sources"][channel]
    entries = finish(entries, source.code)
    events = [event for event, _, _ in entries]
    batches_before = EventBatch.objects.count()
    response = channels["deliver"](channel, encode(events))
    assert response.status_code < 500, response.content[:2000]
    body = response.json()
    if response.status_code == 400:
        assert any(kind == "deep" for _, kind, _ in entries), f"a batch without a too-deep value was refused: {body}"
        assert isinstance(body.get("detail"), str) and body["detail"], body
        assert EventBatch.objects.count() == batches_before, "a refused batch stored something"
        return
    assert response.status_code == 202, body
    results = body["results"]
    assert len(results) == len(events)
    accepted_events = []
    for index, ((event, kind, path), result) in enumerate(zip(entries, results, strict=True)):
        if clean(event.get("id")):
            assert result["id"] == event["id"], (index, result)
        if kind == "valid":
            assert result["status"] == "accepted", (index, event, result)
            accepted_events.append(event)
        elif kind == "reject":
            assert result["status"] == "rejected", (index, path, event, result)
            assert result["errors"] and all(isinstance(e.get("field"), str) and isinstance(e.get("message"), str) and e["message"] for e in result["errors"])
            assert path in {e["field"] for e in result["errors"]}, (path, result["errors"])
        else:
            assert result["status"] in ("accepted", "rejected"), (index, result)
            if result["status"] == "accepted":
                accepted_events.append(event)
            else:
                assert result["errors"], result
    process_pending()
    stored = {e.event_id: e for e in Event.objects.filter(source=source, event_id__in=[ev["id"] for ev in events if clean(ev.get("id"))])}
    for event, kind, _ in entries:
        if kind != "valid":
            if clean(event.get("id")) and event["id"] in stored:
                assert stored[event["id"]].status != EventStatus.PENDING, "an accepted event was left pending"
            continue
        record = stored[event["id"]]
        if record.status == EventStatus.STALE:
            others = [o for o in accepted_events if o is not event]
            mine = touched(event, events)
            assert any(mine & touched(o, events) for o in others), f"stale without a newer event for the same record: {event}"
            continue
        assert record.status == EventStatus.APPLIED, f"valid event {event['type']} ended {record.status}: {record.errors} {record.parked_references}\n{event}"
    listing = channels["client"].get("/api/v1/events")
    assert listing.status_code == 200, listing.content[:2000]
    for status in ("failed", "parked", "pending"):
        assert channels["client"].get("/api/v1/events", {"status": status, "source": source.code}).status_code == 200


@FUZZ
@given(entries=batches(), channel=st.sampled_from(["api", "webhook"]))
def test_fuzzed_batches_never_5xx_and_bad_events_never_harm_good_ones(channels, entries, channel):
    check_delivery(channels, channel, entries)


@FUZZ
@given(payload=json_values, wrap=st.booleans(), channel=st.sampled_from(["api", "webhook"]))
def test_arbitrary_json_bodies_are_202_or_400_never_5xx(channels, payload, wrap, channel):
    """Any JSON at all, as the body or as the events list: a 202 with a result per event, or a 400 with a message."""
    document = {"events": payload} if wrap else payload
    response = channels["deliver"](channel, json.dumps(document).encode())
    assert response.status_code in (202, 400), (response.status_code, response.content[:2000])
    body = response.json()
    if response.status_code == 400:
        assert isinstance(body.get("detail"), str) and body["detail"]
    else:
        delivered = payload if wrap else (payload if channel == "webhook" else None)
        count = len(delivered) if isinstance(delivered, list) else 1
        assert len(body["results"]) == count
        assert all(r["status"] == "rejected" for r in body["results"]), body
    assert channels["client"].get("/api/v1/events").status_code == 200


RAW_BODIES = [
    b"", b"{", b"\xff\xfe", b"null", b"[]", b'"events"', b'{"events": null}', b'{"events": {}}',
    b'{"events": [1, "x", null, []]}', b'{"events": [NaN]}', b'{"events": [Infinity]}',
    b'{"events": [' + b"9" * 5000 + b"]}", b'{"events": [1e999999]}', b'{"events": ["\\ud800"]}',
    b'{"events": ["\\u0000"]}', b'{"events": [{"id": "\\u0000"}]}', b"[" * 100_000 + b"]" * 100_000,
    b'{"events": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", b'{"events": [' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"]}",
    b'{"events": [], "events": 3}', "{\"events\": [{\"id\": \"é\"}]}".encode("latin-1"),
]


@pytest.mark.parametrize("channel", ["api", "webhook"])
@pytest.mark.parametrize("body", RAW_BODIES, ids=range(len(RAW_BODIES)))
def test_malformed_bodies_are_400_or_rejected_never_5xx(channels, channel, body):
    response = channels["deliver"](channel, body)
    assert response.status_code in (202, 400), (response.status_code, response.content[:500])
    if response.status_code == 202:
        assert all(r["status"] == "rejected" for r in response.json()["results"])
    else:
        assert response.json()["detail"]
    assert channels["client"].get("/api/v1/events").status_code == 200


@pytest.mark.parametrize("stamp", ["99999999999999999999", "-99999999999999999999", "1e400", "NaN", "\x00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", ""])
def test_webhook_timestamp_garbage_is_401_never_5xx(channels, stamp):
    body = json.dumps({"events": []}).encode()
    secret = channels["sources"]["webhook"].secret
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    response = channels["client"].generic(
        "POST", "/api/v1/webhooks/wms", data=body, content_type="application/json",
        HTTP_X_ALLOT_TIMESTAMP=stamp, HTTP_X_ALLOT_SIGNATURE=f"sha256={digest}",
    )
    assert response.status_code == 401, (response.status_code, response.content[:500])
