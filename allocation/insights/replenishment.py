"""Replenishment suggestions: a stockout-risk case carries how much to replenish and by when
(allocation.insights.stockout); a planner asks for it through the recommendation page, another
approver approves (four-eyes), and the approval writes ``replenishment.suggested`` to the
outbox for the ERP's buyers. Nothing is ordered by Allot itself."""
from __future__ import annotations

from typing import Any

from django.utils import timezone

from allocation.insights import transfers
from exceptions import approvals
from exceptions.choices import ExceptionStatus, ExceptionType
from exceptions.errors import ApprovalNotAllowed
from exceptions.models import DecisionException
from integrations.choices import OutboxType
from integrations.models import OutboxMessage

APPROVAL_KIND = "replenishment.suggestion"


def _on_approved(approval: Any, case: DecisionException) -> None:
    case = DecisionException.objects.select_for_update().get(pk=case.pk)
    if case.status != ExceptionStatus.AWAITING_APPROVAL:
        raise ApprovalNotAllowed("This suggestion is no longer waiting for approval. Reject it instead.")
    details = approval.payload
    OutboxMessage.objects.create(
        message_id=f"{OutboxType.REPLENISHMENT_SUGGESTED}:{case.pk}",
        type=OutboxType.REPLENISHMENT_SUGGESTED,
        payload={
            "sku": details["sku"], "location": details["location"],
            "quantity": details["replenish_quantity"], "by": details["replenish_by"],
            "days_of_cover": details.get("days_of_cover"), "open_demand": details.get("open_demand"),
            "requested_by": approval.requested_by.get_username(), "approved_by": approval.decided_by.get_username(),
        },
    )
    now = timezone.now()
    case.status = ExceptionStatus.RESOLVED
    case.resolved_at = now
    case.updated_at = now
    case.version += 1
    case.resolution_reason = (
        f"replenishment of {details['replenish_quantity']} {details['sku']} at {details['location']} by "
        f"{details['replenish_by']} suggested, asked by {approval.requested_by.get_username()}, "
        f"approved by {approval.decided_by.get_username()}"
    )[:300]
    case._change_reason = "replenishment suggested"
    case.save()


transfers.APPROVAL_KINDS[ExceptionType.STOCKOUT_RISK] = APPROVAL_KIND
approvals.register(APPROVAL_KIND, on_approved=_on_approved, on_rejected=transfers._on_rejected)
