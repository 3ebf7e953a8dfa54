"""Keep run-raised exceptions in step with what the latest run decided, set-based.

``sync_run_exceptions`` is called by the allocation persist step inside the run's transaction:

- a raised condition with no active exception of its key creates one (in bulk);
- a raised condition whose active exception exists updates that same row when its message,
  details or jeopardy changed (``version`` + 1), so a planner's claim or notes stay on it;
- an active run-type exception in the run's scope that was not raised again is resolved,
  with the reason "no longer raised by run #N". ``allocation_reversed`` is the exception:
  it reports a change between two runs, which the next run never raises again, so it stays
  open until the line holds again what it held before the reversal (or is no longer open);
  raised again while open, it keeps the highest "before" quantities.

New exceptions are routed to their queue (``exceptions.routing.route``) in the same
transaction. Every write goes through simple-history's bulk helpers, so the history records
each one.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from allocation.engine.types import RaisedException
from allocation.models import Item, Location, Order, OrderLine
from exceptions import routing
from exceptions.choices import ACTIVE_STATUSES, RUN_EXCEPTION_TYPES, ExceptionStatus
from exceptions.jeopardy import jeopardy
from exceptions.models import DecisionException, Queue, RoutingRule
from exceptions.routing import choose_queue, route, value_band

CHUNK = 5000
REVERSED = "allocation_reversed"
REVERSED_BEFORE_KEYS = ("reserved_before", "reserved_by_due_before")
ACTIVE_FIELDS = (
    "id", "key", "type", "message", "details", "jeopardy_score", "jeopardy_band", "jeopardy_reason", "line_id",
)
UNCOVERED_DAYS_LATE = 30  # quantity nothing covers counts as a month late in the jeopardy score
RUN_SOURCE = "allocation"


@dataclass(frozen=True)
class SyncCounts:
    created: int
    updated: int
    resolved: int


@dataclass(frozen=True)
class LineStake:
    """What a line risks: the facts jeopardy needs (from the run's loaded input and decision)."""

    tier: int
    penalty_per_day: Decimal
    value: Decimal
    due: dt.date
    promised: dt.date | None
    latest_confirmed: dt.date | None
    uncovered: Decimal
    reserved: Decimal = Decimal(0)
    reserved_by_due: Decimal = Decimal(0)
    segment: str = ""
    region: str = ""


def _chunks(values: list, size: int = CHUNK):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def stake_jeopardy(stake: LineStake) -> tuple[Decimal, str, str]:
    """Jeopardy of a line from its stake: days late by confirmed date, or a month when uncovered."""
    days = 0
    if stake.latest_confirmed is not None and stake.latest_confirmed > stake.due:
        days = (stake.latest_confirmed - stake.due).days
    if stake.uncovered > 0:
        days = max(days, UNCOVERED_DAYS_LATE)
    return jeopardy(
        days,
        stake.tier,
        stake.penalty_per_day,
        stake.value,
        promised=stake.promised or stake.due,
        confirmed=stake.latest_confirmed if stake.latest_confirmed and stake.latest_confirmed > stake.due else None,
        uncovered=stake.uncovered or None,
    )


def _fields_for(raised: RaisedException, stakes: Mapping[int, LineStake]) -> dict[str, Any]:
    stake = stakes.get(raised.line_key) if raised.line_key is not None else None
    if stake is None:
        return {"jeopardy_score": Decimal("0.00"), "jeopardy_band": "low", "jeopardy_reason": "", "value": Decimal("0.00")}
    score, band, reason = stake_jeopardy(stake)
    return {
        "jeopardy_score": score,
        "jeopardy_band": band,
        "jeopardy_reason": reason[:300],
        "value": Decimal(stake.value).quantize(Decimal("0.01")),
    }


LINE_ID_LIST_LIMIT = 20000  # above this many lines, select the scope's lines by a join instead


def _active_in_scope(
    scope_line_ids: Iterable[int] | None, scope_order_numbers: Iterable[str] | None, scope_skus: Iterable[str] | None
):
    """Querysets that together select the active run exceptions of a run's scope (one, for a full run).

    The scope is its lines (ids, and every line of its items whatever their status), the
    order-level exceptions of its orders and of orders with a line of its items, and the
    item-level ones of its items. Ids are read first from the indexed tables so each exception
    query is an index lookup, not a join over every active exception.
    """
    active = DecisionException.objects.filter(
        status__in=[str(s) for s in ACTIVE_STATUSES], type__in=[str(t) for t in RUN_EXCEPTION_TYPES]
    )
    if scope_line_ids is None:
        return [active]
    skus = sorted(set(scope_skus or ()))
    line_ids = set(scope_line_ids)
    order_ids: set[int] = set()
    item_ids: list[int] = []
    by_join: list[list[str]] = []
    for chunk in _chunks(skus):
        item_ids.extend(Item.objects.filter(sku__in=chunk).values_list("id", flat=True))
    lines_of_items = OrderLine.objects.filter(item_id__in=item_ids)
    if lines_of_items.count() <= LINE_ID_LIST_LIMIT:
        for line_id, order_id in lines_of_items.values_list("id", "order_id"):
            line_ids.add(line_id)
            order_ids.add(order_id)
    else:
        by_join = list(_chunks(skus))
        order_ids.update(lines_of_items.values_list("order_id", flat=True).distinct())
    querysets = [active.filter(line_id__in=chunk) for chunk in _chunks(sorted(line_ids))]
    querysets += [active.filter(line__item__sku__in=chunk) for chunk in by_join]
    order_numbers = sorted(set(scope_order_numbers or ()))
    for chunk in _chunks(order_numbers):
        order_ids.update(Order.objects.filter(number__in=chunk).values_list("id", flat=True))
    querysets += [active.filter(line__isnull=True, order_id__in=chunk) for chunk in _chunks(sorted(order_ids))]
    querysets += [
        active.filter(line__isnull=True, order__isnull=True, item_id__in=chunk) for chunk in _chunks(sorted(item_ids))
    ]
    return querysets


def sync_run_exceptions(
    raised: list[RaisedException],
    *,
    scope_line_ids: Iterable[int] | None,
    scope_order_numbers: Iterable[str] | None,
    run: Any,
    scope_skus: Iterable[str] | None = None,
    stakes: Mapping[int, LineStake] | None = None,
) -> SyncCounts:
    """Create, update and auto-resolve run exceptions for one run's scope (``None`` scope = full run).

    ``raised`` are the engine's conditions (unique by ``key``); ``stakes`` maps a line key to
    what it risks, for the jeopardy score. Runs inside the caller's transaction.
    """
    now = timezone.now()
    stakes = stakes or {}
    reason = f"allocation run #{run.pk}"
    by_key: dict[str, RaisedException] = {}
    for condition in raised:
        by_key.setdefault(condition.key, condition)

    # Compare as plain values; only rows that change are loaded as model instances.
    in_scope: dict[str, tuple] = {}
    for queryset in _active_in_scope(scope_line_ids, scope_order_numbers, scope_skus):
        for row in queryset.values_list(*ACTIVE_FIELDS):
            in_scope[row[1]] = row
    # A raised key may be active outside the scope's filters (an order-level one, say): fetch it too.
    missing_keys = [key for key in by_key if key not in in_scope]
    for chunk in _chunks(missing_keys):
        for row in DecisionException.objects.filter(
            key__in=chunk, status__in=[str(s) for s in ACTIVE_STATUSES]
        ).values_list(*ACTIVE_FIELDS):
            in_scope[row[1]] = row

    new_conditions = [c for key, c in by_key.items() if key not in in_scope]
    orders = _ids(Order, "number", {c.order for c in new_conditions if c.order})
    items = _ids(Item, "sku", {c.item for c in new_conditions if c.item})
    locations = _ids(Location, "code", {c.location for c in new_conditions if c.location})

    to_create = []
    for condition in new_conditions:
        fields = _fields_for(condition, stakes)
        to_create.append(
            DecisionException(
                type=condition.type,
                key=condition.key,
                status=ExceptionStatus.OPEN,
                severity=fields["jeopardy_band"],
                message=condition.message[:500],
                details=condition.details,
                line_id=condition.line_key,
                order_id=orders.get(condition.order),
                item_id=items.get(condition.item),
                location_id=locations.get(condition.location),
                source=RUN_SOURCE,
                run_id=run.pk,
                raised_at=now,
                updated_at=now,
                version=1,
                **fields,
            )
        )

    changes: dict[int, dict[str, Any]] = {}
    for key, condition in by_key.items():
        row = in_scope.get(key)
        if row is None:
            continue
        pk, _, _, message_was, details_was, score_was, band_was, reason_was, _ = row
        fields = _fields_for(condition, stakes)
        message = condition.message[:500]
        details = condition.details
        if condition.type == REVERSED:
            details = _keep_highest_before(details_was or {}, details)
        if (
            message_was == message
            and details_was == details
            and score_was == fields["jeopardy_score"]
            and band_was == fields["jeopardy_band"]
            and reason_was == fields["jeopardy_reason"]
        ):
            continue
        changes[pk] = {"message": message, "details": details, "severity": fields["jeopardy_band"], **fields}

    resolutions: list[int] = []
    for key, row in in_scope.items():
        pk, _, kind, *_rest, line_id = row
        if key in by_key or kind not in RUN_EXCEPTION_TYPES:
            continue
        if kind == REVERSED and not _reversal_restored(line_id, row[4] or {}, stakes):
            continue
        resolutions.append(pk)

    to_update = []
    for instance in _instances(list(changes)):
        for name, value in changes[instance.pk].items():
            setattr(instance, name, value)
        instance.run_id = run.pk
        instance.updated_at = now
        instance.version += 1
        to_update.append(instance)

    to_resolve = []
    for instance in _instances(resolutions):
        instance.status = ExceptionStatus.RESOLVED
        instance.resolution_reason = f"no longer raised by run #{run.pk}"
        instance.resolved_at = now
        instance.updated_at = now
        instance.version += 1
        to_resolve.append(instance)

    if to_resolve:
        # Resolve first: a key resolved here may be raised again later under the one-active rule.
        bulk_update_with_history(
            to_resolve,
            DecisionException,
            ["status", "resolution_reason", "resolved_at", "updated_at", "version"],
            batch_size=1000,
            default_change_reason=f"auto-resolved by {reason}",
            default_date=now,
        )
    if to_update:
        bulk_update_with_history(
            to_update,
            DecisionException,
            [
                "message", "details", "jeopardy_score", "jeopardy_band", "jeopardy_reason", "value",
                "severity", "run_id", "updated_at", "version",
            ],
            batch_size=1000,
            default_change_reason=f"updated by {reason}",
            default_date=now,
        )
    if to_create:
        unrouted = _route_in_memory(to_create, stakes, now)
        bulk_create_with_history(
            to_create, DecisionException, batch_size=1000, default_change_reason=f"raised by {reason}", default_date=now
        )
        if unrouted:
            route(unrouted, now=now)
    return SyncCounts(created=len(to_create), updated=len(to_update), resolved=len(to_resolve))


def _route_in_memory(
    exceptions: list[DecisionException], stakes: Mapping[int, LineStake], now: dt.datetime
) -> list[DecisionException]:
    """Give line exceptions their queue and SLA before the insert (the customer facts are at hand),
    so a run writes each new exception once; returns those left for ``routing.route``."""
    rules = list(RoutingRule.objects.select_related("queue").order_by("position", "id"))
    default = Queue.objects.filter(is_default=True).first()
    unrouted = []
    for exception in exceptions:
        stake = stakes.get(exception.line_id) if exception.line_id is not None else None
        if stake is None:
            unrouted.append(exception)
            continue
        facts = routing._Facts(exception.type, stake.region, stake.tier, stake.segment, value_band(exception.value))
        queue = choose_queue(rules, default, facts)
        if queue is not None:
            exception.queue = queue
            exception.due_at = now + dt.timedelta(minutes=queue.sla_minutes)
    return unrouted


def _decimal(text: Any) -> Decimal:
    try:
        return Decimal(str(text))
    except ArithmeticError:
        return Decimal(0)


def _keep_highest_before(old: dict, new: dict) -> dict:
    merged = dict(new)
    for name in REVERSED_BEFORE_KEYS:
        if name in old and _decimal(old[name]) > _decimal(new.get(name, 0)):
            merged[name] = old[name]
    return merged


def _instances(pks: list[int]) -> list[DecisionException]:
    found: list[DecisionException] = []
    for chunk in _chunks(sorted(pks)):
        found.extend(DecisionException.objects.filter(pk__in=chunk).order_by("pk"))
    return found


def _reversal_restored(line_id: int | None, details: dict, stakes: Mapping[int, LineStake]) -> bool:
    """True when the line holds again what it held before the reversal, or is no longer open."""
    stake = stakes.get(line_id) if line_id is not None else None
    if stake is None:
        return True
    return stake.reserved >= _decimal(details.get("reserved_before", 0)) and stake.reserved_by_due >= _decimal(
        details.get("reserved_by_due_before", 0)
    )


def _ids(model, field: str, codes: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(sorted(codes)):
        found.update(model.objects.filter(**{f"{field}__in": chunk}).values_list(field, "id"))
    return found

