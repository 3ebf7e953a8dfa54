"""Search and filter forms of the order, inventory and supply lists.

They are django-filter FilterSets, so the screens (rendered as a GET form) and the read API
(query parameters) accept the same parameters with the same validation: a bad value is a
400 naming the field. The figures filtered on ("has shortage", "short only") come from the
annotations in ``allocation.selectors``.
"""
from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django_filters.widgets import BooleanWidget

from allocation import selectors
from allocation.choices import OrderStatus, SupplyKind, SupplyStatus
from allocation.models import Customer, InventoryPosition, Item, Location, Order, Supply
from config.forms import StorableTextForm

DATE = forms.DateInput(attrs={"type": "date"})
SEARCH = forms.TextInput(attrs={"type": "search", "placeholder": "Search", "autocomplete": "off"})
TIER_CHOICES = [(str(tier), f"Tier {tier}") for tier in (1, 2, 3, 4)]


class AnyYesNo(BooleanWidget):
    """``true``/``false`` in the URL (as the API takes them), "Any" when not set."""

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.choices = [("", "Any"), ("true", "Yes"), ("false", "No")]


def _location_filter(field_name: str = "location") -> django_filters.ModelChoiceFilter:
    return django_filters.ModelChoiceFilter(
        field_name=field_name, queryset=Location.objects.order_by("code"), to_field_name="code",
        label="Location", empty_label="Any location",
    )


class OrderFilter(django_filters.FilterSet):
    """Orders by number or customer, status, channel, customer segment and tier, requested dates, shortage."""

    q = django_filters.CharFilter(method="search", label="Order or customer", widget=SEARCH)
    status = django_filters.ChoiceFilter(choices=OrderStatus.choices, empty_label="Any status")
    channel = django_filters.ChoiceFilter(choices=selectors.channel_choices, empty_label="Any channel")
    segment = django_filters.ChoiceFilter(
        field_name="customer__segment", choices=selectors.segment_choices, label="Segment", empty_label="Any segment"
    )
    tier = django_filters.ChoiceFilter(
        field_name="customer__tier", choices=TIER_CHOICES, label="Tier", empty_label="Any tier"
    )
    requested_from = django_filters.DateFilter(
        field_name="requested_date", lookup_expr="gte", label="Requested from", widget=DATE
    )
    requested_to = django_filters.DateFilter(field_name="requested_date", lookup_expr="lte", label="Requested to", widget=DATE)
    has_shortage = django_filters.BooleanFilter(method="shortage", label="Has shortage", widget=AnyYesNo)

    class Meta:
        model = Order
        fields: list[str] = []
        form = StorableTextForm  # NUL and lone surrogates are a 400 naming the filter

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        return queryset.filter(
            Q(number__icontains=value) | Q(customer__code__icontains=value) | Q(customer__name__icontains=value)
        )

    def shortage(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        return queryset if value is None else selectors.with_shortage(queryset, value)


class InventoryFilter(django_filters.FilterSet):
    """Positions by item (SKU or description) or location code, item class, location, region, short items."""

    q = django_filters.CharFilter(method="search", label="Item or location", widget=SEARCH)
    item_class = django_filters.ChoiceFilter(
        field_name="item__item_class", choices=selectors.item_class_choices, label="Item class", empty_label="Any class"
    )
    location = _location_filter()
    region = django_filters.ChoiceFilter(
        field_name="location__region", choices=selectors.region_choices, label="Region", empty_label="Any region"
    )
    short_only = django_filters.BooleanFilter(method="short", label="Short items", widget=AnyYesNo)

    class Meta:
        model = InventoryPosition
        fields: list[str] = []
        form = StorableTextForm  # NUL and lone surrogates are a 400 naming the filter

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        return queryset.filter(
            Q(item__sku__icontains=value) | Q(item__description__icontains=value) | Q(location__code__icontains=value)
        )

    def short(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        return queryset if value is None else selectors.with_short_items(queryset, value)


class SupplyFilter(django_filters.FilterSet):
    """Supply by reference or SKU, kind, status, location, ETA range and minimum confidence."""

    q = django_filters.CharFilter(method="search", label="Reference or SKU", widget=SEARCH)
    kind = django_filters.ChoiceFilter(choices=SupplyKind.choices, empty_label="Any kind")
    status = django_filters.ChoiceFilter(choices=SupplyStatus.choices, empty_label="Any status")
    location = _location_filter()
    eta_from = django_filters.DateFilter(field_name="eta", lookup_expr="gte", label="ETA from", widget=DATE)
    eta_to = django_filters.DateFilter(field_name="eta", lookup_expr="lte", label="ETA to", widget=DATE)
    min_confidence = django_filters.NumberFilter(
        field_name="confidence", lookup_expr="gte", label="Min. confidence", min_value=0, max_value=1,
        widget=forms.NumberInput(attrs={"step": "0.05", "min": "0", "max": "1"}),
    )

    class Meta:
        model = Supply
        fields: list[str] = []
        form = StorableTextForm  # NUL and lone surrogates are a 400 naming the filter

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        return queryset.filter(Q(ref__icontains=value) | Q(item__sku__icontains=value))


class InventoryApiFilter(InventoryFilter):
    """The inventory filters plus an exact SKU (read API)."""

    sku = django_filters.CharFilter(field_name="item__sku", label="SKU")


class SupplyApiFilter(SupplyFilter):
    """The supply filters plus an exact SKU (read API)."""

    sku = django_filters.CharFilter(field_name="item__sku", label="SKU")


class ItemFilter(django_filters.FilterSet):
    """Items by SKU or description and item class (read API)."""

    q = django_filters.CharFilter(method="search", label="SKU or description")
    item_class = django_filters.CharFilter()

    class Meta:
        model = Item
        fields: list[str] = []
        form = StorableTextForm  # NUL and lone surrogates are a 400 naming the filter

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        return queryset.filter(Q(sku__icontains=value) | Q(description__icontains=value))


class LocationFilter(django_filters.FilterSet):
    """Locations by region and kind (read API)."""

    region = django_filters.CharFilter()
    kind = django_filters.ChoiceFilter(choices=Location._meta.get_field("kind").choices)

    class Meta:
        model = Location
        fields: list[str] = []
        form = StorableTextForm  # NUL and lone surrogates are a 400 naming the filter


class CustomerFilter(django_filters.FilterSet):
    """Customers by code or name, tier, segment, region and credit hold (read API)."""

    q = django_filters.CharFilter(method="search", label="Code or name")
    tier = django_filters.ChoiceFilter(choices=TIER_CHOICES)
    segment = django_filters.CharFilter()
    region = django_filters.CharFilter()
    credit_hold = django_filters.BooleanFilter()

    class Meta:
        model = Customer
        fields: list[str] = []
        form = StorableTextForm  # NUL and lone surrogates are a 400 naming the filter

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        return queryset.filter(Q(code__icontains=value) | Q(name__icontains=value))
