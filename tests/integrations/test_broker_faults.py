"""Broker faults during ingestion: a batch is stored first and answered 202 whatever the broker
does; publishing gives up within about a second; bursts publish a few processing tasks; and what
was stored during an outage is applied once the broker returns (sweeper, worker start).

The first tests record publishing (an in-memory Redis holds the coalescing flag) and run on
SQLite too; the others kill a private redis-server and run real worker processes.
"""
from __future__ import annotations

import signal
import time

import pytest
from rest_framework.test import APIClient

from allocation.recovery import sweep
from integrations import tasks as integration_tasks
from integrations.choices import EventStatus
from integrations.models import Event
from integrations.services import ingest, register_source
from tests.fixtures.faults import record_publishing, wait_until
from tests.integrations.conftest import envelope

EVENTS_URL = "/api/v1/events"
FLAG = integration_tasks.PROCESSING_SCHEDULED_KEY
WAKE_UP = {"countdown": integration_tasks.PROCESSING_COALESCE_SECONDS}


def location_event(event_id: str, code: str) -> dict:
    return envelope(event_id, "location.upserted", {"code": code, "name": code, "region": "east", "kind": "warehouse"})


def statuses() -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in Event.objects.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


@pytest.fixture
def recorded_broker(settings, monkeypatch):
    """Broker mode, with publishing of ``process_events_task`` recorded and flags in memory."""
    return record_publishing(settings, monkeypatch, integration_tasks.process_events_task)


@pytest.fixture
def erp(transactional_db):
    return register_source(code="erp")


@pytest.fixture
def integration_client(erp, integration, api_client_for) -> APIClient:
    return api_client_for(integration)


@pytest.mark.django_db(transaction=True)
def test_a_refused_publish_answers_202_and_the_sweeper_applies_the_batch(recorded_broker, integration_client):
    recorded_broker.refusing = True

    response = integration_client.post(EVENTS_URL, {"events": [location_event("e-1", "DC-1")]}, format="json")

    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    assert statuses() == {EventStatus.PENDING: 1}  # stored: the durable record
    assert recorded_broker.sent == []
    assert not recorded_broker.flags.exists(FLAG)  # a refused publish reopens publishing

    recorded_broker.refusing = False  # the broker is back; the next sweep (beat) publishes
    assert sweep().processing_published is True
    assert recorded_broker.sent == [WAKE_UP]
    integration_tasks.process_events_task()  # what the worker executes

    assert statuses() == {EventStatus.APPLIED: 1}
    assert not recorded_broker.flags.exists(FLAG)
    assert sweep().processing_published is False  # nothing pending, nothing published
    assert recorded_broker.sent == [WAKE_UP]


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_batches_publishes_one_processing_task_and_no_wake_up_is_lost(recorded_broker, erp, monkeypatch):
    for index in range(60):
        ingest([location_event(f"e-{index}", f"DC-{index}")], via="api")

    assert len(recorded_broker.sent) == 1  # one task waits; the other 59 batches published nothing

    # A batch that commits while the task is applying (after it reopened publishing) publishes
    # a new task: the wake-up is not lost even if this run had already read the queue.
    from integrations import services

    original = services.process_pending

    def process_with_a_batch_arriving(**kwargs):
        ingest([location_event("late", "DC-LATE")], via="api")
        return original(**kwargs)

    monkeypatch.setattr(services, "process_pending", process_with_a_batch_arriving)
    integration_tasks.process_events_task()
    monkeypatch.setattr(services, "process_pending", original)

    assert len(recorded_broker.sent) == 2
    assert statuses() == {EventStatus.APPLIED: 61}
    integration_tasks.process_events_task()  # the second task: finds the queue drained
    assert statuses() == {EventStatus.APPLIED: 61}
    ingest([location_event("after", "DC-AFTER")], via="api")
    assert len(recorded_broker.sent) == 3  # publishing is open again once the tasks ran


@pytest.mark.django_db(transaction=True)
def test_posting_events_while_redis_is_down_or_hung_answers_202_within_a_second(app_on_private_broker, integration_client):
    """Killed (connection refused) and hung (SIGSTOP: connects, never answers, the worst case)."""
    timings = {}
    app_on_private_broker.kill()
    for index in range(3):
        started = time.monotonic()
        response = integration_client.post(EVENTS_URL, {"events": [location_event(f"k-{index}", f"K-{index}")]}, format="json")
        timings[f"down {index}"] = time.monotonic() - started
        assert response.status_code == 202
    app_on_private_broker.start()
    app_on_private_broker.process.send_signal(signal.SIGSTOP)
    try:
        for index in range(2):
            started = time.monotonic()
            response = integration_client.post(EVENTS_URL, {"events": [location_event(f"h-{index}", f"H-{index}")]}, format="json")
            timings[f"hung {index}"] = time.monotonic() - started
            assert response.status_code == 202
    finally:
        app_on_private_broker.process.send_signal(signal.SIGCONT)
    print("POST /api/v1/events answer times:", {name: round(value, 3) for name, value in timings.items()})
    assert max(timings.values()) < 1.5, timings
    assert statuses() == {EventStatus.PENDING: 5}


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_events_posted_while_redis_is_down_are_all_applied_after_it_returns(
    app_on_private_broker, worker_processes, integration_client
):
    """A worker with its beat (sweep every second here; ALLOT_SWEEP_SECONDS, 30 by default)."""
    server = app_on_private_broker
    worker = worker_processes(beat=True, ALLOT_SWEEP_SECONDS="1")
    response = integration_client.post(EVENTS_URL, {"events": [location_event("up-0", "UP-0")]}, format="json")
    assert response.status_code == 202
    wait_until(lambda: statuses() == {EventStatus.APPLIED: 1}, timeout=60, what="the worker to apply the first batch")

    server.kill()
    answers = []
    for index in range(20):
        started = time.monotonic()
        response = integration_client.post(
            EVENTS_URL, {"events": [location_event(f"down-{index}", f"DOWN-{index}")]}, format="json"
        )
        answers.append(time.monotonic() - started)
        assert response.status_code == 202
    time.sleep(3)  # the worker and its beat notice the outage and retry meanwhile
    assert statuses() == {EventStatus.APPLIED: 1, EventStatus.PENDING: 20}

    server.start()  # empty: every queued message and flag is gone, as after a crash
    applied_after = wait_until(
        lambda: statuses() == {EventStatus.APPLIED: 21}, timeout=90, what="the batches stored during the outage"
    )
    print(
        f"redis down: {len(answers)} posts answered 202 in max {max(answers):.3f} s, mean "
        f"{sum(answers) / len(answers):.3f} s; all applied {applied_after:.2f} s after redis returned (no action)"
    )
    assert max(answers) < 1.5, answers
    assert worker.process.poll() is None, worker.output()


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_starting_after_the_outage_applies_what_was_stored_without_a_sweep(
    app_on_private_broker, worker_processes, integration_client
):
    server = app_on_private_broker
    server.kill()
    for index in range(5):
        response = integration_client.post(EVENTS_URL, {"events": [location_event(f"o-{index}", f"O-{index}")]}, format="json")
        assert response.status_code == 202
    assert statuses() == {EventStatus.PENDING: 5}

    server.start()
    started = time.monotonic()
    worker_processes()  # its worker_ready signal publishes one sweep
    waited = wait_until(lambda: statuses() == {EventStatus.APPLIED: 5}, timeout=60, what="the startup sweep")
    print(f"worker started {waited:.2f} s before everything stored during the outage was applied")
    assert time.monotonic() - started < 60

