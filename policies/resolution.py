"""Policy resolution: most specific rule wins, per setting (policies-v1.md).

``compile_policy`` turns a document (or a stored version) into a ``CompiledPolicy`` once;
``CompiledPolicy.resolve`` is pure (no ORM, no I/O) and memoised per distinct ``Dimensions``.

Ordering. Each rule has a specificity key ``(dimension count, precedence mask, position)``:
the mask sets one bit per named dimension, ``customer`` highest. Between two rules naming the
same number of dimensions, comparing the masks as integers is comparing "the highest-precedence
dimension each rule names, then the next" (the highest differing bit decides), and position
breaks the remaining ties (later wins). A setting takes its value from the matching rule with
the greatest key that names it, else its default.

Speed. Rules are grouped by the set of dimensions they name (their *shape*), and each shape
indexes its rules by the tuple of values. A resolve does one dictionary lookup per shape,
most specific shape first, instead of scanning every rule.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from operator import itemgetter
from typing import Any

from policies import schema
from policies.errors import PolicyValidationError

DIMENSIONS = schema.DIMENSIONS
_BIT = {dimension: 1 << (len(DIMENSIONS) - 1 - index) for index, dimension in enumerate(DIMENSIONS)}


@dataclass(frozen=True, slots=True)
class Dimensions:
    """The values a line has for each scope dimension (None = unknown, matches no rule naming it)."""

    customer: str | None = None
    customer_segment: str | None = None
    customer_tier: int | str | None = None
    channel: str | None = None
    order_kind: str | None = None
    item: str | None = None
    item_class: str | None = None
    location: str | None = None
    region: str | None = None

    def value_text(self, dimension: str) -> str | None:
        value = getattr(self, dimension)
        return None if value is None or value == "" else schema.scope_value_text(value)

    def as_dict(self) -> dict[str, Any]:
        return {dimension: getattr(self, dimension) for dimension in DIMENSIONS}


@dataclass(frozen=True, slots=True)
class Scope:
    """A rule's ``scope`` or a protection's/quota's ``for``: dimension -> value, in precedence order."""

    pairs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Scope:
        return cls(tuple((d, schema.scope_value_text(mapping[d])) for d in DIMENSIONS if d in mapping))

    @property
    def dimensions(self) -> tuple[str, ...]:
        return tuple(d for d, _ in self.pairs)

    @property
    def mask(self) -> int:
        return sum(_BIT[d] for d, _ in self.pairs)

    def matches(self, dims: Dimensions) -> bool:
        """Every dimension named equals the line's value; ``{}`` matches every line."""
        return all(dims.value_text(d) == value for d, value in self.pairs)

    def as_dict(self) -> dict[str, str]:
        return dict(self.pairs)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    position: int
    scope: Scope
    settings: Mapping[str, Any]

    @property
    def specificity(self) -> tuple[int, int, int]:
        return (len(self.scope.pairs), self.scope.mask, self.position)


@dataclass(frozen=True, slots=True)
class ProtectionRule:
    """Holds ``quantity`` of ``sku`` at ``location`` for lines matching ``for_scope``."""

    position: int
    sku: str
    location: str
    quantity: Decimal
    for_scope: Scope

    def matches(self, dims: Dimensions) -> bool:
        return self.for_scope.matches(dims)


@dataclass(frozen=True, slots=True)
class QuotaRule:
    """Caps lines matching ``for_scope`` to ``quantity`` of ``sku`` or ``item_class`` per ``period``."""

    position: int
    sku: str | None
    item_class: str | None
    for_scope: Scope
    period: str
    quantity: Decimal

    def matches(self, dims: Dimensions) -> bool:
        return self.for_scope.matches(dims)

    def applies_to_item(self, sku: str, item_class: str) -> bool:
        return (self.sku is not None and self.sku == sku) or (self.item_class is not None and self.item_class == item_class)


@dataclass(frozen=True, slots=True)
class Weights:
    """Score weights per factor (allocation.md)."""

    tier: float
    urgency: float
    margin: float
    value: float
    age: float
    penalty: float
    risk: float

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class ResolvedSettings:
    """Every setting resolved for one combination of dimensions, typed for the engine.

    ``sources`` pairs each setting name with the position of the rule it came from (None =
    the default), in catalogue order, for the decision log.
    """

    strategy: str
    priority_class: int
    weights: Weights
    urgency_horizon_days: int
    allow_partial: bool
    max_split_locations: int
    inbound_min_confidence: float
    allow_substitutes: bool
    substitute_needs_approval: bool
    auto_release_max_value: float | None
    override_approval_min_value: float
    margin_floor_pct: float | None
    stale_feed_minutes: int
    stale_feed_buffer_pct: float
    promise_risk_tolerance_days: int = 0
    exception_min_value: float = 0.0
    allocation_horizon_days: int | None = None
    freeze_days: int = 0
    min_fill_pct: float = 0.0
    share_mode: str = "rank"
    factor_plugins: tuple[tuple[str, float], ...] = ()
    execution_mode: str = "auto"
    sources: tuple[tuple[str, int | None], ...] = ()

    def source_of(self, setting: str) -> int | None:
        return dict(self.sources)[setting]


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class EffectivePolicy:
    """Each setting's value and the position of the rule it came from (None = default)."""

    values: dict[str, Any]
    sources: dict[str, int | None]
    _settings: list[ResolvedSettings] = field(default_factory=list, repr=False, compare=False)

    def as_settings(self) -> ResolvedSettings:
        if not self._settings:
            v = self.values
            self._settings.append(
                ResolvedSettings(
                    strategy=v["strategy"],
                    priority_class=int(v["priority_class"]),
                    weights=Weights(**{k: float(w) for k, w in v["weights"].items()}),
                    urgency_horizon_days=int(v["urgency_horizon_days"]),
                    allow_partial=bool(v["allow_partial"]),
                    max_split_locations=int(v["max_split_locations"]),
                    inbound_min_confidence=float(v["inbound_min_confidence"]),
                    allow_substitutes=bool(v["allow_substitutes"]),
                    substitute_needs_approval=bool(v["substitute_needs_approval"]),
                    auto_release_max_value=_optional_float(v["auto_release_max_value"]),
                    override_approval_min_value=float(v["override_approval_min_value"]),
                    margin_floor_pct=_optional_float(v["margin_floor_pct"]),
                    stale_feed_minutes=int(v["stale_feed_minutes"]),
                    stale_feed_buffer_pct=float(v["stale_feed_buffer_pct"]),
                    promise_risk_tolerance_days=int(v["promise_risk_tolerance_days"]),
                    exception_min_value=float(v["exception_min_value"]),
                    allocation_horizon_days=None if v["allocation_horizon_days"] is None else int(v["allocation_horizon_days"]),
                    freeze_days=int(v["freeze_days"]),
                    min_fill_pct=float(v["min_fill_pct"]),
                    share_mode=str(v["share_mode"]),
                    factor_plugins=tuple(sorted((str(k), float(w)) for k, w in (v["factor_plugins"] or {}).items())),
                    execution_mode=str(v["execution_mode"]),
                    sources=tuple((name, self.sources[name]) for name in schema.SETTING_NAMES),
                )
            )
        return self._settings[0]


class CompiledPolicy:
    """A policy ready to resolve: rules grouped by shape, most specific first; memoised resolves."""

    def __init__(
        self,
        *,
        name: str,
        effective_from: dt.datetime | None,
        rules: tuple[CompiledRule, ...],
        protections: tuple[ProtectionRule, ...],
        quotas: tuple[QuotaRule, ...],
        version_id: int | None = None,
        version_number: int | None = None,
    ) -> None:
        self.name = name
        self.effective_from = effective_from
        self.rules = rules
        self.protections = protections
        self.quotas = quotas
        self.version_id = version_id
        self.version_number = version_number
        self._defaults = schema.defaults()
        # shape (dimension tuple) -> values tuple -> rules of that shape and values, best first
        shapes: dict[tuple[str, ...], dict[tuple[str, ...], list[CompiledRule]]] = {}
        for rule in sorted(rules, key=lambda r: r.specificity, reverse=True):
            index = shapes.setdefault(rule.scope.dimensions, {})
            index.setdefault(tuple(v for _, v in rule.scope.pairs), []).append(rule)
        # Shapes from most to least specific; within a shape, rules are already by position desc.
        # Each shape gets an itemgetter over the line's value tuple (a single dimension indexes by
        # the bare value); the global shape is kept apart since it matches every line.
        self._global_rules: list[CompiledRule] = shapes.pop((), {}).get((), [])
        self._shapes: list[tuple[Any, dict[Any, list[CompiledRule]]]] = []
        for shape, index in sorted(shapes.items(), key=lambda item: (len(item[0]), sum(_BIT[d] for d in item[0])), reverse=True):
            positions = [DIMENSIONS.index(d) for d in shape]
            if len(shape) == 1:
                index = {values[0]: rules_ for values, rules_ in index.items()}
            self._shapes.append((itemgetter(*positions), index))
        self._memo: dict[Dimensions, EffectivePolicy] = {}
        self._by_rules: dict[tuple[int, ...], EffectivePolicy] = {}

    def rule_at(self, position: int) -> CompiledRule | None:
        for rule in self.rules:
            if rule.position == position:
                return rule
        return None

    def matching_rules(self, dims: Dimensions) -> list[CompiledRule]:
        """Rules that match ``dims``, most specific first (the order resolution reads them in)."""
        texts = tuple(dims.value_text(d) for d in DIMENSIONS)
        matched: list[CompiledRule] = []
        for getter, index in self._shapes:
            # A None value (unknown dimension) is never a key, so it matches no rule naming it.
            found = index.get(getter(texts))
            if found:
                matched.extend(found)
        matched.extend(self._global_rules)
        return matched

    def resolve(self, dims: Dimensions) -> EffectivePolicy:
        """The effective value and source rule of every setting for ``dims`` (memoised)."""
        cached = self._memo.get(dims)
        if cached is not None:
            return cached
        matched = self.matching_rules(dims)
        # Combinations matching the same rules share one result (and its typed settings).
        rules_key = tuple(rule.position for rule in matched)
        shared = self._by_rules.get(rules_key)
        if shared is not None:
            self._memo[dims] = shared
            return shared
        values: dict[str, Any] = {}
        sources: dict[str, int | None] = {}
        remaining = len(self._defaults)
        for rule in matched:
            for name, value in rule.settings.items():
                if name not in values:
                    values[name] = value
                    sources[name] = rule.position
                    remaining -= 1
            if remaining == 0:
                break
        for name, default in self._defaults.items():
            if name not in values:
                values[name] = default
                sources[name] = None
        merged_weights = dict(schema.DEFAULT_WEIGHTS)
        merged_weights.update(values["weights"])
        values["weights"] = merged_weights
        effective = EffectivePolicy(values={n: values[n] for n in schema.SETTING_NAMES}, sources={n: sources[n] for n in schema.SETTING_NAMES})
        self._memo[dims] = effective
        self._by_rules[rules_key] = effective
        return effective

    def resolve_many(self, dims_iterable: Iterable[Dimensions]) -> dict[Dimensions, EffectivePolicy]:
        """Resolve each distinct combination once; the result maps every combination given."""
        return {dims: self.resolve(dims) for dims in set(dims_iterable)}

    def protections_for(self, dims: Dimensions) -> tuple[ProtectionRule, ...]:
        return tuple(p for p in self.protections if p.matches(dims))

    def quotas_for(self, dims: Dimensions) -> tuple[QuotaRule, ...]:
        return tuple(q for q in self.quotas if q.matches(dims))


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def compile_document(document: Mapping[str, Any], *, version_id: int | None = None, version_number: int | None = None) -> CompiledPolicy:
    """Validate and compile a policy document; raises PolicyValidationError naming each field."""
    errors = schema.validate_document(document)
    if errors:
        raise PolicyValidationError(errors)
    rules = tuple(
        CompiledRule(position=index, scope=Scope.from_mapping(rule["scope"]), settings=dict(rule["settings"]))
        for index, rule in enumerate(document["rules"])
    )
    protections = tuple(
        ProtectionRule(
            position=index, sku=p["sku"], location=p["location"], quantity=_decimal(p["quantity"]),
            for_scope=Scope.from_mapping(p["for"]),
        )
        for index, p in enumerate(document.get("protections", []))
    )
    quotas = tuple(
        QuotaRule(
            position=index, sku=q.get("sku"), item_class=q.get("item_class"), for_scope=Scope.from_mapping(q["for"]),
            period=q["period"], quantity=_decimal(q["quantity"]),
        )
        for index, q in enumerate(document.get("quotas", []))
    )
    effective_from = schema.parse_effective_from(document.get("effective_from"))
    return CompiledPolicy(
        name=document["name"], effective_from=effective_from, rules=rules, protections=protections,
        quotas=quotas, version_id=version_id, version_number=version_number,
    )


def compile_policy(document_or_version: Any) -> CompiledPolicy:
    """Compile a policy document (a mapping) or a stored ``PolicyVersion``.

    A version is read into its document first (a few queries, here, never in ``resolve``).
    """
    if isinstance(document_or_version, Mapping):
        return compile_document(document_or_version)
    from policies.selectors import (
        export_document,  # stored versions only; keeps this module ORM-free otherwise
    )

    version = document_or_version
    return compile_document(export_document(version), version_id=version.pk, version_number=version.number)
