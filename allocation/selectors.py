"""Reads of the allocation domain, shared by the screens and the read API.

Each list selector returns one annotated queryset: the figures a row shows (quantities
allocated, free stock, shortage, days late) are computed in the database by aggregates and
correlated subqueries, so a page of rows costs a fixed number of queries whatever its size.
"""
from __future__ import annotations

from decimal import Decimal

from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Greatest
from django.http import Http404

from allocation.choices import LineStatus
from allocation.models import (
    Allocation,
    Customer,
    InventoryPosition,
    Item,
    ItemSubstitute,
    LineDecisionCurrent,
    Location,
    Order,
    OrderLine,
    Supply,
    SupplyReceipt,
)

QUANTITY = DecimalField(max_digits=18, decimal_places=3)
ZERO = Value(Decimal("0"), output_field=QUANTITY)


def _sum_of(queryset: QuerySet, expression, group_by: str) -> Coalesce:
    """A correlated subquery summing ``expression`` over ``queryset`` (0 when there are no rows)."""
    total = queryset.order_by().values(group_by).annotate(total=Sum(expression, output_field=QUANTITY)).values("total")
    return Coalesce(Subquery(total, output_field=QUANTITY), ZERO)


def _open_line_quantity(prefix: str = "") -> ExpressionWrapper:
    return ExpressionWrapper(F(f"{prefix}quantity") - F(f"{prefix}shipped_quantity"), output_field=QUANTITY)


def _position_available(prefix: str = "") -> ExpressionWrapper:
    return ExpressionWrapper(
        F(f"{prefix}on_hand") - F(f"{prefix}quality_hold") - F(f"{prefix}warehouse_hold"), output_field=QUANTITY
    )


def distinct_values(model, field: str) -> list[tuple[str, str]]:
    """Choices (value, value) of the distinct values of a free-code field, for filter selects."""
    values = model.objects.order_by(field).values_list(field, flat=True).distinct()
    return [(value, value) for value in values]


def channel_choices() -> list[tuple[str, str]]:
    return distinct_values(Order, "channel")


def segment_choices() -> list[tuple[str, str]]:
    return distinct_values(Customer, "segment")


def item_class_choices() -> list[tuple[str, str]]:
    return distinct_values(Item, "item_class")


def region_choices() -> list[tuple[str, str]]:
    return distinct_values(Location, "region")


def _count_of(queryset: QuerySet, group_by: str) -> Coalesce:
    """A correlated subquery counting the rows of ``queryset`` (0 when there are none)."""
    total = queryset.order_by().values(group_by).annotate(total=Count("pk")).values("total")
    return Coalesce(Subquery(total, output_field=IntegerField()), Value(0))


def order_rows() -> QuerySet[Order]:
    """Orders with their customer and line figures: counts, ordered, open and allocated quantity.

    ``has_shortage`` is true when the open quantity of the open lines is not fully allocated.
    The figures are correlated subqueries (not a join grouped by order), so they are computed
    for the rows of one page only and the ordering can walk the ``(requested_date, number)``
    index without aggregating the whole book first.
    """
    lines = OrderLine.objects.filter(order=OuterRef("pk"))
    active_lines = lines.exclude(status=LineStatus.CANCELLED)
    open_lines = lines.filter(status=LineStatus.OPEN)
    allocated = _sum_of(
        Allocation.objects.filter(line__order=OuterRef("pk"), line__status=LineStatus.OPEN), "quantity", "line__order"
    )
    return (
        Order.objects.select_related("customer")
        .annotate(
            line_count=_count_of(active_lines, "order"),
            ordered_quantity=_sum_of(active_lines, "quantity", "order"),
            open_quantity=_sum_of(open_lines, _open_line_quantity(), "order"),
            allocated_quantity=allocated,
        )
        .order_by("requested_date", "number")
    )


def with_shortage(queryset: QuerySet[Order], value: bool) -> QuerySet[Order]:
    """Orders whose open quantity exceeds what is allocated (or, with ``False``, is fully allocated)."""
    shortage = Q(open_quantity__gt=F("allocated_quantity"))
    return queryset.filter(shortage) if value else queryset.exclude(shortage)


def _lines_with_allocations() -> Prefetch:
    """Prefetch of an order's lines in line order, each with its item and allocations."""
    allocations = Allocation.objects.select_related("item", "location", "supply").order_by("confirmed_date", "id")
    lines = (
        OrderLine.objects.select_related("item", "ship_from")
        .annotate(allocated_quantity=_sum_of(Allocation.objects.filter(line=OuterRef("pk")), "quantity", "line"))
        # When open inbound would cover the line's shortfall (its current decision; allocation.depth).
        .annotate(projected_date=Subquery(LineDecisionCurrent.objects.filter(line=OuterRef("pk")).values("log__projected_date")[:1]))
        .prefetch_related(Prefetch("allocations", queryset=allocations))
        .order_by("line")
    )
    return Prefetch("lines", queryset=lines)


def order_detail(number: str) -> Order:
    """One order with its lines, their items and allocations (with location and supply); 404 if unknown."""
    try:
        return (
            Order.objects.select_related("customer", "customer__home_location")
            .prefetch_related(_lines_with_allocations())
            .get(number=number)
        )
    except Order.DoesNotExist as error:
        raise Http404("No such order.") from error


def inventory_rows() -> QuerySet[InventoryPosition]:
    """Positions with holds, available, allocated (on-hand allocations) and free stock.

    ``item_demand`` is the item's open order quantity everywhere and ``item_available`` its
    available stock everywhere; an item is short when demand exceeds available.
    """
    on_hand_allocations = Allocation.objects.filter(
        item=OuterRef("item"), location=OuterRef("location"), supply__isnull=True
    )
    demand = OrderLine.objects.filter(item=OuterRef("item"), status=LineStatus.OPEN)
    stock = InventoryPosition.objects.filter(item=OuterRef("item"))
    available = Greatest(_position_available(), ZERO, output_field=QUANTITY)
    return (
        InventoryPosition.objects.select_related("item", "location")
        .annotate(
            holds=ExpressionWrapper(F("quality_hold") + F("warehouse_hold"), output_field=QUANTITY),
            available_quantity=available,
            allocated_quantity=_sum_of(on_hand_allocations, "quantity", "item"),
            item_demand=_sum_of(demand, _open_line_quantity(), "item"),
            item_available=_sum_of(stock, _position_available(), "item"),
        )
        .annotate(free_quantity=ExpressionWrapper(F("available_quantity") - F("allocated_quantity"), output_field=QUANTITY))
        .order_by("item__sku", "location__code")
    )


def with_short_items(queryset: QuerySet[InventoryPosition], value: bool) -> QuerySet[InventoryPosition]:
    """Positions of items whose open demand exceeds their available stock (or, with ``False``, does not)."""
    short = Q(item_demand__gt=F("item_available"))
    return queryset.filter(short) if value else queryset.exclude(short)


def supply_rows() -> QuerySet[Supply]:
    """Supply with open and allocated quantity, and its latest receipt (date and days late)."""
    latest_receipt = SupplyReceipt.objects.filter(supply=OuterRef("pk")).order_by("-received_at", "-id")
    return (
        Supply.objects.select_related("item", "location")
        .annotate(
            open_quantity_value=Greatest(
                ExpressionWrapper(F("quantity") - F("received_quantity"), output_field=QUANTITY), ZERO,
                output_field=QUANTITY,
            ),
            allocated_quantity=_sum_of(Allocation.objects.filter(supply=OuterRef("pk")), "quantity", "supply"),
            last_received_at=Subquery(latest_receipt.values("received_at")[:1]),
            last_days_late=Subquery(latest_receipt.values("days_late")[:1]),
        )
        .order_by("eta", "ref")
    )


def item_rows() -> QuerySet[Item]:
    """Items with their substitutes (in priority order) prefetched."""
    links = ItemSubstitute.objects.select_related("substitute").order_by("priority", "substitute__sku")
    return Item.objects.prefetch_related(Prefetch("substitute_links", queryset=links)).order_by("sku")


def location_rows() -> QuerySet[Location]:
    return Location.objects.order_by("code")


def customer_rows() -> QuerySet[Customer]:
    return Customer.objects.select_related("home_location").order_by("code")


def order_api_rows() -> QuerySet[Order]:
    """Orders for the API: the list figures plus lines, items and allocations prefetched.

    Three queries a page whatever its size (orders, their lines, the lines' allocations),
    each loading only the columns the API shows. The prefetches land in plain lists
    (``line_rows``, ``allocation_rows``): a related manager's cache would build a queryset
    per order and per line, which cost more than the queries themselves.
    """
    allocations = (
        Allocation.objects.select_related("item", "location", "supply")
        .only("line_id", "quantity", "confirmed_date", "state", "item__sku", "location__code", "supply__ref")
        .order_by("confirmed_date", "id")
    )
    lines = (
        OrderLine.objects.select_related("item", "ship_from")
        .only(
            "order_id", "line", "quantity", "shipped_quantity", "unit_price", "unit_cost", "allow_substitute",
            "status", "item__sku", "ship_from__code",
        )
        .annotate(allocated_quantity=_sum_of(Allocation.objects.filter(line=OuterRef("pk")), "quantity", "line"))
        .prefetch_related(Prefetch("allocations", queryset=allocations, to_attr="allocation_rows"))
        .order_by("line")
    )
    return order_rows().prefetch_related(Prefetch("lines", queryset=lines, to_attr="line_rows"))
