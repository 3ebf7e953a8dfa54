"""Reads shared by the Events screen and the events API."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from integrations.models import Event, Source

ENTITY_PREFIXES = ("order", "customer", "item", "location", "supply", "position", "lane")


def events_matching(*, source: str = "", status: str = "", type: str = "", search: str = "") -> QuerySet[Event]:
    """Stored events, newest first, filtered by source code, status, type and an id/entity search.

    ``search`` matches an envelope id exactly, an entity key (``order:SO-1``) or a bare
    business code (``SO-1``) of any entity kind; every branch uses an index.
    """
    events = Event.objects.select_related("source").order_by("-id")
    if source:
        events = events.filter(source__code=source)
    if status:
        events = events.filter(status=status)
    if type:
        events = events.filter(type=type)
    search = search.strip()
    if search:
        keys = [search] + [f"{prefix}:{search}" for prefix in ENTITY_PREFIXES]
        # (source, event_id) is the unique index: name every source so the id lookup uses it.
        source_ids = list(Source.objects.values_list("pk", flat=True))
        events = events.filter(
            Q(source_id__in=source_ids, event_id=search) | Q(entity_key__in=keys) | Q(entity_key__startswith=f"position:{search}:")
        )
    return events


def sources_with_freshness() -> list[Source]:
    """Every registered source; ``stale`` is set on each (nothing for 60 minutes, or ever)."""
    sources = list(Source.objects.order_by("code"))
    for source in sources:
        source.stale = source.is_stale()  # type: ignore[attr-defined]
    return sources
