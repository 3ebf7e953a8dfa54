"""Small display helpers for policy values."""
import json
from decimal import Decimal
from typing import Any

from django import template

from policies.schema import DIMENSIONS, SETTING_NAMES

register = template.Library()


@register.filter
def as_json(value: Any) -> str:
    """A setting value or object as compact JSON (true/false/null as in the document)."""
    if isinstance(value, Decimal):
        value = int(value) if value == value.to_integral_value() else float(value)
    return json.dumps(value, default=str)


@register.filter
def scope_text(scope: Any) -> str:
    """``customer_segment=healthcare, channel=ecommerce``; the empty scope reads as global."""
    if not scope:
        return "global (every line)"
    ordered = [d for d in DIMENSIONS if d in scope] + [k for k in scope if k not in DIMENSIONS]
    return ", ".join(f"{key}={scope[key]}" for key in ordered)


@register.filter
def in_catalogue_order(settings: Any) -> list[tuple[str, Any]]:
    """A rule's settings as (name, value) pairs in catalogue order."""
    if not isinstance(settings, dict):
        return []
    return [(n, settings[n]) for n in SETTING_NAMES if n in settings] + [(k, v) for k, v in settings.items() if k not in SETTING_NAMES]


@register.filter
def quantity(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else format(value.normalize(), "f")
    return str(value)
