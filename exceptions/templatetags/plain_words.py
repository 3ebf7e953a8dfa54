"""Template filters for plain words (``exceptions.presenters``) and kept form values."""
from __future__ import annotations

from typing import Any

from django import template

from allocation.dates import business_today
from exceptions import presenters

register = template.Library()


@register.filter
def jeopardy_words(case: Any) -> str:
    """"High risk · 12,400 at stake · 5 days late" (the score stays in the API)."""
    return presenters.jeopardy_summary(case, today=business_today()).text


@register.filter
def band_words(band: Any) -> str:
    return presenters.BAND_WORDS.get(str(band), str(band))


@register.filter
def supply_words(option: Any) -> str:
    return presenters.supply_option_text(option)


@register.filter
def constraint_words(text: Any) -> str:
    return presenters.constraint_words(text)


@register.filter
def floor_words(text: Any) -> str:
    return presenters.floor_words(text)


@register.filter
def scope_words(scope: Any) -> str:
    return presenters.scope_words(scope)


@register.simple_tag
def rule_source(rule: Any, position: Any = None) -> str:
    return presenters.rule_source_text(rule, position)


@register.simple_tag
def kept(data: Any, key: str) -> str:
    """What was typed into field ``key`` of a refused form (``form.data``), or ''."""
    if not data:
        return ""
    value = data.get(key, "")
    return "" if value is None else str(value)


@register.inclusion_tag("exceptions/_location_datalist.html")
def location_datalist(list_id: str = "location-choices", limit: int = 200) -> dict[str, Any]:
    """A datalist of location codes (few: a distributor has tens of warehouses, not thousands)."""
    from allocation.models import Location

    return {"list_id": list_id, "codes": list(Location.objects.order_by("code").values_list("code", flat=True)[:limit])}
