"""Process KPIs (PRODUCT.md capability 9): every definition in one place, each one set-based query.

A :class:`Kpi` has a code, a name, a one-sentence definition (shown on the dashboard and in
the API), a unit, the roles it is for, the segment it breaks down by (or none), and one
function that computes its points from the database as of a moment: a list of
:class:`Point` (``segment`` "" = the whole book). Each function is a handful of aggregate
queries whatever the size of the book; nothing loops over lines in Python except where a
percentile needs the sorted values (cycle time), which are read as one column.

Daily values are kept by :func:`snapshot` (``KpiSnapshot``, one row per day, KPI and segment)
so dashboards show trends; ``drill_url`` names the filtered list behind a number.
"""
from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Greatest
from django.urls import reverse
from django.utils import timezone

from allocation.choices import AllocationState, LineStatus
from allocation.dates import business_today
from allocation.models import Allocation, AllocationRun, LineDecisionCurrent, Order, OrderLine
from config import roles

ZERO = Decimal(0)
MONEY = DecimalField(max_digits=20, decimal_places=2)
QTY = DecimalField(max_digits=20, decimal_places=3)
AGE_BANDS: tuple[tuple[str, dt.timedelta | None], ...] = (
    ("< 1 h", dt.timedelta(hours=1)),
    ("1–4 h", dt.timedelta(hours=4)),
    ("4–24 h", dt.timedelta(hours=24)),
    ("1–3 d", dt.timedelta(days=3)),
    ("> 3 d", None),
)


@dataclass(frozen=True)
class Point:
    segment: str
    value: float | None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """When the KPIs are computed: ``now`` (timestamps) and ``as_of`` (the business date)."""

    now: dt.datetime
    as_of: dt.date

    @classmethod
    def current(cls) -> Context:
        return cls(now=timezone.now(), as_of=business_today())


@dataclass(frozen=True)
class Kpi:
    code: str
    name: str
    definition: str
    unit: str  # "%", "lines", "value", "ms", "cases", "events", "minutes", "touches", "qty"
    roles: tuple[str, ...]
    compute: Callable[[Context], list[Point]]
    segment_by: str = ""  # what the segments are ("" = one figure)
    drill: Callable[[str], str | None] | None = None
    higher_is_better: bool = True
    drill_noun: str = ""  # what the drill-down lists ("" = from the unit)
    segment_unit: str = ""  # the segments' unit when it differs from the figure's

    def points(self, ctx: Context | None = None) -> list[Point]:
        with _without_jit():
            return self.compute(ctx or Context.current())

    def total(self, ctx: Context | None = None) -> float | None:
        """The whole-book figure ("" segment), when the KPI has one."""
        for point in self.points(ctx):
            if point.segment == "":
                return point.value
        return None

    def drill_url(self, segment: str = "") -> str | None:
        return self.drill(segment) if self.drill is not None else None

    @property
    def drill_link(self) -> str | None:
        """The filtered list behind the whole-book figure (templates cannot call ``drill``)."""
        return self.drill_url("")


# --------------------------------------------------------------------------- building blocks


@contextmanager
def _without_jit():
    """PostgreSQL's JIT off while a KPI is computed: the planner's estimate for the per-line
    subqueries of the fill rates makes it compile them, ~0.9 s of a 1.6 s query at 100k lines."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('jit'), set_config('jit', 'off', false)")
        before = cursor.fetchone()[0]
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        if not (failed and connection.in_atomic_block):  # a rollback restores it in an aborted transaction
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('jit', %s, false)", [before])


def _pct(part: float | int | Decimal, whole: float | int | Decimal) -> float | None:
    return None if not whole else round(float(part) * 100.0 / float(whole), 2)


def open_lines():
    """Open order lines of orders (quotes hold stock but are not demand to fill)."""
    return OrderLine.objects.filter(status=LineStatus.OPEN, order__kind="order")


def _due(as_of: dt.date):
    return Greatest(Coalesce("order__promised_date", "order__requested_date"), Value(as_of))


def lines_with_cover(as_of: dt.date):
    """Open lines annotated with ``open_qty``, ``covered`` (all allocations) and ``on_time``
    (allocations confirmed by the line's due date: allocation.md)."""
    covered = (
        Allocation.objects.filter(line=OuterRef("pk")).order_by().values("line")
        .annotate(total=Sum("quantity")).values("total")
    )
    on_time = (
        Allocation.objects.filter(line=OuterRef("pk"), confirmed_date__lte=OuterRef("due")).order_by()
        .values("line").annotate(total=Sum("quantity")).values("total")
    )
    return open_lines().annotate(
        due=_due(as_of),
        open_qty=ExpressionWrapper(F("quantity") - F("shipped_quantity"), output_field=QTY),
        covered=Coalesce(Subquery(covered, output_field=QTY), Value(ZERO), output_field=QTY),
        on_time=Coalesce(Subquery(on_time, output_field=QTY), Value(ZERO), output_field=QTY),
    )


def _list_url(name: str, **params: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items() if value not in (None, ""))
    return reverse(name) + (f"?{query}" if query else "")


# --------------------------------------------------------------------------- fill, backorders, splits


FILL_DIMENSIONS = {
    "segment": "order__customer__segment",
    "channel": "order__channel",
    "tier": "order__customer__tier",
    "location": "location_code",
}


def _fill_rate(by: str) -> Callable[[Context], list[Point]]:
    def compute(ctx: Context) -> list[Point]:
        lines = lines_with_cover(ctx.as_of)
        if by == "location":
            lines = lines.annotate(location_code=Coalesce("ship_from__code", "order__customer__home_location__code"))
        otif = Q(on_time__gte=F("open_qty"))
        rows = list(lines.values(FILL_DIMENSIONS[by]).annotate(n=Count("id"), otif=Count("id", filter=otif)).order_by(
            FILL_DIMENSIONS[by]
        ))
        # Every line is in exactly one group (no value: the "—" group): the book's figure is their sum.
        total = {"n": sum(row["n"] for row in rows), "otif": sum(row["otif"] for row in rows)}
        points = [Point("", _pct(total["otif"], total["n"]), {"lines": total["n"], "otif": total["otif"]})]
        for row in rows:
            points.append(Point(str(row[FILL_DIMENSIONS[by]] or "—"), _pct(row["otif"], row["n"]),
                                {"lines": row["n"], "otif": row["otif"]}))
        return points

    return compute


def _backorders(ctx: Context) -> list[Point]:
    short = lines_with_cover(ctx.as_of).filter(covered__lt=F("open_qty"))
    totals = short.aggregate(
        n=Count("id"),
        value=Coalesce(Sum(ExpressionWrapper((F("open_qty") - F("covered")) * F("unit_price"), output_field=MONEY)),
                       Value(ZERO), output_field=MONEY),
    )
    return [Point("", float(totals["n"]), {"value": float(totals["value"])})]


def _backorder_value(ctx: Context) -> list[Point]:
    [point] = _backorders(ctx)
    return [Point("", point.extra["value"], {"lines": point.value})]


def _split_shipments(ctx: Context) -> list[Point]:
    allocated = Allocation.objects.filter(line__status=LineStatus.OPEN).order_by().values("line").annotate(
        places=Count("location", distinct=True)
    )
    lines = allocated.count()
    split = allocated.filter(places__gt=1).count()
    return [Point("", _pct(split, lines), {"split_lines": split, "allocated_lines": lines})]


def _substitution_rate(ctx: Context) -> list[Point]:
    allocated = Allocation.objects.filter(line__status=LineStatus.OPEN)
    lines = allocated.values("line").distinct().count()
    substituted = allocated.exclude(item_id=F("line__item_id")).values("line").distinct().count()
    return [Point("", _pct(substituted, lines), {"substituted_lines": substituted, "allocated_lines": lines})]


# --------------------------------------------------------------------------- touches


def _touched_line_ids():
    """Lines a person acted on: a pinned (overridden) allocation, a case a person changed, a
    promise a planner deferred."""
    from exceptions.models import DecisionException, PromiseChange

    history = DecisionException.history.model
    return (
        set(Allocation.objects.filter(state=AllocationState.PINNED).values_list("line_id", flat=True).distinct())
        | set(history.objects.filter(history_user__isnull=False, line_id__isnull=False)
              .values_list("line_id", flat=True).distinct())
        | set(PromiseChange.objects.values_list("line_id", flat=True).distinct())
    )


def _touchless(ctx: Context) -> list[Point]:
    decided = LineDecisionCurrent.objects.filter(line__status=LineStatus.OPEN)
    total = decided.count()
    touched = decided.filter(line_id__in=_touched_line_ids()).count()
    return [Point("", _pct(total - touched, total), {"decided_lines": total, "touched_lines": touched})]


def _touches_per_order(ctx: Context) -> list[Point]:
    from exceptions.models import DecisionException, PromiseChange

    history = DecisionException.history.model
    touches = history.objects.filter(history_user__isnull=False).exclude(history_type="+").count()
    touches += PromiseChange.objects.count()
    orders = Order.objects.filter(lines__status=LineStatus.OPEN).distinct().count()
    value = None if not orders else round(touches / orders, 3)
    return [Point("", value, {"touches": touches, "orders": orders})]


# --------------------------------------------------------------------------- cycle time


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 1)


def _cycle_time(ctx: Context, days: int = 1) -> list[Point]:
    """Event stored → decisions committed: for each event applied in the last ``days``, the
    first successful (real) run that finished after the event was applied."""
    from integrations.models import Event

    since = ctx.now - dt.timedelta(days=days)
    # The runs' finish times read once, sorted, and each event's first run found by bisection: a
    # correlated subquery per event cost ~2.4 s for the 55k events of a 100k-line load.
    finished = list(
        AllocationRun.objects.filter(is_simulation=False, status="succeeded", finished_at__gte=since,
                                     finished_at__isnull=False)
        .order_by("finished_at").values_list("finished_at", flat=True)
    )
    rows = (
        Event.objects.filter(status="applied", applied_at__gte=since, applied_at__lte=ctx.now)
        .values_list("received_at", "applied_at")
    )
    values = []
    for received, applied in rows.iterator(chunk_size=5000):
        index = bisect_left(finished, applied)
        if index < len(finished):
            values.append((finished[index] - received).total_seconds() * 1000.0)
    return [
        Point("", _percentile(values, 0.5), {"p95": _percentile(values, 0.95), "events": len(values)}),
        Point("p95", _percentile(values, 0.95), {"events": len(values)}),
    ]


# --------------------------------------------------------------------------- cases, SLA, approvals


def _active_cases():
    from exceptions.choices import ACTIVE_STATUSES
    from exceptions.models import DecisionException

    return DecisionException.objects.filter(status__in=[str(s) for s in ACTIVE_STATUSES])


def _sla(ctx: Context) -> list[Point]:
    from exceptions.models import DecisionException

    decided = DecisionException.objects.filter(resolved_at__isnull=False, due_at__isnull=False)
    overall = decided.aggregate(n=Count("id"), kept=Count("id", filter=Q(resolved_at__lte=F("due_at"))))
    points = [Point("", _pct(overall["kept"], overall["n"]), {"resolved": overall["n"], "within_sla": overall["kept"]})]
    overdue = dict(
        _active_cases().filter(due_at__lte=ctx.now).values("queue__code").annotate(n=Count("id"))
        .values_list("queue__code", "n")
    )
    per_queue = decided.values("queue__code").annotate(
        n=Count("id"), kept=Count("id", filter=Q(resolved_at__lte=F("due_at")))
    ).order_by("queue__code")
    seen = set()
    for row in per_queue:
        code = row["queue__code"] or "—"
        seen.add(code)
        points.append(Point(code, _pct(row["kept"], row["n"]),
                            {"resolved": row["n"], "within_sla": row["kept"], "overdue": overdue.get(row["queue__code"], 0)}))
    for code, count in sorted(overdue.items(), key=lambda item: str(item[0])):
        if (code or "—") not in seen:
            points.append(Point(code or "—", None, {"resolved": 0, "within_sla": 0, "overdue": count}))
    return points


def _overdue_cases(ctx: Context) -> list[Point]:
    cases = _active_cases().filter(due_at__lte=ctx.now)
    points = [Point("", float(cases.count()))]
    for code, count in cases.values("queue__code").annotate(n=Count("id")).order_by("queue__code").values_list(
        "queue__code", "n"
    ):
        points.append(Point(code or "—", float(count)))
    return points


def _case_aging(ctx: Context) -> list[Point]:
    cases = _active_cases().filter(kind="work")
    whens = []
    lower = None
    for label, upper in AGE_BANDS:
        condition = Q()
        if lower is not None:
            condition &= Q(raised_at__lte=ctx.now - lower)
        if upper is not None:
            condition &= Q(raised_at__gt=ctx.now - upper)
        whens.append((label, condition))
        lower = upper
    counts = cases.aggregate(total=Count("id"), **{f"band{i}": Count("id", filter=c) for i, (_, c) in enumerate(whens)})
    points = [Point("", float(counts["total"]))]
    for index, (label, _) in enumerate(whens):
        points.append(Point(label, float(counts[f"band{index}"])))
    return points


def _case_volume(ctx: Context) -> list[Point]:
    cases = _active_cases()
    points = [Point("", float(cases.count()))]
    for kind, count in cases.values("kind").annotate(n=Count("id")).order_by("kind").values_list("kind", "n"):
        points.append(Point(kind, float(count)))
    return points


def _approvals(ctx: Context) -> list[Point]:
    from exceptions.models import ApprovalRequest

    decided = ApprovalRequest.objects.filter(decided_at__isnull=False)
    rows = list(decided.values_list("created_at", "decided_at"))
    hours = [(decided_at - created).total_seconds() / 3600.0 for created, decided_at in rows]
    per_kind = dict(ApprovalRequest.objects.values("kind").annotate(n=Count("id")).values_list("kind", "n"))
    value = _stake_of_approvals()
    points = [Point("", float(ApprovalRequest.objects.count()),
                    {"decided": len(rows), "median_hours_to_decision": _percentile(hours, 0.5),
                     "pending": ApprovalRequest.objects.filter(status="pending").count(), "value": value})]
    for kind, count in sorted(per_kind.items()):
        points.append(Point(kind, float(count)))
    return points


def _stake_of_approvals() -> float:
    """Value at stake of the cases that asked for approval (overrides and releases of lines)."""
    from django.contrib.contenttypes.models import ContentType

    from exceptions.models import ApprovalRequest, DecisionException

    case_type = ContentType.objects.get_for_model(DecisionException)
    ids = ApprovalRequest.objects.filter(subject_type=case_type).values("subject_id")
    total = DecisionException.objects.filter(pk__in=Subquery(ids)).aggregate(v=Sum("value"))["v"]
    return float(total or 0)


def _overrides(ctx: Context) -> list[Point]:
    pinned = Allocation.objects.filter(state=AllocationState.PINNED, line__status=LineStatus.OPEN)
    totals = pinned.aggregate(
        lines=Count("line", distinct=True),
        value=Coalesce(Sum(ExpressionWrapper(F("quantity") * F("line__unit_price"), output_field=MONEY)),
                       Value(ZERO), output_field=MONEY),
    )
    return [Point("", float(totals["lines"]), {"value": float(totals["value"])})]


def _credit_held(ctx: Context) -> list[Point]:
    held = open_lines().filter(Q(order__credit_hold=True) | Q(order__customer__credit_hold=True))
    totals = held.aggregate(
        n=Count("id"),
        value=Coalesce(Sum(ExpressionWrapper((F("quantity") - F("shipped_quantity")) * F("unit_price"),
                                             output_field=MONEY)), Value(ZERO), output_field=MONEY),
    )
    return [Point("", float(totals["value"]), {"lines": totals["n"]})]


# --------------------------------------------------------------------------- integrations


def _integration_success(ctx: Context) -> list[Point]:
    from integrations.models import Event, EventBatch

    counts = Event.objects.values("source__code", "status").annotate(n=Count("id")).order_by("source__code")
    by_source: dict[str, dict[str, int]] = {}
    for row in counts:
        by_source.setdefault(row["source__code"], {})[row["status"]] = row["n"]
    rejected = EventBatch.objects.aggregate(n=Coalesce(Sum("rejected"), Value(0)))["n"]
    applied = sum(c.get("applied", 0) for c in by_source.values())
    stored = sum(sum(c.values()) for c in by_source.values())
    points = [Point("", _pct(applied, stored + rejected), {"applied": applied, "stored": stored, "rejected": rejected})]
    for code, statuses in sorted(by_source.items()):
        total = sum(statuses.values())
        points.append(Point(code, _pct(statuses.get("applied", 0), total), dict(statuses)))
    return points


def _feed_freshness(ctx: Context) -> list[Point]:
    from integrations.models import Source

    points = []
    lags = []
    for code, last in Source.objects.order_by("code").values_list("code", "last_event_at"):
        lag = None if last is None else round((ctx.now - last).total_seconds() / 60.0, 1)
        if lag is not None:
            lags.append(lag)
        points.append(Point(code, lag))
    return [Point("", max(lags) if lags else None, {"sources": len(points)}), *points]


# --------------------------------------------------------------------------- quotas and protections

SCOPE_FIELDS = {
    "customer": "line__order__customer__code",
    "customer_segment": "line__order__customer__segment",
    "customer_tier": "line__order__customer__tier",
    "channel": "line__order__channel",
    "order_kind": "line__order__kind",
    "item": "line__item__sku",
    "item_class": "line__item__item_class",
    "region": "line__order__customer__region",
}


def _scope_q(scope: dict) -> Q:
    condition = Q()
    for dimension, value in (scope or {}).items():
        if dimension == "location":
            condition &= Q(line__ship_from__code=value) | Q(
                line__ship_from__isnull=True, line__order__customer__home_location__code=value
            )
        elif dimension in SCOPE_FIELDS:
            condition &= Q(**{SCOPE_FIELDS[dimension]: value})
    return condition


def _period_bounds(period: str, day: dt.date) -> tuple[dt.date, dt.date]:
    if period == "day":
        return day, day
    if period == "week":
        start = day - dt.timedelta(days=day.isoweekday() - 1)
        return start, start + dt.timedelta(days=6)
    start = day.replace(day=1)
    following = (start + dt.timedelta(days=32)).replace(day=1)
    return start, following - dt.timedelta(days=1)


def _quota_use(ctx: Context) -> list[Point]:
    """Share of each quota of the active policy used this period (allocations of matching
    lines requested in the period, fixed ones included), and who used it (by customer)."""
    from policies.selectors import active_version

    version = active_version()
    points = []
    for quota in version.quotas.order_by("position"):
        start, end = _period_bounds(quota.period, ctx.as_of)
        used = Allocation.objects.filter(_scope_q(quota.for_scope), line__status=LineStatus.OPEN,
                                         line__order__requested_date__range=(start, end))
        used = used.filter(item__sku=quota.sku) if quota.sku else used.filter(item__item_class=quota.item_class)
        total = used.aggregate(q=Coalesce(Sum("quantity"), Value(ZERO), output_field=QTY))["q"]
        top = list(used.values("line__order__customer__code").annotate(q=Sum("quantity")).order_by("-q")[:5]
                   .values_list("line__order__customer__code", "q"))
        points.append(Point(f"quota #{quota.position} {quota.sku or quota.item_class} / {quota.period}",
                            _pct(total, quota.quantity),
                            {"used": float(total), "quantity": float(quota.quantity),
                             "by": [[code, float(q)] for code, q in top]}))
    for protection in version.protections.order_by("position"):
        used = Allocation.objects.filter(_scope_q(protection.for_scope), line__status=LineStatus.OPEN,
                                         item__sku=protection.sku, location__code=protection.location,
                                         supply__isnull=True)
        total = used.aggregate(q=Coalesce(Sum("quantity"), Value(ZERO), output_field=QTY))["q"]
        used_of_protected = min(total, protection.quantity)
        points.append(Point(f"protection #{protection.position} {protection.sku} @ {protection.location}",
                            _pct(used_of_protected, protection.quantity),
                            {"used": float(used_of_protected), "quantity": float(protection.quantity)}))
    overall = [p.value for p in points if p.value is not None]
    return [Point("", round(sum(overall) / len(overall), 2) if overall else None, {"counters": len(points)}), *points]


# --------------------------------------------------------------------------- short by cause


def _short_by_cause(ctx: Context) -> list[Point]:
    """Shortfall quantity per reason code over open short lines (decision log facts)."""
    rows = LineDecisionCurrent.objects.filter(line__status=LineStatus.OPEN, log__shortfall__gt=0).values_list(
        "log__shortfall_reasons", flat=True
    )
    by_code: dict[str, float] = {}
    lines = 0
    for reasons in rows.iterator(chunk_size=5000):
        lines += 1
        for reason in reasons or ():
            code = reason.get("code", "unknown") if isinstance(reason, dict) else "unknown"
            by_code[code] = by_code.get(code, 0.0) + float(reason.get("quantity", 0) or 0)
    points = [Point("", float(lines))]
    for code, quantity in sorted(by_code.items(), key=lambda item: -item[1]):
        points.append(Point(code, round(quantity, 3)))
    return points


# --------------------------------------------------------------------------- the catalogue


def _queues(segment: str) -> str:
    """The queues (whole book), or one queue's overdue cases (a queue segment)."""
    if segment and segment != "—":
        return reverse("exceptions:queue_detail", args=[segment]) + "?sla=overdue"
    return reverse("exceptions:queue_list")


def _open_cases(segment: str) -> str:
    return reverse("exceptions:queue_list")


def _short_orders(dimension: str = "") -> Callable[[str], str]:
    """Open orders with a shortage, of the segment when the list filters by its dimension."""
    def url(segment: str) -> str:
        params = {"status": "open", "has_shortage": "true"}
        if dimension and segment and segment != "—":
            params[dimension] = segment
        return _list_url("allocation:order_list", **params)

    return url


def _named(name: str) -> Callable[[str], str]:
    return lambda segment: reverse(name)


PLANNER, CS, ADMIN, FINANCE, INTEGRATION = (
    roles.PLANNER, roles.CUSTOMER_SERVICE, roles.POLICY_ADMIN, roles.FINANCE, roles.INTEGRATION,
)
EVERYONE = (PLANNER, CS, ADMIN, FINANCE, INTEGRATION)

KPIS: tuple[Kpi, ...] = (
    Kpi("touchless_rate", "Touchless rate",
        "Share of open lines decided by runs alone: no override, no action on their case, no deferred promise.",
        "%", (PLANNER, ADMIN, FINANCE), _touchless),
    Kpi("touches_per_order", "Planner touches per order",
        "Actions people took on cases and promises, per order with open lines.",
        "touches", (PLANNER, ADMIN), _touches_per_order, higher_is_better=False),
    Kpi("cycle_time_ms", "Allocation cycle time (p50)",
        "Time from an event being stored to the decisions it caused being committed, over the last day (p50; p95 beside).",
        "ms", (PLANNER, INTEGRATION, ADMIN), _cycle_time, higher_is_better=False),
    Kpi("fill_rate_segment", "Fill rate by segment",
        "Share of open lines covered in full by their due date (on time, in full), per customer segment.",
        "%", (ADMIN, PLANNER, CS), _fill_rate("segment"), segment_by="segment", drill=_short_orders("segment")),
    Kpi("fill_rate_channel", "Fill rate by channel",
        "Share of open lines covered in full by their due date, per order channel.",
        "%", (ADMIN, PLANNER), _fill_rate("channel"), segment_by="channel", drill=_short_orders("channel")),
    Kpi("fill_rate_tier", "Fill rate by tier",
        "Share of open lines covered in full by their due date, per customer tier.",
        "%", (ADMIN, CS), _fill_rate("tier"), segment_by="tier", drill=_short_orders("tier")),
    Kpi("fill_rate_location", "Fill rate by location",
        "Share of open lines covered in full by their due date, per shipping location.",
        "%", (ADMIN, PLANNER), _fill_rate("location"), segment_by="location", drill=_short_orders()),
    Kpi("backorder_lines", "Backorder lines",
        "Open lines that runs could not cover in full (any date).", "lines", (PLANNER, CS, ADMIN), _backorders,
        drill=_short_orders(), higher_is_better=False),
    Kpi("backorder_value", "Backorder value",
        "Value of the open quantity no allocation covers (quantity short × unit price).", "value",
        (PLANNER, CS, FINANCE), _backorder_value, drill=_short_orders(), higher_is_better=False),
    Kpi("split_shipments", "Split shipments",
        "Share of allocated open lines sourced from more than one location.", "%", (PLANNER, ADMIN),
        _split_shipments, higher_is_better=False),
    Kpi("substitution_rate", "Substitution rate",
        "Share of allocated open lines holding a substitute item.", "%", (PLANNER, ADMIN, CS), _substitution_rate,
        higher_is_better=False),
    Kpi("sla_adherence", "SLA adherence",
        "Share of resolved cases resolved before their SLA ran out, overall and per queue (overdue open cases beside).",
        "%", (PLANNER, CS), _sla, segment_by="queue", drill=_queues),
    Kpi("overdue_cases", "Overdue cases",
        "Open cases past their SLA, per queue.", "cases", (PLANNER, CS), _overdue_cases, segment_by="queue",
        drill=_queues, higher_is_better=False),
    Kpi("case_aging", "Open work cases by age",
        "Open work cases, by how long ago they were raised.", "cases", (PLANNER, CS), _case_aging,
        segment_by="age band", drill=_open_cases, higher_is_better=False),
    Kpi("case_volume", "Open cases",
        "Open cases, work and information.", "cases", (PLANNER, CS, ADMIN), _case_volume, segment_by="kind",
        drill=_open_cases, higher_is_better=False),
    Kpi("approvals", "Overrides and approvals",
        "Approval requests (count; decided, pending, median hours to a decision and the value at stake beside).",
        "requests", (FINANCE, ADMIN), _approvals, segment_by="kind", drill=_named("audit:approvals"),
        drill_noun="requests"),
    Kpi("override_lines", "Overridden lines",
        "Open lines holding a planner's pinned allocation (value pinned beside).", "lines", (FINANCE, PLANNER),
        _overrides),
    Kpi("credit_held_value", "Credit-held value",
        "Open value of lines whose order or customer is on credit hold.", "value", (FINANCE, CS), _credit_held,
        drill=_named("audit:credit_holds"), higher_is_better=False),
    Kpi("integration_success", "Integration success",
        "Share of events received that were applied (rejected at the edge, stale, parked and failed are not), per source.",
        "%", (INTEGRATION, ADMIN), _integration_success, segment_by="source",
        drill=_named("integrations:event_list"), drill_noun="events"),
    Kpi("feed_freshness", "Feed freshness",
        "Minutes since each source was last heard from (the book's figure: the stalest source).", "minutes",
        (INTEGRATION, PLANNER), _feed_freshness, segment_by="source", drill=_named("integrations:overview"), drill_noun="sources",
        higher_is_better=False),
    Kpi("quota_use", "Quota and protection use",
        "Share of each quota (this period) and protection of the active policy that allocations use, and by whom.",
        "%", (ADMIN,), _quota_use, segment_by="counter"),
    Kpi("short_by_cause", "Short lines by cause",
        "Open short lines; the segments give the quantity short per shortfall reason.", "lines",
        (PLANNER, ADMIN), _short_by_cause, segment_by="cause", segment_unit="quantity short",
        higher_is_better=False),
)
BY_CODE: dict[str, Kpi] = {kpi.code: kpi for kpi in KPIS}


def for_roles(user_roles: Iterable[str]) -> list[Kpi]:
    wanted = set(user_roles)
    return [kpi for kpi in KPIS if wanted & set(kpi.roles)]


# --------------------------------------------------------------------------- snapshots


def snapshot(day: dt.date | None = None, *, ctx: Context | None = None, synthetic: bool = False) -> int:
    """Store every KPI's points for ``day`` (today by default), replacing that day's rows."""
    from allocation.models import KpiSnapshot

    ctx = ctx or Context.current()
    day = day or ctx.as_of
    rows = []
    for kpi in KPIS:
        for point in kpi.points(ctx):
            rows.append(KpiSnapshot(day=day, kpi=kpi.code, segment=point.segment[:100], value=point.value,
                                    extra=point.extra, synthetic=synthetic))
    KpiSnapshot.objects.filter(day=day).delete()
    KpiSnapshot.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def series(codes: Iterable[str], start: dt.date, end: dt.date, *, segment: str | None = "") -> dict[str, list]:
    """Stored daily values per KPI between ``start`` and ``end`` (inclusive), one query."""
    from allocation.models import KpiSnapshot

    qs = KpiSnapshot.objects.filter(kpi__in=list(codes), day__range=(start, end))
    if segment is not None:
        qs = qs.filter(segment=segment)
    out: dict[str, list] = {}
    for code, seg, day, value, synthetic in qs.order_by("kpi", "segment", "day").values_list(
        "kpi", "segment", "day", "value", "synthetic"
    ):
        out.setdefault(code, []).append({"day": day.isoformat(), "segment": seg, "value": value, "synthetic": synthetic})
    return out




# --------------------------------------------------------------------------- dashboard cards

TREND_DAYS = 30
STALE_AFTER = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Card:
    """What a dashboard card shows: today's value, the change against the day before, the trend."""

    kpi: Kpi
    value: float | None
    previous: float | None
    trend: list[tuple[str, float | None]]
    segments: list[Point]
    synthetic: bool
    as_of: dt.datetime | None

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return round(self.value - self.previous, 2)

    @property
    def better(self) -> bool | None:
        """Whether the change is an improvement (None when unchanged or unknown)."""
        if not self.change:
            return None
        return (self.change > 0) == self.kpi.higher_is_better


def cards(kpi_list: Iterable[Kpi], *, today: dt.date | None = None) -> list[Card]:
    """Cards for ``kpi_list`` from the stored snapshots: two queries whatever the book's size.

    Today's figures are the latest snapshot (the beat task refreshes it every hour, and
    :func:`refresh_if_stale` after a run); nothing here computes a KPI in the request.
    """
    from allocation.models import KpiSnapshot

    kpi_list = list(kpi_list)
    today = today or business_today()
    start = today - dt.timedelta(days=TREND_DAYS - 1)
    codes = [k.code for k in kpi_list]
    rows = list(
        KpiSnapshot.objects.filter(kpi__in=codes, day__range=(start, today), segment="")
        .order_by("kpi", "day").values_list("kpi", "day", "value", "synthetic", "created_at")
    )
    latest_day = max((r[1] for r in rows), default=None)
    segment_rows = list(
        KpiSnapshot.objects.filter(kpi__in=codes, day=latest_day).exclude(segment="")
        .order_by("kpi", "id").values_list("kpi", "segment", "value", "extra")
    ) if latest_day else []
    by_kpi: dict[str, list] = {}
    for row in rows:
        by_kpi.setdefault(row[0], []).append(row)
    segments: dict[str, list[Point]] = {}
    for code, segment, value, extra in segment_rows:
        segments.setdefault(code, []).append(Point(segment, value, extra))
    out = []
    for kpi in kpi_list:
        history = by_kpi.get(kpi.code, [])
        days = {r[1]: r for r in history}
        trend = [((start + dt.timedelta(days=i)).isoformat(), (days.get(start + dt.timedelta(days=i)) or (None,) * 3)[2])
                 for i in range(TREND_DAYS)]
        last = history[-1] if history else None
        before = history[-2] if len(history) > 1 else None
        out.append(Card(
            kpi=kpi, value=last[2] if last else None, previous=before[2] if before else None, trend=trend,
            segments=segments.get(kpi.code, []), synthetic=any(r[3] for r in history),
            as_of=last[4] if last else None,
        ))
    return out


def refresh_if_stale(*, now: dt.datetime | None = None) -> bool:
    """Snapshot today's KPIs when the latest snapshot is older than ``STALE_AFTER``."""
    from allocation.models import KpiSnapshot

    now = now or timezone.now()
    latest = KpiSnapshot.objects.filter(day=business_today(), synthetic=False).order_by("-created_at").values_list(
        "created_at", flat=True
    ).first()
    if latest is not None and now - latest < STALE_AFTER:
        return False
    snapshot()
    return True


def backfill_demo_history(days: int = TREND_DAYS, *, seed: int = 7) -> int:
    """Demo only: 30 days of history ending yesterday, derived from today's real figures with a
    seeded drift, stored with ``synthetic=True`` (the dashboard labels it "demo history")."""
    import random

    from allocation.models import KpiSnapshot

    ctx = Context.current()
    rng = random.Random(seed)
    rows = []
    for kpi in KPIS:
        points = kpi.points(ctx)
        for point in points:
            if point.value is None:
                continue
            level = point.value
            for back in range(days, 0, -1):
                factor = 1 + (back / days) * rng.uniform(-0.25, 0.25)
                value = level * factor
                if kpi.unit == "%":
                    value = max(0.0, min(100.0, value))
                rows.append(KpiSnapshot(day=ctx.as_of - dt.timedelta(days=back), kpi=kpi.code,
                                        segment=point.segment[:100], value=round(value, 2), extra={},
                                        synthetic=True))
    KpiSnapshot.objects.filter(synthetic=True).delete()
    KpiSnapshot.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    snapshot(ctx=ctx)
    return len(rows)


# --------------------------------------------------------------------------- role dashboards

ROLE_DASHBOARDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (roles.PLANNER, "Planning", (
        "case_volume", "case_aging", "overdue_cases", "sla_adherence", "touchless_rate", "backorder_lines",
        "short_by_cause", "cycle_time_ms", "split_shipments", "fill_rate_location",
    )),
    (roles.CUSTOMER_SERVICE, "Customer service", (
        "fill_rate_tier", "backorder_value", "sla_adherence", "substitution_rate", "credit_held_value",
    )),
    (roles.POLICY_ADMIN, "Policy", (
        "fill_rate_segment", "fill_rate_channel", "quota_use", "touchless_rate", "touches_per_order", "approvals",
    )),
    (roles.APPROVER, "Approvals", ("approvals", "override_lines")),
    (roles.FINANCE, "Finance", ("credit_held_value", "override_lines", "approvals", "backorder_value")),
    (roles.INTEGRATION, "Integration", ("integration_success", "feed_freshness", "cycle_time_ms")),
)


def dashboard_sections(user_roles: Iterable[str]) -> list[tuple[str, str, list[Kpi]]]:
    held = set(user_roles)
    return [(role, title, [BY_CODE[c] for c in codes]) for role, title, codes in ROLE_DASHBOARDS if role in held]


def visible_to(user_roles: Iterable[str]) -> list[Kpi]:
    """The KPIs a person may read: those of their roles' dashboards and those made for their roles."""
    held = set(user_roles)
    codes = {c for role, _, section in ROLE_DASHBOARDS if role in held for c in section}
    return [kpi for kpi in KPIS if kpi.code in codes or held & set(kpi.roles)]


def at_risk_orders(limit: int = 15) -> list[dict]:
    """Orders whose lines have an open work case of a shortage or a promise at risk, most value first."""
    # Grouped by the order (its id and number), the customer read for the top rows only: grouping
    # by the customer's text columns over every open case cost ~4x more at 100k lines.
    top = list(
        _active_cases().filter(kind="work", line__isnull=False,
                               type__in=["priority_shortage", "promise_at_risk", "allocation_reversed"])
        .values("line__order_id", "line__order__number").annotate(cases=Count("id"), value=Sum("value"))
        .order_by("-value", "line__order__number")
        .values_list("line__order_id", "line__order__number", "cases", "value")[:limit]
    )
    customers = {
        o["id"]: o for o in Order.objects.filter(pk__in=[row[0] for row in top])
        .values("id", "customer__code", "customer__name", "customer__tier")
    }
    return [
        {"order": number, "customer": customers[pk]["customer__code"],
         "customer_name": customers[pk]["customer__name"], "tier": customers[pk]["customer__tier"],
         "cases": cases, "value": value}
        for pk, number, cases, value in top
    ]
