from django.db import models
from simple_history.models import HistoricalRecords

from allocation.choices import LineStatus, OrderKind, OrderStatus

from .catalog import Customer, Item, Location

QTY = {"max_digits": 14, "decimal_places": 3}
MONEY = {"max_digits": 14, "decimal_places": 4}


class Order(models.Model):
    """A customer order from the ERP; the lines are what Allot ranks and allocates."""

    number = models.CharField(max_length=64, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    channel = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField()
    requested_date = models.DateField()
    promised_date = models.DateField(null=True, blank=True)
    ship_complete = models.BooleanField(default=False)
    kind = models.CharField(max_length=8, choices=OrderKind.choices, default=OrderKind.ORDER)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="A quote's lines are cancelled at this instant (allocation.quotes); null for orders."
    )
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.OPEN)
    cancel_reason = models.CharField(max_length=300, blank=True, default="")
    credit_hold = models.BooleanField(default=False, help_text="Order-level credit hold.")
    credit_hold_reason = models.CharField(max_length=300, blank=True, default="")
    source_updated_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "number"]
        indexes = [
            # The order lists' keyset: (requested_date, number), also under a status filter.
            models.Index(fields=["requested_date", "number"], name="order_requested_number"),
            models.Index(fields=["status", "requested_date", "number"], name="order_status_requested_no"),
            # The expiry sweep: open quotes by expiry (allocation.quotes.expire_quotes).
            models.Index(
                fields=["expires_at"], name="order_open_quote_expiry",
                condition=models.Q(kind="quote", status="open", expires_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.number


class OrderLine(models.Model):
    """One line of an order: an item, a quantity, and the prices that drive margin and value."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    line = models.PositiveIntegerField()
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.DecimalField(**QTY)
    shipped_quantity = models.DecimalField(**QTY, default=0)
    unit_price = models.DecimalField(**MONEY, default=0)
    unit_cost = models.DecimalField(**MONEY, default=0)
    allow_substitute = models.BooleanField(default=False)
    ship_from = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=LineStatus.choices, default=LineStatus.OPEN)
    history = HistoricalRecords()

    class Meta:
        ordering = ["order", "line"]
        indexes = [models.Index(fields=["item", "status"], name="line_item_status")]
        constraints = [
            models.UniqueConstraint(fields=["order", "line"], name="order_line_unique"),
            models.CheckConstraint(
                condition=models.Q(quantity__gte=0, shipped_quantity__gte=0, unit_price__gte=0, unit_cost__gte=0),
                name="line_quantities_non_negative",
            ),
        ]

    @property
    def open_quantity(self):
        return max(self.quantity - self.shipped_quantity, 0)

    @property
    def value(self):
        return self.quantity * self.unit_price

    def __str__(self) -> str:
        return f"{self.order_id}/{self.line}"
