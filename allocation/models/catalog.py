from django.db import models
from simple_history.models import HistoricalRecords

from allocation.choices import LocationKind


class Location(models.Model):
    """A warehouse, hub or store that holds stock and ships order lines."""

    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    region = models.CharField(max_length=64, db_index=True)
    kind = models.CharField(max_length=16, choices=LocationKind.choices)
    release_capacity_per_day = models.PositiveIntegerField(null=True, blank=True)
    cutoff_time = models.TimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, blank=True, default="")
    source_updated_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Lane(models.Model):
    """A shipping lane from a location to a customer region; it orders sourcing preference."""

    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="lanes")
    region = models.CharField(max_length=64)
    transit_days = models.PositiveIntegerField()
    cost_per_unit = models.DecimalField(max_digits=12, decimal_places=4)
    source_updated_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["region", "transit_days", "cost_per_unit"]
        constraints = [
            models.UniqueConstraint(fields=["location", "region"], name="lane_location_region_unique"),
            models.CheckConstraint(condition=models.Q(cost_per_unit__gte=0), name="lane_cost_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.location_id}->{self.region}"


class Item(models.Model):
    """A stocked item (SKU) with its class, unit of measure and cost."""

    sku = models.CharField(max_length=64, unique=True)
    description = models.CharField(max_length=300, blank=True, default="")
    item_class = models.CharField(max_length=64, db_index=True)
    uom = models.CharField(max_length=16, default="EA")
    unit_cost = models.DecimalField(max_digits=14, decimal_places=4, default=0)
    pack_size = models.DecimalField(
        max_digits=14, decimal_places=3, default=1,
        help_text="A line takes whole packs from one supply element; its last take may complete it (allocation.md).",
    )
    source_updated_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=models.Q(unit_cost__gte=0), name="item_unit_cost_non_negative"),
            models.CheckConstraint(condition=models.Q(pack_size__gt=0), name="item_pack_size_positive"),
        ]

    def __str__(self) -> str:
        return self.sku


class ItemSubstitute(models.Model):
    """An item that may replace another, in priority order (1 = first choice)."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="substitute_links")
    substitute = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="substitute_for_links")
    priority = models.PositiveIntegerField(default=1)
    history = HistoricalRecords()

    class Meta:
        ordering = ["item", "priority"]
        constraints = [
            models.UniqueConstraint(fields=["item", "substitute"], name="item_substitute_unique"),
            models.CheckConstraint(condition=~models.Q(item=models.F("substitute")), name="item_substitute_not_self"),
        ]


class Customer(models.Model):
    """A customer with the tier, segment and region that policies scope by."""

    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    tier = models.PositiveSmallIntegerField()
    segment = models.CharField(max_length=64, db_index=True)
    region = models.CharField(max_length=64, db_index=True)
    home_location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sla_days = models.PositiveIntegerField(null=True, blank=True)
    late_penalty_per_day = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    credit_hold = models.BooleanField(default=False)
    credit_hold_reason = models.CharField(max_length=300, blank=True, default="")
    source_updated_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(condition=models.Q(tier__gte=1, tier__lte=4), name="customer_tier_1_to_4"),
            models.CheckConstraint(condition=models.Q(late_penalty_per_day__gte=0), name="customer_penalty_non_negative"),
        ]

    def __str__(self) -> str:
        return self.code
