"""The valves scenario end to end: events in, policy active, runs, allocations and exceptions out.

Expected outcomes are tests/data/scenarios/README.md stages 1 and 2.
"""
from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import call_command

from allocation.models import (
    Allocation,
    AllocationRun,
    LineDecisionCurrent,
    LineDecisionLog,
    RunStatus,
)
from allocation.services import run_full, run_incremental
from exceptions.models import DecisionException

from .conftest import allocation_snapshot, open_exceptions, scenario_events

AS_OF = dt.date(2026, 6, 1)

STAGE_1 = [
    ("SO-1", 1, "DC-EAST", "VALVE-10", "60", "2026-06-01", None, "reserved"),
    ("SO-2", 1, "DC-EAST", "VALVE-10", "30", "2026-06-01", None, "reserved"),
    ("SO-2", 1, "DC-WEST", "VALVE-10", "20", "2026-06-01", None, "reserved"),
    ("SO-3", 1, "DC-EAST", "VALVE-10", "30", "2026-06-10", "PO-1", "reserved"),
    ("SO-3", 1, "DC-WEST", "VALVE-10", "10", "2026-06-03", None, "reserved"),
    ("SO-4", 1, "DC-EAST", "VALVE-10", "10", "2026-06-10", "PO-1", "reserved"),
    ("SO-4", 2, "DC-WEST", "PUMP-2", "5", "2026-06-01", None, "reserved"),
]
STAGE_1_EXCEPTIONS = [("promise_at_risk", "SO-3", 1), ("promise_at_risk", "SO-4", 1)]

STAGE_2 = [
    ("SO-1", 1, "DC-EAST", "VALVE-10", "50", "2026-06-01", None, "reserved"),
    ("SO-1", 1, "DC-WEST", "VALVE-10", "10", "2026-06-01", None, "reserved"),
    ("SO-2", 1, "DC-EAST", "VALVE-10X", "30", "2026-06-01", None, "proposed"),
    ("SO-2", 1, "DC-WEST", "VALVE-10", "20", "2026-06-01", None, "reserved"),
    ("SO-3", 1, "DC-EAST", "VALVE-10", "40", "2026-06-10", "PO-1", "reserved"),
    ("SO-4", 1, "DC-EAST", "VALVE-10", "10", "2026-06-10", "PO-1", "reserved"),
    ("SO-4", 2, "DC-WEST", "PUMP-2", "5", "2026-06-01", None, "reserved"),
]
STAGE_2_EXCEPTIONS = [
    ("allocation_reversed", "SO-2", 1),
    ("allocation_reversed", "SO-3", 1),
    ("promise_at_risk", "SO-3", 1),
    ("promise_at_risk", "SO-4", 1),
    ("substitution_proposed", "SO-2", 1),
]


def _promise_at_risk_so3():
    from exceptions.models import CaseReason

    return CaseReason.objects.get(type="promise_at_risk", line__order__number="SO-3", line__line=1, status="open")


def _case_so3() -> DecisionException:
    return DecisionException.objects.get(key="case:SO-3/1", status__in=["open", "claimed", "awaiting_approval"])


@pytest.mark.django_db
def test_stage_1_full_run_gives_the_readme_allocations_and_exceptions(valves_stage1):
    # Given valves-1 ingested under the valves policy, when a full run executes as of 2026-06-01
    run = valves_stage1
    # Then allocations and open exceptions are exactly stage 1
    assert allocation_snapshot() == STAGE_1
    assert open_exceptions() == STAGE_1_EXCEPTIONS
    assert (run.status, run.scope, run.as_of, run.line_count, run.allocation_count) == (
        RunStatus.SUCCEEDED, "full", AS_OF, 5, 7,
    )
    assert run.policy_version.name == "valves-sample"
    assert set(run.timings) == {"load", "engine", "persist", "total"}


@pytest.mark.django_db
def test_stage_1_decision_log_explains_each_line(valves_stage1):
    log = LineDecisionLog.objects.filter(line__order__number="SO-1").order_by("-id").first()
    assert (log.strategy, log.priority_class, log.rank) == ("win", 1, 1)
    assert log.setting_sources["strategy"] == 1  # rules[1]: healthcare -> win
    assert log.allocations == [
        {"item": "VALVE-10", "location": "DC-EAST", "supply_ref": None, "quantity": "60",
         "confirmed_date": "2026-06-01", "state": "reserved"}
    ]
    assert log.policy_version_id == valves_stage1.policy_version_id
    assert LineDecisionCurrent.objects.count() == 5
    assert {c.log_id for c in LineDecisionCurrent.objects.all()} <= set(LineDecisionLog.objects.values_list("id", flat=True))


@pytest.mark.django_db
def test_rerunning_changes_nothing_and_logs_nothing(valves_stage1):
    allocations = list(Allocation.objects.order_by("id").values_list("id", "quantity", "updated_at"))
    exceptions = list(DecisionException.objects.order_by("id").values_list("id", "status", "version"))
    logs = LineDecisionLog.objects.count()

    again = run_full(as_of=AS_OF)

    assert again.status == RunStatus.SUCCEEDED
    assert (again.changed_line_count, again.exceptions_raised, again.exceptions_updated, again.exceptions_resolved) == (
        0, 0, 0, 0,
    )
    assert list(Allocation.objects.order_by("id").values_list("id", "quantity", "updated_at")) == allocations
    assert list(DecisionException.objects.order_by("id").values_list("id", "status", "version")) == exceptions
    assert LineDecisionLog.objects.count() == logs


@pytest.mark.django_db
def test_stage_2_incremental_run_from_the_event_gives_the_readme_and_equals_a_full_run(valves_stage1, ingest_events):
    at_risk = _promise_at_risk_so3()
    case = _case_so3()
    runs_before = AllocationRun.objects.count()

    # When valves-2 (40 damaged at DC-EAST) is ingested: its incremental run executes after commit
    ingest_events(scenario_events("valves-2.jsonl"))

    incremental = AllocationRun.objects.order_by("-id").first()
    assert AllocationRun.objects.count() == runs_before + 1
    assert (incremental.trigger, incremental.scope, incremental.scope_items) == ("event", "items", ["VALVE-10"])
    assert incremental.scope_expanded_items == ["PUMP-2", "VALVE-10", "VALVE-10X"]
    assert incremental.status == RunStatus.SUCCEEDED
    assert allocation_snapshot() == STAGE_2
    assert open_exceptions() == STAGE_2_EXCEPTIONS
    # SO-3/1 keeps its one case, updated in place (it now lists the reversal first), and its
    # promise_at_risk reason is the same row
    updated = _case_so3()
    assert updated.pk == case.pk
    assert updated.version == case.version + 1
    assert (updated.type, updated.reason_types) == ("allocation_reversed", ["allocation_reversed", "promise_at_risk"])
    assert _promise_at_risk_so3().pk == at_risk.pk

    # And a full run afterwards changes nothing: incremental == full
    exceptions = list(DecisionException.objects.order_by("id").values_list("id", "status", "version"))
    full = run_full(as_of=AS_OF)
    assert full.changed_line_count == 0
    assert allocation_snapshot() == STAGE_2
    assert list(DecisionException.objects.order_by("id").values_list("id", "status", "version")) == exceptions


@pytest.mark.django_db
def test_ingesting_a_file_twice_changes_nothing(valves_stage1, ingest_events):
    runs = AllocationRun.objects.count()
    result = ingest_events(scenario_events("valves-1.jsonl"))
    assert result.duplicates == 23
    assert AllocationRun.objects.count() == runs
    assert allocation_snapshot() == STAGE_1


@pytest.mark.django_db
def test_a_failed_run_leaves_allocations_intact_and_is_marked_failed(valves_stage1, ingest_events, monkeypatch):
    from allocation import engine

    def broken(inp):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(engine, "allocate", broken)
    exceptions = list(DecisionException.objects.order_by("id").values_list("id", "status", "version"))
    logs = LineDecisionLog.objects.count()

    ingest_events(scenario_events("valves-2.jsonl"))  # its incremental run fails
    failed = run_full(as_of=AS_OF)

    assert failed.status == RunStatus.FAILED
    assert failed.error == "RuntimeError: engine exploded"
    assert failed.finished_at is not None
    event_run = AllocationRun.objects.filter(trigger="event").order_by("-id").first()
    assert (event_run.status, event_run.error) == (RunStatus.FAILED, "RuntimeError: engine exploded")
    assert allocation_snapshot() == STAGE_1
    assert list(DecisionException.objects.order_by("id").values_list("id", "status", "version")) == exceptions
    assert LineDecisionLog.objects.count() == logs


@pytest.mark.django_db
def test_export_allocations_writes_json_lines(valves_stage1):
    out = io.StringIO()
    call_command("export_allocations", stdout=out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert rows[0] == {
        "order": "SO-1", "line": 1, "sku": "VALVE-10", "location": "DC-EAST", "quantity": "60",
        "confirmed_date": "2026-06-01", "supply_ref": None, "state": "reserved",
    }
    assert sorted(
        (r["order"], r["line"], r["location"], r["sku"], r["quantity"], r["confirmed_date"], r["supply_ref"], r["state"])
        for r in rows
    ) == STAGE_1


@pytest.mark.django_db
def test_allocate_command_prints_a_summary(valves_stage1):
    out = io.StringIO()
    call_command("allocate", "--as-of", "2026-06-01", "--items", "PUMP-2", stdout=out)
    text = out.getvalue()
    run = AllocationRun.objects.order_by("-id").first()
    assert text.startswith(f"Run #{run.pk} (items, as of 2026-06-01) succeeded: 5 lines, 7 allocations, 0 changed lines;")
    assert "exceptions 0 raised, 0 updated, 0 resolved" in text


@pytest.mark.django_db
def test_incremental_run_of_one_item_equals_the_full_run_for_its_group(valves_stage1):
    run = run_incremental(["PUMP-2"], as_of=AS_OF)
    assert run.scope_expanded_items == ["PUMP-2", "VALVE-10", "VALVE-10X"]  # SO-4 ships complete
    assert run.changed_line_count == 0
    assert allocation_snapshot() == STAGE_1
