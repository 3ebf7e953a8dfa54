"""What the allocation screens and API lists export (``config.exports``): one spec per list.

Columns are ORM paths where they can be (read by ``values_list``, no model instances), in the
screen's column order, with codes rather than labels (``open``, not ``Open``).
"""
from __future__ import annotations

from django.db.models import DecimalField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from allocation.models import Allocation, Order, OrderLine
from config.exports import Column, ExportSpec, columns

ORDERS = ExportSpec(
    "orders",
    columns(
        ("order", "number"), ("customer", "customer__code"), ("customer_name", "customer__name"),
        ("tier", "customer__tier"), ("channel", "channel"), ("requested_date", "requested_date"),
        ("promised_date", "promised_date"), ("lines", "line_count"), ("ordered_quantity", "ordered_quantity"),
        ("open_quantity", "open_quantity"), ("allocated_quantity", "allocated_quantity"), ("status", "status"),
        ("order_credit_hold", "credit_hold"), ("customer_credit_hold", "customer__credit_hold"),
    ),
)

INVENTORY = ExportSpec(
    "inventory",
    columns(
        ("sku", "item__sku"), ("location", "location__code"), ("on_hand", "on_hand"), ("holds", "holds"),
        ("available", "available_quantity"), ("allocated", "allocated_quantity"), ("free", "free_quantity"),
        ("as_of", "as_of"), ("source", "source"),
    ),
)

SUPPLY = ExportSpec(
    "supply",
    columns(
        ("ref", "ref"), ("kind", "kind"), ("sku", "item__sku"), ("location", "location__code"),
        ("quantity", "quantity"), ("received_quantity", "received_quantity"), ("open_quantity", "open_quantity_value"),
        ("allocated_quantity", "allocated_quantity"), ("eta", "eta"), ("confidence", "confidence"),
        ("supplier", "supplier"), ("status", "status"), ("last_received_at", "last_received_at"),
        ("last_days_late", "last_days_late"),
    ),
)

ITEMS = ExportSpec(
    "items",
    columns(("sku", "sku"), ("description", "description"), ("item_class", "item_class"), ("uom", "uom"),
            ("unit_cost", "unit_cost"), ("pack_size", "pack_size")),
)

LOCATIONS = ExportSpec(
    "locations",
    columns(("code", "code"), ("name", "name"), ("region", "region"), ("kind", "kind"),
            ("release_capacity_per_day", "release_capacity_per_day")),
)

CUSTOMERS = ExportSpec(
    "customers",
    columns(("code", "code"), ("name", "name"), ("tier", "tier"), ("segment", "segment"), ("region", "region"),
            ("home_location", "home_location__code"), ("sla_days", "sla_days"), ("credit_hold", "credit_hold"),
            ("credit_hold_reason", "credit_hold_reason")),
)

ALLOCATIONS = ExportSpec(
    "allocations",
    columns(
        ("order", "line__order__number"), ("line", "line__line"), ("sku", "item__sku"), ("location", "location__code"),
        ("quantity", "quantity"), ("confirmed_date", "confirmed_date"), ("supply_ref", "supply__ref"),
        ("state", "state"), ("run", "run_id"),
    ),
)


def _seconds(run) -> float | None:
    from allocation.run_selectors import run_duration

    return run_duration(run)


RUNS = ExportSpec(
    "runs",
    (
        Column("run", path="pk"), Column("trigger", path="trigger"), Column("scope", path="scope"),
        Column("as_of", path="as_of"), Column("policy_version", path="policy_version__number"),
        Column("status", path="status"), Column("progress", path="progress"), Column("lines", path="line_count"),
        Column("allocations", path="allocation_count"), Column("changed_lines", path="changed_line_count"),
        Column("exceptions_raised", path="exceptions_raised"), Column("exceptions_resolved", path="exceptions_resolved"),
        Column("actor", path="actor__username"), Column("created_at", path="created_at"),
        Column("started_at", path="started_at"), Column("finished_at", path="finished_at"),
        Column("seconds", get=_seconds), Column("error", path="error"),
    ),
)

# A run's decisions (the decision log of the lines it changed), in rank order.
RUN_DECISIONS = ExportSpec(
    "run-decisions",
    columns(
        ("run", "run_id"), ("rank", "rank"), ("order", "line__order__number"), ("line", "line__line"),
        ("customer", "line__order__customer__code"), ("sku", "line__item__sku"), ("strategy", "strategy"),
        ("priority_class", "priority_class"), ("score", "score"), ("shortfall", "shortfall"),
        ("projected_date", "projected_date"), ("allocations", "allocations"),
        ("policy_version", "policy_version__number"), ("created_at", "created_at"),
    ),
)

RUN_EXCEPTIONS = ExportSpec(
    "run-exceptions",
    columns(
        ("exception", "pk"), ("type", "type"), ("status", "status"), ("severity", "severity"),
        ("order", "order__number"), ("line", "line__line"), ("sku", "item__sku"), ("value", "value"),
        ("message", "message"), ("raised_at", "raised_at"),
    ),
)

# A release wave's lines with their outcome (the wave page's table, in the order it shows them).
WAVE_LINES = ExportSpec(
    "wave-lines",
    columns(
        ("wave", "wave_id"), ("order", "order_number"), ("line", "line_number"), ("sku", "sku"), ("rank", "rank"),
        ("quantity", "quantity"), ("value", "value"), ("outcome", "outcome"), ("reason", "reason"),
        ("detail", "detail"), ("approval", "approval_id"),
    ),
    ordering=("id",),
)

# One order's lines with what each holds (the order page's table).
ORDER_LINES = ExportSpec(
    "order-lines",
    columns(
        ("order", "order__number"), ("line", "line"), ("sku", "item__sku"), ("quantity", "quantity"),
        ("shipped_quantity", "shipped_quantity"), ("allocated_quantity", "allocated_quantity"),
        ("unit_price", "unit_price"), ("ship_from", "ship_from__code"), ("allow_substitute", "allow_substitute"),
        ("status", "status"),
    ),
)



def order_line_rows(order: Order) -> QuerySet[OrderLine]:
    """The lines of ``order`` in line order, each with the quantity allocated to it."""
    allocated = (
        Allocation.objects.filter(line=OuterRef("pk")).order_by().values("line")
        .annotate(total=Sum("quantity")).values("total")
    )
    zero = Value(0, output_field=DecimalField(max_digits=18, decimal_places=4))
    return (
        OrderLine.objects.filter(order=order).select_related("order", "item", "ship_from")
        .annotate(allocated_quantity=Coalesce(Subquery(allocated), zero))
        .order_by("line")
    )


def allocation_rows() -> QuerySet[Allocation]:
    """Allocations by order number, line and id (the allocations API's order)."""
    return Allocation.objects.select_related("line__order", "item", "location", "supply").order_by(
        "line__order__number", "line__line", "id"
    )


def order_allocation_rows(order: Order) -> QuerySet[Allocation]:
    """The allocations of ``order``'s lines."""
    return allocation_rows().filter(line__order=order)
