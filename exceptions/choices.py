from django.db import models


class ExceptionType(models.TextChoices):
    # Raised by allocation runs (allocation.md)
    PRIORITY_SHORTAGE = "priority_shortage"
    PROMISE_AT_RISK = "promise_at_risk"
    CREDIT_HOLD = "credit_hold"
    SHIP_COMPLETE_BLOCKED = "ship_complete_blocked"
    SUBSTITUTION_PROPOSED = "substitution_proposed"
    MARGIN_BELOW_FLOOR = "margin_below_floor"
    ALLOCATION_REVERSED = "allocation_reversed"
    SPLIT_LIMIT = "split_limit"
    APPROVAL_REQUIRED = "approval_required"
    # Raised by ingestion and data quality
    EVENT_PARKED = "event_parked"
    EVENT_FAILED = "event_failed"
    UNKNOWN_CODE = "unknown_code"
    NEGATIVE_STOCK = "negative_stock"
    FACTOR_PLUGIN_FAILED = "factor_plugin_failed"  # a custom score factor skipped by a run (allocation.plugins)
    # Raised by integrations
    STALE_FEED = "stale_feed"
    OUTBOX_DEAD_LETTER = "outbox_dead_letter"


RUN_EXCEPTION_TYPES = frozenset(
    {
        ExceptionType.PRIORITY_SHORTAGE,
        ExceptionType.PROMISE_AT_RISK,
        ExceptionType.CREDIT_HOLD,
        ExceptionType.SHIP_COMPLETE_BLOCKED,
        ExceptionType.SUBSTITUTION_PROPOSED,
        ExceptionType.MARGIN_BELOW_FLOOR,
        ExceptionType.ALLOCATION_REVERSED,
        ExceptionType.SPLIT_LIMIT,
        ExceptionType.APPROVAL_REQUIRED,
    }
)


# Reasons of one case, most severe first: the case is routed by the first open one
# (allocation.md "Only true exceptions reach people").
REASON_SEVERITY: tuple[str, ...] = (
    "priority_shortage",
    "ship_complete_blocked",
    "allocation_reversed",
    "credit_hold",
    "promise_at_risk",
    "substitution_proposed",
    "split_limit",
    "margin_below_floor",
    "approval_required",
)


def most_severe(types) -> str:
    """The routing type of a case: the most severe of its reasons' types."""
    found = set(types)
    for name in REASON_SEVERITY:
        if name in found:
            return name
    return sorted(found)[0]


class CaseKind(models.TextChoices):
    """Work needs a decision; information is shown but no action can change it today."""

    WORK = "work"
    INFORMATION = "information"


class ReasonStatus(models.TextChoices):
    OPEN = "open"
    RESOLVED = "resolved"


class ExceptionStatus(models.TextChoices):
    OPEN = "open"
    CLAIMED = "claimed"
    AWAITING_APPROVAL = "awaiting_approval"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


ACTIVE_STATUSES = (ExceptionStatus.OPEN, ExceptionStatus.CLAIMED, ExceptionStatus.AWAITING_APPROVAL)


class Severity(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class ApprovalStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class OverrideReason(models.TextChoices):
    """Why a planner overrides what the engine decided (a fixed list for reporting)."""

    CUSTOMER_COMMITMENT = "customer_commitment", "Customer commitment"
    CONTRACTUAL_PRIORITY = "contractual_priority", "Contractual priority"
    EXPEDITE = "expedite", "Expedite / emergency"
    STOCK_CORRECTION = "stock_correction", "Stock known to differ"
    CONSOLIDATE_SHIPMENT = "consolidate_shipment", "Consolidate shipment"
    QUALITY_ISSUE = "quality_issue", "Quality issue"


class ExceptionAction(models.TextChoices):
    """The actions a person takes on an exception (URL and API names)."""

    CLAIM = "claim"
    RELEASE = "release", "Release claim"
    ASSIGN = "assign"
    ACCEPT = "accept", "Accept substitution"
    OVERRIDE = "override"
    SPLIT = "split"
    DEFER = "defer", "Defer promise"
    HOLD = "hold", "Hold allocation"
    RELEASE_TO_WAREHOUSE = "release_to_warehouse", "Release to warehouse"
    ESCALATE = "escalate"
    DISMISS = "dismiss"
    COMMENT = "comment"


APPROVAL_KIND_OVERRIDE = "exception.override"
APPROVAL_KIND_RELEASE = "exception.release"


class NotificationKind(models.TextChoices):
    """What an in-app notification tells its recipient (exceptions.notifications)."""

    CLAIM_TAKEN_OVER = "claim_taken_over", "Claim taken over"
    APPROVAL_REQUESTED = "approval_requested", "Approval requested"
    APPROVAL_APPROVED = "approval_approved", "Approval approved"
    APPROVAL_REJECTED = "approval_rejected", "Approval rejected"
    CASE_ESCALATED = "case_escalated", "Case escalated"
    RUN_FINISHED = "run_finished", "Run finished"


class DateFormat(models.TextChoices):
    """How a person reads dates on the screens (a preference; the API keeps ISO 8601).
    Values are Django ``date`` filter formats."""

    ISO = "Y-m-d", "2026-06-01 (ISO)"
    EUROPEAN = "d.m.Y", "01.06.2026"
    BRITISH = "d/m/Y", "01/06/2026"
    US = "m/d/Y", "06/01/2026"
    WORDS = "j M Y", "1 Jun 2026"
