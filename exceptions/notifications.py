"""In-app notifications: the bell in the top bar and the notifications page.

The service that makes a change writes its notifications in the same transaction (claim
take-over, approval requested / decided, escalation, a run finishing), so a rolled-back
change leaves no notification behind and a committed one always has its notification.
Escalation and approval requests notify many people at once: ``notify_many`` writes them
with one ``bulk_create``. Nobody is told about their own action.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from config import roles
from exceptions.choices import NotificationKind
from exceptions.models import Notification

TEXT_MAX = 500


def _pk(user: Any) -> int | None:
    return getattr(user, "pk", user) if user is not None else None


def _row(recipient_id: int, kind: str, text: str, link: str, now: dt.datetime) -> Notification:
    return Notification(
        recipient_id=recipient_id, kind=str(kind), text=text[:TEXT_MAX], link=link[:500], created_at=now
    )


def notify(recipient: Any, kind: str, text: str, *, link: str = "", actor: Any = None,
           now: dt.datetime | None = None) -> Notification | None:
    """Tell ``recipient`` (a user or user id) about a change; nothing when it is the actor
    themself or nobody. The caller holds the transaction of the change."""
    recipient_id = _pk(recipient)
    if recipient_id is None or recipient_id == _pk(actor):
        return None
    row = _row(recipient_id, kind, text, link, now or timezone.now())
    row.save()
    return row


def notify_many(rows: Iterable[tuple[Any, str, str, str]], *, actor: Any = None, now: dt.datetime | None = None) -> int:
    """Write many notifications at once: ``(recipient, kind, text, link)`` tuples, one
    ``bulk_create``; the actor's own and repeated (recipient, text) rows are left out."""
    now = now or timezone.now()
    actor_id = _pk(actor)
    seen: set[tuple[int, str]] = set()
    objects = []
    for recipient, kind, text, link in rows:
        recipient_id = _pk(recipient)
        if recipient_id is None or recipient_id == actor_id or (recipient_id, text) in seen:
            continue
        seen.add((recipient_id, text))
        objects.append(_row(recipient_id, kind, text, link, now))
    Notification.objects.bulk_create(objects, batch_size=1000)
    return len(objects)


def users_with_role(role: str) -> list[int]:
    """Active users holding ``role`` (a group), by id: who hears about work for that role."""
    return list(
        get_user_model().objects.filter(is_active=True, groups__name=role).values_list("pk", flat=True).distinct()
    )


def case_link(case_id: int) -> str:
    return reverse("exceptions:exception_detail", args=[case_id])


def safe_link(name: str, *args: Any) -> str:
    """A link by URL name, or '' when the screen is not installed."""
    try:
        return reverse(name, args=list(args))
    except NoReverseMatch:
        return ""


# --------------------------------------------------------------------------- what services call


def _kind_words(kind: str) -> str:
    """'exception.override' -> 'override', 'policy.activate' -> 'policy activate'."""
    subject, _, action = kind.partition(".")
    words = action.replace("_", " ") if subject == "exception" else kind.replace(".", " ").replace("_", " ")
    return words or kind


def claim_taken_over(*, case: Any, previous: Any, actor: Any, reason: str, now: dt.datetime) -> None:
    notify(
        previous, NotificationKind.CLAIM_TAKEN_OVER,
        f"{actor.get_username()} took over your claim on case #{case.pk} ({case.get_type_display()}): {reason}",
        link=case_link(case.pk), actor=actor, now=now,
    )


def subject_link(approval: Any) -> str:
    """The screen of what an approval is about: the case, the policy version, else ''."""
    if approval.kind.startswith("exception."):
        return case_link(approval.subject_id)
    if approval.kind == "policy_activation":
        return safe_link("policies:version_detail", approval.subject_id)
    return ""


def approval_requested(approval: Any, *, actor: Any) -> None:
    """Every approver (but the requester) hears of a new request: it waits in their inbox."""
    text = f"{actor.get_username()} asks for approval #{approval.pk} ({_kind_words(approval.kind)}): {approval.request_note}"
    link = safe_link("exceptions:approval_inbox")
    notify_many(
        ((pk, NotificationKind.APPROVAL_REQUESTED, text, link) for pk in users_with_role(roles.APPROVER)),
        actor=actor, now=approval.created_at,
    )


def approval_decided(approval: Any, *, actor: Any) -> None:
    """The requester hears the decision (with the reason given)."""
    approved = approval.status == "approved"
    kind = NotificationKind.APPROVAL_APPROVED if approved else NotificationKind.APPROVAL_REJECTED
    verb = "approved" if approved else "rejected"
    reason = f": {approval.decision_reason}" if approval.decision_reason else ""
    link = subject_link(approval)
    notify(
        approval.requested_by_id, kind,
        f"{actor.get_username()} {verb} your request #{approval.pk} ({_kind_words(approval.kind)}){reason}",
        link=link, actor=actor, now=approval.decided_at,
    )


def cases_escalated(cases: list[Any], *, previous_assignees: dict[int, int | None], now: dt.datetime) -> int:
    """After a bulk escalation: each case's former assignee hears it left them, and the group
    working each target queue gets one notification per queue (with how many arrived), not
    one per case. Two queries and one insert for any number of cases."""
    rows: list[tuple[Any, str, str, str]] = []
    by_queue: dict[int, list[Any]] = {}
    for case in cases:
        by_queue.setdefault(case.queue_id, []).append(case)
        previous = previous_assignees.get(case.pk)
        if previous:
            rows.append((
                previous, NotificationKind.CASE_ESCALATED,
                f"Case #{case.pk} ({case.get_type_display()}) passed its SLA and was escalated to {case.queue.name}; it is no longer claimed by you.",
                case_link(case.pk),
            ))
    groups = {case.queue.group for case in cases}
    members: dict[str, list[int]] = {group: [] for group in groups}
    for pk, group in (
        get_user_model().objects.filter(is_active=True, groups__name__in=groups).values_list("pk", "groups__name").distinct()
    ):
        members[group].append(pk)
    for queue_cases in by_queue.values():
        queue = queue_cases[0].queue
        count = len(queue_cases)
        text = (
            f"Case #{queue_cases[0].pk} was escalated to {queue.name} (SLA overdue)." if count == 1
            else f"{count} cases were escalated to {queue.name} (SLA overdue)."
        )
        link = case_link(queue_cases[0].pk) if count == 1 else safe_link("exceptions:queue_detail", queue.code)
        rows.extend((pk, NotificationKind.CASE_ESCALATED, text, link) for pk in members.get(queue.group, []))
    return notify_many(rows, now=now)


def case_escalated(case: Any, *, previous: Any, actor: Any, now: dt.datetime) -> None:
    """A person escalated a case by hand: its former assignee hears it (the target group sees it in its queue)."""
    notify(
        previous, NotificationKind.CASE_ESCALATED,
        f"{actor.get_username()} escalated case #{case.pk} to {case.queue.name}; it is no longer claimed by you.",
        link=case_link(case.pk), actor=actor, now=now,
    )


def run_finished(run: Any) -> None:
    """The person who asked for a run hears how it ended (runs started by the system tell nobody)."""
    if not getattr(run, "actor_id", None):
        return
    if run.status == "succeeded":
        what = "simulation" if run.is_simulation else "allocation run"
        text = f"Your {what} #{run.pk} finished: {run.line_count:,} lines, {run.changed_line_count:,} changed."
    else:
        text = f"Your {'simulation' if run.is_simulation else 'allocation run'} #{run.pk} {run.status}: {(run.error or '')[:200]}"
    screen = "allocation:simulation_status" if run.is_simulation else "allocation:run_detail"
    notify(run.actor_id, NotificationKind.RUN_FINISHED, text, link=safe_link(screen, run.pk), now=run.finished_at)


# --------------------------------------------------------------------------- reading


def for_user(user: Any) -> QuerySet:
    """A person's notifications, newest first (the page keyset-paginates this)."""
    return Notification.objects.filter(recipient=user).order_by("-created_at", "-id")


def unread_count(user: Any) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def mark_read(user: Any, notification_ids: Iterable[int] | None = None, *, now: dt.datetime | None = None) -> int:
    """Mark the person's notifications read (these ids, or all); others' are never touched."""
    qs = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if notification_ids is not None:
        qs = qs.filter(pk__in=list(notification_ids))
    return qs.update(read_at=now or timezone.now())
