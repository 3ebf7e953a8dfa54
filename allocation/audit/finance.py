"""Reads behind the finance workspace: credit holds, overrides and approvals, policy changes,
a line's decision as of a point in time, and an order's timeline.

Each list is one queryset in a keyset order (``config.pagination``), so the screens page it
and the exports stream it; the figures a row shows are annotations or one query per page.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import (
    DecimalField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from allocation.audit import selectors as trail
from allocation.choices import LineStatus
from allocation.models import Allocation, LineDecisionLog, Order, OrderLine

QUANTITY = DecimalField(max_digits=18, decimal_places=3)
MONEY = DecimalField(max_digits=18, decimal_places=2)
FRESH_SIMULATION = dt.timedelta(hours=24)


# --------------------------------------------------------------------------- credit holds


def credit_hold_rows() -> QuerySet[OrderLine]:
    """Open lines held for credit (the order or its customer on hold) with their value, what
    they hold now, what they are short of and the latest decision (its shortfall and the date
    open inbound would cover it): what the engine gives them while the hold stands. Credit-held
    lines keep what they hold and get nothing new (allocation.md), so "would get" is read from
    the decision: the shortfall is what the hold keeps from them once released."""
    held = _sum(Allocation.objects.filter(line=OuterRef("pk")), "quantity")
    return (
        OrderLine.objects.filter(status=LineStatus.OPEN)
        .filter(Q(order__credit_hold=True) | Q(order__customer__credit_hold=True))
        .select_related("order__customer", "item", "current_decision__log")
        .annotate(
            value_at_stake=ExpressionWrapper(F("quantity") * F("unit_price"), output_field=MONEY),
            held_quantity=held,
            short_quantity=ExpressionWrapper(F("quantity") - F("shipped_quantity") - held, output_field=QUANTITY),
        )
        .order_by("order__number", "line")
    )


def _sum(qs: QuerySet, column: str) -> Coalesce:
    total = qs.order_by().values("line").annotate(total=Sum(column)).values("total")
    return Coalesce(Subquery(total, output_field=QUANTITY), Value(Decimal(0), output_field=QUANTITY))


def held_since(lines: list[OrderLine]) -> dict[int, dt.datetime | None]:
    """When each line's hold began: the first history row of the order (or customer) on hold
    after the last one off hold. Two queries for a page of lines."""
    orders = {line.order_id for line in lines}
    customers = {line.order.customer_id for line in lines}
    order_since = _since(Order.history.model, "id", orders)
    from allocation.models import Customer

    customer_since = _since(Customer.history.model, "id", customers)
    result = {}
    for line in lines:
        candidates = []
        if line.order.credit_hold:
            candidates.append(order_since.get(line.order_id))
        if line.order.customer.credit_hold:
            candidates.append(customer_since.get(line.order.customer_id))
        found = [c for c in candidates if c is not None]
        result[line.pk] = min(found) if found else None
    return result


def _since(history: Any, key: str, ids: set[int]) -> dict[int, dt.datetime]:
    rows = history.objects.filter(**{f"{key}__in": ids}).order_by(key, "history_date", "history_id").values_list(
        key, "history_date", "credit_hold")
    since: dict[int, dt.datetime] = {}
    for record, at, on_hold in rows:
        if not on_hold:
            since.pop(record, None)
        elif record not in since:
            since[record] = at
    return since


# --------------------------------------------------------------------------- approvals and policy


def approval_rows(*, status: str = "", kind: str = "") -> QuerySet:
    """Every approval request, newest first: who asked, who decided, the reason, the subject."""
    from exceptions.models import ApprovalRequest

    qs = ApprovalRequest.objects.select_related("requested_by", "decided_by", "subject_type")
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("-created_at", "-pk")


def approval_subjects(approvals: list[Any]) -> dict[int, Any]:
    """Each request's subject (case with its line, or policy version), two queries for a page."""
    from exceptions.models import DecisionException
    from policies.models import PolicyVersion

    cases = {c.pk: c for c in DecisionException.objects.select_related("line__order__customer", "line__item").filter(
        pk__in=[a.subject_id for a in approvals if a.kind.startswith("exception.")])}
    versions = {v.pk: v for v in PolicyVersion.objects.filter(pk__in=[a.subject_id for a in approvals if a.kind == "policy_activation"])}
    found = {}
    for approval in approvals:
        if approval.kind.startswith("exception."):
            found[approval.pk] = cases.get(approval.subject_id)
        elif approval.kind == "policy_activation":
            found[approval.pk] = versions.get(approval.subject_id)
    return found


def policy_change_rows() -> QuerySet:
    """Policy versions newest first with who created, submitted, approved them and when active."""
    from policies.models import PolicyVersion

    return PolicyVersion.objects.select_related("created_by", "submitted_by", "approved_by", "based_on").order_by("-number")


def policy_decisions(versions: list[Any]) -> dict[int, Any]:
    """The latest decided approval of each version (its approver's reason), one query."""
    from django.contrib.contenttypes.models import ContentType

    from exceptions.models import ApprovalRequest
    from policies.models import PolicyVersion

    rows = ApprovalRequest.objects.filter(
        subject_type=ContentType.objects.get_for_model(PolicyVersion), subject_id__in=[v.pk for v in versions]
    ).exclude(status="pending").select_related("decided_by").order_by("subject_id", "-decided_at")
    found: dict[int, Any] = {}
    for row in rows:
        found.setdefault(row.subject_id, row)
    return found


def fresh_simulation(version: Any, *, now: dt.datetime) -> Any:
    """The newest simulation of ``version`` started after its last change and less than a day
    ago (succeeded, or still running); None when there is none."""
    from allocation.models import AllocationRun, RunStatus

    return (
        AllocationRun.objects.filter(is_simulation=True, policy_version=version, created_at__gte=max(version.updated_at, now - FRESH_SIMULATION))
        .exclude(status=RunStatus.FAILED)
        .select_related("simulation_result")
        .order_by("-id")
        .first()
    )


# --------------------------------------------------------------------------- a line at time T


@dataclass
class LineAsOf:
    """What the Why page shows for a line at a point in time."""

    line: OrderLine
    at: dt.datetime
    log: LineDecisionLog | None
    line_then: Any = None
    order_then: Any = None
    rank_parts: list[dict[str, str]] = field(default_factory=list)
    factors: list[dict[str, Any]] = field(default_factory=list)
    settings: list[dict[str, Any]] = field(default_factory=list)
    allocations: list[dict[str, Any]] = field(default_factory=list)
    since: list[trail.AuditEntry] = field(default_factory=list)
    policies_since: list[Any] = field(default_factory=list)
    later_log: LineDecisionLog | None = None


SINCE_LIMIT = 200


def line_as_of(line: OrderLine, at: dt.datetime, *, user: Any) -> LineAsOf:
    """The decision in force for ``line`` at ``at`` (the newest log entry written by then), its
    inputs then (the line and order as their history had them), its policy version and the rule
    behind each setting, and every change to the line's decision or its inputs since."""
    from allocation import run_selectors
    from policies.models import PolicyVersion

    log = (
        LineDecisionLog.objects.filter(line=line, created_at__lte=at).select_related("run__actor", "policy_version")
        .order_by("-created_at", "-id").first()
    )
    view = LineAsOf(line=line, at=at, log=log)
    view.line_then = line.history.as_of(at) if line.history.filter(history_date__lte=at).exists() else None
    order = line.order
    view.order_then = order.history.as_of(at) if order.history.filter(history_date__lte=at).exists() else None
    if log is not None:
        view.rank_parts = run_selectors.rank_key_parts(log.rank_key)
        view.factors = run_selectors.factor_rows(log.factors)
        view.settings = run_selectors.setting_rows(log)
        view.allocations = log.allocations
    view.later_log = LineDecisionLog.objects.filter(line=line, created_at__gt=at).order_by("-id").select_related("run").first()
    entries = []
    for entry in trail.audit_rows(user, trail.AuditFilters(order=order.number, since=at.date()), chunk=100):
        if entry.at <= at:
            break
        if entry.line in (None, line.line):
            entries.append(entry)
        if len(entries) >= SINCE_LIMIT:
            break
    view.since = entries
    view.policies_since = list(
        PolicyVersion.history.filter(history_date__gt=at, status="active").select_related("history_user").order_by("history_date")[:20]
    )
    return view


def order_timeline(order: Order, *, user: Any, limit: int = 100) -> list[trail.AuditEntry]:
    """An order's audit entries newest first: its lines' decisions, cases, overrides, approvals,
    promise and credit-hold changes, and the events that changed it."""
    page = trail.audit_page(user, trail.AuditFilters(order=order.number), None, limit)
    return list(page.object_list)
