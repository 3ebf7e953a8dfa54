"""Read serializers of the allocation domain. Records are named by business codes, never by integer ids."""
from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from rest_framework import serializers

from allocation.models import (
    Allocation,
    Customer,
    InventoryPosition,
    Item,
    ItemSubstitute,
    Location,
    Order,
    OrderLine,
    Supply,
)

QUANTITY = {"max_digits": 18, "decimal_places": 3, "read_only": True}


class ReadSerializer(serializers.ModelSerializer):
    """A read-only model serializer whose rows cost less: the same fields, sources and
    formatting (each field's own ``to_representation``), without DRF's per-field attribute
    machinery, which dominated a page of nested orders (50 orders, ~150 lines, ~120
    allocations). Sources are attribute paths; a ``None`` on the way gives ``None``."""

    def to_representation(self, instance) -> dict:
        plan = self.__dict__.get("_read_plan")
        if plan is None:
            plan = self._read_plan = [
                (field.field_name, field.source_attrs, field.to_representation) for field in self._readable_fields
            ]
        row = {}
        for name, attrs, represent in plan:
            value = instance
            for attr in attrs:
                try:
                    value = getattr(value, attr)
                except ObjectDoesNotExist:
                    value = None
                if value is None:
                    break
            row[name] = None if value is None else represent(value)
        return row


class LocationSerializer(ReadSerializer):
    class Meta:
        model = Location
        fields = ["code", "name", "region", "kind", "release_capacity_per_day", "cutoff_time", "timezone"]


class SubstituteSerializer(ReadSerializer):
    sku = serializers.CharField(source="substitute.sku", read_only=True)

    class Meta:
        model = ItemSubstitute
        fields = ["sku", "priority"]


class ItemSerializer(ReadSerializer):
    substitutes = SubstituteSerializer(source="substitute_links", many=True, read_only=True)

    class Meta:
        model = Item
        fields = ["sku", "description", "item_class", "uom", "unit_cost", "pack_size", "substitutes"]


class CustomerSerializer(ReadSerializer):
    home_location = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Customer
        fields = [
            "code", "name", "tier", "segment", "region", "home_location", "sla_days",
            "late_penalty_per_day", "credit_hold", "credit_hold_reason",
        ]


class LineAllocationSerializer(ReadSerializer):
    sku = serializers.CharField(source="item.sku", read_only=True)
    location = serializers.CharField(source="location.code", read_only=True)
    supply_ref = serializers.CharField(source="supply.ref", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Allocation
        fields = ["sku", "location", "supply_ref", "quantity", "confirmed_date", "state"]


class OrderLineSerializer(ReadSerializer):
    sku = serializers.CharField(source="item.sku", read_only=True)
    ship_from = serializers.SlugRelatedField(slug_field="code", read_only=True)
    allocated_quantity = serializers.DecimalField(**QUANTITY)
    allocations = LineAllocationSerializer(source="allocation_rows", many=True, read_only=True)

    class Meta:
        model = OrderLine
        fields = [
            "line", "sku", "quantity", "shipped_quantity", "unit_price", "unit_cost", "allow_substitute",
            "ship_from", "status", "allocated_quantity", "allocations",
        ]


class OrderSerializer(ReadSerializer):
    customer = serializers.CharField(source="customer.code", read_only=True)
    line_count = serializers.IntegerField(read_only=True)
    ordered_quantity = serializers.DecimalField(**QUANTITY)
    open_quantity = serializers.DecimalField(**QUANTITY)
    allocated_quantity = serializers.DecimalField(**QUANTITY)
    lines = OrderLineSerializer(source="line_rows", many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "number", "customer", "channel", "created_at", "requested_date", "promised_date", "ship_complete",
            "kind", "expires_at", "status", "cancel_reason", "credit_hold", "credit_hold_reason", "line_count", "ordered_quantity",
            "open_quantity", "allocated_quantity", "lines",
        ]


class InventorySerializer(ReadSerializer):
    sku = serializers.CharField(source="item.sku", read_only=True)
    item_class = serializers.CharField(source="item.item_class", read_only=True)
    location = serializers.CharField(source="location.code", read_only=True)
    region = serializers.CharField(source="location.region", read_only=True)
    available = serializers.DecimalField(source="available_quantity", **QUANTITY)
    allocated = serializers.DecimalField(source="allocated_quantity", **QUANTITY)
    free = serializers.DecimalField(source="free_quantity", **QUANTITY)
    item_demand = serializers.DecimalField(**QUANTITY)
    item_available = serializers.DecimalField(**QUANTITY)

    class Meta:
        model = InventoryPosition
        fields = [
            "sku", "item_class", "location", "region", "on_hand", "quality_hold", "warehouse_hold", "available",
            "allocated", "free", "item_demand", "item_available", "as_of",
        ]


class SupplySerializer(ReadSerializer):
    sku = serializers.CharField(source="item.sku", read_only=True)
    location = serializers.CharField(source="location.code", read_only=True)
    open_quantity = serializers.DecimalField(source="open_quantity_value", **QUANTITY)
    allocated_quantity = serializers.DecimalField(**QUANTITY)
    last_received_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_days_late = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Supply
        fields = [
            "ref", "kind", "sku", "location", "quantity", "received_quantity", "open_quantity", "allocated_quantity",
            "eta", "supplier", "confidence", "status", "last_received_at", "last_days_late",
        ]
