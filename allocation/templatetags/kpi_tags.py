"""Formatting of KPI figures on the dashboard (values with their unit, plain numbers)."""
from django import template

register = template.Library()

NOUNS = {"lines": "lines", "cases": "cases", "value": "lines", "%": "lines", "events": "events", "sources": "sources",
         "requests": "requests"}


@register.filter
def kpi_number(value) -> str:
    if value is None:
        return "—"
    number = float(value)
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    if number == int(number):
        return f"{int(number)}"
    return f"{number:.2f}".rstrip("0").rstrip(".")


@register.filter
def kpi_value(value, unit: str) -> str:
    if value is None:
        return "—"
    text = kpi_number(value)
    if unit == "%":
        return f"{text} %"
    if unit == "ms":
        return f"{text} ms"
    if unit == "minutes":
        return f"{text} min"
    return text


@register.filter
def kpi_noun(unit: str) -> str:
    return NOUNS.get(unit, "records")


@register.filter
def segment_link(kpi, segment: str) -> str | None:
    """The filtered list behind one segment's figure, when the KPI's list can filter by it."""
    if kpi.drill is None:
        return None
    url = kpi.drill_url(segment)
    return url if url != kpi.drill_url("") else None
