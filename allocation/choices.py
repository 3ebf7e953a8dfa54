from django.db import models


class LocationKind(models.TextChoices):
    WAREHOUSE = "warehouse"
    HUB = "hub"
    STORE = "store"


class SupplyKind(models.TextChoices):
    PURCHASE_ORDER = "purchase_order"
    ASN = "asn"
    TRANSFER = "transfer"


class SupplyStatus(models.TextChoices):
    OPEN = "open"
    CANCELLED = "cancelled"
    RECEIVED = "received"


class OrderStatus(models.TextChoices):
    OPEN = "open"
    CANCELLED = "cancelled"
    CLOSED = "closed"


class OrderKind(models.TextChoices):
    """An order to fulfil, or a quote that holds stock until it expires or becomes an order."""

    ORDER = "order"
    QUOTE = "quote"


class LineStatus(models.TextChoices):
    OPEN = "open"
    CANCELLED = "cancelled"
    SHIPPED = "shipped"


class AllocationState(models.TextChoices):
    PROPOSED = "proposed"
    RESERVED = "reserved"
    RELEASED = "released"
    PINNED = "pinned"
    # A run's decision in an ``execution_mode: recommend`` scope: consumes supply, not published,
    # reserved only when a planner accepts it (allocation.execution_modes).
    RECOMMENDED = "recommended"


class WaveStatus(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WaveTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Before the cutoff (schedule)"
    PLANNER = "planner", "Planner"
    API = "api", "API"
    COMMAND = "command", "Command"


class WaveOutcome(models.TextChoices):
    RELEASED = "released"
    HELD = "held", "Held back"
    APPROVAL = "approval", "Waiting for approval"


class HoldReason(models.TextChoices):
    CAPACITY = "capacity", "No capacity left today"
    SHIP_COMPLETE_INCOMPLETE = "ship_complete_incomplete", "Ship-complete order not fully covered"
    SHIP_COMPLETE_CAPACITY = "ship_complete_capacity", "Ship-complete order does not fit in today's capacity"
    APPROVAL_REQUIRED = "approval_required", "Above auto_release_max_value: needs an approver"
    AWAITING_APPROVAL = "awaiting_approval", "Approval already requested"
    APPROVAL_REJECTED = "approval_rejected", "Release rejected today"
    CREDIT_HOLD = "credit_hold", "On credit hold"
