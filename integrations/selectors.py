"""Reads shared by the Events screen and the events API."""
from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from integrations.choices import OutboxStatus
from integrations.models import Event, OutboxMessage, Source

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
    """Every registered source; ``stale`` is set on each (silent longer than its cadence:
    ``integrations.freshness``, the rule the cases and the engine use)."""
    from django.utils import timezone

    from integrations import freshness

    now, minutes = timezone.now(), freshness.policy_cadence_minutes()
    sources = list(Source.objects.order_by("code"))
    for source in sources:
        source.stale = freshness.is_stale(source, now, minutes)  # type: ignore[attr-defined]
    return sources


def outbox_matching(*, status: str = "", type: str = "", search: str = "") -> QuerySet[OutboxMessage]:
    """Outbound messages, newest first, by status, type and a message id or order number."""
    found = OutboxMessage.objects.select_related("replayed_by").order_by("-id")
    if status:
        found = found.filter(status=status)
    if type:
        found = found.filter(type=type)
    search = search.strip()
    if search:
        found = found.filter(Q(message_id=search) | Q(payload__order=search))
    return found


def outbox_counts() -> dict[str, int]:
    """How many messages are in each status (every status present, zero when none)."""
    counts = dict.fromkeys(OutboxStatus.values, 0)
    counts.update(OutboxMessage.objects.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return counts
