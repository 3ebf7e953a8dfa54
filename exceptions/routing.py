"""Routing exceptions to queues, the SLA clock and escalation.

``route`` assigns queues in bulk (rules first match wins, else the default queue) and starts
each exception's SLA clock from when it was raised. ``escalate_overdue`` moves exceptions
whose SLA ran out to their queue's escalation queue. Both take the clock as an argument, so
tests and the beat task control "now".
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from exceptions import notifications
from exceptions.choices import ExceptionStatus, Severity
from exceptions.models import DecisionException, Queue, RoutingRule

# Value bands that routing rules match on (the exception's value at stake).
VALUE_BAND_MEDIUM_FROM = Decimal("1000")
VALUE_BAND_HIGH_FROM = Decimal("10000")
# An exception due within this window is "due soon".
DUE_SOON_WINDOW = dt.timedelta(minutes=60)
ROUTE_CHUNK = 2000


class SlaStatus:
    OVERDUE = "overdue"
    DUE_SOON = "due_soon"
    ON_TIME = "on_time"
    NONE = "none"


def value_band(value: Decimal | int | float | None) -> str:
    """The band of a value at stake: low below 1,000, medium below 10,000, else high."""
    amount = Decimal(str(value or 0))
    if amount >= VALUE_BAND_HIGH_FROM:
        return Severity.HIGH
    if amount >= VALUE_BAND_MEDIUM_FROM:
        return Severity.MEDIUM
    return Severity.LOW


@dataclass(frozen=True)
class _Facts:
    exception_type: str
    region: str
    tier: int | None
    segment: str
    band: str


def _matches(rule: RoutingRule, facts: _Facts) -> bool:
    return (
        (not rule.exception_type or rule.exception_type == facts.exception_type)
        and (not rule.region or rule.region == facts.region)
        and (rule.customer_tier is None or rule.customer_tier == facts.tier)
        and (not rule.customer_segment or rule.customer_segment == facts.segment)
        and (not rule.value_band or rule.value_band == facts.band)
    )


def _customer_facts(exception_ids: list[int]) -> dict[int, tuple[str, int | None, str]]:
    """Region, tier and segment of each exception's customer (line's order, else order), in one query."""
    rows = DecisionException.objects.filter(pk__in=exception_ids).values_list(
        "pk",
        "line__order__customer__region",
        "line__order__customer__tier",
        "line__order__customer__segment",
        "order__customer__region",
        "order__customer__tier",
        "order__customer__segment",
    )
    facts = {}
    for pk, l_region, l_tier, l_segment, o_region, o_tier, o_segment in rows:
        if l_region is not None:
            facts[pk] = (l_region, l_tier, l_segment)
        else:
            facts[pk] = (o_region or "", o_tier, o_segment or "")
    return facts


def choose_queue(rules: list[RoutingRule], default: Queue | None, facts: _Facts) -> Queue | None:
    """The queue of the first rule that matches, else the default queue."""
    for rule in rules:
        if _matches(rule, facts):
            return rule.queue
    return default


def route(exceptions: Iterable[DecisionException], *, now: dt.datetime | None = None) -> int:
    """Assign a queue and an SLA due time to each exception, in bulk; returns how many were routed.

    Rules are read once; customer facts in one query; rows are written with one bulk update
    that records history ("routed to <queue>"). The SLA clock starts when the exception was
    raised (``now`` when that is unknown).
    """
    exceptions = list(exceptions)
    if not exceptions:
        return 0
    now = now or timezone.now()
    rules = list(RoutingRule.objects.select_related("queue").order_by("position", "id"))
    default = Queue.objects.filter(is_default=True).first()
    facts_by_id = _customer_facts([e.pk for e in exceptions])
    routed = []
    for exception in exceptions:
        region, tier, segment = facts_by_id.get(exception.pk, ("", None, ""))
        queue = choose_queue(
            rules, default, _Facts(exception.type, region or "", tier, segment or "", value_band(exception.value))
        )
        if queue is None:
            continue
        exception.queue = queue
        exception.due_at = (exception.raised_at or now) + dt.timedelta(minutes=queue.sla_minutes)
        exception._change_reason = f"routed to {queue.name}"
        routed.append(exception)
    if routed:
        bulk_update_with_history(
            routed, DecisionException, ["queue", "due_at"], batch_size=1000, default_change_reason="routed"
        )
    return len(routed)


def route_unrouted(*, now: dt.datetime | None = None) -> int:
    """Route every active exception that has no queue yet (called after runs and ingestion)."""
    total = 0
    while True:
        with transaction.atomic():
            chunk = list(
                DecisionException.objects.filter(queue__isnull=True, status__in=_ACTIVE)
                .order_by("pk")[:ROUTE_CHUNK]
            )
            if not chunk:
                return total
            routed = route(chunk, now=now)
        total += routed
        if routed < len(chunk):
            return total  # no default queue: the rest cannot be routed either


_ACTIVE = [ExceptionStatus.OPEN, ExceptionStatus.CLAIMED, ExceptionStatus.AWAITING_APPROVAL]


def sla_status(due_at: dt.datetime | None, now: dt.datetime) -> str:
    """overdue, due_soon (within the next hour), on_time, or none when no clock runs."""
    if due_at is None:
        return SlaStatus.NONE
    if due_at <= now:
        return SlaStatus.OVERDUE
    if due_at <= now + DUE_SOON_WINDOW:
        return SlaStatus.DUE_SOON
    return SlaStatus.ON_TIME


def age(raised_at: dt.datetime, now: dt.datetime) -> dt.timedelta:
    """How long an exception has been waiting."""
    return max(now - raised_at, dt.timedelta(0))


def age_text(delta: dt.timedelta) -> str:
    """A short human age: '45 min', '5 h 10 min', '3 d 4 h'."""
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def escalate_overdue(now: dt.datetime) -> int:
    """Move every open or claimed exception whose SLA ran out by ``now`` to its queue's
    escalation queue: escalation level +1, assignee cleared (the new group picks it up),
    status open, and a new SLA clock from ``now``. Exceptions awaiting approval wait for the
    approver and are not escalated; queues without an escalation queue keep theirs.
    Rows are locked (skipping rows someone is acting on right now) and written in bulk with
    history; ``version`` increases so that a planner acting on the old state gets a 409.
    Returns how many were escalated.
    """
    escalated = 0
    while True:
        with transaction.atomic():
            chunk = list(
                DecisionException.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(
                    status__in=[ExceptionStatus.OPEN, ExceptionStatus.CLAIMED],
                    due_at__lte=now,
                    queue__escalation_queue__isnull=False,
                )
                .select_related("queue__escalation_queue")
                .order_by("pk")[:ROUTE_CHUNK]
            )
            if not chunk:
                return escalated
            previous_assignees = {exception.pk: exception.assignee_id for exception in chunk}
            for exception in chunk:
                target = exception.queue.escalation_queue
                exception._change_reason = f"escalated (SLA overdue) from {exception.queue.name} to {target.name}"
                exception.queue = target
                exception.escalation_level += 1
                exception.escalated_at = now
                exception.due_at = now + dt.timedelta(minutes=target.sla_minutes)
                exception.status = ExceptionStatus.OPEN
                exception.assignee = None
                exception.version += 1
                exception.updated_at = now
            bulk_update_with_history(
                chunk,
                DecisionException,
                ["queue", "escalation_level", "escalated_at", "due_at", "status", "assignee", "version", "updated_at"],
                batch_size=1000,
                default_change_reason="escalated",
            )
            notifications.cases_escalated(chunk, previous_assignees=previous_assignees, now=now)
            escalated += len(chunk)
