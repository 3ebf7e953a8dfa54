"""Fixtures of the allocation-run tests: the valves scenario through the real stack.

Events go in through ``integrations.services.ingest`` and are applied by ``process_pending``;
the policy document is imported and activated through ``policies.services.import_document``.
Tasks run in-process (the embedded default) unless a test sets up a broker itself.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from allocation.models import Allocation
from exceptions.choices import ACTIVE_STATUSES, RUN_EXCEPTION_TYPES
from exceptions.models import DecisionException

SCENARIOS = Path(__file__).resolve().parent.parent / "data" / "scenarios"


def scenario_events(name: str) -> list[dict]:
    return [json.loads(line) for line in (SCENARIOS / name).read_text().splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Personas are created per test; the default PBKDF2 hasher would dominate these tests' time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def ingest_events(in_process_tasks, django_capture_on_commit_callbacks):
    """Ingest and apply events; the incremental runs they schedule execute as after a commit."""
    from integrations.services import ingest, process_pending

    def run(events: list[dict]):
        with django_capture_on_commit_callbacks(execute=True):
            result = ingest(events, via="file")
            process_pending()
        return result

    return run


@pytest.fixture
def valves_policy(db):
    from policies.services import import_document

    document = json.loads((SCENARIOS / "valves.policy.json").read_text())
    return import_document(document, actor=None, activate=True)


@pytest.fixture
def valves_stage1(valves_policy, ingest_events):
    """valves-1 ingested with the valves policy active, then a full run as of 2026-06-01."""
    import datetime as dt

    from allocation.services import run_full

    ingest_events(scenario_events("valves-1.jsonl"))
    run = run_full(as_of=dt.date(2026, 6, 1))
    assert run.status == "succeeded", run.error
    return run


def allocation_snapshot() -> list[tuple]:
    """Every allocation as (order, line, location, sku, quantity, confirmed date, supply ref, state)."""
    return sorted(
        (order, line, location, sku, format(quantity.normalize(), "f"), confirmed.isoformat(), ref, state)
        for order, line, location, sku, quantity, confirmed, ref, state in Allocation.objects.values_list(
            "line__order__number", "line__line", "location__code", "item__sku", "quantity", "confirmed_date",
            "supply__ref", "state",
        )
    )


def open_exceptions() -> list[tuple]:
    """Open reasons as (type, order, line): every reason of every line's case, and the cases of
    ingestion and integrations (one reason each). Checks on the way that no line or order has
    more than one active case (allocation.md "Only true exceptions reach people")."""
    from collections import Counter

    from exceptions.models import CaseReason

    active = DecisionException.objects.filter(status__in=[str(s) for s in ACTIVE_STATUSES])
    subjects = Counter(active.exclude(line__isnull=True).values_list("line_id", flat=True))
    assert all(count == 1 for count in subjects.values()), f"lines with more than one case: {subjects}"
    reasons = CaseReason.objects.filter(status="open").values_list(
        "type", "line__order__number", "line__line", "order__number"
    )
    others = active.exclude(type__in=[str(t) for t in RUN_EXCEPTION_TYPES]).values_list(
        "type", "line__order__number", "line__line", "order__number"
    )
    rows = list(reasons) + list(others)
    return sorted((kind, line_order or order, line) for kind, line_order, line, order in rows)
