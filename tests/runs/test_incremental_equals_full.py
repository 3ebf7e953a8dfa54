"""Property: after any sequence of events, the incremental runs they trigger leave exactly the
state a full run gives (a full run afterwards changes no allocation, decision or exception)."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocation.models import LineDecisionLog
from allocation.services import run_full
from exceptions.models import DecisionException

from .conftest import allocation_snapshot, open_exceptions

SKUS = ("VALVE-10", "VALVE-10X", "PUMP-2")
LOCATIONS = ("DC-EAST", "DC-WEST")
CUSTOMERS = ("HOSP-1", "MFG-1", "CITY-1", "SHOP")

adjustment = st.fixed_dictionaries({
    "type": st.just("inventory.adjusted"),
    "data": st.fixed_dictionaries({
        "location": st.sampled_from(LOCATIONS), "sku": st.sampled_from(SKUS),
        "delta": st.integers(-25, 40).map(str), "reason": st.just("count"),
    }),
})
new_order = st.fixed_dictionaries({
    "type": st.just("order.upserted"),
    "data": st.fixed_dictionaries({
        "customer": st.sampled_from(CUSTOMERS),
        "channel": st.sampled_from(("b2b_contract", "ecommerce")),
        "requested_day": st.integers(1, 12),
        "ship_complete": st.booleans(),
        "lines": st.lists(
            st.fixed_dictionaries({
                "sku": st.sampled_from(SKUS), "quantity": st.integers(1, 60).map(str),
                "allow_substitute": st.booleans(),
            }),
            min_size=1, max_size=2,
        ),
    }),
})
cancellation = st.fixed_dictionaries({
    "type": st.just("order.cancelled"),
    "data": st.fixed_dictionaries({"number": st.sampled_from(("SO-1", "SO-2", "SO-3", "SO-4")), "reason": st.just("test")}),
})
new_supply = st.fixed_dictionaries({
    "type": st.just("supply.upserted"),
    "data": st.fixed_dictionaries({
        "sku": st.sampled_from(SKUS), "location": st.sampled_from(LOCATIONS),
        "quantity": st.integers(1, 80).map(str), "eta_day": st.integers(2, 20),
        "confidence": st.sampled_from((0.5, 0.8, 1.0)),
    }),
})


def _envelopes(batch: list[dict], start: int) -> list[dict]:
    envelopes = []
    for offset, event in enumerate(batch):
        index = start + offset
        at = (dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=index)).isoformat().replace("+00:00", "Z")
        data = dict(event["data"])
        if event["type"] == "inventory.adjusted":
            data["as_of"] = at
        elif event["type"] == "order.upserted":
            data = {
                "number": f"SO-P{index}", "customer": data["customer"], "channel": data["channel"],
                "created_at": at, "requested_date": f"2026-06-{data['requested_day']:02d}",
                "ship_complete": data["ship_complete"],
                "lines": [
                    {"line": number, "sku": line["sku"], "quantity": line["quantity"], "unit_price": "100.00",
                     "unit_cost": "60.00", "allow_substitute": line["allow_substitute"]}
                    for number, line in enumerate(data["lines"], start=1)
                ],
            }
        elif event["type"] == "supply.upserted":
            data = {
                "ref": f"PO-P{index}", "kind": "purchase_order", "sku": data["sku"], "location": data["location"],
                "quantity": data["quantity"], "eta": f"2026-06-{data['eta_day']:02d}", "confidence": data["confidence"],
            }
        source = "wms" if event["type"] == "inventory.adjusted" else "erp"
        envelopes.append({"id": f"prop-{index}", "type": event["type"], "source": source, "occurred_at": at, "data": data})
    return envelopes


@pytest.mark.django_db
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(st.one_of(adjustment, new_order, cancellation, new_supply), min_size=1, max_size=4),
                        min_size=1, max_size=3))
def test_incremental_runs_leave_what_a_full_run_gives(valves_stage1, ingest_events, batches):
    with transaction.atomic():
        start = 0
        for batch in batches:
            ingest_events(_envelopes(batch, start))
            start += len(batch)
        incremental_state = (allocation_snapshot(), open_exceptions())
        exceptions = list(DecisionException.objects.order_by("id").values_list("id", "status", "version"))
        logs = LineDecisionLog.objects.count()

        full = run_full()

        assert full.status == "succeeded", full.error
        assert (allocation_snapshot(), open_exceptions()) == incremental_state
        assert list(DecisionException.objects.order_by("id").values_list("id", "status", "version")) == exceptions
        assert (full.changed_line_count, LineDecisionLog.objects.count()) == (0, logs)
        transaction.set_rollback(True)
