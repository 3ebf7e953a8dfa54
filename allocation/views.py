"""Operational read screens: orders, one order, inventory and supply.

Each list is one view and one template: the full page, or only its ``results`` partial when
HTMX asks (search and filters update the rows in place, pagination too); without JavaScript
the filter form is a plain GET form and every link a full page.
"""
from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django_filters import FilterSet

from allocation import export_specs, selectors
from allocation.forms import InventoryFilter, OrderFilter, SupplyFilter
from config import exports, pagination, roles

PAGE_SIZE = 50


def _filtered_list(
    request: HttpRequest, filterset_class: type[FilterSet], queryset: QuerySet, template: str,
    export: exports.ExportSpec | None = None,
) -> HttpResponse:
    """Filter, paginate and render a list; the ``results`` partial for HTMX; 400 with field errors for bad filters."""
    filterset = filterset_class(request.GET, queryset=queryset, request=request)
    valid = filterset.is_valid()
    rows = filterset.qs if valid else queryset.none()
    if valid and export is not None and exports.requested(request):  # ?export=csv|xlsx: every filtered row
        return exports.export_response(request, rows, export)
    # Keyset pages (?cursor=): page 500 costs what page 1 costs, and no COUNT of every row.
    page_obj = pagination.screen_page(request, rows, PAGE_SIZE)
    query = pagination.screen_query(request)
    context = {"filter": filterset, "page_obj": page_obj, "query": query, "filtered": bool(query)}
    partial = request.htmx and not request.htmx.history_restore_request
    response = render(request, f"{template}#results" if partial else template, context, status=200 if valid else 400)
    patch_vary_headers(response, ("HX-Request",))
    return response


@roles.role_required(*roles.READERS)
def order_list(request: HttpRequest) -> HttpResponse:
    """Orders with their customer, quantities ordered and allocated, searchable and filterable."""
    return _filtered_list(request, OrderFilter, selectors.order_rows(), "allocation/order_list.html", export_specs.ORDERS)


@roles.role_required(*roles.READERS)
def order_detail(request: HttpRequest, number: str) -> HttpResponse:
    """One order: facts, credit hold, and each line with its allocations."""
    order = selectors.order_detail(number)
    if exports.requested(request):  # the order's lines, or with ?section=allocations their allocations
        if request.GET.get("section") == "allocations":
            return exports.export_response(request, export_specs.order_allocation_rows(order), export_specs.ALLOCATIONS)
        return exports.export_response(request, export_specs.order_line_rows(order), export_specs.ORDER_LINES)
    return render(request, "allocation/order_detail.html", {"order": order})


@roles.role_required(*roles.READERS)
def inventory_list(request: HttpRequest) -> HttpResponse:
    """Stock positions: on hand, holds, available, allocated and free, per item and location."""
    return _filtered_list(request, InventoryFilter, selectors.inventory_rows(), "allocation/inventory_list.html", export_specs.INVENTORY)


@roles.role_required(*roles.READERS)
def supply_list(request: HttpRequest) -> HttpResponse:
    """Inbound supply with confidence, allocation and receipt history (days late)."""
    return _filtered_list(request, SupplyFilter, selectors.supply_rows(), "allocation/supply_list.html", export_specs.SUPPLY)
