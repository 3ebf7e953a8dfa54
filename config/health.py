"""Liveness and readiness: ``GET /healthz``, ``GET /readyz`` and ``manage.py readiness``.

``/healthz`` says the process is up and serving (it touches nothing). ``/readyz`` says whether
this instance can do its work and whether the pipeline behind it keeps up:

- ``database``: a ``SELECT 1`` on a fresh connection, given at most
  ``HEALTH_TIMEOUT_SECONDS`` (the probe runs in a thread, so a database that does not answer
  costs the caller one second, not a connect timeout);
- ``migrations``: no migration on disk is unapplied;
- ``broker``: a Redis ``PING`` with the broker timeouts of ``config.broker``;
- ``beat``: celery beat's last tick (it records one each time it publishes a scheduled task,
  :func:`record_tick`) is younger than ``ALLOT_READY_BEAT_SECONDS``;
- ``pending_events``: the oldest pending event is younger than ``ALLOT_READY_PENDING_EVENT_SECONDS``;
- ``queued_runs``: the oldest queued run is younger than ``ALLOT_READY_QUEUED_RUN_SECONDS``.

Without a broker (the embedded default: tasks run in-process, there is no beat) ``broker`` and
``beat`` are ``skipped``, which is not a failure. Each check reports its ``status`` (``ok``,
``fail``, ``skipped``) and a short detail made of ages in seconds, counts and error class
names: never a URL, host, user, password or version. The worker and beat answer the same
through ``manage.py readiness --role worker|beat`` (their compose health checks); the worker
role also asks this host's Celery worker for a ping.

Both endpoints are answered by :class:`HealthCheckMiddleware`, first in the middleware chain,
before host validation and the HTTPS redirect: an orchestrator probes the container over plain
HTTP on its own address, and the answer holds nothing that depends on the host.
"""
from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

OK, FAIL, SKIPPED = "ok", "fail", "skipped"
HEALTH_TIMEOUT_SECONDS = 1.0
BEAT_TICK = "beat"
HEALTH_PATHS = ("/healthz", "/readyz")

# What each role checks. The web role checks the whole pipeline; a worker or beat process checks
# what it needs itself (a backlog is not a reason to restart a worker).
ROLE_CHECKS: dict[str, tuple[str, ...]] = {
    "web": ("database", "migrations", "broker", "beat", "pending_events", "queued_runs"),
    "worker": ("database", "migrations", "broker", "worker"),
    "beat": ("database", "migrations", "broker", "beat"),
}


def _error(error: BaseException) -> str:
    """An error as its class name only: messages name hosts, ports and users."""
    return type(error).__name__


def _age(then: dt.datetime | None, now: dt.datetime) -> float | None:
    return None if then is None else round(max((now - then).total_seconds(), 0.0), 1)


# --- the database ------------------------------------------------------------------------------


def _probe_settings(settings_dict: dict[str, Any]) -> dict[str, Any]:
    """The connection settings of ``settings_dict`` with short timeouts, for a one-off probe."""
    probe = {**settings_dict, "CONN_MAX_AGE": 0, "CONN_HEALTH_CHECKS": False, "ATOMIC_REQUESTS": False}
    options = dict(settings_dict.get("OPTIONS") or {})
    if settings_dict["ENGINE"].startswith("django.db.backends.postgresql"):
        options["connect_timeout"] = 2  # libpq's minimum; the caller waits HEALTH_TIMEOUT_SECONDS at most
        options["options"] = (options.get("options", "") + " -c statement_timeout=1000").strip()
        options.pop("pool", None)
    elif settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        options["timeout"] = HEALTH_TIMEOUT_SECONDS
        options.pop("init_command", None)
    probe["OPTIONS"] = options
    return probe


def _select_one(settings_dict: dict[str, Any]) -> None:
    from django.db.utils import load_backend

    wrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(_probe_settings(settings_dict), alias="__health__")
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        wrapper.close()


def check_database(*, settings_dict: dict[str, Any] | None = None, timeout: float = HEALTH_TIMEOUT_SECONDS) -> dict[str, Any]:
    """``SELECT 1`` on a fresh connection (default: the default database's settings), ``timeout`` at most."""
    settings_dict = settings_dict or connections[DEFAULT_DB_ALIAS].settings_dict
    outcome: dict[str, Any] = {}

    def probe() -> None:
        try:
            _select_one(settings_dict)
            outcome["ok"] = True
        except Exception as error:  # any failure to answer is "unreachable"
            outcome["error"] = error

    started = time.monotonic()
    thread = threading.Thread(target=probe, name="readiness-database", daemon=True)
    thread.start()
    thread.join(timeout)
    elapsed_ms = round((time.monotonic() - started) * 1000, 1)
    if thread.is_alive():
        return {"status": FAIL, "error": "timeout", "timeout_seconds": timeout}
    if "error" in outcome:
        return {"status": FAIL, "error": _error(outcome["error"])}
    return {"status": OK, "latency_ms": elapsed_ms}


@contextmanager
def _bounded(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """On PostgreSQL, a read-only transaction whose statements give up after a second. (On
    SQLite none: its transactions begin IMMEDIATE, taking the write lock, for nothing.)"""
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {int(HEALTH_TIMEOUT_SECONDS * 1000)}")
        yield


def check_migrations(using: str = DEFAULT_DB_ALIAS) -> dict[str, Any]:
    """Every migration on disk is applied (the count of unapplied ones otherwise)."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connections[using])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        return {"status": FAIL, "unapplied": len(plan)}
    return {"status": OK, "unapplied": 0}


def check_pending_events(now: dt.datetime) -> dict[str, Any]:
    from integrations.choices import EventStatus
    from integrations.models import Event

    found = Event.objects.filter(status=EventStatus.PENDING).aggregate(count=Count("id"), oldest=Min("received_at"))
    age = _age(found["oldest"], now)
    limit = settings.ALLOT_READY_PENDING_EVENT_SECONDS
    status = FAIL if age is not None and age > limit else OK
    return {"status": status, "count": found["count"], "oldest_age_seconds": age, "threshold_seconds": limit}


def check_queued_runs(now: dt.datetime) -> dict[str, Any]:
    from allocation.models import AllocationRun, RunStatus

    found = AllocationRun.objects.filter(status=RunStatus.QUEUED).aggregate(count=Count("id"), oldest=Min("created_at"))
    age = _age(found["oldest"], now)
    limit = settings.ALLOT_READY_QUEUED_RUN_SECONDS
    status = FAIL if age is not None and age > limit else OK
    return {"status": status, "count": found["count"], "oldest_age_seconds": age, "threshold_seconds": limit}


# --- the broker, beat and the worker -----------------------------------------------------------


def check_broker() -> dict[str, Any]:
    """A Redis ``PING`` with the broker's short timeouts; ``skipped`` without a broker."""
    from config import broker

    if not broker.broker_configured():
        return {"status": SKIPPED, "reason": "no broker: tasks run in-process"}
    started = time.monotonic()
    try:
        broker.redis_client().ping()
    except broker.PUBLISH_ERRORS as error:
        return {"status": FAIL, "error": _error(error)}
    return {"status": OK, "latency_ms": round((time.monotonic() - started) * 1000, 1)}


def check_beat(now: dt.datetime) -> dict[str, Any]:
    """Beat's last tick is recent; ``skipped`` without a broker (no beat runs then)."""
    from allocation.models import ProcessTick
    from config import broker

    if not broker.broker_configured():
        return {"status": SKIPPED, "reason": "no broker: no beat"}
    limit = settings.ALLOT_READY_BEAT_SECONDS
    tick = ProcessTick.objects.filter(name=BEAT_TICK).values_list("at", flat=True).first()
    if tick is None:
        return {"status": FAIL, "error": "no tick recorded", "threshold_seconds": limit}
    age = _age(tick, now)
    return {"status": FAIL if age > limit else OK, "age_seconds": age, "threshold_seconds": limit}


def check_worker(node: str | None = None) -> dict[str, Any]:
    """This host's Celery worker answers a remote-control ping within a second."""
    from config import broker
    from config.celery import app

    if not broker.broker_configured():
        return {"status": SKIPPED, "reason": "no broker: tasks run in-process"}
    node = node or f"celery@{socket.gethostname()}"
    try:
        replies = app.control.ping(destination=[node], timeout=HEALTH_TIMEOUT_SECONDS)
    except broker.PUBLISH_ERRORS as error:
        return {"status": FAIL, "error": _error(error)}
    if not any(node in reply for reply in replies or []):
        return {"status": FAIL, "error": "no reply"}
    return {"status": OK}


# --- putting it together -----------------------------------------------------------------------


def readiness(role: str = "web", *, now: dt.datetime | None = None, worker_node: str | None = None) -> dict[str, Any]:
    """``{"status": "ok"|"fail", "checks": {name: {"status": ..., ...}}}`` for ``role``."""
    if role not in ROLE_CHECKS:
        raise ValueError(f"role must be one of {', '.join(ROLE_CHECKS)}")
    names = ROLE_CHECKS[role]
    now = now or timezone.now()
    checks: dict[str, dict[str, Any]] = {"database": check_database()}
    database_up = checks["database"]["status"] == OK
    needs_database: dict[str, Callable[[], dict[str, Any]]] = {
        "migrations": check_migrations,
        "beat": lambda: check_beat(now),
        "pending_events": lambda: check_pending_events(now),
        "queued_runs": lambda: check_queued_runs(now),
    }
    for name in names:
        if name == "database":
            continue
        if name == "broker":
            checks[name] = check_broker()
        elif name == "worker":
            checks[name] = (
                check_worker(worker_node) if checks.get("broker", {}).get("status") != FAIL
                else {"status": FAIL, "error": "broker unreachable"}
            )
        elif not database_up:
            checks[name] = {"status": FAIL, "error": "database unreachable"}
        else:
            try:
                with _bounded():
                    checks[name] = needs_database[name]()
            except DatabaseError as error:
                checks[name] = {"status": FAIL, "error": _error(error)}
    status = OK if all(check["status"] in (OK, SKIPPED) for check in checks.values()) else FAIL
    return {"status": status, "role": role, "checks": {name: checks[name] for name in names}}


# --- beat's tick -------------------------------------------------------------------------------


def record_tick(name: str, at: dt.datetime | None = None) -> bool:
    """Overwrite ``name``'s tick with ``at`` (now); False (logged) when the database refuses."""
    from allocation.models import ProcessTick

    try:
        ProcessTick.objects.bulk_create(
            [ProcessTick(name=name, at=at or timezone.now())],
            update_conflicts=True, unique_fields=["name"], update_fields=["at"],
        )
    except DatabaseError as error:
        logger.warning("tick %s not recorded: %s", name, _error(error))
        connections.close_all()
        return False
    return True


class _BeatTicks:
    """Records beat's tick after each publish of a scheduled task, at most every few seconds."""

    min_interval = 5.0

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, sender: object = None, **kwargs: object) -> None:
        if time.monotonic() - self.last < self.min_interval:
            return
        if record_tick(BEAT_TICK):
            self.last = time.monotonic()


_beat_ticks: _BeatTicks | None = None


def start_beat_ticks(sender: object = None, **kwargs: object) -> None:
    """Called in the beat process when it starts (``config.celery``): tick now and after each publish."""
    global _beat_ticks
    from celery.signals import after_task_publish

    if _beat_ticks is None:
        _beat_ticks = _BeatTicks()
        after_task_publish.connect(_beat_ticks, weak=False)
    record_tick(BEAT_TICK)


# --- the endpoints -----------------------------------------------------------------------------


_last_ready: list[str] = []


@never_cache
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is up (nothing else is touched)."""
    return JsonResponse({"status": OK})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    """Every readiness check of the web role: 200 when all pass (or are skipped), else 503."""
    global _last_ready
    report = readiness("web")
    report.pop("role")
    failed = sorted(name for name, check in report["checks"].items() if check["status"] == FAIL)
    if failed != _last_ready:  # a change of state is news; each probe of the same state is not
        if failed:
            logger.warning("readiness: fail (%s)", ", ".join(failed))
        elif _last_ready:
            logger.warning("readiness: ok again")
        _last_ready = failed
    response = JsonResponse(report, status=200 if report["status"] == OK else 503)
    response._has_been_logged = True  # not Django's "Service Unavailable" error line per probe
    return response


class HealthCheckMiddleware:
    """Answers ``/healthz`` and ``/readyz`` before anything else: no host check, no HTTPS
    redirect, no session, no authentication (the probes come from inside the deployment)."""

    views = {"/healthz": healthz, "/readyz": readyz}

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = self.views.get(request.path_info.rstrip("/"))
        if view is not None:
            return view(request)
        return self.get_response(request)
