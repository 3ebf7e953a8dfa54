"""Writing and reading the export records (``integrations.export_models.ExportRecord``).

``config.exports`` calls ``start_export`` before the first row and ``finish_export`` after the
last one (or when the download is cut off); the Exports screen reads ``export_records``.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from integrations.export_models import ExportRecord, ExportStatus


def start_export(*, actor: Any, screen: str, path: str, fmt: str, via: str, filters: dict[str, Any]) -> ExportRecord:
    """Record that ``actor`` started exporting ``screen`` at ``path`` with ``filters``."""
    return ExportRecord.objects.create(
        user=actor if getattr(actor, "pk", None) else None,
        username=actor.get_username() if getattr(actor, "pk", None) else "",
        screen=screen[:64],
        path=path[:500],
        filters=filters,
        format=fmt,
        via=via,
    )


def finish_export(record: ExportRecord, *, row_count: int, completed: bool) -> None:
    """Close ``record`` once: the rows written and whether the export reached its end. A
    record already closed is left as it is (the update matches only a started one)."""
    status = ExportStatus.COMPLETED if completed else ExportStatus.INTERRUPTED
    ExportRecord.objects.filter(pk=record.pk, status=ExportStatus.STARTED).update(
        status=status, row_count=row_count, finished_at=timezone.now()
    )


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def export_records(
    *, username: str = "", screen: str = "", since: dt.date | None = None, until: dt.date | None = None
) -> QuerySet[ExportRecord]:
    """Export records newest first, by user name, screen and a date range (inclusive)."""
    records = ExportRecord.objects.order_by("-started_at", "-id")
    if username:
        records = records.filter(username=username)
    if screen:
        records = records.filter(screen=screen)
    # Whole days in the current time zone, as a range on the indexed column.
    if since:
        records = records.filter(started_at__gte=_day_start(since))
    if until:
        records = records.filter(started_at__lt=_day_start(until + dt.timedelta(days=1)))
    return records


def exported_screens() -> list[str]:
    """The screens that have been exported, for the filter's choices."""
    return list(ExportRecord.objects.order_by("screen").values_list("screen", flat=True).distinct())
