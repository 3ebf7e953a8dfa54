from django.db import models


class SourceKind(models.TextChoices):
    ERP = "erp"
    WMS = "wms"
    TMS = "tms"
    ECOMMERCE = "ecommerce"
    EDI = "edi"
    OTHER = "other"


class EventType(models.TextChoices):
    LOCATION_UPSERTED = "location.upserted"
    ITEM_UPSERTED = "item.upserted"
    CUSTOMER_UPSERTED = "customer.upserted"
    LANE_UPSERTED = "lane.upserted"
    INVENTORY_SNAPSHOT = "inventory.snapshot"
    INVENTORY_ADJUSTED = "inventory.adjusted"
    SUPPLY_UPSERTED = "supply.upserted"
    SUPPLY_RECEIVED = "supply.received"
    ORDER_UPSERTED = "order.upserted"
    ORDER_CANCELLED = "order.cancelled"
    CREDIT_HOLD_CHANGED = "credit.hold_changed"
    SHIPMENT_CONFIRMED = "shipment.confirmed"


class EventStatus(models.TextChoices):
    PENDING = "pending"
    APPLIED = "applied"
    STALE = "stale"
    PARKED = "parked"
    FAILED = "failed"


RETRYABLE_STATUSES = (EventStatus.FAILED, EventStatus.PARKED)


class IngestStatus(models.TextChoices):
    """The per-event answer to a delivery (not stored on the event)."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class BatchVia(models.TextChoices):
    API = "api"
    WEBHOOK = "webhook"
    FILE = "file"
    REPLAY = "replay"


class OutboxType(models.TextChoices):
    RESERVATION_CHANGED = "reservation.changed", "reservation.changed"
    PROMISE_CHANGED = "promise.changed", "promise.changed"
    ORDER_RELEASED = "order.released", "order.released"
    QUOTE_EXPIRED = "quote.expired", "quote.expired"
    TRANSFER_REQUESTED = "transfer.requested", "transfer.requested"
    PURCHASE_EXPEDITE_REQUESTED = "purchase.expedite_requested", "purchase.expedite_requested"
    REPLENISHMENT_SUGGESTED = "replenishment.suggested", "replenishment.suggested"


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    DEAD = "dead", "Dead letter"
