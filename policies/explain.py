"""The effective-policy explainer: each setting's value and the rule it came from.

Shared by the explain screen and the API. Dimensions come from explicit values or from an
order line (``selectors.line_dimensions``); the version is the active one unless given.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policies import schema, selectors
from policies.models import PolicyVersion
from policies.resolution import CompiledPolicy, Dimensions


class UnknownLine(Exception):
    """The order line named does not exist."""


@dataclass(frozen=True)
class Explanation:
    version: PolicyVersion
    compiled: CompiledPolicy
    dimensions: Dimensions
    rows: list[dict[str, Any]]
    source_positions: frozenset[int] = field(default_factory=frozenset)


def dimensions_from_values(values: dict[str, Any]) -> Dimensions:
    cleaned = {d: values[d] for d in schema.DIMENSIONS if values.get(d) not in (None, "")}
    if "customer_tier" in cleaned:
        try:
            cleaned["customer_tier"] = int(cleaned["customer_tier"])
        except (TypeError, ValueError):
            pass
    return Dimensions(**cleaned)


def explain(*, version: PolicyVersion | None = None, values: dict[str, Any] | None = None,
            order: str | None = None, line: Any = None) -> Explanation:
    """Resolve one combination against ``version`` (default: the active version)."""
    if order:
        dims = selectors.line_dimensions(order, line)
        if dims is None:
            raise UnknownLine(f"No order line {order}/{line}.")
    else:
        dims = dimensions_from_values(values or {})
    version = version or selectors.active_version()
    compiled = selectors.compiled_version(version)
    effective = compiled.resolve(dims)
    rows = []
    for name in schema.SETTING_NAMES:
        source = effective.sources[name]
        rule = compiled.rule_at(source) if source is not None else None
        rows.append(
            {
                "name": name,
                "help": schema.SETTINGS[name].help,
                "value": effective.values[name],
                "source": source,
                "source_scope": rule.scope.as_dict() if rule is not None else None,
            }
        )
    positions = frozenset(row["source"] for row in rows if row["source"] is not None)
    return Explanation(version=version, compiled=compiled, dimensions=dims, rows=rows, source_positions=positions)
