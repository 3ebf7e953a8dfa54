"""Scope values from the data: what a policy's scope dimensions can match, for the forms'
autocomplete lists, and a warning when a value matches nothing (a typo such as
``customer_segment = helthcare`` would silently apply to no line).

Small dimensions (segments, channels, item classes, regions, locations) fill their list at
once (at most ``LIST_LIMIT`` values); large ones (customers, items) are looked up as the
person types: ``suggestions`` returns a keyset slice of the values starting with what was
typed (``after`` = the last value shown), through one indexed query.
A warning never blocks a save: the data may arrive later (a new customer tomorrow).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db.models import CharField, F, Model, Value

from allocation.models import Customer, Item, Location, Order

LIST_LIMIT = 200
SUGGEST_LIMIT = 20

# dimension -> the columns its values come from (a region is a customer's or a location's).
SOURCES: dict[str, tuple[tuple[type[Model], str], ...]] = {
    "customer": ((Customer, "code"),),
    "customer_segment": ((Customer, "segment"),),
    "channel": ((Order, "channel"),),
    "item": ((Item, "sku"),),
    "item_class": ((Item, "item_class"),),
    "location": ((Location, "code"),),
    "region": ((Customer, "region"), (Location, "region")),
}
LARGE = frozenset({"customer", "item"})  # looked up as the person types
LABELS = {
    "customer": "customer code", "customer_segment": "customer segment", "channel": "order channel",
    "item": "SKU", "item_class": "item class", "location": "location code", "region": "region",
}
# Form fields named otherwise than their dimension (protections and quotas).
FIELD_DIMENSIONS = {"sku": "item"}


def dimension_of(field_name: str) -> str | None:
    name = FIELD_DIMENSIONS.get(field_name, field_name)
    return name if name in SOURCES else None


def values(dimension: str, *, limit: int = LIST_LIMIT) -> list[str]:
    """Up to ``limit`` distinct values of a small dimension, sorted (one query per source)."""
    found: set[str] = set()
    for model, column in SOURCES[dimension]:
        found.update(
            model.objects.exclude(**{column: ""}).order_by(column).values_list(column, flat=True).distinct()[:limit]
        )
    return sorted(found)[:limit]


def suggestions(dimension: str, typed: str, *, after: str = "", limit: int = SUGGEST_LIMIT) -> list[str]:
    """Values of ``dimension`` starting with ``typed`` (case as stored), after ``after``, sorted."""
    typed = typed.strip()[:64]
    found: set[str] = set()
    for model, column in SOURCES[dimension]:
        qs = model.objects.filter(**{f"{column}__startswith": typed}) if typed else model.objects.all()
        if after:
            qs = qs.filter(**{f"{column}__gt": after})
        found.update(qs.exclude(**{column: ""}).order_by(column).values_list(column, flat=True).distinct()[:limit])
    return sorted(found)[:limit]


def _known(wanted: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """Which of the wanted values exist, per dimension: one UNION query for all of them."""
    parts = [
        model.objects.filter(**{f"{column}__in": sorted(values_)})
        .annotate(allot_dimension=Value(dimension, output_field=CharField()), allot_value=F(column))
        .values_list("allot_dimension", "allot_value")
        .order_by()
        for dimension, values_ in wanted.items()
        for model, column in SOURCES[dimension]
    ]
    known: dict[str, set[str]] = {dimension: set() for dimension in wanted}
    if not parts:
        return known
    query = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0].distinct()
    for dimension, value in query:
        known[dimension].add(value)
    return known


def _warning(dimension: str, value: str) -> str:
    return f"{dimension} = {value} matches no {LABELS[dimension]} in the data yet: check the spelling."


def unmatched(scope: Mapping[str, Any] | None) -> list[str]:
    """Warnings for the values of one scope that match nothing in the data."""
    return [w for warnings in warnings_for([scope or {}]) for w in warnings]


def warnings_for(scopes: Iterable[Mapping[str, Any] | None]) -> list[list[str]]:
    """Warnings per scope, for many scopes at once: one query whatever the number of scopes
    and dimensions. Tiers and order kinds are checked by the schema, not here."""
    scopes = [dict(scope or {}) for scope in scopes]
    wanted: dict[str, set[str]] = {}
    for scope in scopes:
        for dimension, value in scope.items():
            if dimension in SOURCES and isinstance(value, str) and value:
                wanted.setdefault(dimension, set()).add(value)
    known = _known(wanted)
    return [
        [
            _warning(dimension, value)
            for dimension, value in scope.items()
            if dimension in SOURCES and isinstance(value, str) and value and value not in known[dimension]
        ]
        for scope in scopes
    ]


def _entry_scope(entry: Any, attribute: str) -> dict[str, Any]:
    scope = dict(getattr(entry, attribute, None) or {})
    if attribute != "scope":  # a protection's or quota's own sku, location and item class
        for field in ("sku", "location", "item_class"):
            value = getattr(entry, field, None)
            if value:
                scope.setdefault(dimension_of(field) or field, value)
    return scope


def annotate_all(rules: Iterable[Any], entries: Iterable[Any] = ()) -> None:
    """Set ``scope_warnings`` on each rule (its ``scope``) and protection or quota (its
    ``for_scope`` and own sku/location/item class) for the page to show beside it; one query."""
    rules, entries = list(rules), list(entries)
    scopes = [_entry_scope(r, "scope") for r in rules] + [_entry_scope(e, "for_scope") for e in entries]
    for entry, warnings in zip(rules + entries, warnings_for(scopes), strict=True):
        entry.scope_warnings = warnings


def attach_lists(form: Any) -> None:
    """Point each scope text input of ``form`` at its datalist (``scope-<dimension>``); inputs
    of large dimensions also ask the suggestions endpoint as the person types (HTMX)."""
    from django.urls import reverse

    for name, field in form.fields.items():
        dimension = dimension_of(name)
        if dimension is None or getattr(field.widget, "input_type", None) != "text":
            continue
        attrs = field.widget.attrs
        attrs.update({"list": f"scope-{dimension}", "autocomplete": "off"})
        if dimension in LARGE:
            attrs.update({
                "hx-get": reverse("policies:scope_values", args=[dimension]),
                "hx-trigger": "input changed delay:250ms",
                "hx-target": f"#scope-{dimension}",
                "hx-swap": "innerHTML",
                "hx-sync": "this:replace",
            })


def lists_for(form: Any) -> list[dict[str, Any]]:
    """The datalists ``form``'s scope inputs point at: small dimensions with all their values,
    large ones with the first ``SUGGEST_LIMIT`` (the rest come as the person types)."""
    dimensions = sorted({d for d in (dimension_of(name) for name in form.fields) if d is not None})
    return [
        {"dimension": d, "values": suggestions(d, "") if d in LARGE else values(d)}
        for d in dimensions
    ]
