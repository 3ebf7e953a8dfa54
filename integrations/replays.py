"""Replaying stored events: re-apply a source's events over a time range (PRODUCT.md capability 1).

``plan_replay`` is the dry run: it applies the selected events (``occurred_at`` in
[start, end), already processed) inside a transaction it rolls back, and records what would
change (outcome counts, the field changes and the records that would be created) on a
``Replay`` row. ``apply_replay`` re-applies the same events for real, in ``occurred_at`` order,
through the ingestion applier (the same rules: an event older than the stored state is stale
and changes nothing), in one transaction, under an ``EventBatch`` of its own (via ``replay``,
the acting user); every record written carries the change reason ``replay <id>: event ...``
and the actor in its history, and the ``Replay`` row's history is the audit of who planned and
who applied it. A selection that changed since the dry run is refused: plan again.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from integrations.applying import EVENT_FIELDS, ChunkApplier
from integrations.choices import BatchVia, EventStatus
from integrations.feeds_models import Replay, ReplayStatus
from integrations.models import Event, EventBatch, Source

REPLAYABLE = (EventStatus.APPLIED, EventStatus.STALE, EventStatus.FAILED, EventStatus.PARKED)
CHUNK = 5000
SHOWN_CHANGES = 300
IGNORED_FIELDS = frozenset({"source_updated_at", "updated_at", "created_at"})


class ReplayRefused(Exception):
    """A replay that cannot be planned or applied; ``field`` names the input at fault."""

    def __init__(self, message: str, *, field: str = ""):
        super().__init__(message)
        self.message = message
        self.field = field


class _Rollback(Exception):
    pass


class ReplayApplier(ChunkApplier):
    """The ingestion applier, writing history under the replay's actor and reason."""

    def __init__(self, events: list[Any], *, source_codes: dict[int, str], actor: Any, label: str) -> None:
        super().__init__(events, source_codes=source_codes, actors={})
        self.actor = actor
        self.label = label

    def _mark(self, obj: Model, event: Any) -> None:
        super()._mark(obj, event)
        obj._change_reason = f"{self.label}: event {self.source_codes[event.source_id]}:{event.event_id}"[:100]  # type: ignore[attr-defined]
        obj._history_user = self.actor  # type: ignore[attr-defined]


def _selected(source: Source, start: dt.datetime, end: dt.datetime):
    return Event.objects.filter(source=source, occurred_at__gte=start, occurred_at__lt=end, status__in=list(REPLAYABLE)).order_by(
        "occurred_at", "id"
    )


def _fingerprint(pks: list[int]) -> str:
    return hashlib.sha256(",".join(map(str, pks)).encode()).hexdigest()


def _identity(obj: Model) -> str:
    name = type(obj).__name__
    if name == "OrderLine":
        return f"order line {obj.order.number}/{obj.line}"  # type: ignore[attr-defined]
    if name == "InventoryPosition":
        return f"position {obj.location.code}/{obj.item.sku}"  # type: ignore[attr-defined]
    if name == "Lane":
        return f"lane {obj.location.code}/{obj.region}"  # type: ignore[attr-defined]
    if name == "ItemSubstitute":
        return f"substitute of {obj.item.sku}"  # type: ignore[attr-defined]
    for attribute in ("number", "sku", "ref", "code"):
        if hasattr(obj, attribute):
            return f"{obj._meta.verbose_name} {getattr(obj, attribute)}"
    return f"{obj._meta.verbose_name} {obj.pk}"


def _values(obj: Model) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields if not f.primary_key and f.name not in IGNORED_FIELDS}


def _loaded_objects(applier: ChunkApplier) -> list[Model]:
    found: list[Model] = []
    for mapping in (applier.locations, applier.items, applier.customers, applier.orders, applier.lanes, applier.positions, applier.supplies):
        found.extend(mapping.values())
    for lines in applier.lines.values():
        found.extend(lines.values())
    return [obj for obj in found if obj.pk is not None]


def _text(value: Any) -> str:
    return "—" if value is None or value == "" else str(value)


def _dry_run(events: list[Event], codes: dict[int, str]) -> dict[str, Any]:
    """Apply ``events`` in a transaction that is rolled back; what would change."""
    outcomes: Counter = Counter()
    changes: list[dict[str, str]] = []
    created: list[str] = []
    changes_total = created_total = 0
    from integrations import services

    try:
        with transaction.atomic():
            services._take_process_lock()
            for start in range(0, len(events), CHUNK):
                applier = ReplayApplier(events[start : start + CHUNK], source_codes=codes, actor=None, label="dry run")
                applier.load()
                before = {id(obj): _values(obj) for obj in _loaded_objects(applier)}
                applier.apply_all()
                outcomes.update(outcome.status for outcome in applier.outcomes.values())
                for model_objects in applier.dirty.values():
                    for obj in model_objects.values():
                        old = before.get(id(obj))
                        if old is None:
                            continue
                        new = _values(obj)
                        for name, value in new.items():
                            if old.get(name) != value:
                                changes_total += 1
                                if len(changes) < SHOWN_CHANGES:
                                    changes.append({"entity": _identity(obj), "field": name, "before": _text(old.get(name)), "after": _text(value)})
                for model_objects in applier.new.values():
                    for obj in model_objects:
                        created_total += 1
                        if len(created) < SHOWN_CHANGES:
                            created.append(_identity(obj))
                applier.write()  # the next chunk sees this one's result; all rolled back below
            raise _Rollback
    except _Rollback:
        pass
    return {
        "events": len(events),
        "outcomes": dict(sorted(outcomes.items())),
        "changes": changes,
        "changes_total": changes_total,
        "created": created,
        "created_total": created_total,
    }


def _check_range(source: Source | None, start: Any, end: Any) -> None:
    if source is None:
        raise ReplayRefused("is not a registered source", field="source")
    if not isinstance(start, dt.datetime) or timezone.is_naive(start):
        raise ReplayRefused("must be a date and time with a zone", field="start")
    if not isinstance(end, dt.datetime) or timezone.is_naive(end):
        raise ReplayRefused("must be a date and time with a zone", field="end")
    if end <= start:
        raise ReplayRefused("must be after the start", field="end")


def plan_replay(*, source: Source, start: dt.datetime, end: dt.datetime, actor: Any) -> Replay:
    """The dry run of replaying ``source``'s processed events that occurred in [start, end):
    a ``planned`` Replay with what would change. Raises ``ReplayRefused`` (naming the field)
    for a bad range, no events, or more than ``ALLOT_REPLAY_MAX_EVENTS``."""
    if not getattr(actor, "is_authenticated", False):
        raise PermissionError("An authenticated actor is required.")
    _check_range(source, start, end)
    pks = list(_selected(source, start, end).values_list("pk", flat=True)[: settings.ALLOT_REPLAY_MAX_EVENTS + 1])
    if not pks:
        raise ReplayRefused(f"no processed events of {source.code} occurred in this range", field="start")
    if len(pks) > settings.ALLOT_REPLAY_MAX_EVENTS:
        raise ReplayRefused(f"more than {settings.ALLOT_REPLAY_MAX_EVENTS:,} events in this range; choose a shorter one", field="end")
    events = list(Event.objects.filter(pk__in=pks).only(*EVENT_FIELDS).order_by("occurred_at", "id"))
    codes = dict(Source.objects.values_list("pk", "code"))
    preview = _dry_run(events, codes)
    preview["selection"] = _fingerprint(pks)
    replay = Replay(source=source, start=start, end=end, event_count=len(pks), preview=preview, planned_by=actor)
    replay._history_user = actor  # type: ignore[attr-defined]
    replay._change_reason = "planned (dry run)"  # type: ignore[attr-defined]
    replay.save()
    return replay


def apply_replay(replay_id: int, *, actor: Any) -> Replay:
    """Re-apply the events of a planned replay (one transaction, its own batch, audited).

    Raises ``Replay.DoesNotExist``, or ``ReplayRefused`` when it is not planned any more or the
    selection changed since its dry run."""
    from integrations import services

    if not getattr(actor, "is_authenticated", False):
        raise PermissionError("An authenticated actor is required.")
    with transaction.atomic():
        replay = Replay.objects.select_for_update().select_related("source").get(pk=replay_id)
        if replay.status != ReplayStatus.PLANNED:
            raise ReplayRefused(f"this replay is {replay.get_status_display().lower()} already", field="status")
        pks = list(_selected(replay.source, replay.start, replay.end).values_list("pk", flat=True))
        if _fingerprint(pks) != replay.preview.get("selection"):
            raise ReplayRefused("the events in this range changed since the dry run; plan the replay again", field="start")
        services._take_process_lock()
        now = timezone.now()
        batch = EventBatch.objects.create(
            received_at=now, via=BatchVia.REPLAY, actor=actor, source_hint=replay.source.code, total=len(pks), accepted=len(pks)
        )
        codes = dict(Source.objects.values_list("pk", "code"))
        outcomes: Counter = Counter()
        skus: set[str] = set()
        label = f"replay {str(replay.public_id)[:8]}"
        for start in range(0, len(pks), CHUNK):
            events = list(Event.objects.filter(pk__in=pks[start : start + CHUNK]).only(*EVENT_FIELDS).order_by("occurred_at", "id"))
            applier = ReplayApplier(events, source_codes=codes, actor=actor, label=label)
            applier.load()
            applier.apply_all()
            applier.write()
            services._record_outcomes(applier.events, applier.outcomes, source_codes=codes)
            services._record_stock_shortfalls(applier, codes)
            services._requeue_waiting(applier.created_keys)
            outcomes.update(outcome.status for outcome in applier.outcomes.values())
            skus |= set(applier.skus)
        if skus:
            transaction.on_commit(lambda: services._schedule_runs(skus))
        replay.status = ReplayStatus.APPLIED
        replay.outcome = dict(sorted(outcomes.items()))
        replay.batch = batch
        replay.applied_by = actor
        replay.applied_at = now
        replay._history_user = actor  # type: ignore[attr-defined]
        replay._change_reason = f"applied as batch {batch.pk}"  # type: ignore[attr-defined]
        replay.save()
    return replay
