"""With Redis and a real Celery worker: bursts coalesce into a few runs; a fanned-out full run
gives what one in-process full run gives."""
from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from allocation import tasks
from allocation.models import AllocationRun
from allocation.services import run_full

from .conftest import SCENARIOS, allocation_snapshot, open_exceptions, scenario_events

AS_OF = dt.date(2026, 6, 1)


@pytest.fixture
def valves_committed(transactional_db):
    """valves-1 with the valves policy, committed (the worker reads it from its own connection)."""
    from integrations.services import ingest, process_pending
    from policies.services import import_document

    import_document(json.loads((SCENARIOS / "valves.policy.json").read_text()), actor=None, activate=True)
    with tasks.incremental_runs_paused():  # no runs enqueued before the worker starts
        ingest(scenario_events("valves-1.jsonl"), via="file")
        process_pending()
    assert run_full(as_of=AS_OF).status == "succeeded"


@pytest.fixture
def worker(valves_committed):
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    # Another test may have run eager tasks while the broker URL was blanked: the producer pools
    # built then would publish nowhere; drop them so they are rebuilt on the broker.
    app._pool = None
    app.amqp._producer_pool = None
    # And may have left the in-process flag set on the app's configuration.
    app.conf.update(task_always_eager=False)
    app.control.purge()
    client = tasks.redis_client()
    client.delete(tasks.PENDING_SKUS_KEY, tasks.SCHEDULED_KEY)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=20):
        yield app
    client.delete(tasks.PENDING_SKUS_KEY, tasks.SCHEDULED_KEY)


def _wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for the worker")


def _finished(runs) -> bool:
    return all(status in ("succeeded", "failed") for status in runs.values_list("status", flat=True))


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_thousand_requests_in_a_second_make_a_few_runs(worker):
    first = AllocationRun.objects.order_by("-id").values_list("id", flat=True).first()
    started = time.monotonic()
    for index in range(1000):
        tasks.schedule_incremental_runs(["VALVE-10"] if index % 3 else ["PUMP-2"])
    assert time.monotonic() - started < 5
    runs = AllocationRun.objects.filter(id__gt=first)
    _wait_until(lambda: runs.exists() and _finished(runs) and not tasks.redis_client().exists(tasks.PENDING_SKUS_KEY))
    time.sleep(tasks.COALESCE_SECONDS * 3)  # a straggler would have been enqueued by now
    _wait_until(lambda: _finished(runs))
    assert 1 <= runs.count() <= 5
    assert set(runs.values_list("status", flat=True)) == {"succeeded"}
    assert allocation_snapshot()[0] == ("SO-1", 1, "DC-EAST", "VALVE-10", "60", "2026-06-01", None, "reserved")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_fanned_out_full_run_equals_an_in_process_one(worker):
    expected = (allocation_snapshot(), open_exceptions())
    first = AllocationRun.objects.order_by("-id").values_list("id", flat=True).first()

    assert tasks.full_run_task.delay(trigger="scheduled").get(timeout=30) is None  # fanned out

    runs = AllocationRun.objects.filter(id__gt=first)
    _wait_until(lambda: runs.count() == 1 and _finished(runs))
    run = runs.get()
    assert (run.trigger, run.scope, run.status, run.changed_line_count) == ("scheduled", "items", "succeeded", 0)
    assert (allocation_snapshot(), open_exceptions()) == expected
