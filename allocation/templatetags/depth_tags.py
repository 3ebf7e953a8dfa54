"""Template helpers for the depth outputs (allocation.depth) and factor plugins (allocation.plugins)."""
from __future__ import annotations

from typing import Any

from django import template

from allocation import depth, plugins

register = template.Library()


@register.simple_tag
def factor_plugins() -> dict[str, Any]:
    """The registered factor plugins with their source, and registrations that failed to load."""
    return {"plugins": plugins.listing(), "errors": list(plugins.registry().errors)}


@register.filter
def lookup(mapping: Any, key: Any) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def shortfall_words(reason: Any) -> str:
    """One stored shortfall reason in words."""
    return depth.reason_text(reason) if isinstance(reason, dict) else str(reason)


@register.filter
def reason_label(code: Any) -> str:
    return depth.REASON_LABELS.get(str(code), str(code).replace("_", " "))


@register.filter
def percent(value: Any) -> str:
    """A fill rate or a price (a share of 1) as a percentage with one decimal, e.g. 0.125 -> "12.5%"."""
    try:
        return f"{float(value) * 100:.1f}%"
    except (TypeError, ValueError):
        return "—"
