"""Reads of the exceptions app shared by the screens and the API: who sees what, queue
summaries, filtering and sorting, and the context of one exception."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from config import bounds, roles
from exceptions import approvals, routing
from exceptions.choices import (
    ACTIVE_STATUSES,
    ApprovalStatus,
    ExceptionStatus,
    ExceptionType,
    Severity,
)
from exceptions.models import ApprovalRequest, DecisionException, Queue

READER_ROLES = frozenset({roles.PLANNER, roles.CUSTOMER_SERVICE, roles.APPROVER, roles.FINANCE})
ACTOR_ROLES = frozenset({roles.PLANNER, roles.CUSTOMER_SERVICE})
APPROVAL_READER_ROLES = frozenset({roles.APPROVER, roles.FINANCE, roles.PLANNER, roles.CUSTOMER_SERVICE})

SORTS = {
    "jeopardy": ("-jeopardy_score", "due_at", "pk"),
    "sla": ("due_at", "-jeopardy_score", "pk"),
    "age": ("raised_at", "pk"),
    "value": ("-value", "pk"),
}
DEFAULT_SORT = "jeopardy"
STATUS_FILTERS = {"active": list(ACTIVE_STATUSES), **{s.value: [s.value] for s in ExceptionStatus}}


def can_read(user: Any) -> bool:
    return roles.has_role(user, READER_ROLES)


def can_act(user: Any) -> bool:
    return roles.has_role(user, ACTOR_ROLES)


def visible_to(user: Any) -> QuerySet[DecisionException]:
    """Exceptions ``user`` may see: every one for the reading roles, none for others."""
    if not can_read(user):
        return DecisionException.objects.none()
    return DecisionException.objects.all()


def get_exception_for(user: Any, pk: Any) -> DecisionException:
    """Fetch-and-check: 404 for a missing exception and for one the user may not see alike."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such exception.") from None
    exception = (
        visible_to(user)
        .select_related("queue__escalation_queue", "assignee", "line__order__customer", "line__item", "order__customer", "item", "location")
        .filter(pk=pk)
        .first()
    )
    if exception is None:
        raise Http404("No such exception.")
    return exception


def get_queue_for(user: Any, code: str) -> Queue:
    if not can_read(user):
        raise Http404("No such queue.")
    queue = Queue.objects.select_related("escalation_queue").filter(code=code).first()
    if queue is None:
        raise Http404("No such queue.")
    return queue


@dataclass
class QueueSummary:
    queue: Queue
    open: int
    claimed: int
    awaiting_approval: int
    overdue: int
    due_soon: int

    @property
    def active(self) -> int:
        return self.open + self.claimed + self.awaiting_approval


def queue_summaries(now: dt.datetime | None = None) -> list[QueueSummary]:
    """Every queue with its active counts per status and SLA status, in one grouped query
    (routing any unrouted exceptions first, which is cheap when there are none)."""
    now = now or timezone.now()
    if DecisionException.objects.filter(queue__isnull=True, status__in=ACTIVE_STATUSES).exists():
        routing.route_unrouted(now=now)
    soon = now + routing.DUE_SOON_WINDOW
    counts = {
        row["queue"]: row
        for row in DecisionException.objects.filter(status__in=ACTIVE_STATUSES, queue__isnull=False)
        .values("queue")
        .annotate(
            open=Count("status", filter=Q(status=ExceptionStatus.OPEN)),
            claimed=Count("status", filter=Q(status=ExceptionStatus.CLAIMED)),
            awaiting_approval=Count("status", filter=Q(status=ExceptionStatus.AWAITING_APPROVAL)),
            overdue=Count("status", filter=Q(due_at__lte=now)),
            due_soon=Count("status", filter=Q(due_at__gt=now, due_at__lte=soon)),
        )
    }
    summaries = []
    for queue in Queue.objects.all():
        row = counts.get(queue.pk, {})
        summaries.append(
            QueueSummary(
                queue=queue,
                open=row.get("open", 0),
                claimed=row.get("claimed", 0),
                awaiting_approval=row.get("awaiting_approval", 0),
                overdue=row.get("overdue", 0),
                due_soon=row.get("due_soon", 0),
            )
        )
    return summaries


@dataclass(frozen=True)
class ExceptionFilters:
    """Validated list filters; ``errors`` names each bad parameter (the list ignores it)."""

    queue: str = ""
    status: str = "active"
    type: str = ""
    assignee: str = ""
    band: str = ""
    sla: str = ""
    q: str = ""
    sort: str = DEFAULT_SORT
    kind: str = ""  # work | information | "" (both)
    errors: tuple[tuple[str, str], ...] = ()


def parse_filters(params: Any) -> ExceptionFilters:
    """Read filters from a querystring: queue, status (active|open|claimed|...), type,
    assignee (me|none|username), band (low|medium|high), sla (overdue|due_soon), q, sort."""
    errors = []

    def pick(name: str, allowed: set[str] | None, default: str = "") -> str:
        value = (params.get(name) or "").strip()
        if not value:
            return default
        problem = bounds.text_problem(value)
        if problem is not None:  # the database cannot compare it, nor the page show it
            errors.append((name, problem))
            return default
        if allowed is not None and value not in allowed:
            errors.append((name, f"unknown value {value!r}"))
            return default
        return value

    return ExceptionFilters(
        queue=pick("queue", None),
        status=pick("status", set(STATUS_FILTERS) | {"all"}, "active"),
        type=pick("type", set(ExceptionType.values)),
        assignee=pick("assignee", None),
        band=pick("band", set(Severity.values)),
        sla=pick("sla", {"overdue", "due_soon"}),
        q=pick("q", None)[:100],
        sort=pick("sort", set(SORTS), DEFAULT_SORT),
        kind=pick("kind", {"work", "information"}),
        errors=tuple(errors),
    )


def filter_exceptions(qs: QuerySet[DecisionException], filters: ExceptionFilters, *, user: Any, now: dt.datetime) -> QuerySet:
    """Apply ``filters`` and the sort to ``qs``; columns used by the list are loaded with it."""
    if filters.queue:
        qs = qs.filter(queue__code=filters.queue)
    if filters.status != "all":
        qs = qs.filter(status__in=STATUS_FILTERS[filters.status])
    if filters.type:
        qs = qs.filter(type=filters.type)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.assignee == "me":
        qs = qs.filter(assignee=user)
    elif filters.assignee == "none":
        qs = qs.filter(assignee__isnull=True)
    elif filters.assignee:
        qs = qs.filter(assignee__username=filters.assignee)
    if filters.band:
        qs = qs.filter(jeopardy_band=filters.band)
    if filters.sla == "overdue":
        qs = qs.filter(due_at__lte=now)
    elif filters.sla == "due_soon":
        qs = qs.filter(due_at__gt=now, due_at__lte=now + routing.DUE_SOON_WINDOW)
    if filters.q:
        qs = qs.filter(Q(message__icontains=filters.q) | Q(key__icontains=filters.q))
    return qs.select_related("queue", "assignee", "line__order__customer", "line__item").order_by(*SORTS[filters.sort])


def status_counts(qs: QuerySet[DecisionException], now: dt.datetime) -> dict[str, int]:
    """Counts per status and SLA status of the active exceptions in ``qs`` (one query)."""
    soon = now + routing.DUE_SOON_WINDOW
    return qs.filter(status__in=ACTIVE_STATUSES).aggregate(
        open=Count("status", filter=Q(status=ExceptionStatus.OPEN)),
        claimed=Count("status", filter=Q(status=ExceptionStatus.CLAIMED)),
        awaiting_approval=Count("status", filter=Q(status=ExceptionStatus.AWAITING_APPROVAL)),
        overdue=Count("status", filter=Q(due_at__lte=now)),
        due_soon=Count("status", filter=Q(due_at__gt=now, due_at__lte=soon)),
    )


def approvals_visible_to(user: Any) -> QuerySet[ApprovalRequest]:
    """Approvers and finance see every request; planners and customer service their own."""
    qs = ApprovalRequest.objects.select_related("requested_by", "decided_by", "subject_type")
    if roles.has_role(user, {roles.APPROVER, roles.FINANCE}):
        return qs
    if roles.has_role(user, ACTOR_ROLES):
        return qs.filter(requested_by=user)
    return qs.none()


def _pending_from_others(user: Any) -> QuerySet[ApprovalRequest]:
    return approvals_visible_to(user).filter(status=ApprovalStatus.PENDING).exclude(requested_by=user)


def approval_inbox(user: Any) -> QuerySet[ApprovalRequest]:
    """Pending requests ``user`` could decide, oldest first: not their own, and none about a
    subject they authored (four-eyes: a policy draft they wrote is decided by another approver)."""
    return _pending_from_others(user).exclude(approvals.authored_subjects(user)).order_by("created_at", "pk")


def approvals_awaiting_another(user: Any) -> QuerySet[ApprovalRequest]:
    """Pending requests others made about a subject ``user`` authored: shown, not decidable."""
    return _pending_from_others(user).filter(approvals.authored_subjects(user)).order_by("created_at", "pk")


def get_approval_for(user: Any, pk: Any) -> ApprovalRequest:
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404("No such approval request.") from None
    approval = approvals_visible_to(user).filter(pk=pk).first()
    if approval is None:
        raise Http404("No such approval request.")
    return approval


def subjects_of(approvals_list: list[ApprovalRequest]) -> dict[int, DecisionException]:
    """The exceptions that exception approvals are about, in one query."""
    ids = [a.subject_id for a in approvals_list if a.kind.startswith("exception.")]
    return {
        e.pk: e
        for e in DecisionException.objects.filter(pk__in=ids).select_related("line__order__customer", "line__item", "queue")
    }
