"""Read endpoints of the allocation domain: items, locations, customers, orders, inventory, supply.

Readers only (the integration service account pushes events, it does not read them back
here). Querysets come from ``allocation.selectors`` and filters from ``allocation.forms``, so
the screens and the API show the same figures and accept the same filters.
"""
from __future__ import annotations

from rest_framework import mixins, viewsets

from allocation import export_specs, selectors
from allocation.api import serializers
from allocation.forms import (
    CustomerFilter,
    InventoryApiFilter,
    ItemFilter,
    LocationFilter,
    OrderFilter,
    SupplyApiFilter,
)
from config.exports import ApiExportMixin
from config.roles import READERS, RolePermission


class ReadOnly(ApiExportMixin, viewsets.ReadOnlyModelViewSet):
    """A list and a detail by business code, for reader roles; ``?format=csv`` on the list
    streams every filtered row (``export_spec``)."""

    permission_classes = [RolePermission]
    required_roles = {"GET": READERS}
    # Any code the spec allows, "/" and dots included (config/converters.py).
    lookup_value_converter = "code"


class ItemViewSet(ReadOnly):
    """Items with their substitutes in priority order."""

    queryset = selectors.item_rows()
    serializer_class = serializers.ItemSerializer
    export_spec = export_specs.ITEMS
    filterset_class = ItemFilter
    lookup_field = "sku"


class LocationViewSet(ReadOnly):
    """Warehouses, hubs and stores."""

    queryset = selectors.location_rows()
    serializer_class = serializers.LocationSerializer
    export_spec = export_specs.LOCATIONS
    filterset_class = LocationFilter
    lookup_field = "code"


class CustomerViewSet(ReadOnly):
    """Customers with tier, segment, region, home location and credit hold."""

    queryset = selectors.customer_rows()
    serializer_class = serializers.CustomerSerializer
    export_spec = export_specs.CUSTOMERS
    filterset_class = CustomerFilter
    lookup_field = "code"


class OrderViewSet(ReadOnly):
    """Orders with their figures and nested lines (each with its allocations)."""

    queryset = selectors.order_api_rows()
    serializer_class = serializers.OrderSerializer
    export_spec = export_specs.ORDERS
    filterset_class = OrderFilter
    lookup_field = "number"


class InventoryViewSet(ApiExportMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Stock positions per item and location with available, allocated and free stock."""

    permission_classes = [RolePermission]
    required_roles = {"GET": READERS}
    queryset = selectors.inventory_rows()
    serializer_class = serializers.InventorySerializer
    export_spec = export_specs.INVENTORY
    filterset_class = InventoryApiFilter


class SupplyViewSet(ReadOnly):
    """Inbound supply with allocation and the latest receipt (days late)."""

    queryset = selectors.supply_rows()
    serializer_class = serializers.SupplySerializer
    export_spec = export_specs.SUPPLY
    filterset_class = SupplyApiFilter
    lookup_field = "ref"
