"""Small display helpers for policy values."""
import json
from decimal import Decimal
from typing import Any

from django import template

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
    return ", ".join(f"{key}={value}" for key, value in scope.items())


@register.filter
def quantity(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else format(value.normalize(), "f")
    return str(value)
