"""Prometheus metrics: ``GET /metrics`` (prometheus-client), counters at the points where work
happens, and gauges computed from the database at scrape time.

Counters and histograms (``allot_*``, created here, moved by one-line calls in ingestion, event
processing, run execution and the request middleware) live in the process that moves them.
With several processes (gunicorn workers, Celery workers) set ``PROMETHEUS_MULTIPROC_DIR`` to
an empty directory shared by all of them (wiped before they start): prometheus-client then
keeps the values in files there (one per host and process id, so containers on one host can
share a volume) and the endpoint sums them over every process. Without it the
endpoint reports its own process (the embedded default: one process does everything).

Gauges (open exceptions, outbox, feed freshness, pending events, queued and running runs) are
not kept in any process: :class:`DatabaseCollector` computes them with a few grouped queries
on each scrape, so every process answers the same.

django-prometheus was considered: it brings a middleware with view-name labels, but also
database and model instrumentation that replaces the ``DATABASES`` engine with its wrappers
(the run persistence and ingestion use psycopg's COPY directly) and an unprotected endpoint;
what this module needs from it is one histogram, so prometheus-client alone it is.

The endpoint is protected by ``ALLOT_METRICS_TOKEN`` (``Authorization: Bearer <token>``) and/or
``ALLOT_METRICS_ALLOWED_NETWORKS`` (client address, CIDR list). With neither set it is open
outside production (the embedded default) and answers 404 in production.
"""
from __future__ import annotations

import datetime as dt
import functools
import hmac
import ipaddress
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from config.logs import view_name

logger = logging.getLogger(__name__)

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Files named by host and process id, not the process id alone: the web and worker
    # containers may share one directory, and process ids repeat across containers.
    _HOST = socket.gethostname().replace("_", "-")
    values.ValueClass = values.MultiProcessValue(lambda: f"{_HOST}-{os.getpid()}")

REQUEST_DURATION = Histogram(
    "allot_http_request_duration_seconds",
    "Time to answer a request, by resolved view (URL name or route, never the raw path), method and status class.",
    ["view", "method", "status"],
)
EVENTS_RECEIVED = Counter(
    "allot_events_received_total",
    "Events delivered (API, webhook, ingest command), by source and result: accepted, duplicate, rejected. "
    "Rejected events whose source is not registered count under source=\"unregistered\".",
    ["source", "result"],
)
EVENTS_PROCESSED = Counter(
    "allot_events_processed_total",
    "Event processing outcomes by source: applied, stale, parked, failed (a parked event counts again each time it is retried).",
    ["source", "status"],
)
RUNS = Counter("allot_runs_total", "Allocation runs executed, by trigger, scope and final status.", ["trigger", "scope", "status"])
RUN_DURATION = Histogram(
    "allot_run_duration_seconds",
    "Allocation run phase durations (load, engine, persist, total) by trigger and scope, from the run's timings.",
    ["trigger", "scope", "phase"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, float("inf")),
)
EVENT_DECISION_LATENCY = Histogram(
    "allot_event_decision_latency_seconds",
    "Per deciding run: from the receipt of the oldest event applied since the previous deciding run to this run's commit.",
    ["trigger"],
    buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600, float("inf")),
)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNREGISTERED = "unregistered"
# Open exceptions by age since raised: (label, upper bound in seconds).
AGE_BANDS: tuple[tuple[str, float], ...] = (
    ("0-1h", 3600), ("1h-4h", 4 * 3600), ("4h-24h", 24 * 3600), ("1d-3d", 72 * 3600), ("3d+", float("inf")),
)
UNROUTED = "unrouted"


def _quietly(function: Callable) -> Callable:
    """Metrics never break the work they count: a database error while labelling is logged."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except DatabaseError as error:
            logger.warning("metrics: %s skipped: %s", function.__name__, error)
            return None

    return wrapper


# --- requests --------------------------------------------------------------------------------


class RequestMetricsMiddleware:
    """Observes every request's duration under its view name (see ``config.logs.view_name``)."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in METHODS else "other"
        REQUEST_DURATION.labels(view_name(request), method, f"{response.status_code // 100}xx").observe(
            time.perf_counter() - started
        )
        return response


# --- events ----------------------------------------------------------------------------------


@_quietly
def record_ingest(sources: list[str | None], results: list[dict[str, Any]]) -> None:
    """Count one ingested batch: ``sources[i]`` is the source named by event ``i`` (None when
    missing), ``results[i]["status"]`` its result. Only registered sources become labels."""
    from integrations.models import Source

    named = {source for source, result in zip(sources, results, strict=True) if source}
    registered = set(Source.objects.filter(code__in=named).values_list("code", flat=True)) if named else set()
    counts: dict[tuple[str, str], int] = {}
    for source, result in zip(sources, results, strict=True):
        key = (source if source in registered else UNREGISTERED, str(result["status"]))
        counts[key] = counts.get(key, 0) + 1
    for (source, status), count in counts.items():
        EVENTS_RECEIVED.labels(source, status).inc(count)


@_quietly
def record_processed(outcomes: Iterable[tuple[int, str]]) -> None:
    """Count processing outcomes given as (source pk, final status) pairs."""
    from integrations.models import Source

    pairs = [(source_id, str(status)) for source_id, status in outcomes]
    if not pairs:
        return
    codes = dict(Source.objects.filter(pk__in={s for s, _ in pairs}).values_list("pk", "code"))
    counts: dict[tuple[str, str], int] = {}
    for source_id, status in pairs:
        key = (codes.get(source_id, UNREGISTERED), status)
        counts[key] = counts.get(key, 0) + 1
    for (source, status), count in counts.items():
        EVENTS_PROCESSED.labels(source, status).inc(count)


# --- event -> decision -----------------------------------------------------------------------
#
# Runs do not record which events caused them, so the latency is measured per deciding run: each
# processed chunk that changed items (and so asks for runs) records, after it commits, the receipt
# time of its oldest event's batch as the "undecided since" watermark (kept as a minimum); the
# next deciding run (event-triggered, or full: both decide every changed item) takes the
# watermark when it starts and, once it has committed, observes commit time minus the watermark.
# A failed run puts the watermark back for the next one. With a broker the watermark lives in
# Redis (processing and runs happen in different workers), else in this process.

WATERMARK_KEY = "allot:metrics:undecided-since"
_WATERMARK_MEMBER = "oldest"
_local_watermark: list[float] = []
_local_lock = threading.Lock()


def _broker_configured() -> bool:
    from config.broker import broker_configured

    return broker_configured()


def _keep_oldest(received_at: float) -> None:
    from config import broker

    if _broker_configured():
        try:
            # LT: keep the smaller score (the oldest receipt); adds the member when absent.
            broker.redis_client().zadd(WATERMARK_KEY, {_WATERMARK_MEMBER: received_at}, lt=True)
        except broker.PUBLISH_ERRORS as error:
            logger.warning("metrics: could not record the undecided-events watermark: %s", error)
        return
    with _local_lock:
        if not _local_watermark or received_at < _local_watermark[0]:
            _local_watermark[:] = [received_at]


def _take_oldest() -> float | None:
    from config import broker

    if _broker_configured():
        try:
            popped = broker.redis_client().zpopmin(WATERMARK_KEY)
        except broker.PUBLISH_ERRORS as error:
            logger.warning("metrics: could not read the undecided-events watermark: %s", error)
            return None
        return float(popped[0][1]) if popped else None
    with _local_lock:
        return _local_watermark.pop() if _local_watermark else None


@_quietly
def note_awaiting_decision(batch_ids: set[int]) -> None:
    """Called in the transaction that applied events from ``batch_ids`` and asked for runs:
    after it commits, the oldest of those batches' receipt times joins the watermark."""
    from django.db.models import Min

    from integrations.models import EventBatch

    if not batch_ids:
        return
    oldest = EventBatch.objects.filter(pk__in=batch_ids).aggregate(oldest=Min("received_at"))["oldest"]
    if oldest is not None:
        received_at = oldest.timestamp()
        transaction.on_commit(lambda: _keep_oldest(received_at))


def _decides_events(run: Any) -> bool:
    return not run.is_simulation and (run.trigger == "event" or run.scope == "full")


def observe_runs(function: Callable) -> Callable:
    """Decorate ``execute_run``/``execute_simulation``: count the run, observe its phase timings
    and, for a deciding run that committed, the event → decision latency."""

    @functools.wraps(function)
    def wrapper(run: Any, *args: Any, **kwargs: Any) -> Any:
        was_queued = run.status == "queued"
        since = _take_oldest() if was_queued and _decides_events(run) else None
        result = function(run, *args, **kwargs)
        executed = was_queued and result.status in ("succeeded", "failed")
        if executed:
            record_run(result, undecided_since=since)
        if since is not None and not (executed and result.status == "succeeded"):
            _keep_oldest(since)  # not decided by this run: the next one measures it
        return result

    return wrapper


def record_run(run: Any, *, undecided_since: float | None = None) -> None:
    """Count a finished run and observe its timings (seconds per phase, as the run recorded them)."""
    trigger, scope = str(run.trigger), str(run.scope)
    RUNS.labels(trigger, scope, str(run.status)).inc()
    for phase, seconds in (run.timings or {}).items():
        if isinstance(seconds, (int, float)):
            RUN_DURATION.labels(trigger, scope, str(phase)).observe(seconds)
    if undecided_since is not None and run.status == "succeeded":
        EVENT_DECISION_LATENCY.labels(trigger).observe(max(0.0, time.time() - undecided_since))


# --- scrape-time gauges ----------------------------------------------------------------------


def _age(now: Any, moment: Any) -> float:
    return max(0.0, (now - moment).total_seconds()) if moment is not None else 0.0


class DatabaseCollector:
    """Gauges read from the database on each scrape: seven grouped queries, none per row."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("allot_metrics_database_up", "1 when the scrape-time database gauges could be read.")
        try:
            families = list(self._families())
        except DatabaseError as error:
            logger.warning("metrics: database gauges unavailable: %s", error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Metric]:
        now = timezone.now()
        yield self._open_exceptions(now)
        yield from self._outbox(now)
        yield self._feeds(now)
        yield from self._events(now)
        yield from self._runs(now)

    def _open_exceptions(self, now: Any) -> Metric:
        from django.db.models import Case, CharField, Count, Value, When

        from exceptions.choices import ACTIVE_STATUSES
        from exceptions.models import DecisionException, Queue

        bands = Case(
            *[
                When(raised_at__gt=now - dt.timedelta(seconds=bound), then=Value(label))
                for label, bound in AGE_BANDS
                if bound != float("inf")
            ],
            default=Value(AGE_BANDS[-1][0]),
            output_field=CharField(),
        )
        rows = (
            DecisionException.objects.filter(status__in=[str(s) for s in ACTIVE_STATUSES])
            .annotate(band=bands)
            .values("queue_id", "band")
            .annotate(count=Count("id"))
            .order_by()
        )
        codes = dict(Queue.objects.values_list("pk", "code"))
        counts = {(code, label): 0 for code in codes.values() for label, _ in AGE_BANDS}
        for row in rows:
            key = (codes.get(row["queue_id"], UNROUTED), row["band"])
            counts[key] = counts.get(key, 0) + row["count"]
        family = GaugeMetricFamily(
            "allot_open_exceptions",
            "Active exceptions (open, claimed, awaiting approval) by queue code and age since raised.",
            labels=["queue", "age"],
        )
        for (queue, band), count in sorted(counts.items()):
            family.add_metric([queue, band], count)
        return family

    def _outbox(self, now: Any) -> Iterator[Metric]:
        from django.db.models import Count, Min

        from integrations.choices import OutboxStatus
        from integrations.models import OutboxMessage

        rows = {
            row["status"]: row
            for row in OutboxMessage.objects.filter(status__in=[OutboxStatus.PENDING, OutboxStatus.DEAD])
            .values("status")
            .annotate(count=Count("id"), oldest=Min("created_at"))
            .order_by()
        }
        messages = GaugeMetricFamily("allot_outbox_messages", "Outbox messages waiting (pending) and dead letters (dead).", labels=["status"])
        for status in (OutboxStatus.PENDING, OutboxStatus.DEAD):
            messages.add_metric([str(status)], rows.get(status, {}).get("count", 0))
        yield messages
        oldest = GaugeMetricFamily("allot_outbox_oldest_pending_age_seconds", "Age of the oldest pending outbox message (0: none).")
        oldest.add_metric([], _age(now, rows.get(OutboxStatus.PENDING, {}).get("oldest")))
        yield oldest

    def _feeds(self, now: Any) -> Metric:
        from integrations.models import Source

        family = GaugeMetricFamily(
            "allot_source_feed_age_seconds",
            "Seconds since an event from the source was last accepted (+Inf: never).",
            labels=["source"],
        )
        for code, last in Source.objects.order_by("code").values_list("code", "last_event_at"):
            family.add_metric([code], _age(now, last) if last is not None else float("inf"))
        return family

    def _events(self, now: Any) -> Iterator[Metric]:
        from django.db.models import Count, Min

        from integrations.choices import EventStatus
        from integrations.models import Event, Source

        waiting = (EventStatus.PENDING, EventStatus.PARKED, EventStatus.FAILED)
        rows = list(
            Event.objects.filter(status__in=waiting).values("source_id", "status").annotate(count=Count("id")).order_by()
        )
        codes = dict(Source.objects.values_list("pk", "code"))
        counts = {(code, str(status)): 0 for code in codes.values() for status in waiting}
        for row in rows:
            key = (codes.get(row["source_id"], UNREGISTERED), row["status"])
            counts[key] = counts.get(key, 0) + row["count"]
        family = GaugeMetricFamily(
            "allot_events", "Stored events not applied: pending, parked and failed, by source.", labels=["source", "status"]
        )
        for (source, status), count in sorted(counts.items()):
            family.add_metric([source, status], count)
        yield family
        oldest = Event.objects.filter(status=EventStatus.PENDING).aggregate(oldest=Min("received_at"))["oldest"]
        age = GaugeMetricFamily("allot_oldest_pending_event_age_seconds", "Age of the oldest pending event since receipt (0: none).")
        age.add_metric([], _age(now, oldest))
        yield age

    def _runs(self, now: Any) -> Iterator[Metric]:
        from django.db.models import Count, Min

        from allocation.models import AllocationRun, RunStatus

        rows = {
            row["status"]: row
            for row in AllocationRun.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
            .values("status")
            .annotate(count=Count("id"), oldest=Min("created_at"))
            .order_by()
        }
        runs = GaugeMetricFamily("allot_runs", "Allocation runs queued and running.", labels=["status"])
        for status in (RunStatus.QUEUED, RunStatus.RUNNING):
            runs.add_metric([str(status)], rows.get(status, {}).get("count", 0))
        yield runs
        oldest = GaugeMetricFamily("allot_oldest_queued_run_age_seconds", "Age of the oldest queued run (0: none).")
        oldest.add_metric([], _age(now, rows.get(RunStatus.QUEUED, {}).get("oldest")))
        yield oldest


# --- the endpoint ----------------------------------------------------------------------------


class _Exposition:
    """What one scrape reports: this process's registry (or every process's files) and the gauges."""

    def __init__(self, *collectors: Any) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def exposition() -> _Exposition:
    """The registry a scrape renders: with ``PROMETHEUS_MULTIPROC_DIR`` the sum over every
    process's files, else this process's default registry; plus the database gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return _Exposition(registry, DatabaseCollector())
    return _Exposition(REGISTRY, DatabaseCollector())


def _client_allowed(request: HttpRequest) -> bool:
    networks = settings.ALLOT_METRICS_ALLOWED_NETWORKS
    if not networks:
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network, strict=False) for network in networks)


def _token_matches(request: HttpRequest) -> bool:
    token = settings.ALLOT_METRICS_TOKEN
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(offered.strip().encode(), token.encode())


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics`` in Prometheus text format, for a scraper holding the token or on an allowed network."""
    token, networks = settings.ALLOT_METRICS_TOKEN, settings.ALLOT_METRICS_ALLOWED_NETWORKS
    if token or networks:
        if not (_token_matches(request) or _client_allowed(request)):
            if token:
                response = HttpResponse("metrics need a bearer token\n", status=401, content_type="text/plain")
                response["WWW-Authenticate"] = 'Bearer realm="metrics"'
                return response
            return HttpResponse("not found\n", status=404, content_type="text/plain")
    elif settings.PRODUCTION:
        return HttpResponse("not found\n", status=404, content_type="text/plain")
    return HttpResponse(generate_latest(exposition()), content_type=CONTENT_TYPE_LATEST)
