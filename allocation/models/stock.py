from django.db import models
from simple_history.models import HistoricalRecords

from allocation.choices import AllocationState, SupplyKind, SupplyStatus

from .catalog import Item, Location

QTY = {"max_digits": 14, "decimal_places": 3}


class InventoryPosition(models.Model):
    """On-hand stock of one item at one location, as of the WMS snapshot time."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="positions")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="positions")
    on_hand = models.DecimalField(**QTY, default=0)
    quality_hold = models.DecimalField(**QTY, default=0)
    warehouse_hold = models.DecimalField(**QTY, default=0)
    as_of = models.DateTimeField()
    source = models.CharField(max_length=64, default="", blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["item", "location"]
        constraints = [
            models.UniqueConstraint(fields=["item", "location"], name="position_item_location_unique"),
            models.CheckConstraint(
                condition=models.Q(on_hand__gte=0, quality_hold__gte=0, warehouse_hold__gte=0),
                name="position_quantities_non_negative",
            ),
        ]

    @property
    def available(self):
        return max(self.on_hand - self.quality_hold - self.warehouse_hold, 0)


class Supply(models.Model):
    """Inbound supply: a purchase order, ASN or transfer expected at a location on its ETA."""

    ref = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=SupplyKind.choices)
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="supplies")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="supplies")
    quantity = models.DecimalField(**QTY)
    received_quantity = models.DecimalField(**QTY, default=0)
    eta = models.DateField()
    supplier = models.CharField(max_length=64, blank=True, default="")
    confidence = models.DecimalField(max_digits=4, decimal_places=3, default=1)
    status = models.CharField(max_length=16, choices=SupplyStatus.choices, default=SupplyStatus.OPEN)
    source_updated_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["eta", "ref"]
        indexes = [
            models.Index(fields=["item", "status", "eta"], name="supply_item_status_eta"),
            models.Index(fields=["eta", "ref"], name="supply_eta_ref"),  # the supply lists' keyset
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gte=0, received_quantity__gte=0), name="supply_quantities_non_negative"),
            models.CheckConstraint(condition=models.Q(confidence__gte=0, confidence__lte=1), name="supply_confidence_0_1"),
        ]

    @property
    def open_quantity(self):
        return max(self.quantity - self.received_quantity, 0)

    def __str__(self) -> str:
        return self.ref


class SupplyReceipt(models.Model):
    """A receipt against supply: actual date versus ETA, the history supplier reliability learns from."""

    supply = models.ForeignKey(Supply, on_delete=models.CASCADE, related_name="receipts")
    quantity = models.DecimalField(**QTY)
    received_at = models.DateTimeField()
    eta = models.DateField(help_text="The ETA the supply carried when it was received.")
    days_late = models.IntegerField(help_text="Received date minus ETA, in days (negative = early).")
    event_id = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gte=0), name="receipt_quantity_non_negative"),
        ]


class Allocation(models.Model):
    """Supply assigned to an order line: on-hand at a location (supply null) or an inbound supply.

    States: ``proposed`` (a substitute awaiting approval, consuming supply), ``reserved``,
    ``released`` (handed to the warehouse) and ``pinned`` (a planner's override). Released and
    pinned allocations are never changed by a run. Allocations are rewritten by runs in bulk, so
    their audit is the decision log (one entry per line whose decision changed), not per-row
    history; planner changes are audited by the services that make them.
    """

    line = models.ForeignKey("allocation.OrderLine", on_delete=models.CASCADE, related_name="allocations")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="allocations")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="allocations")
    supply = models.ForeignKey(Supply, null=True, blank=True, on_delete=models.PROTECT, related_name="allocations")
    quantity = models.DecimalField(**QTY)
    confirmed_date = models.DateField()
    state = models.CharField(max_length=16, choices=AllocationState.choices, default=AllocationState.RESERVED)
    run_id = models.BigIntegerField(null=True, blank=True, help_text="The run that made this allocation.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["line", "id"]
        indexes = [
            models.Index(fields=["item", "location"], name="allocation_item_location"),
            models.Index(fields=["state"], name="allocation_state"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="allocation_quantity_positive"),
        ]
