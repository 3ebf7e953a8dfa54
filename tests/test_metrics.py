"""GET /metrics (config/metrics.py): counters where the work happens, gauges from the database,
request latency by route, the token and network protection, multi-process aggregation."""
from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from pathlib import Path

import fakeredis
import pytest
from django.urls import resolve
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from allocation.models import AllocationRun, Order, RunScope, RunStatus, RunTrigger
from allocation.services import run_full, run_incremental
from config import metrics
from exceptions.models import DecisionException, Queue
from integrations.models import Event, EventBatch, OutboxMessage, Source
from integrations.services import deferred_processing, ingest, process_pending, register_source
from tests.integrations.conftest import envelope

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    """The samples of one scrape: (name, sorted label pairs) -> value."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def location(event_id: str, code: str, source: str = "erp") -> dict:
    return envelope(event_id, "location.upserted", {"code": code, "name": code, "region": "east", "kind": "warehouse"}, source=source)


def snapshot(event_id: str, sku: str, on_hand: str = "100") -> dict:
    """A stock count at the distributor's DC-EAST-1, newer than its fixture positions."""
    data = {"location": "DC-EAST-1", "sku": sku, "on_hand": on_hand, "as_of": "2026-06-01T08:00:00Z"}
    return envelope(event_id, "inventory.snapshot", data, source="wms", occurred_at="2026-06-01T08:30:00Z")


@pytest.fixture
def no_runs(monkeypatch):
    """Processing asks for no allocation runs (the runs are started by the test itself)."""
    monkeypatch.setattr("allocation.tasks.schedule_incremental_runs", lambda skus: None)


@pytest.fixture
def clean_watermark():
    """No undecided-events watermark left by earlier tests in this process."""
    while metrics._take_oldest() is not None:
        pass
    yield
    while metrics._take_oldest() is not None:
        pass


# --- events ----------------------------------------------------------------------------------


def test_a_batch_moves_the_counters_of_its_sources_by_exactly_its_results(
    client, integration, api_client_for, in_process_tasks, no_runs, django_capture_on_commit_callbacks
):
    register_source(code="wms", integration_users=[integration])
    api = api_client_for(integration)
    rejected = location("e-2", "DC-2")
    rejected["data"]["kind"] = "castle"
    before = scrape(client)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/events", {"events": [
            location("e-1", "DC-1"), rejected, location("w-1", "DC-3", source="wms"),
            location("x-1", "DC-4", source="no-such-source"),
        ]}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        again = api.post("/api/v1/events", {"events": [location("e-1", "DC-1")]}, format="json")
    after = scrape(client)

    assert response.status_code == 202 and again.status_code == 202
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "rejected", "accepted", "rejected"]

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    received = "allot_events_received_total"
    assert moved(received, source="erp", result="accepted") == 1
    assert moved(received, source="erp", result="rejected") == 1
    assert moved(received, source="erp", result="duplicate") == 1
    assert moved(received, source="wms", result="accepted") == 1
    assert moved(received, source="wms", result="rejected") == 0
    assert moved(received, source="unregistered", result="rejected") == 1
    assert moved("allot_events_processed_total", source="erp", status="applied") == 1
    assert moved("allot_events_processed_total", source="wms", status="applied") == 1
    assert moved("allot_events_processed_total", source="erp", status="failed") == 0
    assert not any(labels and ("source", "no-such-source") in labels for _, labels in after)


def test_each_processing_outcome_is_counted_per_source(client, distributor, no_runs):
    register_source(code="wms")

    def stock(event_id, sku, location, hour):
        data = {"location": location, "sku": sku, "on_hand": "50", "as_of": f"2026-06-01T{hour:02d}:00:00Z"}
        return envelope(event_id, "inventory.snapshot", data, source="wms", occurred_at=f"2026-06-01T{hour:02d}:30:00Z")

    shipment = {"order": "SO-1", "line": 9, "location": "DC-EAST-1", "quantity": "4", "shipped_at": "2026-06-01T09:00:00Z"}
    before = scrape(client)
    ingest([
        stock("w-1", "VLV-0001", "DC-EAST-1", 8),  # applied
        stock("w-2", "NO-SUCH-SKU", "NO-SUCH-DC", 8),  # parked: unknown references
        envelope("s-1", "shipment.confirmed", shipment, source="wms", occurred_at="2026-06-01T09:00:00Z"),  # failed: no line 9
    ])
    process_pending()
    ingest([stock("w-3", "VLV-0001", "DC-EAST-1", 7)])  # older than w-1: stale
    process_pending()
    after = scrape(client)

    def moved(status):
        name = "allot_events_processed_total"
        return value(after, name, source="wms", status=status) - value(before, name, source="wms", status=status)

    assert dict(Event.objects.values_list("event_id", "status")) == {"w-1": "applied", "w-2": "parked", "s-1": "failed", "w-3": "stale"}
    assert (moved("applied"), moved("parked"), moved("failed"), moved("stale")) == (1, 1, 1, 1)


# --- runs ------------------------------------------------------------------------------------


def test_a_run_observes_its_phases_under_its_trigger_and_scope(client, distributor):
    before = scrape(client)
    run = run_full(trigger=RunTrigger.MANUAL)
    after = scrape(client)

    assert run.status == RunStatus.SUCCEEDED
    for phase in ("load", "engine", "persist", "total"):
        name = "allot_run_duration_seconds_count"
        assert value(after, name, trigger="manual", scope="full", phase=phase) - value(
            before, name, trigger="manual", scope="full", phase=phase
        ) == 1
    total = "allot_run_duration_seconds_sum"
    assert value(after, total, trigger="manual", scope="full", phase="total") - value(
        before, total, trigger="manual", scope="full", phase="total"
    ) == pytest.approx(run.timings["total"])
    assert value(after, "allot_runs_total", trigger="manual", scope="full", status="succeeded") - value(
        before, "allot_runs_total", trigger="manual", scope="full", status="succeeded"
    ) == 1


def test_event_to_decision_latency_runs_from_the_oldest_applied_batch_to_the_deciding_commit(
    client, distributor, no_runs, clean_watermark, in_process_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    register_source(code="wms")
    with deferred_processing():
        ingest([snapshot("w-1", "VLV-0001", "90")])
        ingest([snapshot("w-2", "PMP-0001", "15")])
    old, new = EventBatch.objects.order_by("pk")
    EventBatch.objects.filter(pk=old.pk).update(received_at=timezone.now() - dt.timedelta(seconds=40))
    EventBatch.objects.filter(pk=new.pk).update(received_at=timezone.now() - dt.timedelta(seconds=10))
    with django_capture_on_commit_callbacks(execute=True):
        assert process_pending().applied == 2
    before = scrape(client)

    # A failed run decides nothing: the next deciding run measures the same events.
    from allocation import engine

    real = engine.allocate
    monkeypatch.setattr(engine, "allocate", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("engine down")))
    assert run_incremental(["VLV-0001"], trigger=RunTrigger.EVENT).status == RunStatus.FAILED
    monkeypatch.setattr(engine, "allocate", real)
    assert run_incremental(["VLV-0001", "PMP-0001"], trigger=RunTrigger.EVENT).status == RunStatus.SUCCEEDED
    after = scrape(client)
    # A later run has nothing undecided to measure.
    assert run_incremental(["VLV-0001"], trigger=RunTrigger.EVENT).status == RunStatus.SUCCEEDED
    last = scrape(client)

    name = "allot_event_decision_latency_seconds"
    assert value(after, name + "_count", trigger="event") - value(before, name + "_count", trigger="event") == 1
    measured = value(after, name + "_sum", trigger="event") - value(before, name + "_sum", trigger="event")
    assert 40 <= measured < 100
    assert value(last, name + "_count", trigger="event") == value(after, name + "_count", trigger="event")


@pytest.mark.django_db(transaction=True)
def test_event_to_decision_latency_through_ingestion_and_its_in_process_run(client, distributor, clean_watermark, in_process_tasks):
    """Committed for real: the run that ingestion asks for runs inside the commit callbacks."""
    register_source(code="wms")
    before = scrape(client)
    ingest([snapshot("w-1", "VLV-0001", "90")])  # applied and its incremental run executed on commit
    after = scrape(client)

    run = AllocationRun.objects.get(trigger=RunTrigger.EVENT)
    assert run.status == RunStatus.SUCCEEDED and "VLV-0001" in run.scope_items
    name = "allot_event_decision_latency_seconds_count"
    assert value(after, name, trigger="event") - value(before, name, trigger="event") == 1
    assert metrics._take_oldest() is None  # nothing left for a later run to claim


def test_the_watermark_keeps_the_oldest_receipt_in_redis_with_a_broker(monkeypatch, clean_watermark):
    server = fakeredis.FakeRedis()
    monkeypatch.setattr(metrics, "_broker_configured", lambda: True)
    monkeypatch.setattr("config.broker.redis_client", lambda: server)
    metrics._keep_oldest(200.0)
    metrics._keep_oldest(100.0)
    metrics._keep_oldest(300.0)

    assert metrics._take_oldest() == 100.0
    assert metrics._take_oldest() is None


def test_a_simulation_is_counted_but_decides_no_events(client, distributor, clean_watermark):
    from allocation.services import simulate
    from policies.models import PolicyVersion

    metrics._keep_oldest(timezone.now().timestamp() - 5)
    before = scrape(client)
    run = simulate(PolicyVersion.objects.order_by("pk").first())
    after = scrape(client)

    assert run.status == RunStatus.SUCCEEDED
    assert value(after, "allot_runs_total", trigger="simulation", scope="full", status="succeeded") - value(
        before, "allot_runs_total", trigger="simulation", scope="full", status="succeeded"
    ) == 1
    assert metrics._take_oldest() is not None  # still waiting for a deciding run


# --- scrape-time gauges ----------------------------------------------------------------------


def test_gauges_reflect_the_database(client):
    now = timezone.now()
    planning = Queue.objects.get(is_default=True)
    other = Queue.objects.exclude(pk=planning.pk).first()

    def exception(key, age, status="open", queue=planning):
        DecisionException.objects.create(
            type="priority_shortage", key=key, message=key, status=status, queue=queue,
            raised_at=now - age, updated_at=now,
        )

    exception("a", dt.timedelta(minutes=10))
    exception("b", dt.timedelta(minutes=50), status="claimed")
    exception("c", dt.timedelta(hours=2))
    exception("d", dt.timedelta(days=5), status="awaiting_approval")
    exception("e", dt.timedelta(days=5), status="resolved")  # not active
    exception("f", dt.timedelta(hours=30), queue=None)
    OutboxMessage.objects.create(message_id="m-1", type="promise.changed", payload={}, status="dead")
    OutboxMessage.objects.create(message_id="m-2", type="promise.changed", payload={}, status="pending",
                                 created_at=now - dt.timedelta(seconds=90))
    OutboxMessage.objects.create(message_id="m-3", type="promise.changed", payload={}, status="sent")
    erp = register_source(code="erp")
    register_source(code="silent")
    Source.objects.filter(pk=erp.pk).update(last_event_at=now - dt.timedelta(seconds=600))
    batch = EventBatch.objects.create(received_at=now, via="api", total=3)
    for index, status in enumerate(["pending", "pending", "parked"]):
        Event.objects.create(source=erp, event_id=f"g-{index}", type="location.upserted", occurred_at=now, data={},
                             body_hash="x", status=status, batch=batch, received_at=now - dt.timedelta(seconds=120 * index))
    AllocationRun.objects.create(trigger="manual", scope=RunScope.FULL, as_of=now.date(), status="queued")
    AllocationRun.objects.filter(status="queued").update(created_at=now - dt.timedelta(seconds=75))

    samples = scrape(client)

    open_ = "allot_open_exceptions"
    assert value(samples, open_, queue=planning.code, age="0-1h") == 2
    assert value(samples, open_, queue=planning.code, age="1h-4h") == 1
    assert value(samples, open_, queue=planning.code, age="3d+") == 1
    assert value(samples, open_, queue="unrouted", age="1d-3d") == 1
    assert (open_, (("age", "0-1h"), ("queue", other.code))) in samples  # every queue, zeros included
    assert value(samples, open_, queue=other.code, age="0-1h") == 0
    assert value(samples, "allot_outbox_messages", status="dead") == 1
    assert value(samples, "allot_outbox_messages", status="pending") == 1
    assert 90 <= value(samples, "allot_outbox_oldest_pending_age_seconds") < 150
    assert 600 <= value(samples, "allot_source_feed_age_seconds", source="erp") < 660
    assert value(samples, "allot_source_feed_age_seconds", source="silent") == float("inf")
    assert value(samples, "allot_events", source="erp", status="pending") == 2
    assert value(samples, "allot_events", source="erp", status="parked") == 1
    assert value(samples, "allot_events", source="silent", status="pending") == 0
    assert 120 <= value(samples, "allot_oldest_pending_event_age_seconds") < 180
    assert value(samples, "allot_runs", status="queued") == 1
    assert value(samples, "allot_runs", status="running") == 0
    assert 75 <= value(samples, "allot_oldest_queued_run_age_seconds") < 135
    assert value(samples, "allot_metrics_database_up") == 1


def test_the_gauges_query_a_fixed_number_of_times(client, django_assert_max_num_queries):
    register_source(code="erp")
    for index in range(30):
        register_source(code=f"src-{index}")
    with django_assert_max_num_queries(9):
        scrape(client)


# --- requests --------------------------------------------------------------------------------


def test_request_latency_is_labelled_by_route_never_by_path(client, planner, distributor):
    Order.objects.create(number="SO-2026/001", customer=Order.objects.get(number="SO-1").customer,
                         channel="b2b_contract", created_at=timezone.now(), requested_date=dt.date(2026, 6, 1))
    client.force_login(planner)
    path = "/orders/SO-2026~2F001/"
    before = scrape(client)
    assert client.get(path).status_code == 200
    assert client.get("/orders/NO~2FSUCH/").status_code == 404
    after = scrape(client)

    view = resolve(path).view_name
    assert view == "allocation:order_detail"
    name = "allot_http_request_duration_seconds_count"
    assert value(after, name, view=view, method="GET", status="2xx") - value(before, name, view=view, method="GET", status="2xx") == 1
    assert value(after, name, view=view, method="GET", status="4xx") - value(before, name, view=view, method="GET", status="4xx") == 1
    labels = {dict(key[1]).get("view") for key in after if key[0].startswith("allot_http_request_duration_seconds")}
    assert not any(label and ("SO-2026" in label or "NO" in label.split(":")[-1]) for label in labels)


def test_an_unmatched_path_has_one_label_whatever_the_path(client):
    before = scrape(client)
    client.get("/no/such/page/1")
    client.get("/no/such/page/2")
    after = scrape(client)
    name = "allot_http_request_duration_seconds_count"
    assert value(after, name, view="<unmatched>", method="GET", status="4xx") - value(
        before, name, view="<unmatched>", method="GET", status="4xx"
    ) == 2


# --- protection ------------------------------------------------------------------------------


def test_with_a_token_the_endpoint_wants_it(client, settings):
    settings.ALLOT_METRICS_TOKEN = "scrape-me-0123"
    missing = client.get("/metrics")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-it")
    other_scheme = client.get("/metrics", HTTP_AUTHORIZATION="Token scrape-me-0123")

    assert (missing.status_code, wrong.status_code, other_scheme.status_code) == (401, 401, 401)
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert b"allot_" not in missing.content
    assert scrape(client, HTTP_AUTHORIZATION="Bearer scrape-me-0123")


def test_in_production_without_a_token_or_network_it_is_not_there(client, settings):
    settings.PRODUCTION = True
    assert client.get("/metrics").status_code == 404
    settings.ALLOT_METRICS_TOKEN = "scrape-me-0123"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me-0123").status_code == 200


def test_an_allowed_network_needs_no_token(client, settings):
    settings.PRODUCTION = True
    settings.ALLOT_METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "127.0.0.1/32"]
    assert client.get("/metrics", REMOTE_ADDR="10.2.3.4").status_code == 200
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.9").status_code == 404
    settings.ALLOT_METRICS_TOKEN = "scrape-me-0123"
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.9").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.9", HTTP_AUTHORIZATION="Bearer scrape-me-0123").status_code == 200


def test_a_bad_network_setting_fails_at_start():
    env = {**os.environ, "ALLOT_METRICS_ALLOWED_NETWORKS": "10.0.0.0/8,not-a-network", "DATABASE_URL": "", "REDIS_URL": ""}
    done = subprocess.run(
        [sys.executable, "-c", "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; django.setup()"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0
    assert "ALLOT_METRICS_ALLOWED_NETWORKS: 'not-a-network' is not a network" in done.stderr


# --- several processes -----------------------------------------------------------------------


def test_with_a_multiprocess_directory_the_scrape_sums_every_process(client, tmp_path, monkeypatch):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings"}
    count = "from config import metrics; metrics.EVENTS_PROCESSED.labels('erp', 'applied').inc({})"
    for amount in (3, 4):
        subprocess.run([sys.executable, "-c", count.format(amount)], cwd=ROOT, env=env, check=True, timeout=60)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    samples = scrape(client)

    assert value(samples, "allot_events_processed_total", source="erp", status="applied") == 7
    host = socket.gethostname().replace("_", "-")
    files = sorted(path.name for path in tmp_path.glob("counter_*.db"))
    assert len(files) == 2 and all(name.startswith(f"counter_{host}-") for name in files)  # containers may share it
    assert value(samples, "allot_metrics_database_up") == 1  # the database gauges too
