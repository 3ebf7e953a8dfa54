"""The audit trail: one searchable stream merged from the records the domain already keeps.

Sources (each a stream of the hash chain, ``allocation.audit.chain``):

| stream | record | kinds |
| --- | --- | --- |
| ``decision`` | the decision log (a run's decision for a line) | decision |
| ``history.exception`` | case (exception) history: planner actions, run changes | override, split, hold, release, substitution, deferral, claim, case |
| ``history.approval`` | approval requests and decisions | approval, rejection, withdrawal |
| ``history.policy`` (+ rule, protection, quota) | policy versions, their activation and entries | policy |
| ``history.order`` / ``history.line`` / ``history.customer`` | order, line and customer changes (events, credit holds, promises) | credit_hold, order |
| ``promise`` | promise changes (deferrals) | deferral |
| ``event`` | events retried by a person | event_retry |
| ``role`` | users' role changes (finance and superusers only) | role |

Nothing is copied: each source is one queryset with the filters translated to its columns,
read newest first by its own index on time, and ``audit_page`` merges the sources (one query
per source and page, ``size + 1`` rows each). The order is (time, stream, id) descending and
the cursor names the last row's key, so page 500 costs what page 1 costs. ``audit_rows``
walks the same stream in chunks for exports (flat memory). What changed (before -> after) is
worked out for the rows of one page: each history row against its predecessor, each decision
against the line's previous decision (one query per source).
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import heapq
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import DecimalField, ExpressionWrapper, F, OuterRef, Q, QuerySet, Subquery
from django.urls import NoReverseMatch, reverse

from config import roles
from config.pagination import KeysetPage

KINDS = {
    "decision": "Allocation decision",
    "override": "Override",
    "split": "Split",
    "hold": "Hold (pin)",
    "release": "Release to warehouse",
    "substitution": "Substitution accepted",
    "deferral": "Promise deferred",
    "claim": "Claim / assignment",
    "case": "Case raised, routed or resolved",
    "approval": "Approval requested or given",
    "rejection": "Approval rejected",
    "withdrawal": "Request withdrawn",
    "policy": "Policy change",
    "credit_hold": "Credit hold",
    "order": "Order or line change (events)",
    "event_retry": "Event retried",
    "role": "User and role change",
    "wave": "Released in a wave",
    "reason": "Case reason raised, updated or resolved by a run",
}
# Case history reasons (exceptions.services) by kind: the change reason starts with one of these.
CASE_REASONS = {
    "override": ("override",),
    "split": ("split",),
    "hold": ("allocation held",),
    "release": ("release", "released"),
    "substitution": ("substitution",),
    "deferral": ("promise deferred",),
    "claim": ("claimed", "taken over", "assigned", "claim released"),
}
ROLE_READERS = frozenset({roles.FINANCE})
MONEY = DecimalField(max_digits=18, decimal_places=2)


def can_see_roles(user: Any) -> bool:
    """Finance (and superusers) read the audit of users and roles; other roles do not."""
    return bool(getattr(user, "is_superuser", False)) or roles.has_role(user, ROLE_READERS)


@dataclass(frozen=True)
class AuditFilters:
    """What the trail is narrowed to; every field optional (blank: anything)."""

    since: dt.date | None = None
    until: dt.date | None = None
    actor: str = ""
    kind: str = ""
    customer: str = ""
    order: str = ""
    item: str = ""
    policy: int | None = None
    min_value: Decimal | None = None


@dataclass
class AuditEntry:
    """One row of the trail: who, when, what changed, why, under which policy, linked."""

    stream: str
    pk: int
    at: dt.datetime
    kind: str
    actor: str = ""
    actor_kind: str = "user"  # user, run, source, system
    summary: str = ""
    reason: str = ""
    changes: list[tuple[str, str, str]] = field(default_factory=list)
    policy_number: int | None = None
    policy_id: int | None = None
    order: str = ""
    line: int | None = None
    sku: str = ""
    customer: str = ""
    value: Decimal | None = None
    run_id: int | None = None
    case_id: int | None = None
    approval_id: int | None = None
    event_id: int | None = None
    raw: Any = None

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, self.kind)

    @property
    def key(self) -> tuple:
        return (self.at, self.stream, self.pk)

    @property
    def uid(self) -> str:
        return f"{self.stream}:{self.pk}"

    @property
    def links(self) -> list[tuple[str, str]]:
        """The records this entry is about: order, line (Why), case, approval, run, policy, event."""
        found = []
        if self.order:
            found.append((f"Order {self.order}", _url("allocation:order_detail", self.order)))
            if self.line is not None:
                found.append((f"Why {self.order}/{self.line}", _url("allocation:line_why", self.order, self.line)))
        if self.case_id:
            found.append((f"Case #{self.case_id}", _url("exceptions:exception_detail", self.case_id)))
        if self.approval_id:
            found.append((f"Approval #{self.approval_id}", _url("audit:approval_detail", self.approval_id)))
        if self.run_id:
            found.append((f"Run #{self.run_id}", _url("allocation:run_detail", self.run_id)))
        if self.policy_id:
            found.append((f"Policy v{self.policy_number}", _url("policies:version_detail", self.policy_id)))
        if self.event_id:
            found.append((f"Event #{self.event_id}", _url("integrations:event_detail", self.event_id)))
        return [(label, url) for label, url in found if url]


def _url(name: str, *args: Any) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """One stream of the trail: its rows (filtered), its time column and its row shaping."""

    stream: str
    kinds: frozenset[str]
    rows: Callable[[AuditFilters], QuerySet | None]
    time: str
    shape: Callable[[list[Any]], list[AuditEntry]]


def _dates(qs: QuerySet, column: str, filters: AuditFilters) -> QuerySet:
    if filters.since:
        qs = qs.filter(**{f"{column}__gte": dt.datetime.combine(filters.since, dt.time.min, tzinfo=dt.UTC)})
    if filters.until:
        qs = qs.filter(**{f"{column}__lt": dt.datetime.combine(filters.until + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)})
    return qs


def _ids(model_path: str, **lookup: Any) -> list[int]:
    from django.apps import apps

    model = apps.get_model(model_path)
    return list(model.objects.filter(**lookup).values_list("pk", flat=True)[:10000])


def _subject_filter(filters: AuditFilters, *, order_col: str | None, line_col: str | None, item_col: str | None,
                    customer_col: str | None) -> Q | None:
    """The order, item and customer filters on a source's columns; None: the source cannot match."""
    condition = Q()
    if filters.order:
        if order_col is None and line_col is None:
            return None
        if order_col is not None:
            condition &= Q(**{f"{order_col}__in": _ids("allocation.Order", number=filters.order)})
        else:
            condition &= Q(**{f"{line_col}__in": _ids("allocation.OrderLine", order__number=filters.order)})
    if filters.item:
        if item_col is None:
            return None
        condition &= Q(**{f"{item_col}__in": _ids("allocation.Item", sku=filters.item)})
    if filters.customer:
        if customer_col is None:
            return None
        condition &= Q(**{f"{customer_col}__in": _ids("allocation.Customer", code=filters.customer)})
    return condition


def _actor(qs: QuerySet, column: str, filters: AuditFilters) -> QuerySet:
    return qs.filter(**{f"{column}__username": filters.actor}) if filters.actor else qs


# decision log -------------------------------------------------------------------------------


def _decision_rows(filters: AuditFilters) -> QuerySet | None:
    from allocation.models import LineDecisionLog

    qs = LineDecisionLog.objects.select_related("run__actor", "line__order__customer", "line__item", "policy_version")
    subject = _subject_filter(filters, order_col="line__order_id", line_col="line_id", item_col="line__item_id",
                              customer_col="line__order__customer_id")
    if subject is None:
        return None
    qs = _actor(_dates(qs.filter(subject), "created_at", filters), "run__actor", filters)
    if filters.policy is not None:
        qs = qs.filter(policy_version__number=filters.policy)
    if filters.min_value is not None:
        qs = qs.annotate(stake=ExpressionWrapper(F("line__quantity") * F("line__unit_price"), output_field=MONEY)).filter(
            stake__gte=filters.min_value)
    previous = LineDecisionLog.objects.filter(line_id=OuterRef("line_id"), id__lt=OuterRef("id")).order_by("-id").values("id")[:1]
    return qs.annotate(previous_id=Subquery(previous))


def allocation_text(allocations: list[dict[str, Any]]) -> str:
    """A decision's allocations in one line: ``60 at DC-EAST on hand 2026-06-03 (reserved)``."""
    if not allocations:
        return "nothing"
    parts = []
    for a in allocations:
        source = f"from {a.get('supply_ref')}" if a.get("supply_ref") else "on hand"
        parts.append(f"{a.get('quantity')} {a.get('item', '')} at {a.get('location')} {source} {a.get('confirmed_date')} ({a.get('state')})")
    return "; ".join(parts)


def _decision_shape(rows: list[Any]) -> list[AuditEntry]:
    from allocation.models import LineDecisionLog

    previous = {log.pk: log for log in LineDecisionLog.objects.filter(pk__in=[r.previous_id for r in rows if r.previous_id])}
    entries = []
    for log in rows:
        before = previous.get(log.previous_id)
        changes = []
        for label, now_value, old_value in (
            ("allocations", allocation_text(log.allocations), allocation_text(before.allocations) if before else "—"),
            ("strategy", log.strategy, before.strategy if before else "—"),
            ("rank", str(log.rank), str(before.rank) if before else "—"),
            ("shortfall", _num(log.shortfall), _num(before.shortfall) if before else "—"),
        ):
            if old_value != now_value:
                changes.append((label, old_value, now_value))
        run = log.run
        line = log.line
        entries.append(AuditEntry(
            stream="decision", pk=log.pk, at=log.created_at, kind="decision",
            actor=f"run #{run.pk}" + (f" ({run.actor.get_username()})" if run.actor_id else ""), actor_kind="run",
            summary=f"{line.order.number}/{line.line} decided: {allocation_text(log.allocations)}",
            reason=f"{run.get_trigger_display()} run" + (f"; short {_num(log.shortfall)}" if log.shortfall else ""),
            changes=changes, policy_number=log.policy_version.number if log.policy_version_id else None,
            policy_id=log.policy_version_id, order=line.order.number, line=line.line, sku=line.item.sku,
            customer=line.order.customer.code, value=line.quantity * line.unit_price, run_id=run.pk, raw=log,
        ))
    return entries


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value.normalize())
    return str(value)


# history tables ------------------------------------------------------------------------------


def _history_previous(model: Any) -> Subquery:
    """The id of the same record's previous history row (what it was before this change)."""
    return Subquery(
        model.objects.filter(id=OuterRef("id"), history_id__lt=OuterRef("history_id")).order_by("-history_id").values("history_id")[:1]
    )


def _diff(row: Any, before: Any, fields: tuple[str, ...]) -> list[tuple[str, str, str]]:
    changes = []
    for name in fields:
        new = getattr(row, name, None)
        old = getattr(before, name, None) if before is not None else None
        if before is None and row.history_type != "+":
            continue
        if before is None and new in (None, "", [], {}):
            continue  # a creation lists what it set, not the empty fields
        if before is None or old != new:
            changes.append((name, _num(old) if before is not None else "—", _num(new)))
    return changes


def _previous_rows(model: Any, rows: list[Any]) -> dict[int, Any]:
    ids = [r.previous_history_id for r in rows if r.previous_history_id]
    return {r.history_id: r for r in model.objects.filter(history_id__in=ids)}


def _who(row: Any) -> tuple[str, str]:
    if row.history_user_id:
        return row.history_user.get_username(), "user"
    reason = row.history_change_reason or ""
    if "run #" in reason:
        return "run #" + reason.split("run #", 1)[1].split()[0].rstrip(":,;)"), "run"
    if reason.startswith("event "):
        return reason[6:].split(":", 1)[0], "source"
    return "system", "system"


def _run_of(reason: str) -> int | None:
    if "run #" not in reason:
        return None
    digits = "".join(ch for ch in reason.split("run #", 1)[1][:12] if ch.isdigit())
    return int(digits) if digits else None


def _named(name: str, before: str, after: str, users: dict[str, str], queues: dict[str, str]) -> tuple[str, str, str]:
    """A case change with people and queues by name rather than by key."""
    if name == "assignee_id":
        return "assignee", users.get(before, before), users.get(after, after)
    if name == "queue_id":
        return "queue", queues.get(before, before), queues.get(after, after)
    return name, before, after


def _case_kind(reason: str) -> str:
    text = (reason or "").lower()
    for kind, prefixes in CASE_REASONS.items():
        if text.startswith(prefixes):
            return kind
    return "case"


def _case_rows(filters: AuditFilters) -> QuerySet | None:
    from exceptions.models import DecisionException

    model = DecisionException.history.model
    if filters.policy is not None:
        return None
    subject = _subject_filter(filters, order_col="order_id", line_col="line_id", item_col="item_id",
                              customer_col="order__customer_id")
    if subject is None:
        return None
    qs = model.objects.select_related("history_user", "line__order__customer", "line__item", "order__customer").filter(subject)
    qs = _actor(_dates(qs, "history_date", filters), "history_user", filters)
    if filters.kind and filters.kind in CASE_REASONS:
        condition = Q(pk__in=[])
        for prefix in CASE_REASONS[filters.kind]:
            condition |= Q(history_change_reason__istartswith=prefix)
        qs = qs.filter(condition)
    elif filters.kind == "case":
        for prefixes in CASE_REASONS.values():
            for prefix in prefixes:
                qs = qs.exclude(history_change_reason__istartswith=prefix)
    if filters.min_value is not None:
        qs = qs.filter(value__gte=filters.min_value)
    return qs.annotate(previous_history_id=_history_previous(model))


def _case_shape(rows: list[Any]) -> list[AuditEntry]:
    from django.contrib.contenttypes.models import ContentType

    from exceptions.models import ApprovalRequest, DecisionException

    previous = _previous_rows(DecisionException.history.model, rows)
    requests = dict(
        ApprovalRequest.objects.filter(subject_type=ContentType.objects.get_for_model(DecisionException),
                                       subject_id__in={r.id for r in rows}).order_by("subject_id", "pk").values_list("subject_id", "pk")
    )  # the case's latest request (ordered by pk: the last one wins)
    from django.contrib.auth import get_user_model

    from exceptions.models import Queue

    ids = {r.assignee_id for r in rows} | {p.assignee_id for p in previous.values()}
    users = {str(pk): name for pk, name in get_user_model().objects.filter(pk__in=ids - {None}).values_list("pk", "username")}
    queues = {str(pk): name for pk, name in Queue.objects.values_list("pk", "name")}
    entries = []
    for row in rows:
        actor, actor_kind = _who(row)
        reason = row.history_change_reason or ""
        kind = _case_kind(reason)
        line = row.line if row.line_id else None
        order = line.order if line is not None else (row.order if row.order_id else None)
        changes = _diff(row, previous.get(row.previous_history_id), ("status", "assignee_id", "queue_id", "resolution_reason"))
        changes = [_named(n, a, b, users, queues) for n, a, b in changes]
        entries.append(AuditEntry(
            stream="history.exception", pk=row.history_id, at=row.history_date, kind=kind,
            actor=actor, actor_kind=actor_kind, summary=f"Case #{row.id} ({row.get_type_display()}): {reason}",
            reason=row.resolution_reason or reason, changes=changes, order=order.number if order else "",
            line=line.line if line else None, sku=line.item.sku if line else "",
            customer=order.customer.code if order is not None else "", value=row.value, case_id=row.id,
            run_id=_run_of(reason) or None, raw=row,
            approval_id=requests.get(row.id) if kind in ("override", "split", "release") and "approv" in reason else None,
        ))
    return entries


def _approval_rows(filters: AuditFilters) -> QuerySet | None:
    from django.contrib.contenttypes.models import ContentType

    from exceptions.models import ApprovalRequest, DecisionException

    model = ApprovalRequest.history.model
    qs = model.objects.select_related("history_user", "requested_by", "decided_by", "subject_type")
    if filters.order or filters.item or filters.customer:
        cases = DecisionException.objects.all()
        if filters.order:
            cases = cases.filter(Q(order__number=filters.order) | Q(line__order__number=filters.order))
        if filters.item:
            cases = cases.filter(item__sku=filters.item)
        if filters.customer:
            cases = cases.filter(Q(order__customer__code=filters.customer) | Q(line__order__customer__code=filters.customer))
        qs = qs.filter(subject_type=ContentType.objects.get_for_model(DecisionException), subject_id__in=cases.values("pk"))
    if filters.policy is not None:
        from policies.models import PolicyVersion

        qs = qs.filter(subject_type=ContentType.objects.get_for_model(PolicyVersion),
                       subject_id__in=PolicyVersion.objects.filter(number=filters.policy).values("pk"))
    if filters.min_value is not None:
        qs = qs.filter(subject_id__in=DecisionException.objects.filter(value__gte=filters.min_value).values("pk"),
                       kind__startswith="exception.")
    if filters.kind == "rejection":
        qs = qs.filter(status="rejected")
    elif filters.kind == "withdrawal":
        qs = qs.filter(status="cancelled")
    elif filters.kind == "approval":
        qs = qs.filter(status__in=["pending", "approved"])
    qs = _actor(_dates(qs, "history_date", filters), "history_user", filters)
    return qs.annotate(previous_history_id=_history_previous(model))


def approval_words(approval: Any, subject: Any = None) -> str:
    """What a request asks, in words: ``Activate policy v3 "spring"``, ``Override SO-1/1: pin 60 at DC-EAST``."""
    payload = approval.payload or {}
    kind = approval.kind
    if kind == "policy_activation":
        version = subject
        name = f' "{version.name}"' if version is not None else ""
        effective = payload.get("effective_from", "")[:16].replace("T", " ")
        return f"Activate policy v{payload.get('version', getattr(version, 'number', '?'))}{name}" + (
            f" from {effective}" if effective else "")
    where = ""
    if subject is not None and getattr(subject, "line_id", None):
        where = f" {subject.line.order.number}/{subject.line.line}"
    if kind in ("exception.override", "exception.split"):
        parts = "; ".join(
            f"{p.get('quantity')} {p.get('item') or ''} at {p.get('location')}" + (f" from {p['supply']}" if p.get("supply") else " on hand")
            for p in payload.get("parts", [])
        )
        label = payload.get("action", "override")
        return f"{label.capitalize()}{where}: pin {parts}".replace("  ", " ")
    if kind == "exception.release":
        return f"Release{where} to the warehouse"
    return f"{kind.replace('.', ' ').replace('_', ' ').capitalize()}{where}"


def _approval_shape(rows: list[Any]) -> list[AuditEntry]:
    from exceptions.models import ApprovalRequest, DecisionException
    from policies.models import PolicyVersion

    previous = _previous_rows(ApprovalRequest.history.model, rows)
    cases = {c.pk: c for c in DecisionException.objects.select_related("line__order__customer", "line__item").filter(
        pk__in=[r.subject_id for r in rows if r.kind.startswith("exception.")])}
    versions = {v.pk: v for v in PolicyVersion.objects.filter(pk__in=[r.subject_id for r in rows if r.kind == "policy_activation"])}
    entries = []
    for row in rows:
        actor, actor_kind = _who(row)
        if not row.history_user_id:  # written outside a request: the request names who acted
            person = row.requested_by if row.status == "pending" else row.decided_by
            if person is not None:
                actor, actor_kind = person.get_username(), "user"
        case = cases.get(row.subject_id) if row.kind.startswith("exception.") else None
        version = versions.get(row.subject_id) if row.kind == "policy_activation" else None
        status = row.status
        kind = {"rejected": "rejection", "cancelled": "withdrawal"}.get(status, "approval")
        words = approval_words(row, case or version)
        verb = {"pending": "requested", "approved": "approved", "rejected": "rejected", "cancelled": "withdrawn"}.get(status, status)
        line = case.line if case is not None and case.line_id else None
        entries.append(AuditEntry(
            stream="history.approval", pk=row.history_id, at=row.history_date, kind=kind, actor=actor, actor_kind=actor_kind,
            summary=f"{words} — {verb}" + (f" by {row.decided_by.get_username()}" if row.decided_by_id and status != "pending" else ""),
            reason=row.decision_reason if status != "pending" else row.request_note,
            changes=_diff(row, previous.get(row.previous_history_id), ("status", "decision_reason")),
            order=line.order.number if line else "", line=line.line if line else None, sku=line.item.sku if line else "",
            customer=line.order.customer.code if line else "", value=case.value if case is not None else None,
            case_id=case.pk if case is not None else None, approval_id=row.id,
            policy_id=version.pk if version is not None else None, policy_number=version.number if version is not None else None,
            raw=row,
        ))
    return entries


def _policy_source(stream: str, model_path: str, fields: tuple[str, ...]) -> Source:
    from django.apps import apps

    def model() -> Any:
        return apps.get_model(model_path).history.model

    is_version = model_path == "policies.PolicyVersion"

    def rows(filters: AuditFilters) -> QuerySet | None:
        if filters.order or filters.item or filters.customer or filters.min_value is not None:
            return None
        history = model()
        qs = history.objects.select_related("history_user")
        if filters.policy is not None:
            qs = qs.filter(**{"number" if is_version else "version__number": filters.policy})
        qs = _actor(_dates(qs, "history_date", filters), "history_user", filters)
        return qs.annotate(previous_history_id=_history_previous(history))

    def shape(found: list[Any]) -> list[AuditEntry]:
        from policies.models import PolicyVersion

        history = model()
        previous = _previous_rows(history, found)
        version_ids = {r.id if is_version else r.version_id for r in found}
        versions = {v.pk: v for v in PolicyVersion.objects.filter(pk__in=version_ids)}
        entries = []
        for row in found:
            actor, actor_kind = _who(row)
            version = versions.get(row.id if is_version else row.version_id)
            number = version.number if version is not None else getattr(row, "number", None)
            what = "version" if is_version else f"{model_path.split('.')[1].lower()} {getattr(row, 'position', '')}"
            entries.append(AuditEntry(
                stream=stream, pk=row.history_id, at=row.history_date, kind="policy", actor=actor, actor_kind=actor_kind,
                summary=f"Policy v{number} {what}: {row.history_change_reason or {'+': 'created', '~': 'changed', '-': 'deleted'}[row.history_type]}",
                reason=row.history_change_reason or "", changes=_diff(row, previous.get(row.previous_history_id), fields),
                policy_number=number, policy_id=version.pk if version is not None else None, raw=row,
            ))
        return entries

    return Source(stream, frozenset({"policy"}), rows, "history_date", shape)


def _order_source(stream: str, model_path: str) -> Source:
    from django.apps import apps

    is_order = model_path == "allocation.Order"
    is_customer = model_path == "allocation.Customer"
    fields = (
        ("status", "credit_hold", "credit_hold_reason", "promised_date", "requested_date", "ship_complete", "cancel_reason")
        if is_order else ("credit_hold", "credit_hold_reason", "tier", "segment") if is_customer
        else ("quantity", "shipped_quantity", "unit_price", "status", "allow_substitute")
    )

    def model() -> Any:
        return apps.get_model(model_path).history.model

    def rows(filters: AuditFilters) -> QuerySet | None:
        if filters.policy is not None or (filters.kind == "credit_hold" and not (is_order or is_customer)):
            return None
        history = model()
        if is_order:
            subject = _subject_filter(filters, order_col="id", line_col=None, item_col=None, customer_col="customer_id")
            qs = history.objects.select_related("history_user", "customer")
        elif is_customer:
            if filters.order or filters.item:
                return None
            subject = _subject_filter(filters, order_col=None, line_col=None, item_col=None, customer_col="id")
            qs = history.objects.select_related("history_user")
        else:
            subject = _subject_filter(filters, order_col="order_id", line_col=None, item_col="item_id",
                                      customer_col="order__customer_id")
            qs = history.objects.select_related("history_user", "order__customer", "item")
        if subject is None:
            return None
        qs = _actor(_dates(qs.filter(subject), "history_date", filters), "history_user", filters)
        previous_id = _history_previous(history)
        qs = qs.annotate(previous_history_id=previous_id)
        if filters.kind == "credit_hold":
            before = Subquery(history.objects.filter(history_id=OuterRef("previous_history_id")).values("credit_hold")[:1])
            qs = qs.annotate(previous_credit_hold=before).filter(
                (Q(previous_credit_hold__isnull=True) & Q(credit_hold=True)) | ~Q(credit_hold=F("previous_credit_hold"))
            )
        if filters.min_value is not None and not (is_order or is_customer):
            qs = qs.annotate(stake=ExpressionWrapper(F("quantity") * F("unit_price"), output_field=MONEY)).filter(
                stake__gte=filters.min_value)
        elif filters.min_value is not None:
            return None
        return qs

    def shape(found: list[Any]) -> list[AuditEntry]:
        history = model()
        previous = _previous_rows(history, found)
        entries = []
        events = _event_ids([r.history_change_reason or "" for r in found])
        for row in found:
            actor, actor_kind = _who(row)
            before = previous.get(row.previous_history_id)
            changes = _diff(row, before, fields)
            credit = (is_order or is_customer) and any(
                name == "credit_hold" and (before is not None or after == "True") for name, _, after in changes)
            reason = row.history_change_reason or ""
            if is_order:
                label, order, customer, line, sku, value = f"Order {row.number}", row.number, row.customer.code, None, "", None
            elif is_customer:
                label, order, customer, line, sku, value = f"Customer {row.code}", "", row.code, None, "", None
            else:
                label = f"Line {row.order.number}/{row.line}"
                order, customer, line, sku = row.order.number, row.order.customer.code, row.line, row.item.sku
                value = row.quantity * row.unit_price
            verb = {"+": "created", "~": "changed", "-": "deleted"}[row.history_type]
            entries.append(AuditEntry(
                stream=stream, pk=row.history_id, at=row.history_date, kind="credit_hold" if credit else "order",
                actor=actor, actor_kind=actor_kind, summary=f"{label} {verb}", reason=reason, changes=changes,
                order=order, line=line, sku=sku, customer=customer, value=value, event_id=events.get(reason), raw=row,
            ))
        return entries

    kinds = frozenset({"order", "credit_hold"} if is_order or is_customer else {"order"})
    return Source(stream, kinds, rows, "history_date", shape)


def _event_ids(reasons: list[str]) -> dict[str, int]:
    """Events named by change reasons (``event <source>:<id>``), in one query."""
    from integrations.models import Event

    wanted = {}
    for reason in reasons:
        if reason.startswith("event ") and ":" in reason:
            source, event_id = reason[6:].split(":", 1)
            wanted[(source, event_id)] = reason
    if not wanted:
        return {}
    by_source: dict[str, list[str]] = {}
    for source, event_id in wanted:
        by_source.setdefault(source, []).append(event_id)
    condition = Q(pk__in=[])
    for source, event_ids in by_source.items():  # the (source, event_id) unique index, one range per source
        condition |= Q(source__code=source, event_id__in=event_ids)
    return {
        f"event {code}:{event_id}"[:100]: pk
        for pk, code, event_id in Event.objects.filter(condition).values_list("pk", "source__code", "event_id")
    }


def _promise_rows(filters: AuditFilters) -> QuerySet | None:
    from exceptions.models import PromiseChange

    if filters.policy is not None:
        return None
    subject = _subject_filter(filters, order_col="line__order_id", line_col="line_id", item_col="line__item_id",
                              customer_col="line__order__customer_id")
    if subject is None:
        return None
    qs = PromiseChange.objects.select_related("actor", "line__order__customer", "line__item").filter(subject)
    if filters.min_value is not None:
        qs = qs.annotate(stake=ExpressionWrapper(F("line__quantity") * F("line__unit_price"), output_field=MONEY)).filter(
            stake__gte=filters.min_value)
    return _actor(_dates(qs, "created_at", filters), "actor", filters)


def _promise_shape(rows: list[Any]) -> list[AuditEntry]:
    entries = []
    for change in rows:
        line = change.line
        entries.append(AuditEntry(
            stream="promise", pk=change.pk, at=change.created_at, kind="deferral", actor=change.actor.get_username(),
            summary=f"Promise of {line.order.number}/{line.line} deferred", reason=change.reason,
            changes=[("promised_date", _num(change.previous_promised_date), _num(change.promised_date))],
            order=line.order.number, line=line.line, sku=line.item.sku, customer=line.order.customer.code,
            value=line.quantity * line.unit_price, case_id=change.exception_id, raw=change,
        ))
    return entries


def _retry_rows(filters: AuditFilters) -> QuerySet | None:
    from integrations.models import Event

    if filters.order or filters.item or filters.customer or filters.policy is not None or filters.min_value is not None:
        return None
    qs = Event.objects.filter(retried_at__isnull=False).select_related("retried_by", "source")
    return _actor(_dates(qs, "retried_at", filters), "retried_by", filters)


def _retry_shape(rows: list[Any]) -> list[AuditEntry]:
    return [
        AuditEntry(
            stream="event", pk=event.pk, at=event.retried_at, kind="event_retry",
            actor=event.retried_by.get_username() if event.retried_by_id else "system",
            summary=f"Event {event.source.code}:{event.event_id} ({event.type}) retried", reason=event.error_text,
            changes=[("status", "failed/parked", event.status)], event_id=event.pk, raw=event,
        )
        for event in rows
    ]


def _role_rows(filters: AuditFilters) -> QuerySet | None:
    from allocation.models import RoleChange

    if filters.order or filters.item or filters.customer or filters.policy is not None or filters.min_value is not None:
        return None
    qs = RoleChange.objects.select_related("user", "actor")
    if filters.actor:
        qs = qs.filter(Q(actor__username=filters.actor) | Q(user__username=filters.actor))
    return _dates(qs, "created_at", filters)


def _role_shape(rows: list[Any]) -> list[AuditEntry]:
    return [
        AuditEntry(
            stream="role", pk=change.pk, at=change.created_at, kind="role",
            actor=change.actor.get_username() if change.actor_id else "command line", actor_kind="user" if change.actor_id else "system",
            summary=f"{change.get_action_display()}: {change.role + ' for ' if change.role else ''}{change.user.get_username()}",
            reason=change.reason, changes=[("roles", ", ".join(change.before) or "none", ", ".join(change.after) or "none")],
            raw=change,
        )
        for change in rows
    ]


def _wave_rows(filters: AuditFilters) -> QuerySet | None:
    from allocation.models import LineRelease

    if filters.policy is not None:
        return None
    subject = _subject_filter(filters, order_col="line__order_id", line_col="line_id", item_col="line__item_id",
                              customer_col="line__order__customer_id")
    if subject is None:
        return None
    qs = LineRelease.objects.filter(wave__isnull=False).filter(subject).select_related(
        "actor", "wave", "location", "line__order__customer", "line__item")
    if filters.min_value is not None:
        qs = qs.annotate(stake=ExpressionWrapper(F("quantity") * F("line__unit_price"), output_field=MONEY)).filter(
            stake__gte=filters.min_value)
    return _actor(_dates(qs, "released_at", filters), "actor", filters)


def _wave_shape(rows: list[Any]) -> list[AuditEntry]:
    entries = []
    for release in rows:
        line = release.line
        entries.append(AuditEntry(
            stream="wave", pk=release.pk, at=release.released_at, kind="wave",
            actor=release.actor.get_username() if release.actor else "release schedule",
            actor_kind="user" if release.actor else "system",
            summary=f"{line.order.number}/{line.line} released at {release.location.code} in wave #{release.wave_id}",
            changes=[("released", "", _num(release.quantity))], order=line.order.number, line=line.line,
            sku=line.item.sku, customer=line.order.customer.code, value=release.quantity * line.unit_price, raw=release,
        ))
    return entries


def _reason_rows(filters: AuditFilters) -> QuerySet | None:
    from exceptions.models import CaseReason

    if filters.policy is not None:
        return None
    subject = _subject_filter(filters, order_col="line__order_id", line_col="line_id", item_col="line__item_id",
                              customer_col="line__order__customer_id")
    if subject is None:
        return None
    qs = CaseReason.history.model.objects.filter(subject).select_related(
        "history_user", "line__order__customer", "line__item")
    if filters.min_value is not None:
        qs = qs.filter(value__gte=filters.min_value)
    return _actor(_dates(qs, "history_date", filters), "history_user", filters)


def _reason_shape(rows: list[Any]) -> list[AuditEntry]:
    entries = []
    for row in rows:
        line = row.line
        verb = {"+": "raised", "~": "resolved" if row.status == "resolved" else "updated", "-": "deleted"}[row.history_type]
        actor, actor_kind = _who(row)
        entries.append(AuditEntry(
            stream="history.reason", pk=row.history_id, at=row.history_date, kind="reason", actor=actor,
            actor_kind=actor_kind, summary=f"Reason {row.type} {verb}", reason=row.history_change_reason or "",
            changes=[("status", "", row.status), ("message", "", row.message)],
            order=line.order.number if line else "", line=line.line if line else None, sku=line.item.sku if line else "",
            customer=line.order.customer.code if line else "", value=row.value, run_id=row.run_id,
            case_id=row.case_id, raw=row,
        ))
    return entries


def sources() -> list[Source]:
    """Every source of the trail (the role source is dropped for readers without the right)."""
    return [
        Source("decision", frozenset({"decision"}), _decision_rows, "created_at", _decision_shape),
        Source("history.exception", frozenset({*CASE_REASONS, "case"}), _case_rows, "history_date", _case_shape),
        Source("history.approval", frozenset({"approval", "rejection", "withdrawal"}), _approval_rows, "history_date", _approval_shape),
        _policy_source("history.policy", "policies.PolicyVersion", ("status", "name", "effective_from", "approved_by_id")),
        _policy_source("history.policy_rule", "policies.PolicyRule", ("scope", "settings", "position")),
        _policy_source("history.protection", "policies.Protection", ("sku", "location", "quantity", "for_scope")),
        _policy_source("history.quota", "policies.Quota", ("sku", "item_class", "period", "quantity", "for_scope")),
        _order_source("history.order", "allocation.Order"),
        _order_source("history.line", "allocation.OrderLine"),
        _order_source("history.customer", "allocation.Customer"),
        Source("promise", frozenset({"deferral"}), _promise_rows, "created_at", _promise_shape),
        Source("event", frozenset({"event_retry"}), _retry_rows, "retried_at", _retry_shape),
        Source("role", frozenset({"role"}), _role_rows, "created_at", _role_shape),
        Source("wave", frozenset({"wave"}), _wave_rows, "released_at", _wave_shape),
        Source("history.reason", frozenset({"reason"}), _reason_rows, "history_date", _reason_shape),
    ]


# --------------------------------------------------------------------------- the merged stream


class InvalidCursor(ValueError):
    """A cursor that is not one of the trail's."""


def encode_cursor(entry: AuditEntry) -> str:
    raw = json.dumps([entry.at.isoformat(), entry.stream, entry.pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str, int]:
    try:
        at, stream, pk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        moment = dt.datetime.fromisoformat(at)
        if moment.tzinfo is None or not isinstance(stream, str) or len(stream) > 64 or not isinstance(pk, int) or not 0 <= pk < 2**63:
            raise ValueError(cursor)
        return moment, stream, pk
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as error:
        raise InvalidCursor("not a cursor of the audit trail") from error


def _after(qs: QuerySet, source: Source, key: tuple[dt.datetime, str, int] | None) -> QuerySet:
    """Rows of ``source`` after ``key`` in the trail's descending (time, stream, id) order."""
    if key is None:
        return qs
    at, stream, pk = key
    column = source.time
    pk_name = qs.model._meta.pk.name
    if source.stream < stream:
        return qs.filter(**{f"{column}__lte": at})
    if source.stream == stream:
        return qs.filter(Q(**{f"{column}__lt": at}) | Q(**{column: at, f"{pk_name}__lt": pk}))
    return qs.filter(**{f"{column}__lt": at})


def visible_sources(user: Any, filters: AuditFilters) -> list[Source]:
    found = []
    for source in sources():
        if source.stream == "role" and not can_see_roles(user):
            continue
        if filters.kind and filters.kind not in source.kinds:
            continue
        found.append(source)
    return found


def _source_batch(source: Source, filters: AuditFilters, key: Any, size: int) -> list[AuditEntry]:
    qs = source.rows(filters)
    if qs is None:
        return []
    pk_name = qs.model._meta.pk.name
    rows = list(_after(qs, source, key).order_by(f"-{source.time}", f"-{pk_name}")[:size])
    entries = source.shape(rows)
    if filters.kind:  # a source's rows may be of several kinds (credit hold or not): keep the asked one
        entries = [e for e in entries if e.kind == filters.kind] if source.stream.startswith("history.") else entries
    return entries


def audit_page(user: Any, filters: AuditFilters, cursor: str | None = None, size: int = 50) -> KeysetPage:
    """One page of the trail, newest first, after ``cursor`` (``InvalidCursor`` when it is not one)."""
    key = decode_cursor(cursor) if cursor else None
    batches = [_source_batch(source, filters, key, size + 1) for source in visible_sources(user, filters)]
    merged = list(heapq.merge(*batches, key=lambda e: e.key, reverse=True))
    rows = merged[:size]
    more = len(merged) > size
    return KeysetPage(
        object_list=rows,
        next_cursor=encode_cursor(rows[-1]) if rows and more else None,
        previous_cursor=None,
        first=key is None,
    )


def audit_rows(user: Any, filters: AuditFilters, chunk: int = 2000) -> Iterator[AuditEntry]:
    """Every entry of the trail, newest first, read a chunk at a time (exports: flat memory)."""
    cursor = None
    while True:
        page = audit_page(user, filters, cursor, chunk)
        yield from page.object_list
        if not page.has_next():
            return
        cursor = page.next_cursor


def entry(user: Any, stream: str, pk: int) -> AuditEntry | None:
    """One entry by its stream and id (None when missing or not visible to ``user``)."""
    for source in sources():
        if source.stream != stream or (stream == "role" and not can_see_roles(user)):
            continue
        qs = source.rows(AuditFilters())
        if qs is None:
            return None
        rows = list(qs.filter(pk=pk))
        return source.shape(rows)[0] if rows else None
    return None
