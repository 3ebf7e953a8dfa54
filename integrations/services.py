"""The write path of ingestion: accept events, apply them, retry them (events-v1.md).

``ingest`` validates envelopes and stores accepted events durably in bulk (the idempotency
key is (source, id)); ``process_pending`` applies pending events in chunks, set-based, in
``occurred_at`` order; ``retry_event`` puts a failed or parked event back in the queue.
API views, webhooks, the ``ingest`` command and Celery tasks all call these functions.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from config import logs, metrics
from exceptions.choices import ACTIVE_STATUSES, ExceptionStatus, ExceptionType, Severity
from exceptions.models import DecisionException
from integrations import bulk, freshness
from integrations.applying import EVENT_FIELDS, ChunkApplier, Outcome
from integrations.choices import RETRYABLE_STATUSES, BatchVia, EventStatus, IngestStatus, SourceKind
from integrations.errors import BatchRejected, EventNotRetryable
from integrations.models import DuplicateDelivery, Event, EventBatch, ParkedReference, Source
from integrations.validation import TimeWindow, printable, validate_envelope

CHUNK_SIZE = 5000
INSERT_BATCH = 2000
APPLY_ERRORS = (DatabaseError, ValueError, TypeError, LookupError, ArithmeticError, AttributeError)
# Serialises appliers on PostgreSQL: two chunks must not read-modify-write the same rows.
PROCESS_LOCK_ID = 740_215_001


_deferral = threading.local()


@contextmanager
def deferred_processing(*, skip_runs: bool = False) -> Iterator[None]:
    """Within this block ``ingest`` schedules no processing: a bulk loader ingests everything,
    then calls ``process_pending`` once. With ``skip_runs`` no allocation runs are requested
    either (benchmarks of ingestion alone)."""
    previous = (getattr(_deferral, "processing", False), getattr(_deferral, "runs", False))
    _deferral.processing, _deferral.runs = True, skip_runs
    try:
        yield
    finally:
        _deferral.processing, _deferral.runs = previous


@dataclass
class IngestResult:
    """One result per delivered event, in order, plus the batch they were stored under."""

    batch_id: int | None
    results: list[dict[str, Any]]

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r["status"] == status)

    @property
    def accepted(self) -> int:
        return self.count(IngestStatus.ACCEPTED)

    @property
    def duplicates(self) -> int:
        return self.count(IngestStatus.DUPLICATE)

    @property
    def rejected(self) -> int:
        return self.count(IngestStatus.REJECTED)


@dataclass
class ProcessSummary:
    """What one ``process_pending`` call did, counted by final event status."""

    applied: int = 0
    stale: int = 0
    parked: int = 0
    failed: int = 0
    requeued: int = 0
    skus: set[str] = field(default_factory=set)

    def add(self, status: str) -> None:
        setattr(self, status, getattr(self, status) + 1)

    @property
    def processed(self) -> int:
        return self.applied + self.stale + self.parked + self.failed


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def body_hash(raw: dict, data_text: str | None = None) -> str:
    """SHA-256 of the canonical JSON of an envelope (its data canonicalised separately, so the
    same text can be stored): equal bodies give equal hashes."""
    envelope = {k: v for k, v in raw.items() if k != "data"}
    text = _canonical(envelope) + "\n" + (data_text if data_text is not None else _canonical(raw.get("data")))
    return hashlib.sha256(text.encode()).hexdigest()


def _guess_kind(code: str) -> str:
    lowered = code.lower()
    for kind in SourceKind.values:
        if lowered.startswith(kind):
            return kind
    return SourceKind.OTHER


def register_source(
    *, code: str, actor: Any = None, name: str = "", kind: str | None = None, integration_users: Iterable[Any] = ()
) -> Source:
    """Register an event source with a fresh webhook secret (or return the existing one), and
    bind ``integration_users`` to it: their API tokens may then post its events."""
    with transaction.atomic():
        source = Source.objects.filter(code=code).first()
        if source is None:
            source = Source(code=code, name=name or code, kind=kind or _guess_kind(code), secret=secrets.token_hex(32))
            source._change_reason = "registered"  # type: ignore[attr-defined]
            source._history_user = actor  # type: ignore[attr-defined]
            source.save()
        if integration_users:
            source.integration_users.add(*integration_users)
        return source


def sources_bound_to(user: Any) -> set[str] | None:
    """The codes of the sources a token user may post events for; None (any source) for
    superusers. Everyone else is limited to the sources bound to them (``register_source``)."""
    if getattr(user, "is_superuser", False):
        return None
    return set(Source.objects.filter(integration_users=user).values_list("code", flat=True))


def _resolve_sources(codes: set[str], actor: Any) -> dict[str, Source]:
    """The registered sources among ``codes``; unknown ones are registered on first use only
    with ``ALLOT_AUTO_REGISTER_SOURCES`` (the embedded default). A token's codes never get here
    unless bound to it, so a token never creates a source."""
    sources = {s.code: s for s in Source.objects.filter(code__in=codes)}
    if settings.ALLOT_AUTO_REGISTER_SOURCES:
        for code in sorted(codes - set(sources)):
            sources[code] = register_source(code=code, actor=actor)
    return sources


def ingest(
    events: list[dict], *, actor: Any = None, via: str = "api", source_hint: str | None = None,
    allowed_sources: set[str] | None = None,
) -> IngestResult:
    """Validate and durably store a batch of canonical events; schedule their processing.

    Returns one ``{"id", "status", "errors"}`` per event, in order: ``accepted`` (stored,
    pending), ``duplicate`` (same source and id already stored; a differing body is recorded
    as a ``DuplicateDelivery``) or ``rejected`` (invalid: never stored as an event, never
    applied, kept on the batch). ``source_hint`` fills a missing ``source``; for webhooks it
    is binding and an event naming another source is rejected. ``allowed_sources`` (API tokens:
    ``sources_bound_to``) rejects an event for any other source, naming ``source``. Raises ``BatchRejected`` when
    the batch itself is unacceptable (not a list, too many events); nothing is stored then.
    """
    if not isinstance(events, list):
        raise BatchRejected("events must be a list")
    if len(events) > settings.ALLOT_MAX_BATCH_EVENTS:
        raise BatchRejected(f"a batch holds at most {settings.ALLOT_MAX_BATCH_EVENTS} events, got {len(events)}")
    if via not in BatchVia.values:
        raise ValueError(f"via must be one of {BatchVia.values}")
    now = timezone.now()
    window = TimeWindow.around(now)
    checks = [validate_envelope(raw, default_source=source_hint, window=window) for raw in events]
    if via == BatchVia.WEBHOOK and source_hint is not None:
        for check in checks:
            if check.source is not None and check.source != source_hint:
                check.errors.append({"field": "source", "message": f"must be {source_hint}, the source of this webhook"})
    if allowed_sources is not None:
        for check in checks:
            if check.source is not None and check.source not in allowed_sources:
                check.errors.append({"field": "source", "message": "is not a source this token is bound to"})
    results: list[dict[str, Any]] = [
        {"id": _echoed_id(raw), "status": IngestStatus.ACCEPTED.value, "errors": check.errors}
        for raw, check in zip(events, checks, strict=True)
    ]
    with transaction.atomic():
        sources = _resolve_sources({c.source for c in checks if c.source is not None and not c.errors}, actor)
        batch = EventBatch.objects.create(received_at=now, via=via, actor=actor, source_hint=source_hint or "", total=len(events))
        logs.bind(batch_id=batch.pk)
        candidates: list[int] = []
        for index, check in enumerate(checks):
            if not check.errors and check.source not in sources:
                check.errors.append({"field": "source", "message": "is not a registered source"})
            if check.errors:
                results[index]["status"] = IngestStatus.REJECTED.value
            else:
                candidates.append(index)
        data_texts = {index: _canonical(events[index]["data"]) for index in candidates}
        hashes = {index: body_hash(events[index], data_texts[index]) for index in candidates}
        # Existing events for the candidates' (source, id) pairs: one query per source.
        wanted: dict[int, set[str]] = {}
        for index in candidates:
            wanted.setdefault(sources[checks[index].source].pk, set()).add(checks[index].event_id)
        existing: dict[tuple[int, str], tuple[int, str]] = {}
        for source_id, ids in wanted.items():
            for pk, event_id, digest in Event.objects.filter(source_id=source_id, event_id__in=ids).values_list("pk", "event_id", "body_hash"):
                existing[(source_id, event_id)] = (pk, digest)
        first_in_batch: dict[tuple[int, str], int] = {}
        to_store: list[tuple] = []
        stored_index: dict[tuple[int, str], int] = {}
        duplicates: list[tuple[int, tuple[int, str]]] = []
        for index in candidates:
            check = checks[index]
            key = (sources[check.source].pk, check.event_id)
            if key in existing or key in first_in_batch:
                duplicates.append((index, key))
                continue
            first_in_batch[key] = index
            raw = events[index]
            to_store.append((key[0], check.event_id, raw["type"], check.occurred_at, raw["data"], data_texts[index], hashes[index], check.entity_key))
            stored_index[key] = index
        stored = _store_events(to_store, batch, now)
        # A concurrent delivery may have stored the same (source, id) between our read and insert.
        raced = [key for key in stored_index if key not in stored]
        for key in raced:
            duplicates.append((stored_index[key], key))
        in_batch_pks: dict[tuple[int, str], int] = {}
        if raced:
            existing.update(_stored_versions(raced))
        later_copies = [key for _, key in duplicates if key not in existing]
        if later_copies:
            in_batch_pks = {k: pk for k, (pk, _) in _stored_versions(later_copies).items()}
        differing: list[DuplicateDelivery] = []
        for index, key in duplicates:
            results[index]["status"] = IngestStatus.DUPLICATE.value
            if key in existing:
                event_pk, digest = existing[key]
            else:
                event_pk, digest = in_batch_pks[key], hashes[first_in_batch[key]]
            if hashes[index] != digest:
                differing.append(DuplicateDelivery(event_id=event_pk, batch=batch, body_hash=hashes[index], body=events[index], received_at=now))
        if differing:
            DuplicateDelivery.objects.bulk_create(differing, batch_size=INSERT_BATCH)
        counts = Counter(r["status"] for r in results)
        batch.accepted = counts[IngestStatus.ACCEPTED]
        batch.duplicates = counts[IngestStatus.DUPLICATE]
        batch.rejected = counts[IngestStatus.REJECTED]
        batch.rejections = [
            {"index": i, "id": r["id"], "errors": r["errors"]}
            for i, r in enumerate(results)
            if r["status"] == IngestStatus.REJECTED
        ]
        batch.save(update_fields=["accepted", "duplicates", "rejected", "rejections"])
        fresh_sources = {key[0] for key in stored}
        if fresh_sources:
            Source.objects.filter(pk__in=fresh_sources).update(last_event_at=now)
            # The sparkline's hourly counts, and the stale_feed case of a source that resumed.
            freshness.record_activity(Counter(key[0] for key in stored), now)
            freshness.resolve_resumed(fresh_sources)
        if stored and not getattr(_deferral, "processing", False):
            transaction.on_commit(_schedule_processing)
    metrics.record_ingest([check.source for check in checks], results)
    return IngestResult(batch_id=batch.pk, results=results)


def _echoed_id(raw: Any) -> str | int | None:
    """The envelope id as the response and the batch's rejections repeat it: text made safe to
    store and encode (a rejected id may hold NUL or a lone surrogate), cut to 200 characters."""
    event_id = raw.get("id") if isinstance(raw, dict) else None
    if isinstance(event_id, str):
        return printable(event_id)[:200]
    if isinstance(event_id, int) and not isinstance(event_id, bool) and abs(event_id) < 2**63:
        return event_id
    return None


STORE_COLUMNS = (
    "source_id", "event_id", "type", "occurred_at", "data", "body_hash", "entity_key",
    "status", "errors", "parked_references", "attempts", "received_at", "batch_id",
)


def _store_events(rows: list[tuple], batch: EventBatch, now: Any) -> set[tuple[int, str]]:
    """Insert new events; returns the (source, id) keys actually stored by this batch.

    ``rows`` are (source_id, event_id, type, occurred_at, data, data_text, body_hash,
    entity_key). On PostgreSQL they go in with COPY (the canonical data text is stored as
    is); if a concurrent delivery stored one of the same ids meanwhile, COPY fails as a
    whole and the conflict-ignoring insert runs instead.
    """
    if not rows:
        return set()
    if bulk.is_postgres():
        try:
            with transaction.atomic():
                bulk.copy_rows(
                    Event._meta.db_table,
                    STORE_COLUMNS,
                    ((r[0], r[1], r[2], r[3], r[5], r[6], r[7], EventStatus.PENDING.value, "[]", "[]", 0, now, batch.pk) for r in rows),
                )
            return {(r[0], r[1]) for r in rows}
        except IntegrityError:
            pass
    events = [
        Event(source_id=r[0], event_id=r[1], type=r[2], occurred_at=r[3], data=r[4], body_hash=r[6], entity_key=r[7], received_at=now, batch=batch)
        for r in rows
    ]
    Event.objects.bulk_create(events, batch_size=INSERT_BATCH, ignore_conflicts=True)
    keys = [(e.source_id, e.event_id) for e in events]
    rows = Event.objects.filter(source_id__in={k[0] for k in keys}, event_id__in={k[1] for k in keys})
    wanted = set(keys)
    return {(s, e) for s, e, b in rows.values_list("source_id", "event_id", "batch_id") if b == batch.pk and (s, e) in wanted}


def _stored_versions(keys: list[tuple[int, str]]) -> dict[tuple[int, str], tuple[int, str]]:
    """(pk, body hash) of the stored events with these (source, id) keys."""
    found: dict[tuple[int, str], tuple[int, str]] = {}
    wanted = set(keys)
    rows = Event.objects.filter(source_id__in={k[0] for k in keys}, event_id__in={k[1] for k in keys})
    for pk, source_id, event_id, digest in rows.values_list("pk", "source_id", "event_id", "body_hash"):
        if (source_id, event_id) in wanted:
            found[(source_id, event_id)] = (pk, digest)
    return found


def _schedule_processing() -> bool:
    """Wake processing up after commit: in-process without a broker, else one coalesced task.

    With a broker, a task already waiting makes this a no-op (``config.broker.publish_once``)
    and a broker that is down is logged, not raised: the stored events are the durable record,
    and the sweeper publishes for them once the broker is back. True if a task was published.
    """
    from config import broker
    from integrations.tasks import (
        PROCESSING_COALESCE_SECONDS,
        PROCESSING_FLAG_TTL_SECONDS,
        PROCESSING_SCHEDULED_KEY,
        process_events_task,
    )

    if not broker.broker_configured():
        # Eager, or on the serving process's background thread (config.inprocess).
        return broker.publish(process_events_task)
    return broker.publish_once(
        process_events_task, flag=PROCESSING_SCHEDULED_KEY, ttl=PROCESSING_FLAG_TTL_SECONDS,
        countdown=PROCESSING_COALESCE_SECONDS,
    )


def process_pending(*, limit: int | None = None) -> ProcessSummary:
    """Apply pending events, oldest ``occurred_at`` first, in set-based chunks.

    Each chunk is one transaction: records are read once, events applied in memory, rows
    written in bulk with history. A stale event is recorded, not applied; an event with
    unknown references is parked and re-queued when an event creating them applies; an
    event that cannot apply fails alone. Events still parked at the end, and failed ones,
    raise data-quality exceptions; those resolve when the event applies. After each commit
    ``allocation.tasks.schedule_incremental_runs`` receives the SKUs that changed.
    """
    summary = ProcessSummary()
    parked_now: set[int] = set()
    while limit is None or summary.processed < limit:
        size = CHUNK_SIZE if limit is None else min(CHUNK_SIZE, limit - summary.processed)
        done = _process_next_chunk(size, summary, parked_now)
        if done == 0:
            break
    if parked_now:
        _raise_parked_exceptions(parked_now)
    return summary


def _process_next_chunk(size: int, summary: ProcessSummary, parked_now: set[int]) -> int:
    """Pick the next pending events and apply them in the same locked transaction."""
    events: list[Event] = []
    unreadable = 0
    try:
        with transaction.atomic():
            _take_process_lock()
            events, unreadable = _pending_events(size)
            if not events:
                summary.failed += unreadable
                return unreadable
            events, outcomes, skus = _apply_chunk(events)
    except APPLY_ERRORS:
        if not events:
            raise
        # The database refused the chunk (or data slipped past validation): split it until the
        # event at fault fails alone, so one bad event never wedges the queue.
        summary.failed += unreadable
        _apply_isolating(events, summary, parked_now)
        return len(events) + unreadable
    summary.failed += unreadable
    _count(events, outcomes, skus, summary, parked_now)
    return len(events) + unreadable


def _pending_events(size: int, among: list[int] | None = None) -> tuple[list[Event], int]:
    """The next ``size`` pending events in ``occurred_at`` order, and how many were failed
    because a stored value could not be read (see ``_fail_unreadable``)."""
    pending = Event.objects.filter(status=EventStatus.PENDING)
    if among is not None:
        pending = pending.filter(pk__in=among)
    ordered = pending.order_by("occurred_at", "id")
    try:
        with transaction.atomic():
            return list(ordered.only(*EVENT_FIELDS)[:size]), 0
    except APPLY_ERRORS:
        pass
    # A row the database driver cannot turn into Python (a timestamp with no UTC instant,
    # stored before validation bounded them) must not wedge the queue: find it by halving.
    pks = list(ordered.values_list("pk", flat=True)[:size])
    readable = _read_isolating(pks)
    _fail_unreadable([pk for pk in pks if pk not in readable])
    return [readable[pk] for pk in pks if pk in readable], len(pks) - len(readable)


def _read_isolating(pks: list[int]) -> dict[int, Event]:
    """The events among ``pks`` that can be read, halving the set around the unreadable ones."""
    try:
        with transaction.atomic():
            return {e.pk: e for e in Event.objects.filter(pk__in=pks).only(*EVENT_FIELDS)}
    except APPLY_ERRORS:
        if len(pks) <= 1:
            return {}
    middle = len(pks) // 2
    return {**_read_isolating(pks[:middle]), **_read_isolating(pks[middle:])}


def _fail_unreadable(pks: list[int]) -> None:
    """Mark events whose stored ``occurred_at`` (or data) cannot be read ``failed``; their
    ``occurred_at`` becomes the receipt time so lists can show them, the original text is
    kept in the error, and an ``event_failed`` exception is raised."""
    if not pks:
        return
    now = timezone.now()
    rows = (
        Event.objects.filter(pk__in=pks)
        .annotate(stored_time=Cast("occurred_at", TextField()))
        .values_list("pk", "source_id", "event_id", "type", "received_at", "attempts", "stored_time")
    )
    failed = []
    for pk, source_id, event_id, type_, received_at, attempts, stored_time in rows:
        message = f"could not be read (occurred_at {printable(str(stored_time))[:60]}); kept with its receipt time"
        failed.append(
            Event(
                pk=pk, source_id=source_id, event_id=event_id, type=type_, status=EventStatus.FAILED, occurred_at=received_at,
                errors=[{"field": "occurred_at", "message": message}], parked_references=[], processed_at=now, attempts=(attempts or 0) + 1,
            )
        )
    Event.objects.bulk_update(failed, ["status", "occurred_at", "errors", "parked_references", "processed_at", "attempts"], batch_size=500)
    metrics.record_processed((event.source_id, EventStatus.FAILED) for event in failed)
    _raise_exceptions(ExceptionType.EVENT_FAILED, failed, dict(Source.objects.values_list("pk", "code")))


def _take_process_lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PROCESS_LOCK_ID])


def _apply_isolating(events: list[Event], summary: ProcessSummary, parked_now: set[int]) -> None:
    """Apply ``events`` in halves, recursively, until the one the database refuses fails alone."""
    if len(events) > 1:
        middle = len(events) // 2
        for part in (events[:middle], events[middle:]):
            try:
                with transaction.atomic():
                    _take_process_lock()
                    # Re-read: another applier may have taken some while we were failing.
                    fresh, unreadable = _pending_events(len(part), among=[e.pk for e in part])
                    summary.failed += unreadable
                    if not fresh:
                        continue
                    fresh, outcomes, skus = _apply_chunk(fresh)
            except APPLY_ERRORS:
                _apply_isolating(part, summary, parked_now)
                continue
            _count(fresh, outcomes, skus, summary, parked_now)
        return
    try:
        with transaction.atomic():
            _take_process_lock()
            fresh, unreadable = _pending_events(1, among=[events[0].pk])
            summary.failed += unreadable
            if not fresh:
                return
            fresh, outcomes, skus = _apply_chunk(fresh)
    except APPLY_ERRORS as error:
        text = printable(str(error).strip())
        message = text.splitlines()[0][:300] if text else type(error).__name__
        events = events[:1]
        outcomes = {events[0].pk: Outcome(EventStatus.FAILED, errors=[{"field": "", "message": f"could not be applied: {message}"}])}
        try:
            with transaction.atomic():
                _record_outcomes(events, outcomes)
        except APPLY_ERRORS:
            # Even the failure could not be recorded in full: record the bare status, so the queue moves on.
            Event.objects.filter(pk=events[0].pk, status=EventStatus.PENDING).update(
                status=EventStatus.FAILED, errors=[{"field": "", "message": "could not be applied"}], processed_at=timezone.now()
            )
        skus = set()
        fresh = events
    _count(fresh, outcomes, skus, summary, parked_now)


def _count(events: list[Event], outcomes: dict[int, Outcome], skus: set[str], summary: ProcessSummary, parked_now: set[int]) -> None:
    for event in events:
        status = outcomes[event.pk].status
        summary.add(status)
        if status == EventStatus.PARKED:
            parked_now.add(event.pk)
        else:
            parked_now.discard(event.pk)
    summary.skus |= skus
    metrics.record_processed((event.source_id, outcomes[event.pk].status) for event in events)


def _apply_chunk(events: list[Event]) -> tuple[list[Event], dict[int, Outcome], set[str]]:
    """Apply ``events`` in the caller's transaction; returns the events processed (the chunk
    plus parked item versions it pulled in to close substitute cycles), outcomes and SKUs."""
    source_codes = dict(Source.objects.values_list("pk", "code"))
    applier = ChunkApplier(events, source_codes=source_codes, actors={})
    applier.load()
    events = applier.events
    batch_ids = {e.batch_id for e in events if e.batch_id}
    if batch_ids:
        for batch in EventBatch.objects.filter(pk__in=batch_ids, actor__isnull=False).select_related("actor"):
            applier.actors[batch.pk] = batch.actor
    applier.apply_all()
    applier.write()
    _record_outcomes(events, applier.outcomes, source_codes=source_codes)
    _record_stock_shortfalls(applier, source_codes)
    # Re-queued events are picked up by the caller's next chunk.
    _requeue_waiting(applier.created_keys)
    skus = set(applier.skus)
    if skus and not getattr(_deferral, "runs", False):
        metrics.note_awaiting_decision(batch_ids)  # first: an in-process run starts in the next callback
        transaction.on_commit(lambda: _schedule_runs(skus))
    return events, applier.outcomes, skus


def _quantity(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _record_stock_shortfalls(applier: ChunkApplier, codes: dict[int, str]) -> None:
    """Resolve the negative-stock exceptions of positions a snapshot replaced, then raise one
    per adjustment that took on-hand below zero (it was set to zero): two queries and a bulk write."""
    if applier.superseded_positions:
        locations = {location for location, _ in applier.superseded_positions}
        skus = {sku for _, sku in applier.superseded_positions}
        superseded = DecisionException.objects.filter(
            type=ExceptionType.NEGATIVE_STOCK,
            status__in=[str(s) for s in ACTIVE_STATUSES],
            location__code__in=locations,
            item__sku__in=skus,
        ).values_list("key", "location__code", "item__sku")
        reasons = {key: "superseded by an inventory snapshot" for key, location, sku in superseded if (location, sku) in applier.superseded_positions}
        if reasons:
            _resolve_exceptions(reasons)
    issues = []
    for shortfall in applier.negative_stock:
        event, position = shortfall.event, applier.positions[(shortfall.location, shortfall.sku)]
        source = codes[event.source_id]
        issues.append(
            DataQualityIssue(
                kind=ExceptionType.NEGATIVE_STOCK,
                key=_exception_key(ExceptionType.NEGATIVE_STOCK, source, event.event_id),
                message=(
                    f"Adjustment {source}:{event.event_id} takes {shortfall.sku} at {shortfall.location} below zero: "
                    f"{_quantity(shortfall.missing)} missing (on hand {_quantity(shortfall.on_hand)}, delta {_quantity(shortfall.delta)}); "
                    "on-hand set to 0"
                ),
                details={
                    "event": event.pk,
                    "event_id": event.event_id,
                    "location": shortfall.location,
                    "sku": shortfall.sku,
                    "missing": _quantity(shortfall.missing),
                    "on_hand": _quantity(shortfall.on_hand),
                    "delta": _quantity(shortfall.delta),
                },
                source=source,
                severity=Severity.HIGH,
                item_id=position.item_id,
                location_id=position.location_id,
            )
        )
    _open_exceptions(issues)


def _schedule_runs(skus: set[str]) -> None:
    from allocation.tasks import schedule_incremental_runs

    schedule_incremental_runs(sorted(skus))


def _record_outcomes(events: list[Event], outcomes: dict[int, Outcome], *, source_codes: dict[int, str] | None = None) -> None:
    """Write event statuses (one UPDATE per status), parked references and exceptions."""
    now = timezone.now()
    by_status: dict[str, list[int]] = {}
    for event in events:
        by_status.setdefault(outcomes[event.pk].status, []).append(event.pk)
    applied = by_status.get(EventStatus.APPLIED, [])
    stale = by_status.get(EventStatus.STALE, [])
    for pks in _chunks(applied):
        Event.objects.filter(pk__in=pks).update(
            status=EventStatus.APPLIED, errors=[], parked_references=[], applied_at=now, processed_at=now, attempts=F("attempts") + 1
        )
    for pks in _chunks(stale):
        Event.objects.filter(pk__in=pks).update(
            status=EventStatus.STALE, errors=[], parked_references=[], processed_at=now, attempts=F("attempts") + 1
        )
    unsettled = [e for e in events if outcomes[e.pk].status in (EventStatus.PARKED, EventStatus.FAILED)]
    for event in unsettled:
        outcome = outcomes[event.pk]
        event.status = outcome.status
        event.errors = outcome.errors or [
            {"field": "data", "message": "unknown reference " + ref} for ref in outcome.references
        ]
        event.parked_references = outcome.references
        event.processed_at = now
        event.attempts = (event.attempts or 0) + 1
    if unsettled:
        Event.objects.bulk_update(unsettled, ["status", "errors", "parked_references", "processed_at", "attempts"], batch_size=500)
    unsettled_pks = {u.pk for u in unsettled}
    previously_tried = [e for e in events if e.attempts and e.pk not in unsettled_pks] + [e for e in unsettled if e.attempts > 1]
    ParkedReference.objects.filter(event_id__in=[e.pk for e in previously_tried]).delete()
    parked = [e for e in unsettled if e.status == EventStatus.PARKED]
    if parked:
        ParkedReference.objects.bulk_create(
            [ParkedReference(event_id=e.pk, key=ref) for e in parked for ref in e.parked_references], batch_size=2000, ignore_conflicts=True
        )
    codes = source_codes or dict(Source.objects.values_list("pk", "code"))
    resolve: dict[str, str] = {}
    for event in previously_tried:
        status = outcomes[event.pk].status
        if status != EventStatus.PARKED:
            resolve[_exception_key(ExceptionType.EVENT_PARKED, codes[event.source_id], event.event_id)] = f"event {status}"
        if status != EventStatus.FAILED:
            resolve[_exception_key(ExceptionType.EVENT_FAILED, codes[event.source_id], event.event_id)] = f"event {status}"
    if resolve:
        _resolve_exceptions(resolve)
    failed = [e for e in unsettled if e.status == EventStatus.FAILED]
    if failed:
        _raise_exceptions(ExceptionType.EVENT_FAILED, failed, codes)


def _chunks(values: list[int], size: int = 2000):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _requeue_waiting(created_keys: set[str]) -> int:
    """Put parked events waiting for any of ``created_keys`` back to pending."""
    if not created_keys or not ParkedReference.objects.exists():
        return 0
    event_ids: set[int] = set()
    keys = sorted(created_keys)
    for start in range(0, len(keys), 2000):
        event_ids.update(ParkedReference.objects.filter(key__in=keys[start : start + 2000]).values_list("event_id", flat=True))
    if not event_ids:
        return 0
    return Event.objects.filter(pk__in=event_ids, status=EventStatus.PARKED).update(status=EventStatus.PENDING)


def _exception_key(kind: str, source: str, event_id: str) -> str:
    return f"{kind}:{source}:{event_id}"


@dataclass
class DataQualityIssue:
    """A data-quality exception ingestion opens (unless one with the same key is active)."""

    kind: str
    key: str
    message: str
    details: dict[str, Any]
    source: str
    severity: str = Severity.MEDIUM
    item_id: int | None = None
    location_id: int | None = None


def _open_exceptions(issues: list[DataQualityIssue]) -> None:
    """Open one exception per issue whose key has no active exception yet (one read, one bulk write)."""
    if not issues:
        return
    now = timezone.now()
    by_key = {issue.key: issue for issue in issues}
    active = set(
        DecisionException.objects.filter(key__in=list(by_key), status__in=[str(s) for s in ACTIVE_STATUSES]).values_list("key", flat=True)
    )
    rows = []
    for key, issue in by_key.items():
        if key in active:
            continue
        row = DecisionException(
            type=issue.kind,
            key=key,
            status=ExceptionStatus.OPEN,
            severity=issue.severity,
            message=issue.message[:500],
            details=issue.details,
            source=issue.source,
            item_id=issue.item_id,
            location_id=issue.location_id,
            raised_at=now,
            updated_at=now,
        )
        row._change_reason = "raised by ingestion"  # type: ignore[attr-defined]
        rows.append(row)
    if rows:
        bulk_create_with_history(rows, DecisionException, batch_size=1000)


def _raise_exceptions(kind: str, events: list[Event], codes: dict[int, str]) -> None:
    """Open one data-quality exception per parked or failed event unless an active one exists (bulk)."""
    issues = []
    for event in events:
        source = codes[event.source_id]
        if kind == ExceptionType.EVENT_PARKED:
            message = f"Event {source}:{event.event_id} ({event.type}) is parked: unknown " + ", ".join(event.parked_references)
        else:
            message = f"Event {source}:{event.event_id} ({event.type}) failed: " + "; ".join(
                f"{e['field']}: {e['message']}" for e in event.errors
            )
        issues.append(
            DataQualityIssue(
                kind=kind,
                key=_exception_key(kind, source, event.event_id),
                message=message,
                details={"event": event.pk, "event_id": event.event_id, "errors": event.errors, "references": event.parked_references},
                source=source,
            )
        )
    _open_exceptions(issues)


def _resolve_exceptions(reasons: dict[str, str]) -> None:
    now = timezone.now()
    rows = list(DecisionException.objects.filter(key__in=list(reasons), status__in=[str(s) for s in ACTIVE_STATUSES]))
    for row in rows:
        row.status = ExceptionStatus.RESOLVED
        row.resolved_at = now
        row.updated_at = now
        row.resolution_reason = reasons[row.key]
        row.version += 1
        row._change_reason = "resolved by ingestion"  # type: ignore[attr-defined]
    if rows:
        bulk_update_with_history(rows, DecisionException, ["status", "resolved_at", "updated_at", "resolution_reason", "version"], batch_size=500)


def _raise_parked_exceptions(event_pks: set[int]) -> None:
    with transaction.atomic():
        codes = dict(Source.objects.values_list("pk", "code"))
        pks = sorted(event_pks)
        for start in range(0, len(pks), 2000):
            parked = list(Event.objects.filter(pk__in=pks[start : start + 2000], status=EventStatus.PARKED))
            if parked:
                _raise_exceptions(ExceptionType.EVENT_PARKED, parked, codes)


def retry_event(event_id: int, *, actor: Any) -> Event:
    """Put a failed or parked event back in the queue and schedule processing (after commit).

    Raises ``Event.DoesNotExist`` for an unknown id and ``EventNotRetryable`` for any other status.
    """
    with transaction.atomic():
        event = Event.objects.select_for_update().get(pk=event_id)
        if event.status not in RETRYABLE_STATUSES:
            raise EventNotRetryable(event.status)
        event.status = EventStatus.PENDING
        event.retried_by = actor
        event.retried_at = timezone.now()
        event.save(update_fields=["status", "retried_by", "retried_at"])
        transaction.on_commit(_schedule_processing)
    return event
