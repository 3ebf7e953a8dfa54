"""Actions on exceptions: the one write path for the screens, the API, tasks and commands.

Every action is one function with a keyword-only ``actor`` and ``expected_version``: it locks
the exception row (``select_for_update``), compares its version and raises ``StaleAction``
with the current state and what changed when someone acted first, so two planners acting on
one exception cannot both win. Locks are taken in one fixed order: exception, then order
line, then allocations (in ``allocation.overrides``). Each change bumps ``version`` and is
recorded by simple-history with a change reason naming the action. Actions that change
allocations run the touched item groups after commit and return that run.

Overrides, splits and releases above the policy thresholds do not execute: they open an
approval request (``exceptions.approvals``) and the exception waits in
``awaiting_approval`` until an approver (never the requester) decides.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from allocation import overrides
from allocation.dates import business_today
from allocation.models import OrderLine
from config import bounds, roles
from exceptions import approvals, notifications, routing, safety
from exceptions.choices import (
    ACTIVE_STATUSES,
    APPROVAL_KIND_OVERRIDE,
    APPROVAL_KIND_RELEASE,
    ExceptionAction,
    ExceptionStatus,
    ExceptionType,
    OverrideReason,
    ReasonStatus,
)
from exceptions.errors import (
    ActionNotAllowed,
    ApprovalNotAllowed,
    ExceptionNotFound,
    InvalidAction,
    StaleAction,
)
from exceptions.models import CaseReason, DecisionException, ExceptionComment, SavedView

# Who may act on exceptions.
ACTOR_ROLES = frozenset({roles.PLANNER, roles.CUSTOMER_SERVICE})

# Re-exported so callers (run sync, ingestion) find routing with the actions.
route = routing.route
route_unrouted = routing.route_unrouted
escalate_overdue = routing.escalate_overdue


@dataclass
class ActionResult:
    """What an action did: the exception after it, the run it triggered (when allocations
    changed and runs are installed), the approval it opened (when it waits for one)."""

    exception: DecisionException
    message: str
    run: Any = None
    approval: Any = None
    changed_allocations: int = 0
    promise_change: Any = None


@dataclass
class BulkResult:
    """A bulk action's outcome per exception id: done, stale (version moved) or skipped."""

    done: list[int] = field(default_factory=list)
    stale: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- state and locking


def exception_state(exception: DecisionException) -> dict[str, Any]:
    """The fields a client needs to see what an exception is now (sent with a 409)."""
    return {
        "id": exception.pk,
        "version": exception.version,
        "status": exception.status,
        "assignee": exception.assignee.get_username() if exception.assignee_id else None,
        "queue": exception.queue.code if exception.queue_id else None,
        "escalation_level": exception.escalation_level,
        "resolution_reason": exception.resolution_reason,
        "updated_at": exception.updated_at.isoformat() if exception.updated_at else None,
    }


def changes_since(exception: DecisionException, version: int) -> list[dict[str, Any]]:
    """What happened to ``exception`` after ``version``: who, when, what (from its history)."""
    rows = (
        exception.history.filter(version__gt=version)
        .order_by("history_date", "history_id")
        .values("version", "status", "history_change_reason", "history_user__username", "history_date")
    )
    return [
        {
            "version": row["version"],
            "status": row["status"],
            "what": row["history_change_reason"] or "",
            "by": row["history_user__username"],
            "at": row["history_date"].isoformat(),
        }
        for row in rows
    ]


def _check_actor(actor: Any) -> None:
    if not roles.has_role(actor, ACTOR_ROLES):
        raise ActionNotAllowed("Only planners and customer service act on exceptions.")


def _lock(exception_id: int, expected_version: int) -> DecisionException:
    """Lock the exception row and compare versions; the first lock of every action."""
    # No select_related here: after waiting for the lock PostgreSQL re-reads the locked row
    # but not joined ones, so related objects are loaded after the lock instead.
    exception = DecisionException.objects.select_for_update(of=("self",)).filter(pk=exception_id).first()
    if exception is None:
        raise ExceptionNotFound("No such exception.")
    if expected_version is None or int(expected_version) != exception.version:
        raise StaleAction(
            f"This exception changed since you opened it (now version {exception.version}, status {exception.status}).",
            current=exception_state(exception),
            changes=changes_since(exception, int(expected_version or 0)),
        )
    return exception


def _save(exception: DecisionException, *, actor: Any, reason: str, now: dt.datetime) -> None:
    exception.version += 1
    exception.updated_at = now
    exception._change_reason = reason[:100]
    exception._history_user = actor
    exception.save()


def _require_active(exception: DecisionException) -> None:
    if exception.status not in ACTIVE_STATUSES:
        raise InvalidAction(f"This exception is already {exception.status}.", field="status")


def _require_workable(exception: DecisionException, actor: Any) -> None:
    """Open, or claimed by the actor: the states in which the actor may resolve it."""
    _require_active(exception)
    if exception.status == ExceptionStatus.AWAITING_APPROVAL:
        raise InvalidAction("This exception is waiting for an approver.", field="status")
    if exception.status == ExceptionStatus.CLAIMED and exception.assignee_id != actor.pk:
        raise InvalidAction(
            f"{exception.assignee.get_username()} has claimed this exception; ask them or have it assigned to you.",
            field="assignee",
        )


def _resolve(exception: DecisionException, reason: str, now: dt.datetime) -> None:
    """Resolve a case and, with it, its open reasons (a later run that finds the condition
    again raises a new reason and a new case)."""
    exception.status = ExceptionStatus.RESOLVED
    exception.resolved_at = now
    exception.resolution_reason = reason[:300]
    _resolve_reasons([exception.pk], reason, now)


def _resolve_reasons(case_ids: list[int], reason: str, now: dt.datetime) -> None:
    reasons = list(CaseReason.objects.filter(case_id__in=case_ids, status=ReasonStatus.OPEN))
    for item in reasons:
        item.status = ReasonStatus.RESOLVED
        item.resolved_at = now
        item.updated_at = now
        item.resolution_reason = reason[:300]
    if reasons:
        bulk_update_with_history(
            reasons, CaseReason, ["status", "resolved_at", "updated_at", "resolution_reason"],
            batch_size=1000, default_change_reason=reason[:100], default_date=now,
        )


def _line_of(exception: DecisionException) -> OrderLine:
    if exception.line_id is None:
        raise InvalidAction("This exception is not about an order line.", field="line")
    return (
        OrderLine.objects.select_for_update(of=("self",))
        .select_related("order__customer", "item")
        .get(pk=exception.line_id)
    )


def _required_text(value: str | None, name: str, label: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidAction(f"{label} is required.", field=name)
    return text


# --------------------------------------------------------------------------- claim, release, assign


def _held_by_other(exception: DecisionException, actor: Any) -> bool:
    return exception.status == ExceptionStatus.CLAIMED and exception.assignee_id is not None and exception.assignee_id != actor.pk


def _refuse_unless_holder(exception: DecisionException, actor: Any, action: str) -> None:
    """A colleague's claim is theirs: only they may release or reassign it; anyone else takes
    it over first (``claim`` with ``take_over``), which is recorded."""
    if _held_by_other(exception, actor):
        raise ActionNotAllowed(
            f"{exception.assignee.get_username()} holds this claim: only they can {action} it. "
            "Take it over first (confirm the take-over) if you must.",
            field="assignee",
        )


def claim(
    exception_id: int, *, actor: Any, expected_version: int, take_over: bool = False, reason: str = ""
) -> ActionResult:
    """Take an open exception: it becomes claimed by the actor. A colleague's claim is taken
    over only with ``take_over`` (the confirmed take-over) and a ``reason``, recorded with whose
    claim it was; the colleague is notified in the same transaction."""
    _check_actor(actor)
    now = timezone.now()
    previous_holder = None
    with transaction.atomic():
        exception = _lock(exception_id, expected_version)
        _require_active(exception)
        if exception.status == ExceptionStatus.AWAITING_APPROVAL:
            raise InvalidAction("This exception is waiting for an approver.", field="status")
        if exception.status == ExceptionStatus.CLAIMED:
            if not _held_by_other(exception, actor):
                raise InvalidAction("You have already claimed this exception.", field="assignee")
            if not take_over:
                raise InvalidAction(
                    f"Already claimed by {exception.assignee.get_username()}; confirm the take-over to take it from them.",
                    field="take_over",
                )
            why = _required_text(reason, "reason", "A reason for the take-over")
            previous_holder = exception.assignee
            previous = previous_holder.get_username()
            reason = f"taken over by {actor.get_username()} from {previous}: {why}"
            message = f"Taken over from {previous}; they have been told."
            ExceptionComment.objects.create(exception=exception, author=actor, body=f"Took over the claim from {previous}: {why}")
        else:
            reason, message = f"claimed by {actor.get_username()}", "Claimed."
        exception.status = ExceptionStatus.CLAIMED
        exception.assignee = actor
        _save(exception, actor=actor, reason=reason, now=now)
        if previous_holder is not None:
            notifications.claim_taken_over(case=exception, previous=previous_holder, actor=actor, reason=why, now=now)
    return ActionResult(exception, message)


def release(exception_id: int, *, actor: Any, expected_version: int) -> ActionResult:
    """Give a claimed exception back to its queue (open, no assignee)."""
    _check_actor(actor)
    now = timezone.now()
    with transaction.atomic():
        exception = _lock(exception_id, expected_version)
        if exception.status != ExceptionStatus.CLAIMED:
            raise InvalidAction("Only a claimed exception can be released.", field="status")
        _refuse_unless_holder(exception, actor, "release")
        exception.status = ExceptionStatus.OPEN
        exception.assignee = None
        _save(exception, actor=actor, reason="claim released", now=now)
    return ActionResult(exception, "Released to the queue.")


def assign(exception_id: int, *, actor: Any, expected_version: int, assignee: Any) -> ActionResult:
    """Give an exception to a planner or customer service person (it becomes claimed by them).
    An open exception, or one the actor holds: a colleague's claim is refused (take it over first)."""
    _check_actor(actor)
    if assignee is None or not roles.has_role(assignee, ACTOR_ROLES) or not assignee.is_active:
        raise InvalidAction("The assignee must be an active planner or customer service user.", field="assignee")
    now = timezone.now()
    with transaction.atomic():
        exception = _lock(exception_id, expected_version)
        _require_active(exception)
        if exception.status == ExceptionStatus.AWAITING_APPROVAL:
            raise InvalidAction("This exception is waiting for an approver.", field="status")
        _refuse_unless_holder(exception, actor, "reassign")
        exception.status = ExceptionStatus.CLAIMED
        exception.assignee = assignee
        _save(exception, actor=actor, reason=f"assigned to {assignee.get_username()}", now=now)
    return ActionResult(exception, f"Assigned to {assignee.get_username()}.")


# --------------------------------------------------------------------------- allocation changes


def accept(exception_id: int, *, actor: Any, expected_version: int) -> ActionResult:
    """Approve a proposed substitution: the line's proposed allocations become reserved."""
    _check_actor(actor)
    now = timezone.now()
    with transaction.atomic():
        exception = _lock(exception_id, expected_version)
        _require_workable(exception, actor)
        if ExceptionType.SUBSTITUTION_PROPOSED not in (exception.reason_types or [exception.type]):
            raise InvalidAction("Only a proposed substitution can be accepted.", field="type")
        line = _line_of(exception)
        changed = overrides.accept_substitution(line)
        if not changed:
            raise InvalidAction("The line has no proposed substitute allocation any more.", field="line")
        exception.assignee = actor
        _resolve(exception, f"substitution accepted by {actor.get_username()}", now)
        _save(exception, actor=actor, reason="substitution accepted", now=now)
        skus = overrides.skus_touched(line) | _allocated_skus(line)
    run = overrides.trigger_incremental_run(skus, actor=actor)
    return ActionResult(exception, "Substitution accepted: the allocation is reserved.", run=run, changed_allocations=changed)


def _allocated_skus(line: OrderLine) -> set[str]:
    return {a.item.sku for allocations in overrides.line_allocations([line.pk]).values() for a in allocations}


def _parse_parts(parts: Iterable[Mapping[str, Any]]) -> list[overrides.PartRequest]:
    requests = []
    parts = list(parts)
    for index, part in enumerate(parts):
        prefix = f"parts[{index}]." if len(parts) > 1 else ""
        location = str(part.get("location") or "").strip()
        if not location:
            raise InvalidAction("Choose a location.", field=f"{prefix}location")
        try:
            quantity = Decimal(str(part.get("quantity")))
        except (InvalidOperation, TypeError, ValueError):
            raise InvalidAction("The quantity must be a number.", field=f"{prefix}quantity") from None
        if not quantity.is_finite():
            raise InvalidAction("The quantity must be a number.", field=f"{prefix}quantity")
        requests.append(
            overrides.PartRequest(
                location_code=location,
                quantity=quantity,
                supply_ref=str(part.get("supply") or "").strip(),
                item_sku=str(part.get("item") or "").strip(),
            )
        )
    return requests


def _plan(line: OrderLine, parts: list[overrides.PartRequest]) -> overrides.OverridePlan:
    try:
        return overrides.plan_override(line, parts)
    except overrides.OverrideError as error:
        raise InvalidAction(error.message, field=error.field) from None


def preview_override(exception: DecisionException, parts: Iterable[Mapping[str, Any]]) -> overrides.OverridePlan:
    """What an override or split would do (who loses, whether it needs an approver), changing
    nothing: the consequence the screen shows before the planner commits."""
    if exception.line_id is None:
        raise InvalidAction("This exception is not about an order line.", field="line")
    line = OrderLine.objects.select_related("order__customer", "item").get(pk=exception.line_id)
    return _plan(line, _parse_parts(parts))


def override(
    exception_id: int,
    *,
    actor: Any,
    expected_version: int,
    location: str,
    quantity: Any,
    reason_code: str,
    note: str,
    supply: str = "",
    item: str = "",
) -> ActionResult:
    """Pin ``quantity`` at ``location`` (from inbound ``supply``, else on-hand; of substitute
    ``item`` when given) for the exception's line, replacing its unreleased allocations.
    A reason code from ``OverrideReason`` and a note are required. Above the approval
    thresholds it waits for an approver instead and changes no allocation."""
    return _override_parts(
        exception_id,
        actor=actor,
        expected_version=expected_version,
        parts=[{"location": location, "quantity": quantity, "supply": supply, "item": item}],
        reason_code=reason_code,
        note=note,
        label="override",
    )


def split(
    exception_id: int, *, actor: Any, expected_version: int, parts: list[Mapping[str, Any]], reason_code: str, note: str
) -> ActionResult:
    """Source the line from several places at once: each part (location, supply, item,
    quantity) becomes a pinned allocation. Same rules and approvals as ``override``."""
    if len(list(parts)) < 2:
        raise InvalidAction("A split needs at least two parts.", field="parts")
    return _override_parts(
        exception_id, actor=actor, expected_version=expected_version, parts=parts, reason_code=reason_code, note=note, label="split"
    )


def _override_parts(
    exception_id: int,
    *,
    actor: Any,
    expected_version: int,
    parts: Iterable[Mapping[str, Any]],
    reason_code: str,
    note: str,
    label: str,
) -> ActionResult:
    _check_actor(actor)
    if reason_code not in OverrideReason.values:
        raise InvalidAction("Choose a reason code from the list.", field="reason_code")
    note = _required_text(note, "note", "A note")
    requests = _parse_parts(parts)
    now = timezone.now()
    with transaction.atomic():
        exception = _lock(exception_id, expected_version)
        _require_workable(exception, actor)
        line = _line_of(exception)
        plan = _plan(line, requests)
        exception.assignee = actor
        if plan.needs_approval:
            approval = approvals.request_approval(
                kind=APPROVAL_KIND_OVERRIDE,
                subject=exception,
                actor=actor,
                note=f"{label} ({OverrideReason(reason_code).label}): {note}",
                payload={
                    "action": label,
                    "parts": [p.request.as_payload() for p in plan.parts],
                    "reason_code": reason_code,
                    "note": note,
                    "why_approval": plan.approval_reasons,
                    "losers": [h.label for h in plan.losers],
                },
            )
            exception.status = ExceptionStatus.AWAITING_APPROVAL
            _save(exception, actor=actor, reason=f"{label} requested, awaiting approval", now=now)
            return ActionResult(
                exception, "Waiting for an approver: " + "; ".join(plan.approval_reasons) + ".", approval=approval
            )
        overrides.apply_override(plan)
        _resolve(exception, f"{label} ({reason_code}) by {actor.get_username()}: {note}", now)
        _save(exception, actor=actor, reason=f"{label}: {reason_code}", now=now)
        skus = overrides.skus_touched(line, plan)
    run = overrides.trigger_incremental_run(skus, actor=actor)
    return ActionResult(exception, f"Pinned {plan.total.normalize():f} for the line.", run=run, changed_allocations=len(plan.parts))


def hold(exception_id: int, *, actor: Any, expected_version: int, note: str = "") -> ActionResult:
    """Hold what the line has: its reserved allocations become pinned (no run takes them);
    the exception stays claimed by the actor."""
    _check_actor(actor)
    now = timezone.now()
    with transaction.atomic():
        exception = _lock(exception_id, expected_version)
        _require_workable(exception, actor)
        line = _line_of(exception)
        changed = overrides.hold_line(line)
        if not changed:
            raise InvalidAction("The line has no reserved allocation to hold.", field="line")
        exception.status = ExceptionStatus.CLAIMED
        exception.assignee = actor
        _save(exception, actor=actor, reason=f"allocation held{': ' + note if note else ''}", now=now)
        skus = _allocated_skus(line)
    run = overrides.trigger_incremental_run(skus, actor=actor)
    return ActionResult(exception, f"Held {changed} allocation(s): pinned.", run=run, changed_allocations=changed)


def release_to_warehouse(
    exception_id: int, *, actor: Any, expected_version: int, note: str = "", confirmed: bool = True
) -> ActionResult:
    """Release the line's reserved and pinned allocations to the warehouse. A line worth more
    than its ``auto_release_max_value`` waits for an approver instead. With ``confirmed=False``
    (the screens' unticked confirmation) a tier-1 customer's line or one above that threshold
    is refused until the person confirms (``exceptions.safety``)."""
    _check_actor(actor)
    now = timezone.now()
    with transaction.atomic():
        exception = _lock(exception_id, expected_version)
        _require_workable(exception, actor)
        line = _line_of(exception)
        if overrides.releasable_quantity(line) <= 0:
            raise InvalidAction("The line has nothing reserved to release.", field="line")
        ask = "" if confirmed else safety.release_confirmation(line)
        if ask:
            raise InvalidAction(f"Confirm the release to the warehouse: {ask}.", field="confirm")
        exception.assignee = actor
        why = overrides.release_needs_approval(line)
        if why:
            approval = approvals.request_approval(
                kind=APPROVAL_KIND_RELEASE, subject=exception, actor=actor, note=f"release: {note}".strip(), payload={"why_approval": [why]}
            )
            exception.status = ExceptionStatus.AWAITING_APPROVAL
            _save(exception, actor=actor, reason="release requested, awaiting approval", now=now)
            return ActionResult(exception, f"Waiting for an approver: {why}.", approval=approval)
        changed = overrides.release_line(line)
        _resolve(exception, f"released to the warehouse by {actor.get_username()}", now)
        _save(exception, actor=actor, reason="released to warehouse", now=now)
    return ActionResult(exception, f"Released {changed} allocation(s) to the warehouse.", changed_allocations=changed)


def promised_date_problem(promised_date: dt.date, *, today: dt.date | None = None) -> str | None:
    """Why ``promised_date`` cannot be a deferred promise, or None: it must lie between the
    business date and ``ALLOT_DEFER_MAX_DAYS`` after it (a year by default), so a typo such
    as 9999-12-31 never becomes a promise sent to the ERP."""
    today = today or business_today()
    if promised_date < today:
        return "The new promised date is in the past."
    horizon = today + dt.timedelta(days=settings.ALLOT_DEFER_MAX_DAYS)
    if promised_date > horizon:
        return f"The new promised date must be on or before {horizon.isoformat()} ({settings.ALLOT_DEFER_MAX_DAYS} days ahead)."
    return None


def defer_promise(
    exception_id: int, *, actor: Any, expected_version: int, promised_date: dt.date | None, reason: str
) -> ActionResult:
    """Move the line's promise to ``promised_date`` (later than the current promise, not in
    the past, within the horizon of ``promised_date_problem``); records a ``PromiseChange``
    for the outbound ``promise.changed`` and resolves the exception."""
    _check_actor(actor)
    reason = _required_text(reason, "reason", "A reason")
    if promised_date is None:
        raise InvalidAction("Give the new promised date.", field="promised_date")
    problem = promised_date_problem(promised_date)
    if problem is not None:
        raise InvalidAction(problem, field="promised_date")
    now = timezone.now()
    with transaction.atomic():
        exception = _lock(exception_id, expected_version)
        _require_workable(exception, actor)
        line = _line_of(exception)
        current = line.order.promised_date or line.order.requested_date
        if promised_date <= current:
            raise InvalidAction(f"The new date must be after the current promise ({current.isoformat()}).", field="promised_date")
        change = overrides.defer_promise(line, promised_date, actor=actor, reason=reason, exception=exception)
        exception.assignee = actor
        _resolve(exception, f"promise deferred to {promised_date.isoformat()}: {reason}", now)
        _save(exception, actor=actor, reason=f"promise deferred to {promised_date.isoformat()}", now=now)
    return ActionResult(
        exception, f"Promise moved from {current.isoformat()} to {promised_date.isoformat()}.", promise_change=change
    )


# --------------------------------------------------------------------------- escalate, dismiss, comment


def escalate(exception_id: int, *, actor: Any, expected_version: int, note: str = "") -> ActionResult:
    """Send the exception to its queue's escalation queue now (level +1, new SLA clock)."""
    _check_actor(actor)
    now = timezone.now()
    with transaction.atomic():
        exception = _lock(exception_id, expected_version)
        _require_active(exception)
        if exception.status == ExceptionStatus.AWAITING_APPROVAL:
            raise InvalidAction("This exception is waiting for an approver.", field="status")
        target = exception.queue.escalation_queue if exception.queue_id else None
        if target is None:
            raise InvalidAction("This queue has no escalation queue.", field="queue")
        from_name = exception.queue.name
        previous_holder = exception.assignee if exception.assignee_id else None
        exception.queue = target
        exception.escalation_level += 1
        exception.escalated_at = now
        exception.due_at = now + dt.timedelta(minutes=target.sla_minutes)
        exception.status = ExceptionStatus.OPEN
        exception.assignee = None
        _save(exception, actor=actor, reason=f"escalated from {from_name} to {target.name}{': ' + note if note else ''}", now=now)
        if note.strip():
            ExceptionComment.objects.create(exception=exception, author=actor, body=f"Escalated: {note.strip()}")
        notifications.case_escalated(exception, previous=previous_holder, actor=actor, now=now)
    return ActionResult(exception, f"Escalated to {target.name}.")


def dismiss(exception_id: int, *, actor: Any, expected_version: int, reason: str) -> ActionResult:
    """Close an exception that needs no decision; a reason is required."""
    _check_actor(actor)
    reason = _required_text(reason, "reason", "A reason")
    now = timezone.now()
    with transaction.atomic():
        exception = _lock(exception_id, expected_version)
        _require_workable(exception, actor)
        exception.status = ExceptionStatus.DISMISSED
        exception.resolved_at = now
        exception.resolution_reason = f"dismissed: {reason}"[:300]
        _resolve_reasons([exception.pk], f"dismissed: {reason}", now)
        _save(exception, actor=actor, reason=f"dismissed: {reason}", now=now)
    return ActionResult(exception, "Dismissed.")


def comment(exception_id: int, *, actor: Any, expected_version: int, body: str) -> ActionResult:
    """Add a comment; the version moves so that others see the exception changed."""
    _check_actor(actor)
    body = _required_text(body, "body", "The comment")
    now = timezone.now()
    with transaction.atomic():
        exception = _lock(exception_id, expected_version)
        ExceptionComment.objects.create(exception=exception, author=actor, body=body)
        _save(exception, actor=actor, reason=f"comment: {body}", now=now)
    return ActionResult(exception, "Comment added.")


# --------------------------------------------------------------------------- bulk actions


def bulk_selection_problem(selection: Mapping[Any, Any]) -> str | None:
    """Why a bulk selection ({id: version}) is refused, or None: at most ``ALLOT_BULK_MAX_IDS``
    exceptions, ids and versions positive whole numbers (never booleans)."""
    if len(selection) > settings.ALLOT_BULK_MAX_IDS:
        return f"At most {settings.ALLOT_BULK_MAX_IDS} exceptions at once; got {len(selection)}."
    for pk, version in selection.items():
        for value in (pk, version):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**63 - 1:
                return f"Ids and versions must be positive whole numbers; got {bounds.short_repr(value)}."
    return None


def _bulk(
    selection: Mapping[int, int], *, actor: Any, apply, reason: str, fields: list[str]
) -> BulkResult:
    """Lock the selected rows in id order, act on those whose version still matches, write
    them with one bulk update (history included)."""
    _check_actor(actor)
    result = BulkResult()
    if not selection:
        raise InvalidAction("Select at least one exception.", field="ids")
    problem = bulk_selection_problem(selection)
    if problem is not None:
        raise InvalidAction(problem, field="ids")
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            DecisionException.objects.select_for_update(of=("self",))
            .filter(pk__in=list(selection))
            .order_by("pk")
        )
        found = {row.pk for row in rows}
        for missing in sorted(set(selection) - found):
            result.skipped[missing] = "not found"
        changed = []
        for row in rows:
            if row.version != int(selection[row.pk]):
                result.stale.append(row.pk)
                continue
            refusal = apply(row, now)
            if refusal:
                result.skipped[row.pk] = refusal
                continue
            row.version += 1
            row.updated_at = now
            row._change_reason = reason[:100]
            changed.append(row)
            result.done.append(row.pk)
        if changed:
            bulk_update_with_history(
                changed, DecisionException, fields + ["version", "updated_at"], default_user=actor, default_change_reason=reason[:100]
            )
    return result


def bulk_claim(selection: Mapping[int, int], *, actor: Any) -> BulkResult:
    """Claim every selected open exception ({id: version}); others are reported, not changed."""

    def apply(row: DecisionException, now: dt.datetime) -> str:
        if row.status != ExceptionStatus.OPEN:
            return f"is {row.status}"
        row.status = ExceptionStatus.CLAIMED
        row.assignee = actor
        return ""

    return _bulk(selection, actor=actor, apply=apply, reason=f"claimed by {actor.get_username()} (bulk)", fields=["status", "assignee"])


def bulk_assign(selection: Mapping[int, int], *, actor: Any, assignee: Any) -> BulkResult:
    """Assign every selected exception that is open or claimed by the actor to ``assignee``
    (a colleague's claim is skipped: only a confirmed take-over moves it)."""
    if assignee is None or not roles.has_role(assignee, ACTOR_ROLES) or not assignee.is_active:
        raise InvalidAction("The assignee must be an active planner or customer service user.", field="assignee")

    def apply(row: DecisionException, now: dt.datetime) -> str:
        if row.status not in (ExceptionStatus.OPEN, ExceptionStatus.CLAIMED):
            return f"is {row.status}"
        if _held_by_other(row, actor):
            return f"claimed by {row.assignee.get_username()}"
        row.status = ExceptionStatus.CLAIMED
        row.assignee = assignee
        return ""

    return _bulk(
        selection, actor=actor, apply=apply, reason=f"assigned to {assignee.get_username()} (bulk)", fields=["status", "assignee"]
    )


def bulk_dismiss(selection: Mapping[int, int], *, actor: Any, reason: str) -> BulkResult:
    """Dismiss every selected exception the actor may work (open, or claimed by them)."""
    reason = _required_text(reason, "reason", "A reason")

    def apply(row: DecisionException, now: dt.datetime) -> str:
        if row.status not in (ExceptionStatus.OPEN, ExceptionStatus.CLAIMED):
            return f"is {row.status}"
        if row.status == ExceptionStatus.CLAIMED and row.assignee_id != actor.pk:
            return f"claimed by {row.assignee.get_username()}"
        row.status = ExceptionStatus.DISMISSED
        row.resolved_at = now
        row.resolution_reason = f"dismissed: {reason}"[:300]
        _resolve_reasons([row.pk], f"dismissed: {reason}", now)
        return ""

    return _bulk(
        selection, actor=actor, apply=apply, reason=f"dismissed: {reason}", fields=["status", "resolved_at", "resolution_reason"]
    )


# --------------------------------------------------------------------------- approvals


def _locked_subject(subject: DecisionException) -> DecisionException:
    exception = DecisionException.objects.select_for_update(of=("self",)).get(pk=subject.pk)
    if exception.status != ExceptionStatus.AWAITING_APPROVAL:
        raise ApprovalNotAllowed(f"The exception is {exception.status}, no longer waiting for this approval.")
    return exception


def _on_override_approved(approval, subject: DecisionException) -> None:
    exception = _locked_subject(subject)
    line = _line_of(exception)
    parts = [overrides.PartRequest.from_payload(p) for p in approval.payload.get("parts", [])]
    try:
        plan = overrides.plan_override(line, parts)
    except overrides.OverrideError as error:
        raise ApprovalNotAllowed(f"The override cannot be applied any more: {error.message} Reject it instead.") from None
    overrides.apply_override(plan)
    now = timezone.now()
    requester = approval.requested_by
    code = approval.payload.get("reason_code", "")
    _resolve(
        exception,
        f"{approval.payload.get('action', 'override')} ({code}) by {requester.get_username()}, approved by "
        f"{approval.decided_by.get_username()}: {approval.payload.get('note', '')}",
        now,
    )
    _save(exception, actor=approval.decided_by, reason=f"override approved by {approval.decided_by.get_username()}", now=now)
    skus = overrides.skus_touched(line, plan)
    # Queued in this transaction, executed after it commits; the approval screen follows it.
    approval.run = overrides.trigger_incremental_run(
        skus, actor=approval.decided_by, trigger="approval", in_transaction=True
    )


def _on_release_approved(approval, subject: DecisionException) -> None:
    exception = _locked_subject(subject)
    line = _line_of(exception)
    overrides.release_line(line)
    now = timezone.now()
    _resolve(exception, f"released to the warehouse, approved by {approval.decided_by.get_username()}", now)
    _save(exception, actor=approval.decided_by, reason=f"release approved by {approval.decided_by.get_username()}", now=now)


def _on_rejected(approval, subject: DecisionException) -> None:
    """The exception goes back to the requester (claimed), nothing changed. When it was
    resolved meanwhile (a run found the condition gone), the rejection only closes the request."""
    exception = DecisionException.objects.select_for_update(of=("self",)).get(pk=subject.pk)
    if exception.status != ExceptionStatus.AWAITING_APPROVAL:
        return
    exception.status = ExceptionStatus.CLAIMED
    exception.assignee = approval.requested_by
    now = timezone.now()
    verb = "withdrawn" if approval.status == "cancelled" else "rejected"  # withdrawn by its requester
    _save(exception, actor=approval.decided_by, reason=f"{approval.kind} {verb}: {approval.decision_reason}", now=now)
    ExceptionComment.objects.create(
        exception=exception, author=approval.decided_by, body=f"{verb.capitalize()}: {approval.decision_reason}"
    )


approvals.register(APPROVAL_KIND_OVERRIDE, on_approved=_on_override_approved, on_rejected=_on_rejected)
approvals.register(APPROVAL_KIND_RELEASE, on_approved=_on_release_approved, on_rejected=_on_rejected)


# --------------------------------------------------------------------------- saved views


def save_view(*, actor: Any, queue, name: str, querystring: str) -> SavedView:
    """Save (or replace) the actor's named view of a queue."""
    name = _required_text(name, "name", "A name")
    if len(name) > 80:
        raise InvalidAction("The name is longer than 80 characters.", field="name")
    view, _ = SavedView.objects.update_or_create(
        user=actor, queue=queue, name=name, defaults={"querystring": querystring[:500]}
    )
    return view


def delete_view(*, actor: Any, view_id: int) -> None:
    """Delete one of the actor's saved views (others' views are not found)."""
    deleted, _ = SavedView.objects.filter(pk=view_id, user=actor).delete()
    if not deleted:
        raise ExceptionNotFound("No such saved view.")


def users_who_act() -> list:
    """Active users a exception can be assigned to (planners and customer service)."""
    return list(
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=ACTOR_ROLES)
        .distinct()
        .order_by("username")
    )


def perform(action: str, exception_id: int, data: Mapping[str, Any], *, actor: Any) -> ActionResult:
    """Run one named action with already-validated input (``version`` is the expected version).

    The one dispatcher behind the HTML action forms and the API action endpoints; ``data``
    carries the fields each action takes (``parts`` for split as a list of dicts).
    """
    common = {"actor": actor, "expected_version": data["version"]}
    if action == ExceptionAction.CLAIM:
        return claim(exception_id, take_over=bool(data.get("take_over")), reason=data.get("reason") or "", **common)
    if action == ExceptionAction.RELEASE:
        return release(exception_id, **common)
    if action == ExceptionAction.ASSIGN:
        return assign(exception_id, assignee=data["assignee"], **common)
    if action == ExceptionAction.ACCEPT:
        return accept(exception_id, **common)
    if action == ExceptionAction.OVERRIDE:
        return override(
            exception_id, location=data["location"], quantity=data["quantity"], supply=data.get("supply") or "",
            item=data.get("item") or "", reason_code=data["reason_code"], note=data["note"], **common,
        )
    if action == ExceptionAction.SPLIT:
        return split(exception_id, parts=data["parts"], reason_code=data["reason_code"], note=data["note"], **common)
    if action == ExceptionAction.DEFER:
        return defer_promise(exception_id, promised_date=data["promised_date"], reason=data["reason"], **common)
    if action == ExceptionAction.HOLD:
        return hold(exception_id, note=data["note"], **common)
    if action == ExceptionAction.RELEASE_TO_WAREHOUSE:
        return release_to_warehouse(exception_id, note=data["note"], confirmed=data.get("confirm", True), **common)
    if action == ExceptionAction.ESCALATE:
        return escalate(exception_id, note=data["note"], **common)
    if action == ExceptionAction.DISMISS:
        return dismiss(exception_id, reason=data["reason"], **common)
    if action == ExceptionAction.COMMENT:
        return comment(exception_id, body=data["body"], **common)
    raise InvalidAction(f"Unknown action {action!r}.", field="action")
