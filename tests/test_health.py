"""GET /healthz, GET /readyz and ``manage.py readiness`` (config/health.py).

Each readiness check is taken down in turn — the database (a cursor that raises, and a real
unreachable database), migrations, the broker (a private redis-server killed mid-test, and a
port nobody listens on), beat (an old tick), an old pending event, an old queued run — and
readiness answers 503 naming it, while /healthz stays 200 and nothing in any answer names a
URL, host, user or secret.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import time

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection, connections
from django.utils import timezone

from allocation.models import AllocationRun, ProcessTick, RunStatus
from config import health
from tests.fixtures.faults import _free_port, wait_until

pytestmark = pytest.mark.django_db

SECRET_ERROR = 'connection to server at "db.internal.example" (10.9.8.7), port 5432 failed: password authentication failed for user "allot"'


def _ready(client) -> tuple[int, dict]:
    response = client.get("/readyz")
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    return response.status_code, response.json()


def _failed(body: dict) -> set[str]:
    return {name for name, check in body["checks"].items() if check["status"] == "fail"}


def _assert_no_leak(text: str, settings) -> None:
    lowered = text.lower()
    for needle in ("redis://", "postgres", "password", "127.0.0.1", "db.internal", "10.9.8.7", "sqlite", "secret"):
        assert needle not in lowered, needle
    assert settings.SECRET_KEY not in text
    assert str(connection.settings_dict.get("NAME")) not in text


def _assert_healthz(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.fixture(autouse=True)
def _embedded_default(settings):
    """Every test starts from the embedded default (no broker: broker and beat skipped), also in the
    PostgreSQL + Redis pass; the broker fixtures below configure one."""
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def broker_down(settings):
    """A broker configured at a port nobody listens on (tasks no longer in-process)."""
    url = f"redis://127.0.0.1:{_free_port()}/7"
    settings.REDIS_URL = settings.CELERY_BROKER_URL = url
    settings.CELERY_TASK_ALWAYS_EAGER = False
    yield url
    from config import broker

    broker._clients.pop(url, None)


@pytest.fixture
def beat_ticks():
    """Beat's tick recorder connected as in the beat process; disconnected afterwards."""
    from celery.signals import after_task_publish

    yield health
    if health._beat_ticks is not None:
        after_task_publish.disconnect(health._beat_ticks)
        health._beat_ticks = None


# --- healthz and the embedded default -------------------------------------------------------------


def test_healthz_touches_nothing(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        _assert_healthz(client)


def test_readyz_embedded_default_ok_with_broker_and_beat_skipped(client, settings):
    status, body = _ready(client)
    assert status == 200, body
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "migrations", "broker", "beat", "pending_events", "queued_runs"}
    assert body["checks"]["broker"]["status"] == "skipped"
    assert body["checks"]["beat"]["status"] == "skipped"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["migrations"] == {"status": "ok", "unapplied": 0}
    _assert_no_leak(json.dumps(body), settings)


def test_probes_are_unauthenticated_and_read_only(client):
    assert client.get("/readyz").status_code == 200  # no login
    assert client.post("/readyz").status_code == 405
    assert client.post("/healthz").status_code == 405
    assert client.head("/healthz").status_code == 200


def test_probes_answer_before_host_check_and_https_redirect(client, settings):
    """The orchestrator probes http://<container address>:8000: no DisallowedHost, no redirect."""
    settings.ALLOWED_HOSTS = ["allot.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/login/", HTTP_HOST="10.1.2.3:8000").status_code == 400  # the rules do apply
    assert client.get("/readyz", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/healthz", HTTP_HOST="10.1.2.3:8000").status_code == 200


# --- the database -------------------------------------------------------------------------------


def test_database_down_cursor_raises(client, settings, monkeypatch):
    def broken_cursor(self, *args, **kwargs):
        raise OperationalError(SECRET_ERROR)

    monkeypatch.setattr(type(connections["default"]), "cursor", broken_cursor)
    status, body = _ready(client)
    _assert_healthz(client)
    monkeypatch.undo()
    assert status == 503
    assert body["status"] == "fail"
    assert body["checks"]["database"] == {"status": "fail", "error": "OperationalError"}
    # What needs the database is not tried and says why.
    for name in ("migrations", "pending_events", "queued_runs"):
        assert body["checks"][name] == {"status": "fail", "error": "database unreachable"}
    _assert_no_leak(json.dumps(body), settings)


def _unreachable_database() -> dict:
    db = dict(connection.settings_dict)
    if connection.vendor == "postgresql":
        db.update(HOST="127.0.0.1", PORT=str(_free_port()))
    else:
        db.update(NAME="/nonexistent-directory/allot/db.sqlite3")
    return db


def test_database_really_unreachable(client, settings, monkeypatch):
    """A database nobody answers for (PostgreSQL: a free port; SQLite: a path that cannot exist)."""
    started = time.monotonic()
    result = health.check_database(settings_dict=_unreachable_database())
    assert time.monotonic() - started < 1.5
    assert result["status"] == "fail"

    monkeypatch.setattr(health, "check_database", functools.partial(health.check_database, settings_dict=_unreachable_database()))
    status, body = _ready(client)
    assert status == 503
    assert "database" in _failed(body)
    assert body["checks"]["database"]["error"] == "OperationalError"
    _assert_no_leak(json.dumps(body), settings)
    _assert_healthz(client)


def test_database_that_hangs_costs_one_second(monkeypatch):
    monkeypatch.setattr(health, "_select_one", lambda settings_dict: time.sleep(3))
    started = time.monotonic()
    result = health.check_database()
    assert time.monotonic() - started < 1.5
    assert result == {"status": "fail", "error": "timeout", "timeout_seconds": 1.0}


def test_unapplied_migrations(client, monkeypatch):
    from django.db.migrations.executor import MigrationExecutor

    real_plan = MigrationExecutor.migration_plan
    assert real_plan(MigrationExecutor(connection), MigrationExecutor(connection).loader.graph.leaf_nodes()) == []
    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets, clean_start=False: [("m1", False), ("m2", False)])
    status, body = _ready(client)
    assert status == 503
    assert _failed(body) == {"migrations"}
    assert body["checks"]["migrations"] == {"status": "fail", "unapplied": 2}
    _assert_healthz(client)


# --- the broker and beat --------------------------------------------------------------------------


def test_broker_at_a_dead_port(client, settings, broker_down):
    ProcessTick.objects.create(name="beat", at=timezone.now())
    started = time.monotonic()
    status, body = _ready(client)
    assert time.monotonic() - started < 3
    assert status == 503
    assert _failed(body) == {"broker"}
    assert body["checks"]["broker"]["status"] == "fail"
    assert body["checks"]["beat"]["status"] == "ok"
    _assert_no_leak(json.dumps(body), settings)
    _assert_healthz(client)


def test_broker_killed_then_back(client, settings, app_on_private_broker):
    ProcessTick.objects.create(name="beat", at=timezone.now())
    status, body = _ready(client)
    assert status == 200, body
    assert body["checks"]["broker"]["status"] == "ok"

    app_on_private_broker.kill()
    status, body = _ready(client)
    assert status == 503
    assert _failed(body) == {"broker"}
    _assert_no_leak(json.dumps(body), settings)
    _assert_healthz(client)

    app_on_private_broker.start()
    wait_until(lambda: _ready(client)[0] == 200, timeout=10, what="readiness after the broker returned")


def test_beat_without_tick_and_with_stale_tick(client, settings, app_on_private_broker):
    status, body = _ready(client)
    assert status == 503
    assert _failed(body) == {"beat"}
    assert body["checks"]["beat"]["error"] == "no tick recorded"

    settings.ALLOT_READY_BEAT_SECONDS = 120
    ProcessTick.objects.create(name="beat", at=timezone.now() - dt.timedelta(seconds=600))
    status, body = _ready(client)
    assert status == 503
    assert _failed(body) == {"beat"}
    assert body["checks"]["beat"]["age_seconds"] >= 600
    assert body["checks"]["beat"]["threshold_seconds"] == 120

    ProcessTick.objects.filter(name="beat").update(at=timezone.now() - dt.timedelta(seconds=30))
    status, body = _ready(client)
    assert status == 200, body
    _assert_healthz(client)


def test_beat_process_records_its_tick(beat_ticks):
    """The beat_init receiver (config.celery) ticks at start and after each scheduled publish."""
    from celery.signals import after_task_publish, beat_init

    assert not ProcessTick.objects.exists()
    beat_init.send(sender=None)
    first = ProcessTick.objects.get(name="beat").at
    ProcessTick.objects.filter(name="beat").update(at=first - dt.timedelta(hours=1))
    health._beat_ticks.last = 0.0
    after_task_publish.send(sender="integrations.tasks.relay_outbox_task", body=None, exchange="", routing_key="celery")
    assert ProcessTick.objects.get(name="beat").at >= first
    # At most one write every few seconds, however often beat publishes.
    ProcessTick.objects.filter(name="beat").update(at=first - dt.timedelta(hours=1))
    after_task_publish.send(sender="integrations.tasks.relay_outbox_task", body=None, exchange="", routing_key="celery")
    assert ProcessTick.objects.get(name="beat").at < first


# --- the backlog ----------------------------------------------------------------------------------


def _event(received_at: dt.datetime, event_id: str = "e-1"):
    from integrations.models import Event, Source

    source, _ = Source.objects.get_or_create(code="erp-health", defaults={"name": "ERP", "secret": "s" * 32})
    return Event.objects.create(
        source=source, event_id=event_id, type="item.upserted", occurred_at=received_at, data={},
        body_hash="0" * 64, entity_key="item:X", received_at=received_at,
    )


def test_old_pending_event(client, settings):
    settings.ALLOT_READY_PENDING_EVENT_SECONDS = 300
    _event(timezone.now() - dt.timedelta(seconds=10), "fresh")
    status, body = _ready(client)
    assert status == 200, body
    assert body["checks"]["pending_events"]["count"] == 1

    _event(timezone.now() - dt.timedelta(seconds=900), "old")
    status, body = _ready(client)
    assert status == 503
    assert _failed(body) == {"pending_events"}
    check = body["checks"]["pending_events"]
    assert check["count"] == 2 and check["oldest_age_seconds"] >= 900 and check["threshold_seconds"] == 300
    _assert_healthz(client)


def test_old_queued_run(client, settings):
    settings.ALLOT_READY_QUEUED_RUN_SECONDS = 300
    run = AllocationRun.objects.create(as_of=dt.date(2026, 6, 1), status=RunStatus.QUEUED)
    status, body = _ready(client)
    assert status == 200, body
    AllocationRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - dt.timedelta(seconds=1200))
    status, body = _ready(client)
    assert status == 503
    assert _failed(body) == {"queued_runs"}
    assert body["checks"]["queued_runs"]["oldest_age_seconds"] >= 1200
    # A finished run is no backlog.
    AllocationRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    assert _ready(client)[0] == 200
    _assert_healthz(client)


# --- the command (worker and beat health checks) ------------------------------------------------


def test_command_prints_the_report_and_exits_by_status(capsys, settings):
    call_command("readiness", "--role", "beat")
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "ok" and report["role"] == "beat"
    assert set(report["checks"]) == {"database", "migrations", "broker", "beat"}

    settings.ALLOT_READY_QUEUED_RUN_SECONDS = 1
    run = AllocationRun.objects.create(as_of=dt.date(2026, 6, 1), status=RunStatus.QUEUED)
    AllocationRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - dt.timedelta(seconds=60))
    with pytest.raises(CommandError) as raised:
        call_command("readiness")
    assert raised.value.returncode == 1
    assert "queued_runs" in str(raised.value)
    call_command("readiness", "--role", "worker")  # a backlog does not make a worker unhealthy


def test_command_beat_role_fails_on_stale_tick(capsys, app_on_private_broker):
    ProcessTick.objects.create(name="beat", at=timezone.now() - dt.timedelta(hours=1))
    with pytest.raises(CommandError) as raised:
        call_command("readiness", "--role", "beat")
    assert raised.value.returncode == 1
    report = json.loads(capsys.readouterr().out)
    assert _failed(report) == {"beat"}


def test_worker_role_pings_this_hosts_worker(monkeypatch, app_on_private_broker):
    from config.celery import app

    asked = []

    def ping(destination, timeout):
        asked.append((destination, timeout))
        return [{destination[0]: {"ok": "pong"}}] if destination == ["celery@node-a"] else []

    monkeypatch.setattr(app.control, "ping", ping)
    assert health.readiness("worker", worker_node="celery@node-a")["checks"]["worker"] == {"status": "ok"}
    report = health.readiness("worker", worker_node="celery@node-b")
    assert report["status"] == "fail" and report["checks"]["worker"] == {"status": "fail", "error": "no reply"}
    assert all(timeout <= 1.0 for _, timeout in asked)


def test_worker_role_with_broker_down(broker_down):
    report = health.readiness("worker")
    assert report["checks"]["broker"]["status"] == "fail"
    assert report["checks"]["worker"] == {"status": "fail", "error": "broker unreachable"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_real_worker_with_embedded_beat_is_ready(worker_processes, capsys):
    """A real ``celery worker --beat``: beat records its tick, the worker answers the ping."""
    worker = worker_processes(beat=True)
    wait_until(lambda: ProcessTick.objects.filter(name="beat").exists(), timeout=60, what="beat's first tick")
    from config.celery import app

    nodes: list[str] = []

    def find_node() -> bool:
        replies = app.control.ping(timeout=1.0) or []
        nodes.extend(name for reply in replies for name in reply if name.startswith("fault-"))
        return bool(nodes)

    wait_until(find_node, timeout=60, what="the worker's ping reply")
    assert health.readiness("beat")["status"] == "ok"
    assert health.readiness("worker", worker_node=nodes[0])["status"] == "ok", worker.output()


def test_a_failing_probe_logs_the_change_once(client, caplog, broker_down):
    ProcessTick.objects.create(name="beat", at=timezone.now())
    health._last_ready = []
    with caplog.at_level("INFO"):
        for _ in range(3):
            assert client.get("/readyz").status_code == 503
    lines = [record for record in caplog.records if record.name in {"config.health", "django.request"}]
    assert [(record.name, record.getMessage()) for record in lines] == [("config.health", "readiness: fail (broker)")]
    health._last_ready = []
