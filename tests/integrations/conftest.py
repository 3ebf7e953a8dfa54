"""Fixtures for ingestion tests: event builders, master data loaded through ingestion, and
a recorder in place of the allocation-run hook (the runs are tested by their own suite)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from integrations.services import ingest, process_pending

SCENARIOS = Path(__file__).resolve().parent.parent / "data" / "scenarios"


def envelope(event_id: str, type_: str, data: dict, *, occurred_at: str = "2026-05-31T18:00:00Z", source: str = "erp") -> dict:
    return {"id": event_id, "type": type_, "source": source, "occurred_at": occurred_at, "data": data}


def scenario(name: str) -> list[dict]:
    with (SCENARIOS / name).open() as handle:
        return [json.loads(line) for line in handle if line.strip()]


def ingest_and_apply(events: list[dict], **kwargs):
    result = ingest(events, **kwargs)
    summary = process_pending()
    return result, summary


@pytest.fixture(autouse=True)
def run_requests(monkeypatch):
    """Record the SKUs handed to ``allocation.tasks.schedule_incremental_runs``."""
    calls: list[list[str]] = []
    monkeypatch.setattr("allocation.tasks.schedule_incremental_runs", lambda skus: calls.append(list(skus)))
    return calls


@pytest.fixture
def master(db):
    """DC-EAST and DC-WEST, VALVE-10 and PUMP-2, customer HOSP-1: loaded through ingestion."""
    events = [
        envelope("m-1", "location.upserted", {"code": "DC-EAST", "name": "East DC", "region": "east", "kind": "warehouse"}),
        envelope("m-2", "location.upserted", {"code": "DC-WEST", "name": "West DC", "region": "west", "kind": "warehouse"}),
        envelope("m-3", "item.upserted", {"sku": "VALVE-10", "description": "Valve", "item_class": "valves", "uom": "EA", "unit_cost": "60"}),
        envelope("m-4", "item.upserted", {"sku": "PUMP-2", "description": "Pump", "item_class": "pumps", "uom": "EA", "unit_cost": "80"}),
        envelope("m-5", "customer.upserted", {"code": "HOSP-1", "name": "Mercy", "tier": 1, "segment": "healthcare", "region": "east"}),
    ]
    result, summary = ingest_and_apply(events)
    assert summary.applied == 5
    return result


def order_event(event_id: str, number: str, lines: list[dict], *, customer: str = "HOSP-1", occurred_at: str = "2026-05-31T18:00:00Z") -> dict:
    return envelope(
        event_id,
        "order.upserted",
        {
            "number": number,
            "customer": customer,
            "channel": "b2b_contract",
            "created_at": "2026-05-25T10:00:00Z",
            "requested_date": "2026-06-01",
            "lines": lines,
        },
        occurred_at=occurred_at,
    )


def line(number: int, sku: str = "VALVE-10", quantity: str = "10") -> dict:
    return {"line": number, "sku": sku, "quantity": quantity, "unit_price": "100", "unit_cost": "60"}


@pytest.fixture
def apply_with_hooks(django_capture_on_commit_callbacks):
    """Like ``ingest_and_apply`` but running what processing schedules on commit (the run hook)."""

    def run(events: list[dict], **kwargs):
        result = ingest(events, **kwargs)
        with django_capture_on_commit_callbacks(execute=True):
            summary = process_pending()
        return result, summary

    return run


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Persona users are created per test; a cheap hasher keeps the role matrices quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _tasks_in_process(in_process_tasks):
    """These tests check what ingestion does after commit in-process; the worker path is tested in tests/runs."""
