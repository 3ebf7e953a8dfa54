"""Raise and resolve decision-support cases (stockout risk, transfer recommendations) in bulk.

The same shape as ingestion's data-quality cases (one case per key while one is active), with
history rows that say decision support raised or resolved them.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from exceptions.choices import ACTIVE_STATUSES, ExceptionStatus, Severity
from exceptions.models import DecisionException

SOURCE = "insights"


@dataclass
class NewCase:
    type: str
    key: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    severity: str = Severity.MEDIUM
    item_id: int | None = None
    location_id: int | None = None
    value: Decimal = Decimal(0)
    kind: str = "work"  # "information": shown, without an SLA, not work (allocation.md)


def active_keys(case_type: str, statuses: Iterable[str] = ACTIVE_STATUSES) -> set[str]:
    return set(
        DecisionException.objects.filter(type=case_type, status__in=[str(s) for s in statuses]).values_list("key", flat=True)
    )


def open_cases(new: list[NewCase], *, what: str) -> int:
    """One case per key without an active one (one read, one bulk write with history)."""
    if not new:
        return 0
    now = timezone.now()
    active = set(
        DecisionException.objects.filter(key__in=[c.key for c in new], status__in=[str(s) for s in ACTIVE_STATUSES])
        .values_list("key", flat=True)
    )
    rows = []
    for case in new:
        if case.key in active:
            continue
        row = DecisionException(
            type=case.type, key=case.key, status=ExceptionStatus.OPEN, severity=case.severity, message=case.message[:500],
            details=case.details, source=SOURCE, item_id=case.item_id, location_id=case.location_id, value=case.value,
            raised_at=now, updated_at=now, kind=case.kind, reason_types=[case.type],
        )
        row._change_reason = f"raised by decision support ({what})"  # type: ignore[attr-defined]
        rows.append(row)
    if rows:
        bulk_create_with_history(rows, DecisionException, batch_size=1000)
    return len(rows)


def resolve_cases(reasons: dict[str, str], *, what: str) -> int:
    if not reasons:
        return 0
    now = timezone.now()
    rows = list(DecisionException.objects.filter(key__in=list(reasons), status__in=[str(s) for s in ACTIVE_STATUSES]))
    for row in rows:
        row.status = ExceptionStatus.RESOLVED
        row.resolved_at = now
        row.updated_at = now
        row.resolution_reason = reasons[row.key][:300]
        row.version += 1
        row._change_reason = f"resolved by decision support ({what})"  # type: ignore[attr-defined]
    if rows:
        bulk_update_with_history(
            rows, DecisionException, ["status", "resolved_at", "updated_at", "resolution_reason", "version"], batch_size=500
        )
    return len(rows)


def locked_awaiting(case: DecisionException) -> DecisionException:
    """The recommendation's case, locked, still waiting for the approval being decided."""
    from exceptions.errors import ApprovalNotAllowed

    case = DecisionException.objects.select_for_update().get(pk=case.pk)
    if case.status != ExceptionStatus.AWAITING_APPROVAL:
        raise ApprovalNotAllowed("This recommendation is no longer waiting for approval. Reject it instead.")
    return case


def resolve_approved(case: DecisionException, *, reason: str, change_reason: str) -> None:
    """Close a recommendation once its approved action is written (history records it)."""
    now = timezone.now()
    case.status = ExceptionStatus.RESOLVED
    case.resolved_at = now
    case.updated_at = now
    case.version += 1
    case.resolution_reason = reason[:300]
    case._change_reason = change_reason  # type: ignore[attr-defined]
    case.save()
