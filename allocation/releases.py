"""Release to execution in waves (capability 6): reserved lines go to the WMS in rank order,
within each location's capacity for its day and before its cutoff.

A wave at a location considers every open line holding reserved or pinned **on-hand**
allocations there confirmed for the location's business date or earlier (inbound supply is
released once received). It takes them in rank order (the rank of each line's latest
decision), a ship-complete order as one unit at the rank of its highest-ranked line, and:

- holds back a line on credit hold, and a ship-complete order not fully covered from on-hand
  on every open line (all lines or none);
- sends a unit worth more than its ``auto_release_max_value`` (the line's value, quantity x
  unit price, as for a planner's release) to an approver instead: one four-eyes approval
  request (kind ``line.release``) through ``exceptions.approvals``; approving releases it with
  the wave's id; a pending request is not asked again, a rejected one not again that day;
- releases the rest while the location's capacity for the day lasts: ``release_capacity_per_day``
  lines, less the distinct lines already released there that business date (any release,
  wave or not: :class:`~allocation.models.LineRelease`); a unit that does not fit is held back
  and smaller units after it may still fit. No capacity set: unlimited.

Each release changes the allocations to ``released`` (never taken back by a run), records a
``LineRelease`` and writes ``order.released`` with the wave's id, in the wave's transaction.
Everything is set-based: a fixed number of queries whatever the number of lines.

The business date of a location is the pinned ``ALLOT_BUSINESS_DATE`` when set, else today in
the location's time zone (``Location.timezone``, else ``TIME_ZONE``). Waves start on demand
(screen, API, ``manage.py release``) or from beat before each cutoff
(:func:`start_scheduled_waves`). One wave runs per location at a time (a partial unique
constraint on running waves): a second planner is told which wave runs.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from allocation.choices import (
    AllocationState,
    HoldReason,
    LineStatus,
    OrderStatus,
    WaveOutcome,
    WaveStatus,
    WaveTrigger,
)
from allocation.errors import WaveAlreadyRunning, WaveError
from allocation.models import (
    Allocation,
    LineDecisionCurrent,
    LineRelease,
    Location,
    OrderLine,
    Wave,
    WaveLine,
)

logger = logging.getLogger(__name__)

APPROVAL_KIND_LINE_RELEASE = "line.release"
RELEASABLE_STATES = (AllocationState.RESERVED, AllocationState.PINNED)
COVERING_STATES = (AllocationState.RESERVED, AllocationState.PINNED, AllocationState.RELEASED)
SCHEDULE_USERNAME = "release-schedule"
UNRANKED = 10**9
CHUNK = 5000  # ids per IN list (SQLite's parameter limit)
ZERO = Decimal(0)


# --------------------------------------------------------------------------- days and cutoffs


def location_zone(location: Location) -> ZoneInfo:
    """The location's time zone; ``TIME_ZONE`` when it names none or an unknown one."""
    for name in (location.timezone, settings.TIME_ZONE, "UTC"):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def location_business_date(location: Location, now: dt.datetime | None = None) -> dt.date:
    """The pinned business date, else the date at the location (its own time zone) at ``now``."""
    pinned = getattr(settings, "ALLOT_BUSINESS_DATE", None)
    if pinned is not None:
        return pinned
    return (now or timezone.now()).astimezone(location_zone(location)).date()


def cutoff_on(location: Location, day: dt.date) -> dt.datetime | None:
    """The location's cutoff on ``day`` as an aware instant (None without a cutoff)."""
    if location.cutoff_time is None:
        return None
    return dt.datetime.combine(day, location.cutoff_time, tzinfo=location_zone(location))


def released_line_ids(location: Location, day: dt.date) -> set[int]:
    """Lines released at ``location`` on business date ``day`` (what its capacity counts)."""
    return set(LineRelease.objects.filter(location=location, business_date=day).values_list("line_id", flat=True))


@dataclass(frozen=True)
class Capacity:
    """A location's day: capacity (None = unlimited), lines released so far, what is left."""

    day: dt.date
    capacity: int | None
    used: int
    cutoff_at: dt.datetime | None

    @property
    def remaining(self) -> int | None:
        return None if self.capacity is None else max(self.capacity - self.used, 0)


def capacity_today(location: Location, now: dt.datetime | None = None, *, used: int | None = None) -> Capacity:
    """The location's day now; ``used`` when the caller counted it already (``released_counts``)."""
    day = location_business_date(location, now)
    return Capacity(
        day=day, capacity=location.release_capacity_per_day,
        used=len(released_line_ids(location, day)) if used is None else used,
        cutoff_at=cutoff_on(location, day),
    )


def released_counts(locations: list[Location], now: dt.datetime | None = None) -> dict[int, int]:
    """Lines released today at each location (each on its own business date), one grouped query."""
    days = {location.pk: location_business_date(location, now) for location in locations}
    counts: dict[int, int] = {pk: 0 for pk in days}
    for location_id, day, lines in (
        LineRelease.objects.filter(location_id__in=list(days), business_date__in=set(days.values()))
        .values("location_id", "business_date").annotate(lines=Count("line_id", distinct=True))
        .values_list("location_id", "business_date", "lines")
    ):
        if days[location_id] == day:
            counts[location_id] = lines
    return counts


# --------------------------------------------------------------------------- planning


@dataclass
class PlannedLine:
    """One line a wave considers and what it does with it."""

    line_id: int
    order_number: str
    line_number: int
    sku: str
    rank: int | None
    quantity: Decimal
    value: Decimal
    outcome: str = WaveOutcome.RELEASED
    reason: str = ""
    detail: str = ""
    allocation_ids: list[int] = field(default_factory=list)

    @property
    def reason_label(self) -> str:
        return HoldReason(self.reason).label if self.reason in HoldReason.values else self.reason


@dataclass
class PlannedUnit:
    """Lines released together or not at all: one line, or a ship-complete order's lines here."""

    lines: list[PlannedLine]
    order_id: int
    ship_complete: bool
    rank: int
    why_approval: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return self.lines[0].outcome


@dataclass
class WavePlan:
    """What a wave at ``location`` would do now: its day, capacity and every unit in rank order."""

    location: Location
    capacity: Capacity
    units: list[PlannedUnit]

    @property
    def lines(self) -> list[PlannedLine]:
        return [line for unit in self.units for line in unit.lines]

    def count(self, outcome: str) -> int:
        return sum(1 for line in self.lines if line.outcome == outcome)

    @property
    def released(self) -> list[PlannedLine]:
        return [line for line in self.lines if line.outcome == WaveOutcome.RELEASED]

    @property
    def held(self) -> list[PlannedLine]:
        return [line for line in self.lines if line.outcome != WaveOutcome.RELEASED]

    @property
    def released_quantity(self) -> Decimal:
        return sum((line.quantity for line in self.released), ZERO)

    @property
    def slots_used(self) -> int:
        return len({line.line_id for line in self.released})


def _candidates(location: Location, day: dt.date):
    return Allocation.objects.filter(
        location=location,
        state__in=RELEASABLE_STATES,
        supply__isnull=True,
        confirmed_date__lte=day,
        line__status=LineStatus.OPEN,
        line__order__status=OrderStatus.OPEN,
    )


def _settings_by_line(rows: dict[int, tuple]) -> dict[int, Decimal | None]:
    """Each line's effective ``auto_release_max_value`` (resolved once per scope combination)."""
    from allocation.policy_bridge import active_context, dimension_values

    context = active_context()
    result: dict[int, Decimal | None] = {}
    for pk, row in rows.items():
        values = dimension_values(SimpleNamespace(
            customer=row["customer"], customer_segment=row["segment"], customer_tier=row["tier"],
            channel=row["channel"], order_kind=row["order_kind"], item=row["sku"], item_class=row["item_class"],
            ship_from=row["ship_from"], home_location=row["home"], customer_region=row["region"],
        ))
        result[pk] = context.settings_for(values).auto_release_max_value
    return result


def _approval_states(line_ids: Any, day: dt.date) -> tuple[dict[int, int], set[int]]:
    """Pending ``line.release`` requests by line, and lines whose release was rejected on ``day``."""
    from django.contrib.contenttypes.models import ContentType

    from exceptions.choices import ApprovalStatus
    from exceptions.models import ApprovalRequest

    pending: dict[int, int] = {}
    rejected: set[int] = set()
    rows = ApprovalRequest.objects.filter(
        Q(status=ApprovalStatus.PENDING) | Q(status=ApprovalStatus.REJECTED, payload__business_date=day.isoformat()),
        kind=APPROVAL_KIND_LINE_RELEASE, subject_type=ContentType.objects.get_for_model(OrderLine),
        subject_id__in=line_ids,
    ).values_list("pk", "status", "subject_id", "payload")
    for pk, status, subject_id, payload in rows:
        if status == ApprovalStatus.REJECTED:
            rejected.add(subject_id)
            continue
        pending.setdefault(subject_id, pk)
        # A ship-complete request covers every line in its payload; a pending one blocks them all.
        for line_id in (payload or {}).get("line_ids", []):
            pending.setdefault(int(line_id), pk)
    return pending, rejected


def uncovered_lines(order_ids: set[int], day: dt.date) -> dict[int, list[str]]:
    """For ship-complete orders: the open line numbers of each not fully covered from on-hand
    (reserved, pinned or released, at any location) confirmed by ``day``. Two queries."""
    uncovered: dict[int, list[str]] = defaultdict(list)
    if not order_ids:
        return uncovered
    covered = dict(
        Allocation.objects.filter(
            line__order_id__in=order_ids, state__in=COVERING_STATES, supply__isnull=True, confirmed_date__lte=day,
        ).values("line_id").annotate(total=Sum("quantity")).values_list("line_id", "total")
    )
    for pk, order_id, number, quantity, shipped in OrderLine.objects.filter(
        order_id__in=order_ids, status=LineStatus.OPEN
    ).values_list("pk", "order_id", "line", "quantity", "shipped_quantity"):
        if covered.get(pk, ZERO) < quantity - shipped:
            uncovered[order_id].append(str(number))
    return uncovered


def plan_wave(location: Location, *, now: dt.datetime | None = None) -> WavePlan:
    """What a wave at ``location`` would release and hold back now, changing nothing.

    Eight queries whatever the number of lines: the candidate allocations, their lines, the
    lines' current ranks, the ship-complete orders' coverage, today's releases, the policy, and
    the approval requests.
    """
    capacity = capacity_today(location, now)
    day = capacity.day
    allocations: dict[int, list[tuple[int, Decimal]]] = defaultdict(list)
    for pk, line_id, quantity in _candidates(location, day).order_by("id").values_list("id", "line_id", "quantity"):
        allocations[line_id].append((pk, quantity))
    if not allocations:
        return WavePlan(location=location, capacity=capacity, units=[])
    # The candidates as a subquery, not a list of ids: no parameter limit, one plan per query.
    candidate_lines = _candidates(location, day).values("line_id")
    line_fields = (
        "pk", "order_id", "order__number", "line", "item__sku", "item__item_class", "quantity", "shipped_quantity",
        "unit_price", "order__ship_complete", "order__credit_hold", "order__customer__credit_hold",
        "order__customer__code", "order__customer__segment", "order__customer__tier", "order__channel",
        "order__kind", "order__customer__region", "ship_from__code", "order__customer__home_location__code",
    )
    names = (
        "pk", "order_id", "order", "line", "sku", "item_class", "quantity", "shipped", "price", "ship_complete",
        "order_hold", "customer_hold", "customer", "segment", "tier", "channel", "order_kind", "region", "ship_from",
        "home",
    )
    lines = {
        row[0]: dict(zip(names, row, strict=True))
        for row in OrderLine.objects.filter(pk__in=candidate_lines).values_list(*line_fields)
    }
    ranks = dict(LineDecisionCurrent.objects.filter(line_id__in=candidate_lines).values_list("line_id", "log__rank"))
    thresholds = _settings_by_line(lines)
    pending, rejected = _approval_states(candidate_lines, day)

    uncovered = uncovered_lines({row["order_id"] for row in lines.values() if row["ship_complete"]}, day)

    units_by_key: dict[tuple, PlannedUnit] = {}
    for pk, row in lines.items():
        quantity = sum((q for _, q in allocations[pk]), ZERO)
        planned = PlannedLine(
            line_id=pk, order_number=row["order"], line_number=row["line"], sku=row["sku"], rank=ranks.get(pk),
            quantity=quantity, value=(row["quantity"] * row["price"]).quantize(Decimal("0.0001")),
            allocation_ids=[a for a, _ in allocations[pk]],
        )
        key = ("order", row["order_id"]) if row["ship_complete"] else ("line", pk)
        unit = units_by_key.get(key)
        rank = ranks.get(pk) or UNRANKED
        if unit is None:
            units_by_key[key] = PlannedUnit(lines=[planned], order_id=row["order_id"], ship_complete=row["ship_complete"], rank=rank)
        else:
            unit.lines.append(planned)
            unit.rank = min(unit.rank, rank)
    units = sorted(units_by_key.values(), key=lambda u: (u.rank, u.lines[0].order_number, min(x.line_number for x in u.lines)))
    for unit in units:
        unit.lines.sort(key=lambda x: x.line_number)

    already = released_line_ids(location, day)
    remaining = capacity.remaining
    for unit in units:
        rows = [lines[x.line_id] for x in unit.lines]
        if any(r["order_hold"] or r["customer_hold"] for r in rows):
            _hold(unit, HoldReason.CREDIT_HOLD, "the order or its customer is on credit hold")
            continue
        if unit.ship_complete and uncovered.get(unit.order_id):
            _hold(unit, HoldReason.SHIP_COMPLETE_INCOMPLETE,
                  f"ship-complete: line(s) {', '.join(uncovered[unit.order_id])} not fully covered from on-hand today")
            continue
        waiting = [pending[x.line_id] for x in unit.lines if x.line_id in pending]
        if waiting:
            _hold(unit, HoldReason.AWAITING_APPROVAL, f"approval request #{waiting[0]} is waiting for an approver")
            continue
        why = []
        for planned in unit.lines:
            threshold = thresholds.get(planned.line_id)
            if threshold is not None and planned.value > threshold:
                why.append(
                    f"{planned.order_number}/{planned.line_number} is worth {planned.value:.2f}, above the "
                    f"{threshold:.2f} released without approval"
                )
        if why:
            if any(x.line_id in rejected for x in unit.lines):
                _hold(unit, HoldReason.APPROVAL_REJECTED, "an approver rejected this release today")
                continue
            unit.why_approval = why
            for planned in unit.lines:
                planned.outcome = WaveOutcome.APPROVAL
                planned.reason = HoldReason.APPROVAL_REQUIRED
                planned.detail = "; ".join(why)[:300]
            continue
        slots = sum(1 for x in unit.lines if x.line_id not in already)
        if remaining is not None and slots > remaining:
            reason = HoldReason.SHIP_COMPLETE_CAPACITY if unit.ship_complete and len(unit.lines) > 1 else HoldReason.CAPACITY
            _hold(unit, reason, f"needs {slots} of today's capacity, {remaining} left")
            continue
        if remaining is not None:
            remaining -= slots
        already.update(x.line_id for x in unit.lines)
    return WavePlan(location=location, capacity=capacity, units=units)


def _hold(unit: PlannedUnit, reason: str, detail: str) -> None:
    for planned in unit.lines:
        planned.outcome = WaveOutcome.HELD
        planned.reason = reason
        planned.detail = detail[:300]


# --------------------------------------------------------------------------- releasing


def record_line_releases(
    entries: list[tuple[int, int, Decimal]], *, location: Location, wave: Wave | None, actor: Any, day: dt.date | None = None
) -> None:
    """Record releases ``(line id, location id, quantity)`` (one bulk insert); capacity counts them."""
    now = timezone.now()
    day = day or location_business_date(location)
    LineRelease.objects.bulk_create(
        [
            LineRelease(
                line_id=line_id, location_id=location_id, quantity=quantity, business_date=day, wave=wave,
                actor=actor if getattr(actor, "is_authenticated", False) else None, released_at=now,
            )
            for line_id, location_id, quantity in entries
        ],
        batch_size=1000,
    )


def record_released_rows(line_id: int, released: list[tuple[int, str, Decimal]], *, actor: Any = None) -> None:
    """Record a release made outside a wave (``overrides.release_line``): rows are
    ``(allocation id, location code, quantity)``; each location's business date applies."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for _pk, code, quantity in released:
        totals[code] += Decimal(quantity)
    locations = {loc.code: loc for loc in Location.objects.filter(code__in=list(totals))}
    now = timezone.now()
    LineRelease.objects.bulk_create([
        LineRelease(
            line_id=line_id, location=locations[code], quantity=quantity,
            business_date=location_business_date(locations[code], now), released_at=now,
            actor=actor if getattr(actor, "is_authenticated", False) else None,
        )
        for code, quantity in sorted(totals.items())
    ])


def release_allocations(allocation_ids: list[int], *, location: Location, wave: Wave | None, actor: Any,
                        day: dt.date | None = None) -> tuple[int, Decimal]:
    """Release the given allocations (those still reserved or pinned) to the warehouse: state
    ``released``, a ``LineRelease`` per line and an ``order.released`` per line and location
    carrying the wave's id. The caller holds the transaction. Returns (lines, quantity)."""
    from integrations import outbox

    rows: list[tuple] = []
    for start in range(0, len(allocation_ids), CHUNK):
        rows += (
            Allocation.objects.select_for_update(of=("self",))
            .filter(id__in=allocation_ids[start : start + CHUNK], state__in=RELEASABLE_STATES)
            .values_list("id", "line_id", "location_id", "location__code", "quantity", "line__order__number", "line__line")
        )
    if not rows:
        return 0, ZERO
    for start in range(0, len(rows), CHUNK):
        Allocation.objects.filter(id__in=[row[0] for row in rows[start : start + CHUNK]]).update(
            state=AllocationState.RELEASED
        )
    by_line: dict[int, list[tuple]] = defaultdict(list)
    for row in rows:
        by_line[row[1]].append(row)
    outbox.record_releases(
        [
            {
                "line_id": line_id, "order": line_rows[0][5], "line": line_rows[0][6],
                "released": [(pk, code, quantity) for pk, _l, _loc, code, quantity, _o, _n in line_rows],
            }
            for line_id, line_rows in sorted(by_line.items())
        ],
        wave=wave.pk if wave is not None else None,
    )
    totals: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    for _pk, line_id, location_id, _code, quantity, _o, _n in rows:
        totals[(line_id, location_id)] += quantity
    record_line_releases(
        [(line_id, location_id, quantity) for (line_id, location_id), quantity in sorted(totals.items())],
        location=location, wave=wave, actor=actor, day=day,
    )
    return len(by_line), sum((row[4] for row in rows), ZERO)


def _schedule_user() -> Any:
    """The account scheduled waves request approvals as (never an approver: it cannot sign in)."""
    from django.contrib.auth import get_user_model

    user, created = get_user_model().objects.get_or_create(username=SCHEDULE_USERNAME, defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _request_approvals(wave: Wave, units: list[PlannedUnit], *, actor: Any, day: dt.date) -> dict[int, Any]:
    """One four-eyes request per unit above its release threshold (bulk, with history)."""
    from django.contrib.contenttypes.models import ContentType
    from simple_history.utils import bulk_create_with_history

    from exceptions.models import ApprovalRequest

    if not units:
        return {}
    requester = actor if getattr(actor, "is_authenticated", False) else _schedule_user()
    line_type = ContentType.objects.get_for_model(OrderLine)
    requests = [
        ApprovalRequest(
            kind=APPROVAL_KIND_LINE_RELEASE,
            subject_type=line_type,
            subject_id=unit.lines[0].line_id,
            requested_by=requester,
            request_note=(
                f"release {', '.join(f'{x.order_number}/{x.line_number}' for x in unit.lines)} at "
                f"{wave.location.code} (wave #{wave.pk})"
            )[:1000],
            payload={
                "wave": wave.pk, "location": wave.location.code, "business_date": day.isoformat(),
                "line_ids": [x.line_id for x in unit.lines], "why_approval": unit.why_approval,
            },
        )
        for unit in units
    ]
    created = bulk_create_with_history(requests, ApprovalRequest, default_change_reason="requested: release above auto_release_max_value")
    if not all(r.pk for r in created):  # SQLite before 3.35 returns no keys: read them back
        created = list(ApprovalRequest.objects.filter(
            kind=APPROVAL_KIND_LINE_RELEASE, status="pending", payload__wave=wave.pk
        ))
    return {r.subject_id: r for r in created}


def _fail_lost_waves(location: Location) -> None:
    """A wave left running by a process that died would block the location: fail it after a while."""
    limit = timezone.now() - dt.timedelta(seconds=settings.ALLOT_WAVE_LOST_SECONDS)
    Wave.objects.filter(location=location, status=WaveStatus.RUNNING, started_at__lt=limit).update(
        status=WaveStatus.FAILED, error="lost: still running after ALLOT_WAVE_LOST_SECONDS", finished_at=timezone.now()
    )


def start_wave(location: Location, *, actor: Any, trigger: str = WaveTrigger.PLANNER, now: dt.datetime | None = None) -> Wave:
    """Record a running wave (committed at once, so a second one at this location is refused).

    Raises :class:`WaveAlreadyRunning` naming the running wave when one is running.
    """
    _fail_lost_waves(location)
    day = location_business_date(location, now)
    try:
        with transaction.atomic():
            return Wave.objects.create(
                location=location, business_date=day, cutoff_at=cutoff_on(location, day), trigger=trigger,
                started_by=actor if getattr(actor, "is_authenticated", False) else None,
                status=WaveStatus.RUNNING, capacity=location.release_capacity_per_day, started_at=timezone.now(),
            )
    except IntegrityError:
        running = Wave.objects.filter(location=location, status=WaveStatus.RUNNING).order_by("-id").first()
        who = f" started by {running.started_by_label}" if running else ""
        raise WaveAlreadyRunning(
            f"A release wave is already running at {location.code}{f' (wave #{running.pk}{who})' if running else ''}; "
            "it releases what is ready: look at its result.",
            wave_id=running.pk if running else None,
        ) from None


def execute_wave(wave: Wave, *, actor: Any, now: dt.datetime | None = None) -> Wave:
    """Plan and apply a started wave in one transaction; record its lines and counts.

    The run locks of the items concerned are taken first (``allocation.locks``), so no run
    rewrites an allocation while the wave releases it. A failure rolls everything back and
    marks the wave ``failed`` with the error.
    """
    from allocation.locks import lock_run_scope

    started = time.perf_counter()
    location = wave.location
    try:
        with transaction.atomic():
            skus = set(_candidates(location, wave.business_date).values_list("item__sku", flat=True).distinct())
            lock_run_scope(skus)
            plan = plan_wave(location, now=now)
            released = [x for x in plan.lines if x.outcome == WaveOutcome.RELEASED]
            released_lines, quantity = release_allocations(
                [pk for x in released for pk in x.allocation_ids], location=location, wave=wave, actor=actor,
                day=plan.capacity.day,
            )
            approvals = _request_approvals(
                wave, [u for u in plan.units if u.outcome == WaveOutcome.APPROVAL], actor=actor, day=plan.capacity.day
            )
            WaveLine.objects.bulk_create(
                [
                    WaveLine(
                        wave=wave, line_id=x.line_id, order_number=x.order_number, line_number=x.line_number, sku=x.sku,
                        rank=x.rank, quantity=x.quantity, value=x.value, outcome=x.outcome, reason=x.reason,
                        detail=x.detail,
                        approval=approvals.get(unit.lines[0].line_id) if x.outcome == WaveOutcome.APPROVAL else None,
                    )
                    for unit in plan.units
                    for x in unit.lines
                ],
                batch_size=1000,
            )
            wave.used_before = plan.capacity.used
            wave.considered_count = len(plan.lines)
            wave.released_count = released_lines
            wave.released_quantity = quantity
            wave.approval_count = plan.count(WaveOutcome.APPROVAL)
            wave.held_count = wave.considered_count - released_lines
            wave.status = WaveStatus.SUCCEEDED
            wave.finished_at = timezone.now()
            wave.duration_ms = int((time.perf_counter() - started) * 1000)
            wave.save()
    except Exception as error:  # recorded on the wave: a failed wave is a result, not a crash
        logger.exception("release wave #%s at %s failed", wave.pk, location.code)
        Wave.objects.filter(pk=wave.pk).update(
            status=WaveStatus.FAILED, error=f"{type(error).__name__}: {error}"[:5000], finished_at=timezone.now(),
            duration_ms=int((time.perf_counter() - started) * 1000),
        )
        wave.refresh_from_db()
    return wave


def run_wave(
    location: Location, actor: Any = None, preview: bool = False, *, trigger: str = WaveTrigger.PLANNER,
    now: dt.datetime | None = None,
) -> Wave | WavePlan:
    """Run a release wave at ``location`` now (or, with ``preview``, return what it would do).

    Returns the finished :class:`Wave` (``succeeded`` or ``failed`` with its error), or the
    :class:`WavePlan` for a preview. Raises :class:`WaveAlreadyRunning` when a wave is running there.
    """
    if preview:
        return plan_wave(location, now=now)
    wave = start_wave(location, actor=actor, trigger=trigger, now=now)
    return execute_wave(wave, actor=actor, now=now)


def location_for_code(code: str) -> Location:
    location = Location.objects.filter(code=code).first()
    if location is None:
        raise WaveError(f"There is no location {code}.", field="location")
    return location


# --------------------------------------------------------------------------- schedule


def due_locations(now: dt.datetime, lead_minutes: int) -> list[Location]:
    """Locations whose cutoff today (their own time zone) is within ``lead_minutes`` of ``now``
    and not yet passed, and which have had no scheduled wave this business date."""
    due: list[Location] = []
    locations = list(Location.objects.filter(cutoff_time__isnull=False).order_by("code"))
    days = {location.pk: location_business_date(location, now) for location in locations}
    done = {
        location_id
        for location_id, day in Wave.objects.filter(
            trigger=WaveTrigger.SCHEDULE, status__in=[WaveStatus.RUNNING, WaveStatus.SUCCEEDED],
            location_id__in=list(days), business_date__in=set(days.values()),
        ).values_list("location_id", "business_date")
        if days[location_id] == day
    }
    lead = dt.timedelta(minutes=lead_minutes)
    for location in locations:
        if location.pk in done:
            continue
        local_day = now.astimezone(location_zone(location)).date()
        cutoff = cutoff_on(location, local_day)
        if cutoff is not None and cutoff - lead <= now < cutoff:
            due.append(location)
    return due


def start_scheduled_waves(now: dt.datetime | None = None, *, lead_minutes: int | None = None) -> list[Wave]:
    """Run a wave at every location whose cutoff is near (beat, every few minutes)."""
    now = now or timezone.now()
    lead = settings.ALLOT_RELEASE_LEAD_MINUTES if lead_minutes is None else lead_minutes
    waves = []
    for location in due_locations(now, lead):
        try:
            waves.append(run_wave(location, None, trigger=WaveTrigger.SCHEDULE, now=now))
        except WaveAlreadyRunning:
            logger.info("scheduled wave at %s skipped: a wave is running there", location.code)
    return waves


# --------------------------------------------------------------------------- approvals


def _on_release_approved(approval: Any, subject: OrderLine) -> None:
    """Release the unit the request was about (its lines still reserved here), with the wave's id."""
    payload = approval.payload or {}
    location = Location.objects.filter(code=payload.get("location")).first()
    if location is None:
        return
    line_ids = [int(pk) for pk in payload.get("line_ids", [subject.pk])]
    locked = list(
        OrderLine.objects.select_for_update(of=("self",)).filter(pk__in=line_ids)
        .values_list("order_id", "order__ship_complete")
    )
    complete = {order_id for order_id, ship_complete in locked if ship_complete}
    if uncovered_lines(complete, location_business_date(location)):
        from exceptions.errors import ApprovalNotAllowed

        raise ApprovalNotAllowed(
            "The ship-complete order is no longer fully covered from on-hand: releasing part of it would split it. "
            "Reject the request instead."
        )
    wave = Wave.objects.filter(pk=payload.get("wave")).first()
    ids = list(
        Allocation.objects.filter(
            line_id__in=line_ids, location=location, state__in=RELEASABLE_STATES, supply__isnull=True
        ).values_list("id", flat=True)
    )
    release_allocations(ids, location=location, wave=wave, actor=approval.decided_by)


def _on_release_rejected(approval: Any, subject: OrderLine) -> None:
    """Nothing changed while the request waited; the wave's record says it was held back."""


def register_approvals() -> None:
    from exceptions import approvals

    approvals.register(APPROVAL_KIND_LINE_RELEASE, on_approved=_on_release_approved, on_rejected=_on_release_rejected)
