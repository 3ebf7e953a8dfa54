"""Runs under broker and worker faults: a run whose publish fails is queued and started by the
sweeper; a run enqueued twice executes once; a run whose worker died is reaped (failed with the
reason, its database session ended so its locks are released) and a clean re-run decides the
same; a run given up while still executing rolls back instead of committing late.
"""
from __future__ import annotations

import datetime as dt
import json
import threading

import psycopg
import pytest
from django.db import connection
from django.utils import timezone
from kombu.exceptions import OperationalError

from allocation import recovery, tasks
from allocation.heartbeat import RunHeartbeat
from allocation.locks import sku_lock_key
from allocation.models import AllocationRun, RunStatus
from allocation.services import run_full, start_run
from config import broker, roles
from tests.fixtures.faults import database_url, record_publishing, wait_until

from .conftest import SCENARIOS, allocation_snapshot, open_exceptions, scenario_events

AS_OF = dt.date(2026, 6, 1)


@pytest.fixture
def recorded_run_publishing(settings, monkeypatch):
    """Broker mode with ``run_task`` publishing recorded (or refused), nothing sent anywhere."""
    return record_publishing(settings, monkeypatch, tasks.run_task)


@pytest.fixture
def valves_committed(transactional_db):
    """valves-1 with the valves policy and one full run, committed (workers read them)."""
    from integrations.services import ingest, process_pending
    from policies.services import import_document

    import_document(json.loads((SCENARIOS / "valves.policy.json").read_text()), actor=None, activate=True)
    with tasks.incremental_runs_paused():
        ingest(scenario_events("valves-1.jsonl"), via="file")
        process_pending()
    assert run_full(as_of=AS_OF).status == "succeeded"


def make_run(**fields) -> AllocationRun:
    values = {"trigger": "manual", "scope": "full", "as_of": AS_OF, "status": RunStatus.QUEUED}
    values.update(fields)
    return AllocationRun.objects.create(**values)


# --- publishing refused ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_publish_is_refused_answers_202_and_the_sweeper_starts_it(
    recorded_run_publishing, personas, api_client_for
):
    recorded_run_publishing.refusing = True

    response = api_client_for(personas[roles.PLANNER]).post("/api/v1/runs", {}, format="json")

    assert response.status_code == 202
    run = AllocationRun.objects.get(pk=response.json()["id"])
    assert run.status == RunStatus.QUEUED
    recorded_run_publishing.refusing = False
    assert recovery.sweep().requeued == []  # younger than ALLOT_RUN_REQUEUE_SECONDS: its task may be on its way

    later = timezone.now() + dt.timedelta(seconds=61)
    assert recovery.sweep(now=later).requeued == [run.pk]
    assert recorded_run_publishing.sent == [{"args": [run.pk]}]
    assert tasks.run_task(run.pk) == "succeeded"  # what the worker executes
    assert tasks.run_task(run.pk) == "not queued"  # a second copy of the task does nothing
    assert recovery.sweep(now=later).requeued == []


@pytest.mark.django_db(transaction=True)
def test_a_worker_start_requeues_every_queued_run_and_a_run_executes_once(recorded_run_publishing):
    queued = make_run()
    done = make_run(status=RunStatus.SUCCEEDED, progress=100, phase="done")

    assert recovery.sweep(startup=True).requeued == [queued.pk]
    assert recorded_run_publishing.sent == [{"args": [queued.pk]}]
    first = tasks.run_task(queued.pk)
    assert (first, tasks.run_task(queued.pk)) == ("succeeded", "not queued")
    assert AllocationRun.objects.get(pk=done.pk).status == RunStatus.SUCCEEDED


# --- the reaper ----------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_reaper_fails_runs_whose_heartbeat_stopped_and_leaves_live_ones_alone(settings):
    settings.ALLOT_RUN_LOST_SECONDS = 120
    now = timezone.now()
    lost = make_run(
        status=RunStatus.RUNNING, progress=5, phase="loading", started_at=now - dt.timedelta(minutes=15),
        heartbeat_at=now - dt.timedelta(minutes=10), worker="node-1 pid 4242",
    )
    before_heartbeats = make_run(status=RunStatus.RUNNING, started_at=now - dt.timedelta(hours=2))
    alive = make_run(status=RunStatus.RUNNING, started_at=now - dt.timedelta(hours=1), heartbeat_at=now - dt.timedelta(seconds=5))
    queued = make_run(status=RunStatus.QUEUED)

    summary = recovery.sweep(now=now)

    assert sorted(summary.reaped) == sorted([lost.pk, before_heartbeats.pk])
    lost.refresh_from_db()
    since = (now - dt.timedelta(minutes=10)).isoformat(timespec="seconds")
    # What each lost run was doing is asked for again, same scope and trigger.
    replacements = AllocationRun.objects.exclude(pk__in=[lost.pk, before_heartbeats.pk, alive.pk, queued.pk])
    assert sorted(replacements.values_list("status", "scope", "trigger")) == [("queued", "full", "manual")] * 2
    message, _, replacement = lost.error.partition("; re-requested as run #")
    assert (lost.status, lost.phase, message) == ("failed", "failed", f"worker lost (node-1 pid 4242): no heartbeat since {since}")
    assert lost.finished_at == now
    other = AllocationRun.objects.get(pk=before_heartbeats.pk).error
    assert other.startswith("worker lost: no heartbeat since ")
    assert sorted([int(replacement), int(other.rpartition("#")[2])]) == sorted(replacements.values_list("pk", flat=True))
    assert AllocationRun.objects.get(pk=alive.pk).status == RunStatus.RUNNING
    assert AllocationRun.objects.get(pk=queued.pk).status == RunStatus.QUEUED
    assert recovery.sweep(now=now).reaped == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_run_given_up_while_it_still_executes_rolls_back_instead_of_committing(valves_committed, monkeypatch, settings):
    """The reaper's verdict stands: the late run writes nothing (another run may be under way)."""
    from allocation import services

    settings.ALLOT_RUN_LOST_SECONDS = 60
    monkeypatch.setattr(recovery, "_end_session", lambda run: False)  # keep this test's own session
    # Its heartbeat does not get through (a stalled connection, a stopped-the-world pause).
    monkeypatch.setattr(RunHeartbeat, "_beat", lambda self: None)
    from integrations.services import ingest, process_pending

    with tasks.incremental_runs_paused():  # stage 2 applied, not yet allocated: a run would change things
        ingest(scenario_events("valves-2.jsonl"), via="file")
        process_pending()
    expected = (allocation_snapshot(), open_exceptions())
    original = services.persist_result
    reaped: list[int] = []

    def persist_then_get_reaped(**kwargs):
        stats = original(**kwargs)
        # The sweeper, on another connection, decides the run is lost (its clock is far ahead).
        sweeper = threading.Thread(target=lambda: reaped.extend(recovery.reap_lost_runs(now=timezone.now() + dt.timedelta(hours=1))))
        sweeper.start()
        sweeper.join()
        return stats

    monkeypatch.setattr(services, "persist_result", persist_then_get_reaped)
    run = make_run()
    finished = services.execute_run(run)

    assert reaped == [run.pk]
    assert finished.status == "failed" and finished.error.startswith("worker lost")
    assert finished.progress != 100 and finished.line_count == 0
    assert not run.decision_logs.exists()
    assert (allocation_snapshot(), open_exceptions()) == expected
    monkeypatch.setattr(services, "persist_result", original)
    assert services.run_full(as_of=AS_OF).status == "succeeded"
    assert (allocation_snapshot(), open_exceptions()) != expected  # what the reaped run would have committed


# --- a worker killed mid-run ---------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_run_is_reaped_and_a_clean_rerun_gives_the_same_allocations(
    valves_committed, worker_processes, settings
):
    expected = (allocation_snapshot(), open_exceptions())
    settings.ALLOT_RUN_LOST_SECONDS = 2
    beat = {"ALLOT_RUN_HEARTBEAT_SECONDS": "0.3"}
    # Another session holds VALVE-10's run lock, so the run stops mid-way: running, its
    # transaction open, the global run lock held (shared), waiting for VALVE-10.
    holder = psycopg.connect(database_url().replace("postgres://", "postgresql://", 1), autocommit=True)
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", [sku_lock_key("VALVE-10")])
        worker = worker_processes(**beat)
        run = start_run(scope_skus=["VALVE-10"], trigger="manual", actor=None)
        wait_until(lambda: AllocationRun.objects.get(pk=run.pk).status == "running", timeout=60, what="the worker to start the run")
        first = AllocationRun.objects.get(pk=run.pk).heartbeat_at
        wait_until(lambda: AllocationRun.objects.get(pk=run.pk).heartbeat_at > first, timeout=10, what="a heartbeat")
        run.refresh_from_db()
        assert run.db_pid and run.worker.endswith(f"pid {worker.pid}")

        worker.kill()
        assert _backend_alive(run.db_pid)  # PostgreSQL does not notice: it waits for the lock
        reaped_after = wait_until(lambda: recovery.reap_lost_runs() == [run.pk], timeout=30, what="the reaper")
        run.refresh_from_db()
        assert (run.status, run.phase) == ("failed", "failed")
        assert run.error.startswith(f"worker lost ({run.worker}): no heartbeat since ")
        assert "; re-requested as run #" in run.error
        replacement = AllocationRun.objects.get(pk=int(run.error.rpartition("#")[2]))
        assert (replacement.scope, replacement.scope_items, replacement.trigger) == ("items", ["VALVE-10"], "manual")
        wait_until(lambda: not _backend_alive(run.db_pid), timeout=10, what="the dead run's session to end")
        assert (allocation_snapshot(), open_exceptions()) == expected  # its transaction never committed
    finally:
        holder.close()  # the re-requested VALVE-10 run may now take VALVE-10's lock

    # The next run needs the global lock exclusively: it proceeds because the dead run's
    # session was ended; the re-requested run goes through on the fresh worker too.
    worker_processes(**beat)
    rerun = start_run(trigger="manual", actor=None)
    rerun_took = wait_until(
        lambda: AllocationRun.objects.get(pk=rerun.pk).is_finished, timeout=60, what="the clean re-run"
    )
    wait_until(lambda: AllocationRun.objects.get(pk=replacement.pk).is_finished, timeout=60, what="the re-requested run")
    assert AllocationRun.objects.get(pk=replacement.pk).status == "succeeded"
    rerun.refresh_from_db()
    print(f"reaped {reaped_after:.2f} s after SIGKILL (ALLOT_RUN_LOST_SECONDS=2, heartbeat every 0.3 s); "
          f"clean re-run on a fresh worker finished {rerun_took:.2f} s after it was started")
    assert rerun.status == "succeeded", rerun.error
    assert (allocation_snapshot(), open_exceptions()) == expected


def _backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0] == 1


# --- work that cannot wait for a sweep runs in-process --------------------------------------------


class _RedisDown:
    def __getattr__(self, name):
        def refuse(*args, **kwargs):
            import redis

            raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

        return refuse


@pytest.mark.django_db
def test_incremental_runs_asked_for_while_redis_is_down_run_in_the_worker(
    valves_stage1, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setattr(broker, "redis_client", _RedisDown)
    runs = AllocationRun.objects.count()

    with django_capture_on_commit_callbacks(execute=True):
        tasks.schedule_incremental_runs(["VALVE-10"])  # what event processing asks for after commit

    run = AllocationRun.objects.order_by("-id").first()
    assert AllocationRun.objects.count() == runs + 1
    assert (run.scope_items, run.status) == (["VALVE-10"], "succeeded")


@pytest.mark.django_db
def test_a_full_run_that_cannot_fan_out_runs_whole_in_the_worker(valves_stage1, settings, monkeypatch):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_TASK_ALWAYS_EAGER = False

    class Unpublishable:
        def __init__(self, signatures):
            list(signatures)

        def apply_async(self):
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks, "group", Unpublishable)
    expected = allocation_snapshot()

    run = AllocationRun.objects.get(pk=tasks.full_run_task(trigger="scheduled"))

    assert (run.scope, run.status) == ("full", "succeeded")
    assert allocation_snapshot() == expected


def test_beat_runs_the_sweeper(settings):
    from config.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["sweep-stuck-work"]
    assert entry == {"task": "allocation.tasks.sweep_task", "schedule": settings.ALLOT_SWEEP_SECONDS}
    assert settings.ALLOT_SWEEP_SECONDS == 30.0
    assert "allocation.tasks.sweep_task" in app.tasks
