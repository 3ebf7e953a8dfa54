"""Replenishment suggestions: a stockout-risk case carries how much to replenish and by when
(allocation.insights.stockout); a planner asks for it through the recommendation page, another
approver approves (four-eyes), and the approval writes ``replenishment.suggested`` to the
outbox for the ERP's buyers. Nothing is ordered by Allot itself."""
from __future__ import annotations

from typing import Any

from allocation.insights import cases, transfers
from exceptions import approvals
from exceptions.choices import ExceptionType
from exceptions.models import DecisionException
from integrations.choices import OutboxType
from integrations.models import OutboxMessage

APPROVAL_KIND = "replenishment.suggestion"


def _on_approved(approval: Any, case: DecisionException) -> None:
    case = cases.locked_awaiting(case)
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
    cases.resolve_approved(
        case, change_reason="replenishment suggested",
        reason=(f"replenishment of {details['replenish_quantity']} {details['sku']} at {details['location']} by "
                f"{details['replenish_by']} suggested, asked by {approval.requested_by.get_username()}, "
                f"approved by {approval.decided_by.get_username()}"),
    )


transfers.APPROVAL_KINDS[ExceptionType.STOCKOUT_RISK] = APPROVAL_KIND
approvals.register(APPROVAL_KIND, on_approved=_on_approved, on_rejected=transfers._on_rejected)
