"""The bridge between the policies app and the engine: compiled policy in, engine values out.

A :class:`PolicyContext` wraps one compiled policy version for one run. It resolves settings
once per distinct combination of scope dimensions (``CompiledPolicy.resolve_many``) and maps
each to one shared :class:`~allocation.engine.types.LineSettings`, and turns protections and
quotas into engine values. The engine never sees the policies app.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from allocation.engine import types as et
from policies.resolution import CompiledPolicy, Dimensions, ResolvedSettings

DIMENSION_NAMES = (
    "customer", "customer_segment", "customer_tier", "channel", "order_kind", "item", "item_class", "location", "region",
)


def dimension_values(line: et.Line) -> tuple:
    """A line's scope values in DIMENSION_NAMES order (location = ship_from, else home location;
    order_kind "order" for an engine Line without the field)."""
    return (
        line.customer, line.customer_segment, line.customer_tier, line.channel, getattr(line, "order_kind", "order"),
        line.item, line.item_class, line.ship_from or line.home_location, line.customer_region,
    )


def _decimal_or_none(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def to_line_settings(resolved: ResolvedSettings) -> et.LineSettings:
    """The engine's settings for one resolved combination (weights in DEFAULT_WEIGHTS order)."""
    weights = resolved.weights.as_dict()
    return et.LineSettings(
        strategy=resolved.strategy,
        priority_class=resolved.priority_class,
        weights=tuple((name, float(weights[name])) for name in et.DEFAULT_WEIGHTS),
        urgency_horizon_days=resolved.urgency_horizon_days,
        allow_partial=resolved.allow_partial,
        max_split_locations=resolved.max_split_locations,
        inbound_min_confidence=resolved.inbound_min_confidence,
        allow_substitutes=resolved.allow_substitutes,
        substitute_needs_approval=resolved.substitute_needs_approval,
        auto_release_max_value=_decimal_or_none(resolved.auto_release_max_value),
        override_approval_min_value=_decimal_or_none(resolved.override_approval_min_value),
        margin_floor_pct=resolved.margin_floor_pct,
        sources=resolved.sources,
        promise_risk_tolerance_days=resolved.promise_risk_tolerance_days,
        exception_min_value=Decimal(str(resolved.exception_min_value)),
        allocation_horizon_days=resolved.allocation_horizon_days,
        freeze_days=resolved.freeze_days,
        min_fill_pct=resolved.min_fill_pct,
        share_mode=resolved.share_mode,
        factor_plugins=resolved.factor_plugins,
        execution_mode=resolved.execution_mode,
    )


@dataclass
class PolicyContext:
    """One compiled policy version prepared for a run (``version`` is the PolicyVersion row or None)."""

    compiled: CompiledPolicy
    version: Any = None
    _cache: dict[tuple, et.LineSettings] = field(default_factory=dict)
    _global: ResolvedSettings | None = None
    _used: tuple[int, ...] | None = None

    @property
    def version_id(self) -> int | None:
        return getattr(self.version, "pk", None)

    @property
    def global_settings(self) -> ResolvedSettings:
        """Settings of the global rule (feed staleness is a property of a source, not a line)."""
        if self._global is None:
            self._global = self.compiled.resolve(Dimensions()).as_settings()
        return self._global

    @property
    def stale_feed_minutes(self) -> int:
        return self.global_settings.stale_feed_minutes

    @property
    def stale_feed_buffer_pct(self) -> float:
        return self.global_settings.stale_feed_buffer_pct

    @property
    def quotas(self):
        return self.compiled.quotas

    @property
    def used_dimensions(self) -> tuple[int, ...]:
        """Indexes (in DIMENSION_NAMES) of the dimensions some rule names: the only ones settings depend on."""
        if self._used is None:
            named = {dimension for rule in self.compiled.rules for dimension in rule.scope.dimensions}
            self._used = tuple(i for i, name in enumerate(DIMENSION_NAMES) if name in named)
        return self._used

    def settings_for(self, values: tuple) -> et.LineSettings:
        """The shared LineSettings of one line's scope values (resolved once per distinct projection)."""
        key = tuple(values[i] for i in self.used_dimensions)
        found = self._cache.get(key)
        if found is None:
            dims = Dimensions(**{DIMENSION_NAMES[i]: value for i, value in zip(self.used_dimensions, key, strict=True)})
            found = to_line_settings(self.compiled.resolve_many([dims])[dims].as_settings())
            self._cache[key] = found
        return found

    def protections_for(self, skus: frozenset[str] | None) -> tuple[et.Protection, ...]:
        return tuple(
            et.Protection(
                index=rule.position, sku=rule.sku, location=rule.location, quantity=rule.quantity,
                scope=rule.for_scope.pairs,
            )
            for rule in self.compiled.protections
            if skus is None or rule.sku in skus
        )

    def quotas_for(self, skus: frozenset[str] | None) -> tuple[et.Quota, ...]:
        # Class quotas are kept whole: expand_item_groups already pulled their whole class in.
        return tuple(
            et.Quota(
                index=rule.position, sku=rule.sku or None, item_class=rule.item_class or None,
                scope=rule.for_scope.pairs, period=rule.period, quantity=rule.quantity,
            )
            for rule in self.compiled.quotas
            if skus is None or rule.item_class or rule.sku in skus
        )


def active_context() -> PolicyContext:
    """The active policy version, compiled (the built-in defaults when no version is active)."""
    from policies.selectors import active_compiled_policy

    version, compiled = active_compiled_policy()
    return PolicyContext(compiled=compiled, version=version)


def context_for(version: Any) -> PolicyContext:
    """A given policy version (a draft being simulated), compiled."""
    from policies.resolution import compile_policy

    return PolicyContext(compiled=compile_policy(version), version=version)
