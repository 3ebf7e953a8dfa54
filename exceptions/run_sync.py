"""Keep cases and their reasons in step with what the latest run decided, set-based.

``sync_run_exceptions`` is called by the allocation persist step inside the run's transaction.
The engine raises *reasons* (``RaisedException``, keyed ``type:order/line``); people work
*cases* (allocation.md "Only true exceptions reach people"):

- **Reasons.** A raised reason with no open reason of its key creates one; one whose open
  reason exists updates it when its message or details changed; an open reason in the run's
  scope that was not raised again is resolved ("no longer raised by run #N"). Two reasons
  report a change between runs, which the next run never raises again, so they stay open
  until the line holds again what it held when they were raised: ``allocation_reversed``
  (raised again while open, it keeps the highest "before" quantities) and a ``gain`` line's
  ``priority_shortage``.
- **Cases.** A line has at most one active case (``case:<order>/<line>``), a ship-complete
  order one (``case:<order>``), carrying all its open reasons: its ``type`` is the most
  severe (it routes the case), ``reason_types`` all of them, its jeopardy and value the
  line's. A case whose reasons no action can change today is ``information``: routed to
  its queue without an SLA clock. A line worth less than the policy's
  ``exception_min_value`` keeps its reasons (the KPIs count them) but gets no case. A case
  with no open reason left is resolved; a changed one is updated in place (``version`` + 1)
  so a planner's claim and notes stay on it.

New cases are routed in the same transaction. Every write goes through simple-history's
bulk helpers, so the history records each case and each reason.
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
from allocation.models import Item, Location, Order
from exceptions import routing
from exceptions.choices import (
    ACTIVE_STATUSES,
    REASON_SEVERITY,
    RUN_EXCEPTION_TYPES,
    CaseKind,
    ExceptionStatus,
    ReasonStatus,
    most_severe,
)
from exceptions.jeopardy import jeopardy
from exceptions.models import CaseReason, DecisionException, Queue, RoutingRule
from exceptions.routing import choose_queue, route, value_band

CHUNK = 5000
REVERSED = "allocation_reversed"
SHORTAGE = "priority_shortage"
# Reasons a planner's action could change only where the line's supply can be reassigned.
SUPPLY_REASONS = frozenset({"priority_shortage", "promise_at_risk", "allocation_reversed"})
_SEVERITY_RANK = {name: index for index, name in enumerate(REASON_SEVERITY)}
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
    covered: Decimal = Decimal(0)
    # False when no action can change the line's shortfall today (its supply is fixed or absent).
    actionable: bool = True
    # The policy's exception_min_value for the line: below it, reasons raise no case.
    min_value: Decimal = Decimal(0)


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


def case_key_of(raised: RaisedException) -> str:
    """The case a reason belongs to: its line's, else its order's (ship-complete), else its own."""
    if raised.line_key is not None and raised.order is not None:
        return f"case:{raised.key.split(':', 1)[1]}"
    if raised.order is not None:
        return f"case:{raised.order}"
    return f"case:{raised.key}"


def _reason_case_key(key: str, line_id: int | None) -> str:
    """The case key of a stored reason: its subject (``order/line`` or ``order``) after the type."""
    return f"case:{key.split(':', 1)[1] if ':' in key else key}"


REASON_FIELDS = ("id", "key", "type", "message", "details", "line_id", "case_id", "information")


def _open_reasons_in_scope(scope_order_numbers: Iterable[str] | None, scope_skus: Iterable[str] | None, full: bool):
    """Querysets that together select the open run reasons of a run's scope (one, for a full run)."""
    open_ = CaseReason.objects.filter(status=ReasonStatus.OPEN)
    if full:
        return [open_]
    querysets = [open_.filter(line__item__sku__in=chunk) for chunk in _chunks(sorted(set(scope_skus or ())))]
    querysets += [
        open_.filter(line__isnull=True, order__number__in=chunk)
        for chunk in _chunks(sorted(set(scope_order_numbers or ())))
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
    """Create, update and resolve the reasons and cases of one run's scope (``None`` = full run).

    ``raised`` are the engine's reasons (unique by ``key``); ``stakes`` maps a line key to
    what it risks. Runs inside the caller's transaction; returns the cases created, updated
    and resolved.
    """
    now = timezone.now()
    stakes = stakes or {}
    why = f"allocation run #{run.pk}"
    full = scope_line_ids is None
    by_key: dict[str, RaisedException] = {}
    for condition in raised:
        by_key.setdefault(condition.key, condition)

    # ---- reasons: what is open in scope, compared as plain values
    open_rows: dict[str, tuple] = {}
    for queryset in _open_reasons_in_scope(scope_order_numbers, scope_skus, full):
        for row in queryset.values_list(*REASON_FIELDS):
            open_rows[row[1]] = row
    missing = [key for key in by_key if key not in open_rows]
    for chunk in _chunks(missing):
        for row in CaseReason.objects.filter(key__in=chunk, status=ReasonStatus.OPEN).values_list(*REASON_FIELDS):
            open_rows[row[1]] = row

    # Each reason open after this run: key -> (case key, type, message, details, line id, order, item, location, information)
    final: dict[str, tuple] = {}
    reason_changes: dict[int, dict[str, Any]] = {}
    reason_resolutions: list[int] = []
    new_reasons: list[str] = []
    for key, condition in by_key.items():
        stake = stakes.get(condition.line_key) if condition.line_key is not None else None
        # Information, not work: the line is short and no action can change that today (the
        # supply it could use is all fixed, or there is none).
        information = (
            condition.type in SUPPLY_REASONS and stake is not None and stake.uncovered > 0 and not stake.actionable
        )
        message = condition.message[:500]
        details = condition.details
        row = open_rows.get(key)
        if row is not None:
            if condition.type == REVERSED:
                details = _keep_highest_before(row[4] or {}, details)
            elif condition.type == SHORTAGE and (row[4] or {}).get("floor_kind") == "gain":
                details = _keep_highest_held(row[4] or {}, details)
            if row[3] != message or row[4] != details or row[7] != information:
                reason_changes[row[0]] = {"message": message, "details": details, "information": information}
        else:
            new_reasons.append(key)
        final[key] = (
            case_key_of(condition), condition.type, message, details, condition.line_key, condition.order,
            condition.item, condition.location, information,
        )
    for key, row in open_rows.items():
        if key in by_key:
            continue
        pk, _, kind, message, details, line_id, _case_id, information = row
        if kind not in RUN_EXCEPTION_TYPES:
            continue
        if _still_open(kind, line_id, details or {}, stakes):
            final[key] = (_reason_case_key(key, line_id), kind, message, details, line_id, None, None, None, information)
            continue
        reason_resolutions.append(pk)

    # ---- cases: one per case key with open reasons (and a line worth at least the minimum)
    reasons_of: dict[str, list[str]] = {}
    for key, entry in final.items():
        reasons_of.setdefault(entry[0], []).append(key)
    case_keys = set(reasons_of)
    for row in open_rows.values():
        case_keys.add(_reason_case_key(row[1], row[5]))
    active_cases: dict[str, tuple] = {}
    for chunk in _chunks(sorted(case_keys)):
        for row in DecisionException.objects.filter(
            key__in=chunk, status__in=[str(s) for s in ACTIVE_STATUSES]
        ).values_list("id", "key", "type", "reason_types", "kind", "message", "details",
                      "jeopardy_score", "jeopardy_band", "jeopardy_reason", "value", "status", "assignee_id"):
            active_cases[row[1]] = row

    wanted_cases: dict[str, dict[str, Any]] = {}
    for case_key, keys in reasons_of.items():
        entries = [final[k] for k in keys]
        types = sorted({e[1] for e in entries}, key=lambda t: _SEVERITY_RANK.get(t, len(_SEVERITY_RANK)))
        primary_type = most_severe(types)
        primary = next(e for e in entries if e[1] == primary_type)
        line_id = primary[4]
        stake = stakes.get(line_id) if line_id is not None else None
        if stake is not None and stake.value < stake.min_value:
            continue  # counted (the reasons stay), but no case
        fields = _fields_for_line(line_id, stakes)
        message = primary[2] if len(types) == 1 else f"{primary[2]} (+ {', '.join(t for t in types if t != primary_type)})"
        wanted_cases[case_key] = {
            "type": primary_type,
            "reason_types": types,
            "kind": CaseKind.INFORMATION if all(e[8] for e in entries) else CaseKind.WORK,
            "message": message[:500],
            "details": primary[3],
            "severity": fields["jeopardy_band"],
            **fields,
            "_subject": primary,
        }

    case_changes: dict[int, dict[str, Any]] = {}
    case_resolutions: list[int] = []
    for case_key, wanted in wanted_cases.items():
        row = active_cases.get(case_key)
        if row is None:
            continue
        (pk, _, type_was, types_was, kind_was, message_was, details_was, score_was, band_was, reason_was, value_was,
         _status, _assignee) = row
        if (type_was, types_was, kind_was, message_was, details_was, score_was, band_was, reason_was, value_was) == (
            wanted["type"], wanted["reason_types"], wanted["kind"], wanted["message"], wanted["details"],
            wanted["jeopardy_score"], wanted["jeopardy_band"], wanted["jeopardy_reason"], wanted["value"],
        ):
            continue
        case_changes[pk] = {k: v for k, v in wanted.items() if not k.startswith("_")}
    for case_key, row in active_cases.items():
        if case_key not in wanted_cases and row[2] in RUN_EXCEPTION_TYPES:
            case_resolutions.append(row[0])

    new_case_keys = [k for k in wanted_cases if k not in active_cases]
    subjects = [wanted_cases[k]["_subject"] for k in new_case_keys]
    orders = _ids(Order, "number", {s[5] for s in subjects if s[5]} | {final[k][5] for k in new_reasons if final[k][5]})
    items = _ids(Item, "sku", {s[6] for s in subjects if s[6]})
    locations = _ids(Location, "code", {s[7] for s in subjects if s[7]})

    # Cases first (reasons point at them): resolve, update, create.
    to_resolve = []
    for instance in _instances(case_resolutions):
        instance.status = ExceptionStatus.RESOLVED
        instance.resolution_reason = f"no longer raised by run #{run.pk}"
        instance.resolved_at = now
        instance.updated_at = now
        instance.version += 1
        to_resolve.append(instance)
    if to_resolve:
        bulk_update_with_history(
            to_resolve, DecisionException, ["status", "resolution_reason", "resolved_at", "updated_at", "version"],
            batch_size=1000, default_change_reason=f"auto-resolved by {why}", default_date=now,
        )
    to_update = []
    for instance in _instances(list(case_changes)):
        for name, value in case_changes[instance.pk].items():
            setattr(instance, name, value)
        if instance.kind == CaseKind.INFORMATION:
            instance.due_at = None
        elif instance.due_at is None and instance.queue_id is not None:
            instance.due_at = now + dt.timedelta(minutes=instance.queue.sla_minutes)
        instance.run_id = run.pk
        instance.updated_at = now
        instance.version += 1
        to_update.append(instance)
    if to_update:
        bulk_update_with_history(
            to_update, DecisionException,
            ["type", "reason_types", "kind", "message", "details", "jeopardy_score", "jeopardy_band",
             "jeopardy_reason", "value", "severity", "due_at", "run_id", "updated_at", "version"],
            batch_size=1000, default_change_reason=f"updated by {why}", default_date=now,
        )
    to_create = []
    for case_key in new_case_keys:
        wanted = wanted_cases[case_key]
        subject = wanted["_subject"]
        to_create.append(DecisionException(
            type=wanted["type"], key=case_key, kind=wanted["kind"], reason_types=wanted["reason_types"],
            status=ExceptionStatus.OPEN, severity=wanted["severity"], message=wanted["message"],
            details=wanted["details"], line_id=subject[4], order_id=orders.get(subject[5]),
            item_id=items.get(subject[6]), location_id=locations.get(subject[7]), source=RUN_SOURCE,
            run_id=run.pk, raised_at=now, updated_at=now, version=1,
            jeopardy_score=wanted["jeopardy_score"], jeopardy_band=wanted["jeopardy_band"],
            jeopardy_reason=wanted["jeopardy_reason"], value=wanted["value"],
        ))
    if to_create:
        unrouted = _route_in_memory(to_create, stakes, now)
        for case in to_create:
            if case.kind == CaseKind.INFORMATION:
                case.due_at = None  # information runs no SLA clock
        bulk_create_with_history(
            to_create, DecisionException, batch_size=1000, default_change_reason=f"raised by {why}", default_date=now
        )
        if to_create[0].pk is None:  # a backend that does not return keys from a bulk insert
            ids = dict(DecisionException.objects.filter(
                key__in=[c.key for c in to_create], status=ExceptionStatus.OPEN).values_list("key", "id"))
            for case in to_create:
                case.pk = case.id = ids[case.key]
        if unrouted:
            route(unrouted, now=now)
    case_ids = {key: row[0] for key, row in active_cases.items() if key in wanted_cases}
    case_ids.update({case.key: case.pk for case in to_create})

    # Reasons: resolve, update (message, details, their case), create.
    reason_resolved = []
    for instance in _reason_instances(reason_resolutions):
        instance.status = ReasonStatus.RESOLVED
        instance.resolution_reason = f"no longer raised by run #{run.pk}"
        instance.resolved_at = now
        instance.updated_at = now
        reason_resolved.append(instance)
    if reason_resolved:
        bulk_update_with_history(
            reason_resolved, CaseReason, ["status", "resolution_reason", "resolved_at", "updated_at"],
            batch_size=1000, default_change_reason=f"resolved by {why}", default_date=now,
        )
    for key, row in open_rows.items():
        if key in final and row[0] not in reason_changes and case_ids.get(final[key][0]) != row[6]:
            reason_changes[row[0]] = {}
    reason_updated = []
    key_of = {row[0]: key for key, row in open_rows.items()}
    for instance in _reason_instances(list(reason_changes)):
        for name, value in reason_changes[instance.pk].items():
            setattr(instance, name, value)
        instance.case_id = case_ids.get(final[key_of[instance.pk]][0])
        instance.run_id = run.pk
        instance.updated_at = now
        reason_updated.append(instance)
    if reason_updated:
        bulk_update_with_history(
            reason_updated, CaseReason, ["message", "details", "information", "case", "run_id", "updated_at"],
            batch_size=1000, default_change_reason=f"updated by {why}", default_date=now,
        )
    reason_new = []
    for key in new_reasons:
        case_key, kind, message, details, line_id, order, _item, _location, information = final[key]
        stake = stakes.get(line_id) if line_id is not None else None
        reason_new.append(CaseReason(
            case_id=case_ids.get(case_key), type=kind, key=key, status=ReasonStatus.OPEN, message=message,
            details=details, information=information, line_id=line_id, order_id=orders.get(order),
            value=Decimal(stake.value).quantize(Decimal("0.01")) if stake is not None else Decimal("0.00"),
            run_id=run.pk, raised_at=now, updated_at=now,
        ))
    if reason_new:
        bulk_create_with_history(
            reason_new, CaseReason, batch_size=1000, default_change_reason=f"raised by {why}", default_date=now
        )
    return SyncCounts(created=len(to_create), updated=len(to_update), resolved=len(to_resolve))


def _fields_for_line(line_id: int | None, stakes: Mapping[int, LineStake]) -> dict[str, Any]:
    stake = stakes.get(line_id) if line_id is not None else None
    if stake is None:
        return {"jeopardy_score": Decimal("0.00"), "jeopardy_band": "low", "jeopardy_reason": "", "value": Decimal("0.00")}
    score, band, reason = stake_jeopardy(stake)
    return {
        "jeopardy_score": score,
        "jeopardy_band": band,
        "jeopardy_reason": reason[:300],
        "value": Decimal(stake.value).quantize(Decimal("0.01")),
    }


def _still_open(kind: str, line_id: int | None, details: dict, stakes: Mapping[int, LineStake]) -> bool:
    """A reason not raised again that stays open: a reversal, or a gain line's shortage, until
    the line holds again what it held when it was raised."""
    if kind == REVERSED:
        return not _reversal_restored(line_id, details, stakes)
    if kind == SHORTAGE and details.get("floor_kind") == "gain":
        stake = stakes.get(line_id) if line_id is not None else None
        return stake is not None and stake.covered < _decimal(details.get("held_before", 0))
    return False


def _keep_highest_held(old: dict, new: dict) -> dict:
    if _decimal(old.get("held_before", 0)) > _decimal(new.get("held_before", 0)):
        return {**new, "held_before": old["held_before"]}
    return new


def _reason_instances(pks: list[int]) -> list[CaseReason]:
    found: list[CaseReason] = []
    for chunk in _chunks(sorted(pks)):
        found.extend(CaseReason.objects.filter(pk__in=chunk).order_by("pk"))
    return found


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
        # The queue comes along: a case turning from information to work restarts its SLA clock from it.
        found.extend(DecisionException.objects.filter(pk__in=chunk).select_related("queue").order_by("pk"))
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

