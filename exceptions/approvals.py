"""The generic approval mechanism (four-eyes), reused by policy versions and exception actions.

A subject's app registers a handler per ``kind`` with ``register``: ``on_approved`` executes
the action, ``on_rejected`` undoes the waiting state. Deciding locks the request row, checks
it is still pending and that the decider is not the requester and holds ``approver``, then
calls the handler in the same transaction, so a request executes at most once. A kind may
also name the subject's authors (``authors``): they cannot decide either, so a policy admin who
is also an approver cannot approve a draft they wrote even when a colleague submitted it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from config import roles
from exceptions import notifications
from exceptions.choices import ApprovalStatus
from exceptions.errors import ApprovalNotAllowed, ApprovalNotPending, SelfApprovalRefused
from exceptions.models import ApprovalRequest


@dataclass(frozen=True)
class ApprovalHandler:
    on_approved: Callable[[ApprovalRequest, Any], None]
    on_rejected: Callable[[ApprovalRequest, Any], None]
    authors: Callable[[ApprovalRequest], set[int]] | None = None
    authored_by: Callable[[Any], QuerySet] | None = None


_HANDLERS: dict[str, ApprovalHandler] = {}


def register(
    kind: str, *, on_approved: Callable, on_rejected: Callable, authors: Callable | None = None,
    authored_by: Callable | None = None,
) -> None:
    """Register what happens when a request of ``kind`` is approved or rejected, and optionally
    who authored its subject (``authors(approval) -> user ids``), who may not decide it, with
    the same rule the other way round for lists (``authored_by(user) ->`` a queryset of the
    subject ids the user authored, used as a subquery)."""
    _HANDLERS[kind] = ApprovalHandler(
        on_approved=on_approved, on_rejected=on_rejected, authors=authors, authored_by=authored_by
    )


def authored_subjects(user: Any) -> Q:
    """Requests about a subject ``user`` authored (four-eyes: they may not decide them), as one
    condition with a subquery per kind, so a list of any length costs one query."""
    condition = Q(pk__in=[])
    for kind, handler in _HANDLERS.items():
        if handler.authored_by is not None:
            condition |= Q(kind=kind, subject_id__in=handler.authored_by(user))
    return condition


def authors_of(approval: ApprovalRequest) -> set[int]:
    """The requester and, when the kind names them, the subject's authors: none may decide."""
    handler = _HANDLERS.get(approval.kind)
    authored = handler.authors(approval) if handler is not None and handler.authors is not None else set()
    return {approval.requested_by_id, *authored}


def request_approval(*, kind: str, subject: Any, actor: Any, note: str = "", payload: dict | None = None) -> ApprovalRequest:
    """Open a pending approval request for ``subject``; the caller is inside its transaction."""
    approval = ApprovalRequest(
        kind=kind,
        subject_type=ContentType.objects.get_for_model(subject),
        subject_id=subject.pk,
        requested_by=actor,
        request_note=note,
        payload=payload or {},
    )
    approval._change_reason = f"requested: {note}"[:100]
    approval.save()
    notifications.approval_requested(approval, actor=actor)
    return approval


def pending_for(subject: Any, kind: str | None = None):
    qs = ApprovalRequest.objects.filter(
        subject_type=ContentType.objects.get_for_model(subject), subject_id=subject.pk, status=ApprovalStatus.PENDING
    )
    return qs.filter(kind=kind) if kind else qs


def can_decide(approval: ApprovalRequest, user: Any) -> bool:
    return (
        approval.status == ApprovalStatus.PENDING
        and approval.requested_by_id != user.pk
        and roles.has_role(user, {roles.APPROVER})
        and user.pk not in authors_of(approval)
    )


def _decide(approval_id: int, *, actor: Any, reason: str, approve: bool) -> ApprovalRequest:
    with transaction.atomic():
        approval = ApprovalRequest.objects.select_for_update().get(pk=approval_id)
        if approval.status != ApprovalStatus.PENDING:
            raise ApprovalNotPending(f"This request is already {approval.status}.", status=approval.status)
        if approval.requested_by_id == actor.pk:
            raise SelfApprovalRefused("You cannot decide a request you made yourself.")
        if actor.pk in authors_of(approval):
            raise SelfApprovalRefused("You cannot decide a change you authored (four-eyes): another approver must.")
        if not roles.has_role(actor, {roles.APPROVER}):
            raise ApprovalNotAllowed("Only an approver can decide this request.")
        if not approve and not reason.strip():
            raise ApprovalNotAllowed("A reason is required to reject.", field="reason")
        approval.status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
        approval.decided_by = actor
        approval.decision_reason = reason
        approval.decided_at = timezone.now()
        approval._change_reason = f"{approval.status}: {reason}"[:100]
        approval.save()
        handler = _HANDLERS.get(approval.kind)
        if handler is not None:
            subject = approval.subject
            (handler.on_approved if approve else handler.on_rejected)(approval, subject)
        notifications.approval_decided(approval, actor=actor)
        return approval


def approve(approval_id: int, *, actor: Any, reason: str = "") -> ApprovalRequest:
    """Approve and execute the request's action; refuses the requester and non-approvers."""
    return _decide(approval_id, actor=actor, reason=reason, approve=True)


def reject(approval_id: int, *, actor: Any, reason: str) -> ApprovalRequest:
    """Reject the request (a reason is required); the subject leaves its waiting state."""
    return _decide(approval_id, actor=actor, reason=reason, approve=False)


def cancel(approval: ApprovalRequest, *, reason: str) -> None:
    """Withdraw a pending request (its subject changed); caller holds the transaction."""
    approval.status = ApprovalStatus.CANCELLED
    approval.decision_reason = reason
    approval.decided_at = timezone.now()
    approval._change_reason = f"cancelled: {reason}"[:100]
    approval.save()


def withdraw(approval_id: int, *, actor: Any, reason: str = "") -> ApprovalRequest:
    """The requester withdraws their pending request: it becomes ``cancelled`` (recorded with
    the actor and reason) and its subject leaves the waiting state as on a rejection (the
    handler's ``on_rejected``, which reads ``approval.status`` to word it as a withdrawal)."""
    with transaction.atomic():
        approval = ApprovalRequest.objects.select_for_update().get(pk=approval_id)
        if approval.status != ApprovalStatus.PENDING:
            raise ApprovalNotPending(f"This request is already {approval.status}.", status=approval.status)
        if approval.requested_by_id != actor.pk:
            raise ApprovalNotAllowed("Only the requester can withdraw a request.")
        approval.status = ApprovalStatus.CANCELLED
        approval.decided_by = actor
        approval.decision_reason = reason.strip() or "withdrawn by the requester"
        approval.decided_at = timezone.now()
        approval._change_reason = f"withdrawn: {approval.decision_reason}"[:100]
        approval._history_user = actor
        approval.save()
        handler = _HANDLERS.get(approval.kind)
        if handler is not None:
            handler.on_rejected(approval, approval.subject)
        return approval
