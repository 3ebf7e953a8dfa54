"""A small world for release waves and execution modes, built through the real stack.

Events go in through ``integrations.services.ingest`` (applied by ``process_pending``); a full
run as of 2026-06-01 reserves every line from on-hand. Locations in three time zones:

- DC-EAST (America/New_York, 3 lines a day, cutoff 16:00): BOLT, NUT 100 each, GEAR 0 (+10 inbound);
- DC-WEST (America/Los_Angeles, 2 lines a day, cutoff 15:00): BOLT 100;
- DC-EMPTY (Europe/Berlin, 5 a day, cutoff 12:00): nothing.

Orders at DC-EAST, all requested 2026-06-01 from ``ship_from`` DC-EAST, ranked by customer
tier: E1 (tier 1), E2 and E3 (tier 2), E4 and E5 (tier 4). At DC-WEST: W1..W3 (tier 2).
"""
from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest

DAY = dt.date(2026, 6, 1)
_ids = itertools.count(1)


def event(type_: str, data: dict, *, source: str = "erp", at: str = "2026-05-31T18:00:00Z") -> dict:
    return {"id": f"{source}-rel-{next(_ids)}", "type": type_, "source": source, "occurred_at": at, "data": data}


def order(number: str, customer: str, lines: list[tuple], *, ship_complete: bool = False, at: str = "2026-05-31T18:00:00Z",
          created: str = "2026-05-25T10:00:00Z") -> dict:
    """``lines``: (line, sku, quantity, unit price, ship_from)."""
    return event("order.upserted", {
        "number": number, "customer": customer, "channel": "b2b_contract", "created_at": created,
        "requested_date": DAY.isoformat(), "ship_complete": ship_complete,
        "lines": [
            {"line": n, "sku": sku, "quantity": str(q), "unit_price": str(price), "unit_cost": "1.00", "ship_from": loc}
            for n, sku, q, price, loc in lines
        ],
    }, at=at)


def world_events() -> list[dict]:
    events = [
        event("location.upserted", {"code": "DC-EAST", "name": "East", "region": "east", "kind": "warehouse",
                                    "release_capacity_per_day": 3, "cutoff_time": "16:00", "timezone": "America/New_York"}),
        event("location.upserted", {"code": "DC-WEST", "name": "West", "region": "west", "kind": "warehouse",
                                    "release_capacity_per_day": 2, "cutoff_time": "15:00", "timezone": "America/Los_Angeles"}),
        event("location.upserted", {"code": "DC-EMPTY", "name": "Empty", "region": "north", "kind": "warehouse",
                                    "release_capacity_per_day": 5, "cutoff_time": "12:00", "timezone": "Europe/Berlin"}),
        event("lane.upserted", {"location": "DC-EAST", "region": "east", "transit_days": 1, "cost_per_unit": 0.5}),
        event("lane.upserted", {"location": "DC-WEST", "region": "west", "transit_days": 1, "cost_per_unit": 0.5}),
    ]
    for sku in ("BOLT", "NUT", "GEAR"):
        events.append(event("item.upserted", {"sku": sku, "description": sku.title(), "item_class": "hardware",
                                              "uom": "EA", "unit_cost": "1.00"}))
    for code, tier, region, home in (
        ("CUST-A", 1, "east", "DC-EAST"), ("CUST-B", 2, "east", "DC-EAST"), ("CUST-C", 4, "east", "DC-EAST"),
        ("CUST-W", 2, "west", "DC-WEST"), ("HOSP", 1, "east", "DC-EAST"),
    ):
        events.append(event("customer.upserted", {"code": code, "name": code, "tier": tier,
                                                  "segment": "healthcare" if code == "HOSP" else "industry",
                                                  "region": region, "home_location": home}))
    for location, sku, quantity in (("DC-EAST", "BOLT", 100), ("DC-EAST", "NUT", 100), ("DC-EAST", "GEAR", 0),
                                    ("DC-WEST", "BOLT", 100)):
        events.append(event("inventory.snapshot", {"location": location, "sku": sku, "on_hand": str(quantity),
                                                   "as_of": "2026-05-31T17:00:00Z"}, source="wms"))
    events.append(event("supply.upserted", {"ref": "PO-GEAR", "kind": "purchase_order", "sku": "GEAR", "location": "DC-EAST",
                                            "quantity": "10", "eta": "2026-06-05", "confidence": 1}))
    events += [
        order("E1", "CUST-A", [(1, "BOLT", 10, "2.00", "DC-EAST")]),
        order("E2", "CUST-B", [(1, "BOLT", 10, "2.00", "DC-EAST")]),
        order("E3", "CUST-B", [(1, "NUT", 10, "2.00", "DC-EAST")], created="2026-05-26T10:00:00Z"),
        order("E4", "CUST-C", [(1, "BOLT", 10, "2.00", "DC-EAST")]),
        order("E5", "CUST-C", [(1, "NUT", 10, "2.00", "DC-EAST")], created="2026-05-26T10:00:00Z"),
        order("W1", "CUST-W", [(1, "BOLT", 5, "2.00", "DC-WEST")]),
        order("W2", "CUST-W", [(1, "BOLT", 5, "2.00", "DC-WEST")], created="2026-05-26T10:00:00Z"),
        order("W3", "CUST-W", [(1, "BOLT", 5, "2.00", "DC-WEST")], created="2026-05-27T10:00:00Z"),
    ]
    return events


@pytest.fixture
def ingest(in_process_tasks, django_capture_on_commit_callbacks):
    """Ingest and apply events; the runs they ask for execute as after a commit."""
    from integrations.services import ingest as ingest_events
    from integrations.services import process_pending

    def run(events: list[dict]):
        with django_capture_on_commit_callbacks(execute=True):
            result = ingest_events(events, via="file")
            process_pending()
        return result

    return run


@pytest.fixture
def activate_policy(db):
    """Import and activate a policy document: the global rule plus ``rules``."""
    from policies.services import import_document

    def run(*rules: dict, name: str = "release-tests"):
        document = {
            "name": name, "effective_from": "2026-05-01T00:00:00Z",
            "rules": [{"scope": {}, "settings": {"strategy": "redistribute", "priority_class": 5}}, *rules],
            "protections": [], "quotas": [],
        }
        return import_document(json.loads(json.dumps(document)), actor=None, activate=True)

    return run


@pytest.fixture
def full_run():
    from allocation.services import run_full

    def run():
        result = run_full(as_of=DAY)
        assert result.status == "succeeded", result.error
        return result

    return run


@pytest.fixture
def world(db, ingest, full_run):
    """The world above, allocated by a full run as of 2026-06-01."""
    ingest(world_events())
    full_run()
    from allocation.models import Location

    return {location.code: location for location in Location.objects.all()}
