"""Feed freshness per source (PRODUCT.md capability 7; policies-v1 ``stale_feed_minutes``).

A source's expected cadence is its own ``stale_feed_minutes``, else the global policy's. A source
silent for longer than that (counted from its last accepted event, or from its registration when
none came yet) is **stale**. One rule, used everywhere:

- ``check_freshness`` (beat, every ``ALLOT_FEED_CHECK_SECONDS``) raises one ``stale_feed``
  data-quality case per stale source (key ``stale_feed:<source>``; an active one is never raised
  twice) and resolves the case of a source that is fresh again;
- ``resolve_resumed`` resolves it at once when ingestion accepts an event from that source;
- ``allocation.loading`` discounts the on-hand of the positions a stale source feeds by
  ``stale_feed_buffer_pct`` and the run records the degraded feeds (``AllocationRun.degraded_feeds``);
- ``source_freshness`` is what the Integrations screen shows: last event, lag, status and the
  events per hour of the last day (``sparkline_svg``).

Nothing halts: a stale feed only discounts stock and raises a case. Every function takes
``now`` so a test (or a replayed clock) controls time.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from exceptions.choices import ACTIVE_STATUSES, ExceptionType, Severity
from exceptions.models import DecisionException
from integrations.models import STALE_FEED_MINUTES, Source, SourceActivity

SPARK_HOURS = 24


def exception_key(code: str) -> str:
    return f"{ExceptionType.STALE_FEED}:{code}"


def policy_cadence_minutes() -> int:
    """The global policy's ``stale_feed_minutes`` (the active version; the default without one)."""
    try:
        from allocation.policy_bridge import active_context
    except ImportError:  # pragma: no cover - allocation is always installed with integrations
        return STALE_FEED_MINUTES
    return active_context().stale_feed_minutes


def is_stale(source: Source, now: dt.datetime, default_minutes: int) -> bool:
    """The one staleness rule (see the module docstring)."""
    return source.is_stale(now, minutes=default_minutes)


def stale_source_codes(now: dt.datetime, *, default_minutes: int, codes: Iterable[str] | None = None) -> set[str]:
    """Codes of the stale sources (among ``codes`` when given): one query over the sources."""
    sources = Source.objects.only("code", "last_event_at", "created_at", "stale_feed_minutes")
    if codes is not None:
        sources = sources.filter(code__in=list(codes))
    return {source.code for source in sources if is_stale(source, now, default_minutes)}


def feed_locations(codes: Iterable[str]) -> dict[str, list[str]]:
    """The locations whose inventory positions each source feeds (``InventoryPosition.source``)."""
    from allocation.models import InventoryPosition

    found: dict[str, set[str]] = defaultdict(set)
    codes = list(codes)
    if codes:
        rows = InventoryPosition.objects.filter(source__in=codes).values_list("source", "location__code").distinct()
        for source, location in rows:
            found[source].add(location)
    return {code: sorted(found.get(code, ())) for code in codes}


def _duration(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


@dataclass
class FreshnessCheck:
    """What one check did: the sources found stale, the cases raised and resolved."""

    stale: list[str] = field(default_factory=list)
    raised: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


def _active_cases(codes: Iterable[str] | None = None) -> dict[str, str]:
    """Active ``stale_feed`` cases: source code -> case key."""
    cases = DecisionException.objects.filter(type=ExceptionType.STALE_FEED, status__in=[str(s) for s in ACTIVE_STATUSES])
    if codes is not None:
        cases = cases.filter(source__in=list(codes))
    return dict(cases.values_list("source", "key"))


def check_freshness(*, now: dt.datetime | None = None, default_minutes: int | None = None) -> FreshnessCheck:
    """Raise a ``stale_feed`` case for each stale source that has none active, and resolve the
    case of each source that is fresh again (beat calls this; see the module docstring)."""
    from integrations.services import DataQualityIssue, _open_exceptions, _resolve_exceptions

    now = now or timezone.now()
    default_minutes = default_minutes or policy_cadence_minutes()
    sources = list(Source.objects.order_by("code"))
    stale = [s for s in sources if is_stale(s, now, default_minutes)]
    active = _active_cases()
    result = FreshnessCheck(stale=[s.code for s in stale])
    fresh_with_case = {s.code: active[s.code] for s in sources if s.code in active and s not in stale}
    if fresh_with_case:
        _resolve_exceptions({key: "feed resumed" for key in fresh_with_case.values()})
        result.resolved = sorted(fresh_with_case)
    to_raise = [s for s in stale if s.code not in active]
    if to_raise:
        locations = feed_locations(s.code for s in to_raise)
        issues = []
        for source in to_raise:
            cadence = source.cadence_minutes(default_minutes)
            silent = now - source.last_heard_at
            fed = locations[source.code]
            heard = "since it was registered" if source.last_event_at is None else f"for {_duration(silent)}"
            effect = (
                f"; on-hand at {', '.join(fed[:10])}{' and more' if len(fed) > 10 else ''} is discounted by the "
                "stale-feed buffer until it resumes"
                if fed else ""
            )
            issues.append(
                DataQualityIssue(
                    kind=ExceptionType.STALE_FEED,
                    key=exception_key(source.code),
                    message=f"Source {source.code} has sent nothing {heard} (expected every {cadence} min){effect}",
                    details={
                        "source": source.code,
                        "last_event_at": source.last_event_at.isoformat() if source.last_event_at else None,
                        "cadence_minutes": cadence,
                        "silent_minutes": int(silent.total_seconds() // 60),
                        "locations": fed,
                        "checked_at": now.isoformat(),
                    },
                    source=source.code,
                    severity=Severity.HIGH if fed else Severity.MEDIUM,
                )
            )
        _open_exceptions(issues)
        result.raised = [s.code for s in to_raise]
    return result


def resolve_resumed(source_ids: Iterable[int]) -> list[str]:
    """Resolve the ``stale_feed`` case of sources an accepted event just came from (ingestion
    calls this in its transaction; one indexed query when no case is open)."""
    from integrations.services import _resolve_exceptions

    ids = list(source_ids)
    if not ids:
        return []
    codes = list(Source.objects.filter(pk__in=ids).values_list("code", flat=True))
    active = _active_cases(codes)
    if active:
        _resolve_exceptions({key: "feed resumed" for key in active.values()})
    return sorted(active)


def hour_of(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def record_activity(counts: Mapping[int, int], now: dt.datetime) -> None:
    """Add ``counts`` (source id -> events accepted) to this hour's activity: one upsert per source."""
    if not counts:
        return
    table = SourceActivity._meta.db_table
    hour = hour_of(now)
    rows = [(source_id, hour, n) for source_id, n in sorted(counts.items()) if n]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (source_id, hour, events) VALUES (%s, %s, %s) "
            f"ON CONFLICT (source_id, hour) DO UPDATE SET events = {table}.events + excluded.events",
            rows,
        )


@dataclass
class SourceFreshness:
    """One source as the Integrations screen shows it."""

    source: Source
    cadence_minutes: int
    cadence_is_own: bool
    status: str  # fresh | stale | silent (never sent, not yet stale)
    lag: dt.timedelta | None
    hourly: list[int]
    case_id: int | None = None

    @property
    def lag_text(self) -> str:
        return "—" if self.lag is None else _duration(self.lag)

    @property
    def events_last_day(self) -> int:
        return sum(self.hourly)

    @property
    def sparkline(self) -> SafeString:
        return sparkline_svg(self.hourly, label=f"events per hour from {self.source.code}, last {len(self.hourly)} hours")


def source_freshness(*, now: dt.datetime | None = None, default_minutes: int | None = None, hours: int = SPARK_HOURS) -> list[SourceFreshness]:
    """Every source with its cadence, status, lag and events per hour (oldest hour first): three queries."""
    now = now or timezone.now()
    default_minutes = default_minutes or policy_cadence_minutes()
    sources = list(Source.objects.order_by("code"))
    first_hour = hour_of(now) - dt.timedelta(hours=hours - 1)
    counts: dict[int, Counter] = defaultdict(Counter)
    for source_id, hour, n in SourceActivity.objects.filter(hour__gte=first_hour).values_list("source_id", "hour", "events"):
        counts[source_id][hour_of(hour)] += n
    cases = dict(
        DecisionException.objects.filter(type=ExceptionType.STALE_FEED, status__in=[str(s) for s in ACTIVE_STATUSES])
        .values_list("source", "pk")
    )
    found = []
    for source in sources:
        stale = is_stale(source, now, default_minutes)
        status = "stale" if stale else ("silent" if source.last_event_at is None else "fresh")
        hourly = [counts[source.pk][first_hour + dt.timedelta(hours=i)] for i in range(hours)]
        found.append(
            SourceFreshness(
                source=source,
                cadence_minutes=source.cadence_minutes(default_minutes),
                cadence_is_own=source.stale_feed_minutes is not None,
                status=status,
                lag=None if source.last_event_at is None else max(now - source.last_event_at, dt.timedelta(0)),
                hourly=hourly,
                case_id=cases.get(source.code),
            )
        )
    return found


def sparkline_svg(values: list[int], *, label: str, width: int = 120, height: int = 24) -> SafeString:
    """An inline SVG bar chart of ``values`` (no script, no external asset): one bar per value,
    each with a ``<title>`` tooltip; an empty series draws a flat baseline."""
    count = max(len(values), 1)
    peak = max(values, default=0)
    step = width / count
    bars: list[tuple[Any, ...]] = []
    for index, value in enumerate(values):
        bar_height = 0 if peak == 0 else max(1.0, value / peak * (height - 2))
        hours_ago = count - 1 - index
        bars.append((
            f"{index * step + 0.5:.1f}", f"{height - bar_height:.1f}", f"{max(step - 1, 1):.1f}", f"{bar_height:.1f}",
            f"{value} event{'s' if value != 1 else ''}, {'this hour' if hours_ago == 0 else f'{hours_ago} h ago'}",
        ))
    rects = format_html_join(
        "", '<rect x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>', bars
    )
    return format_html(
        '<svg class="sparkline" role="img" aria-label="{}" width="{}" height="{}" viewBox="0 0 {} {}">'
        '<line x1="0" y1="{}" x2="{}" y2="{}" class="baseline"></line>{}</svg>',
        label, width, height, width, height, height - 0.5, width, height - 0.5, rects,
    )


def set_cadence(code: str, minutes: int | None, *, actor: Any) -> Source:
    """Set a source's own cadence (``None``: the policy's), with history under ``actor``."""
    from django.db import transaction

    with transaction.atomic():
        source = Source.objects.select_for_update().get(code=code)
        source.stale_feed_minutes = minutes
        source._history_user = actor  # type: ignore[attr-defined]
        source._change_reason = "cadence set" if minutes else "cadence cleared (policy default)"  # type: ignore[attr-defined]
        source.save(update_fields=["stale_feed_minutes"])
    return source
