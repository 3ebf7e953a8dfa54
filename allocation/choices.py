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
