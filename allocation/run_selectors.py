"""Reads behind the run screens: runs, a line's "why", an item's shortage board, simulations.

Each function loads what one screen shows in a fixed number of queries (``select_related``,
``prefetch_related`` and one aggregate per figure), whatever the number of rows; the
screens in ``allocation.run_views`` only check roles and render.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Prefetch, Q, QuerySet, Sum
from django.http import Http404

from allocation.choices import LineStatus, SupplyStatus
from allocation.models import (
    Allocation,
    AllocationRun,
    InventoryPosition,
    Item,
    LineDecisionCurrent,
    LineDecisionLog,
    OrderLine,
    Supply,
)
from exceptions.choices import ACTIVE_STATUSES
from exceptions.models import DecisionException

# The engine's processing order of strategies (allocation.md "Rank").
STRATEGY_ORDER = ("win", "gain", "redistribute", "fill", "lose")
PHASES = ("load", "engine", "persist")
HISTORY_LIMIT = 100
ZERO = Decimal(0)


# --- runs --------------------------------------------------------------------------------------


def run_rows(*, status: str = "", trigger: str = "") -> QuerySet[AllocationRun]:
    """Runs newest first, optionally only one status and/or trigger, with policy version and actor."""
    runs = AllocationRun.objects.select_related("policy_version", "actor").order_by("-id")
    if status:
        runs = runs.filter(status=status)
    if trigger:
        runs = runs.filter(trigger=trigger)
    return runs


def get_run(pk: int) -> AllocationRun:
    """One run with its policy version and actor; 404 when there is none."""
    run = AllocationRun.objects.select_related("policy_version", "actor").filter(pk=pk).first()
    if run is None:
        raise Http404("No such run.")
    return run


def run_duration(run: AllocationRun) -> float | None:
    """Seconds the run took (its ``total`` timing, else started→finished); None while unfinished."""
    total = (run.timings or {}).get("total")
    if total is not None:
        return float(total)
    if run.started_at and run.finished_at:
        return (run.finished_at - run.started_at).total_seconds()
    return None


def phase_bars(run: AllocationRun) -> list[dict[str, Any]]:
    """One bar per recorded phase: name, seconds and width in percent of the run's total."""
    timings = run.timings or {}
    total = float(timings.get("total") or sum(float(timings.get(name) or 0) for name in PHASES))
    bars = []
    for name in PHASES:
        if name not in timings:
            continue
        seconds = float(timings[name])
        bars.append({
            "name": name,
            "seconds": seconds,
            "percent": round(100 * seconds / total, 1) if total > 0 else 0.0,
        })
    return bars


def run_exceptions(run: AllocationRun) -> QuerySet[DecisionException]:
    """Exceptions this run raised (``run_id`` is the run that created them), oldest first."""
    return (
        DecisionException.objects.filter(run_id=run.pk)
        .select_related("line__order", "order", "item")
        .order_by("raised_at", "id")
    )


def run_decisions(run: AllocationRun) -> QuerySet[LineDecisionLog]:
    """Decisions this run logged (lines whose decision changed), in rank order."""
    return (
        LineDecisionLog.objects.filter(run=run)
        .select_related("line__order__customer", "line__item")
        .order_by("rank", "id")
    )


# --- why a line holds what it holds -------------------------------------------------------------


def rank_key_parts(rank_key: list[Any]) -> list[dict[str, str]]:
    """The rank key as labelled parts a planner reads left to right (what decides first)."""
    labels = ("strategy", "priority class", "score", "requested", "order created", "order", "line")
    parts = []
    for index, value in enumerate(rank_key or []):
        label = labels[index] if index < len(labels) else f"key {index + 1}"
        if index == 0 and isinstance(value, int) and 0 <= value < len(STRATEGY_ORDER):
            text = f"{STRATEGY_ORDER[value]} ({value + 1} of {len(STRATEGY_ORDER)})"
        elif index == 2 and isinstance(value, (int, float)):
            text = f"{-value:.6f} (higher first)"
        elif index == 4 and isinstance(value, str):
            text = value.replace("T", " ")[:16]
        else:
            text = str(value)
        parts.append({"label": label, "text": text})
    return parts


def factor_rows(factors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Factor contributions with a bar width in percent of the largest contribution."""
    largest = max((float(f.get("contribution") or 0) for f in factors), default=0.0)
    rows = []
    for factor in factors:
        contribution = float(factor.get("contribution") or 0)
        rows.append({
            "name": factor.get("name", ""),
            "value": float(factor.get("value") or 0),
            "weight": float(factor.get("weight") or 0),
            "contribution": contribution,
            "percent": round(100 * contribution / largest, 1) if largest > 0 else 0.0,
        })
    return rows


def setting_rows(log: LineDecisionLog) -> list[dict[str, Any]]:
    """Each setting of the decision with its value and the rule it came from (None: the default).

    Values come from the source rule of the log's policy version, so they are what the run
    used even after the policy changed; strategy and class are the decision's own.
    """
    from policies import schema
    from policies.models import PolicyRule

    sources: dict[str, Any] = log.setting_sources or {}
    rules: dict[int, PolicyRule] = {}
    if log.policy_version_id is not None:
        positions = {position for position in sources.values() if isinstance(position, int)}
        rules = {
            rule.position: rule
            for rule in PolicyRule.objects.filter(version_id=log.policy_version_id, position__in=positions)
        }
    rows = []
    for name, spec in schema.SETTINGS.items():
        position = sources.get(name)
        rule = rules.get(position) if isinstance(position, int) else None
        if name == "strategy":
            value: Any = log.strategy
        elif name == "priority_class":
            value = log.priority_class
        elif rule is not None and name in rule.settings:
            value = rule.settings[name]
        else:
            value = spec.default
        rows.append({"name": name, "value": value, "position": position, "rule": rule})
    return rows


@dataclass
class LineWhy:
    """Everything the Why page shows for one order line."""

    line: OrderLine
    log: LineDecisionLog | None
    rank_parts: list[dict[str, str]] = field(default_factory=list)
    factors: list[dict[str, Any]] = field(default_factory=list)
    settings: list[dict[str, Any]] = field(default_factory=list)
    allocations: list[Allocation] = field(default_factory=list)
    allocated: Decimal = ZERO
    due: dt.date | None = None
    on_time: Decimal = ZERO
    late: list[Allocation] = field(default_factory=list)
    open_exceptions: list[DecisionException] = field(default_factory=list)
    history: list[LineDecisionLog] = field(default_factory=list)
    history_count: int = 0


def get_line(number: str, line: int) -> OrderLine:
    """An order line with its order, customer and item; 404 when there is none."""
    found = (
        OrderLine.objects.select_related("order__customer", "item", "ship_from")
        .filter(order__number=number, line=line)
        .first()
    )
    if found is None:
        raise Http404("No such order line.")
    return found


def line_why(number: str, line: int) -> LineWhy:
    """The line's current decision and its reasons, current allocations, open exceptions, history."""
    order_line = get_line(number, line)
    current = (
        LineDecisionCurrent.objects.select_related("log__run", "log__policy_version")
        .filter(line=order_line)
        .first()
    )
    log = current.log if current is not None else None
    allocations = list(
        Allocation.objects.filter(line=order_line).select_related("item", "location", "supply").order_by(
            "confirmed_date", "id"
        )
    )
    exceptions = list(
        DecisionException.objects.filter(line=order_line, status__in=[str(s) for s in ACTIVE_STATUSES]).order_by(
            "raised_at", "id"
        )
    )
    due = order_line.order.promised_date or order_line.order.requested_date
    history_rows = LineDecisionLog.objects.filter(line=order_line).select_related("run", "policy_version")
    if log is not None:
        history_rows = history_rows.exclude(pk=log.pk)
    history = list(history_rows.order_by("-id")[:HISTORY_LIMIT])
    why = LineWhy(
        line=order_line,
        log=log,
        allocations=allocations,
        allocated=sum((a.quantity for a in allocations), ZERO),
        due=due,
        on_time=sum((a.quantity for a in allocations if a.confirmed_date <= due), ZERO),
        late=[a for a in allocations if a.confirmed_date > due],
        open_exceptions=exceptions,
        history=history,
        history_count=len(history) if len(history) < HISTORY_LIMIT else history_rows.count(),
    )
    if log is not None:
        why.rank_parts = rank_key_parts(log.rank_key)
        why.factors = factor_rows(log.factors)
        why.settings = setting_rows(log)
    return why


# --- shortage board ----------------------------------------------------------------------------


@dataclass
class ShortageRow:
    """One line competing for the item, with what it holds and what it lacks."""

    line: OrderLine
    log: LineDecisionLog | None
    open_quantity: Decimal
    held: Decimal
    shortfall: Decimal
    holds: list[Allocation]
    as_substitute: bool


@dataclass
class ShortageBoard:
    """An item's supply (on hand per location, inbound by ETA) and the lines competing for it."""

    item: Item
    positions: list[InventoryPosition]
    inbound: list[Supply]
    rows: list[ShortageRow]
    on_hand_available: Decimal
    inbound_open: Decimal
    demand: Decimal
    held: Decimal

    @property
    def short(self) -> Decimal:
        return max(self.demand - self.on_hand_available - self.inbound_open, ZERO)


def _sort_key(row: ShortageRow) -> tuple:
    if row.log is None:
        return (1, (), row.line.order.number, row.line.line)
    return (0, tuple(row.log.rank_key or ()), row.line.order.number, row.line.line)


def shortage_board(sku: str) -> ShortageBoard:
    """Every open line for ``sku`` or holding it as a substitute, in rank-key order (undecided last).

    Lines are ordered by their current decision's rank key, which is comparable across runs
    (strategy, class, score, dates, order, line); a line no run decided yet comes last.
    """
    item = Item.objects.filter(sku=sku).first()
    if item is None:
        raise Http404("No such item.")
    positions = list(
        InventoryPosition.objects.filter(item=item).select_related("location").order_by("location__code")
    )
    inbound = list(
        Supply.objects.filter(item=item, status=SupplyStatus.OPEN)
        .select_related("location")
        .annotate(allocated_quantity=Sum("allocations__quantity"))
        .order_by("eta", "ref")
    )
    on_hand_allocated = dict(
        Allocation.objects.filter(item=item, supply__isnull=True)
        .values("location_id")
        .annotate(total=Sum("quantity"))
        .values_list("location_id", "total")
    )
    for position in positions:
        position.allocated_quantity = on_hand_allocated.get(position.location_id) or ZERO
        position.holds = position.quality_hold + position.warehouse_hold
    holding = Allocation.objects.filter(item=item).values("line_id")
    lines = list(
        OrderLine.objects.filter(status=LineStatus.OPEN)
        .filter(Q(item=item) | Q(pk__in=holding))
        .select_related("order__customer", "item", "current_decision__log")
        .prefetch_related(
            Prefetch(
                "allocations",
                queryset=Allocation.objects.select_related("item", "location", "supply").order_by("confirmed_date", "id"),
            )
        )
    )
    rows = []
    for line in lines:
        holds = list(line.allocations.all())
        held_total = sum((a.quantity for a in holds), ZERO)
        open_quantity = line.open_quantity
        current = getattr(line, "current_decision", None)
        rows.append(ShortageRow(
            line=line,
            log=current.log if current is not None else None,
            open_quantity=open_quantity,
            held=sum((a.quantity for a in holds if a.item_id == item.pk), ZERO),
            shortfall=max(open_quantity - held_total, ZERO),
            holds=holds,
            as_substitute=line.item_id != item.pk,
        ))
    rows.sort(key=_sort_key)
    return ShortageBoard(
        item=item,
        positions=positions,
        inbound=inbound,
        rows=rows,
        on_hand_available=sum((p.available for p in positions), ZERO),
        inbound_open=sum((s.open_quantity for s in inbound), ZERO),
        demand=sum((r.open_quantity for r in rows if not r.as_substitute), ZERO),
        held=sum((r.held for r in rows), ZERO),
    )


# --- simulations -------------------------------------------------------------------------------


def get_simulation(pk: int) -> AllocationRun:
    """A simulation run with its version, actor and result (when finished); 404 otherwise."""
    run = (
        AllocationRun.objects.select_related("policy_version", "actor", "simulation_result")
        .filter(pk=pk, is_simulation=True)
        .first()
    )
    if run is None:
        raise Http404("No such simulation.")
    return run


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _simulation_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A gaining or losing line with its reserved and on-time changes (absolute, as text)."""
    before, after = Decimal(entry["before"]), Decimal(entry["after"])
    on_time_before = Decimal(entry.get("on_time_before", entry["before"]))
    on_time_after = Decimal(entry.get("on_time_after", entry["after"]))
    return {
        **entry,
        "on_time_before": _text(on_time_before),
        "on_time_after": _text(on_time_after),
        "difference": abs(after - before),
        "quantity": _text(abs(after - before)),
        "on_time_quantity": _text(abs(on_time_after - on_time_before)),
    }


def simulation_view(payload: dict[str, Any], limit: int = 50) -> dict[str, Any]:
    """The simulation payload shaped for the page: top ``limit`` gaining and losing with the
    total reserved quantity gained and lost, fill rates before/after with the change in
    points, exceptions added and removed."""

    def rates(name: str) -> list[dict[str, Any]]:
        rows = []
        for key, pair in sorted((payload.get(name) or {}).items()):
            before, after = float(pair["before"]), float(pair["after"])
            rows.append({
                "name": key, "before": before * 100, "after": after * 100, "change": (after - before) * 100,
            })
        return rows

    gaining = [_simulation_entry(entry) for entry in payload.get("gaining") or []]
    losing = [_simulation_entry(entry) for entry in payload.get("losing") or []]
    return {
        "lines": payload.get("lines", 0),
        "gaining": gaining[:limit],
        "losing": losing[:limit],
        "gaining_count": payload.get("gaining_count", len(gaining)),
        "losing_count": payload.get("losing_count", len(losing)),
        "gaining_total": _text(sum((entry["difference"] for entry in gaining), ZERO)),
        "losing_total": _text(sum((entry["difference"] for entry in losing), ZERO)),
        "gaining_on_time_total": _text(sum((Decimal(entry["on_time_quantity"]) for entry in gaining), ZERO)),
        "losing_on_time_total": _text(sum((Decimal(entry["on_time_quantity"]) for entry in losing), ZERO)),
        "listed_gaining": len(gaining),
        "listed_losing": len(losing),
        "by_segment": rates("fill_rate_by_segment"),
        "by_channel": rates("fill_rate_by_channel"),
        "exceptions_added": payload.get("exceptions_added") or [],
        "exceptions_removed": payload.get("exceptions_removed") or [],
        "exceptions_added_count": payload.get("exceptions_added_count", 0),
        "exceptions_removed_count": payload.get("exceptions_removed_count", 0),
        # {"active": ..., "draft": ...}, each as AllocationRun.price_of_fairness (allocation.depth).
        "price_of_fairness": payload.get("price_of_fairness") or {},
    }


def latest_simulation(version_pk: int) -> AllocationRun | None:
    """The newest simulation of a policy version, if any."""
    return AllocationRun.objects.filter(is_simulation=True, policy_version_id=version_pk).order_by("-id").first()

