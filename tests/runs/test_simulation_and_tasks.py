"""Simulation of a draft policy, the partitioned full run, and coalescing of incremental runs."""
from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from allocation import tasks
from allocation.models import Allocation, AllocationRun, LineDecisionLog, SimulationResult
from allocation.services import run_full, simulate
from exceptions.models import DecisionException

from .conftest import SCENARIOS, allocation_snapshot, open_exceptions

AS_OF = dt.date(2026, 6, 1)


def _draft(document_changes: dict):
    from policies.services import import_document

    document = json.loads((SCENARIOS / "valves.policy.json").read_text())
    document.update(document_changes)
    return import_document(document, actor=None)


@pytest.mark.django_db
def test_simulating_a_draft_persists_only_the_run_and_its_diff(valves_stage1):
    # Given a draft where manufacturing also wins (class 1)
    draft = _draft({
        "name": "manufacturing-wins",
        "rules": [
            {"scope": {}, "settings": {"strategy": "redistribute", "priority_class": 5}},
            {"scope": {"customer_segment": "healthcare"}, "settings": {"strategy": "win", "priority_class": 1}},
            {"scope": {"customer_segment": "municipal"}, "settings": {"strategy": "win", "priority_class": 1}},
        ],
    })
    allocations, exceptions = allocation_snapshot(), open_exceptions()
    logs = LineDecisionLog.objects.count()

    run = simulate(draft, as_of=AS_OF)

    assert (run.status, run.is_simulation, run.trigger, run.policy_version_id) == (
        "succeeded", True, "simulation", draft.pk,
    )
    payload = SimulationResult.objects.get(run=run).payload
    # SO-3 (municipal) now wins: it takes DC-EAST on-hand that SO-2 held; SO-2 is offered the substitute
    assert payload["lines"] == 5
    assert (payload["gaining"], payload["losing"]) == (
        [{"order": "SO-3", "line": 1, "segment": "municipal", "channel": "b2b_contract", "before": "40",
          "after": "40", "on_time_before": "10", "on_time_after": "40"}],
        [{"order": "SO-2", "line": 1, "segment": "manufacturing", "channel": "field_sales", "before": "50",
          "after": "20", "on_time_before": "50", "on_time_after": "20"}],
    )
    assert payload["fill_rate_by_segment"] == {
        "healthcare": {"before": 1.0, "after": 1.0},
        "manufacturing": {"before": 1.0, "after": 0.4},
        "municipal": {"before": 1.0, "after": 1.0},
        "retail": {"before": 1.0, "after": 1.0},
    }
    assert [e["key"] for e in payload["exceptions_added"]] == [
        "allocation_reversed:SO-2/1", "substitution_proposed:SO-2/1",
    ]
    assert [e["key"] for e in payload["exceptions_removed"]] == ["promise_at_risk:SO-3/1"]
    # Nothing real changed
    assert allocation_snapshot() == allocations
    assert open_exceptions() == exceptions
    assert LineDecisionLog.objects.count() == logs


@pytest.mark.django_db
def test_simulating_the_active_policy_changes_nothing(valves_stage1):
    run = simulate(valves_stage1.policy_version, as_of=AS_OF)
    payload = run.simulation_result.payload
    assert (payload["gaining_count"], payload["losing_count"], payload["exceptions_added_count"],
            payload["exceptions_removed_count"]) == (0, 0, 0, 0)
    assert payload["fill_rate_by_channel"] == {
        "b2b_contract": {"before": 1.0, "after": 1.0},
        "ecommerce": {"before": 1.0, "after": 1.0},
        "field_sales": {"before": 1.0, "after": 1.0},
    }


@pytest.mark.django_db
def test_partitioned_full_run_equals_one_full_run(valves_stage1, ingest_events):
    from .conftest import scenario_events

    with tasks.incremental_runs_paused():
        ingest_events(scenario_events("valves-2.jsonl"))
    chunks = tasks.partition_item_groups(4)
    assert chunks == [["PUMP-2", "VALVE-10", "VALVE-10X"]]  # one group: substitution + ship-complete SO-4
    for chunk in chunks:
        tasks.run_items_task(chunk)
    partitioned = (allocation_snapshot(), open_exceptions())
    full = run_full(as_of=AS_OF)
    assert full.changed_line_count == 0
    assert (allocation_snapshot(), open_exceptions()) == partitioned


@pytest.mark.django_db
def test_partition_keeps_independent_items_apart(valves_stage1):
    from allocation.models import Item

    Item.objects.create(sku="GASKET-1", item_class="gaskets")
    assert tasks.partition_item_groups(4) == [["PUMP-2", "VALVE-10", "VALVE-10X"], ["GASKET-1"]]
    assert tasks.partition_item_groups(1) == [["GASKET-1", "PUMP-2", "VALVE-10", "VALVE-10X"]]


@pytest.mark.django_db
def test_paused_incremental_runs_collect_the_skus(valves_stage1):
    runs = AllocationRun.objects.count()
    with tasks.incremental_runs_paused() as asked:
        tasks.schedule_incremental_runs(["VALVE-10", "PUMP-2"])
        tasks.schedule_incremental_runs({"VALVE-10"})
    assert asked == {"VALVE-10", "PUMP-2"}
    assert AllocationRun.objects.count() == runs


@pytest.mark.django_db
def test_in_process_batch_of_events_makes_one_run(valves_stage1, ingest_events):
    # A burst of 1,000 adjustments of one item in one batch: ingestion asks once per processed chunk.
    runs = AllocationRun.objects.count()
    events = [
        {"id": f"burst-{index}", "type": "inventory.adjusted", "source": "wms",
         "occurred_at": f"2026-06-01T09:{index // 60 % 60:02d}:{index % 60:02d}Z",
         "data": {"location": "DC-WEST", "sku": "PUMP-2", "delta": "1" if index % 2 else "-1", "reason": "count",
                  "as_of": f"2026-06-01T09:{index // 60 % 60:02d}:{index % 60:02d}Z"}}
        for index in range(1000)
    ]
    ingest_events(events)
    new_runs = list(AllocationRun.objects.filter(pk__gt=0).order_by("id")[runs:])
    assert [(r.trigger, r.scope_items, r.status) for r in new_runs] == [("event", ["PUMP-2"], "succeeded")]
    assert allocation_snapshot()[-1] == ("SO-4", 2, "DC-WEST", "PUMP-2", "5", "2026-06-01", None, "reserved")


def test_schedule_rejects_a_single_string():
    with pytest.raises(TypeError):
        tasks.schedule_incremental_runs("VALVE-10")


REDIS_URL = os.environ.get("REDIS_URL", "")


@pytest.fixture
def redis_broker(settings):
    """The coalescing path against a real Redis (REDIS_URL); the task is captured, not sent."""
    if not REDIS_URL:
        pytest.skip("needs Redis (set REDIS_URL)")
    settings.REDIS_URL = REDIS_URL
    settings.CELERY_BROKER_URL = REDIS_URL
    settings.CELERY_TASK_ALWAYS_EAGER = False
    client = tasks.redis_client()
    client.delete(tasks.PENDING_SKUS_KEY, tasks.SCHEDULED_KEY, tasks.RUNNING_KEY)
    yield client
    client.delete(tasks.PENDING_SKUS_KEY, tasks.SCHEDULED_KEY, tasks.RUNNING_KEY)


@pytest.mark.django_db
def test_a_request_that_finds_no_run_going_is_sent_at_once(redis_broker, monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(tasks.incremental_run_task, "apply_async", lambda **kwargs: sent.append(kwargs))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.schedule_incremental_runs(["PUMP-2"])
    assert sent == [{}]  # no countdown: the idle worker starts it now


@pytest.mark.django_db
def test_a_burst_of_requests_enqueues_one_delayed_run(redis_broker, monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr(tasks.incremental_run_task, "apply_async", lambda **kwargs: sent.append(kwargs))
    redis_broker.set(tasks.RUNNING_KEY, "1")  # while a run is going, arrivals wait to be merged
    with django_capture_on_commit_callbacks(execute=True):
        for index in range(1000):
            tasks.schedule_incremental_runs(["VALVE-10"] if index % 2 else ["PUMP-2"])
    assert sent == [{"countdown": tasks.COALESCE_SECONDS}]
    assert redis_broker.smembers(tasks.PENDING_SKUS_KEY) == {b"VALVE-10", b"PUMP-2"}
    assert redis_broker.get(tasks.SCHEDULED_KEY) == b"1"


@pytest.mark.django_db
def test_the_delayed_run_drains_the_pending_set_and_reopens_scheduling(
    valves_stage1, redis_broker, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(tasks.incremental_run_task, "apply_async", lambda **kwargs: sent.append(kwargs))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.schedule_incremental_runs(["PUMP-2"])
        tasks.schedule_incremental_runs(["VALVE-10"])
    runs = AllocationRun.objects.count()

    run_id = tasks.incremental_run_task()  # what the worker executes after the countdown

    run = AllocationRun.objects.get(pk=run_id)
    assert AllocationRun.objects.count() == runs + 1
    assert (run.scope_items, run.status) == (["PUMP-2", "VALVE-10"], "succeeded")
    assert redis_broker.exists(tasks.PENDING_SKUS_KEY, tasks.SCHEDULED_KEY) == 0
    assert tasks.incremental_run_task() is None  # nothing pending: no run
    with django_capture_on_commit_callbacks(execute=True):
        tasks.schedule_incremental_runs(["PUMP-2"])
    assert len(sent) == 2  # scheduling is open again after the drain


@pytest.mark.django_db
def test_a_failed_incremental_run_rolls_back_exceptions_too(valves_stage1, monkeypatch):
    from allocation import persistence

    def broken(*args, **kwargs):
        raise ValueError("disk full")

    before = (allocation_snapshot(), list(DecisionException.objects.values_list("id", "version", "status")))
    monkeypatch.setattr(persistence, "sync_run_exceptions", broken)
    from allocation.services import run_incremental

    run = run_incremental(["VALVE-10"], as_of=dt.date(2026, 6, 5))
    assert (run.status, run.error) == ("failed", "ValueError: disk full")
    assert (allocation_snapshot(), list(DecisionException.objects.values_list("id", "version", "status"))) == before
    assert Allocation.objects.filter(run_id=run.pk).count() == 0
