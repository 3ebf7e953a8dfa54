"""Line scoring and the rank key (allocation.md, "Rank").

Scores use floats: they only order lines, and the rank key rounds them to six
decimals so that near-ties break the same way everywhere.
"""

from __future__ import annotations

import math
from datetime import date
from functools import lru_cache

from allocation.engine.types import DEFAULT_WEIGHTS, STRATEGY_ORDER, Factor, Line

FACTOR_NAMES: tuple[str, ...] = tuple(DEFAULT_WEIGHTS)
STRATEGY_INDEX: dict[str, int] = {name: position for position, name in enumerate(STRATEGY_ORDER)}
_LOG_VALUE_CAP = math.log10(1 + 100000)


def effective_strategy(line: Line) -> str:
    """The strategy a run applies: a line on credit hold is treated as ``fill``."""
    if line.credit_hold:
        return "fill"
    strategy = line.settings.strategy
    if strategy not in STRATEGY_INDEX:
        raise ValueError(f"line {line.order}/{line.line}: unknown strategy {strategy!r}")
    return strategy


@lru_cache(maxsize=4096)
def _weight_vector(weights: tuple[tuple[str, float], ...]) -> tuple[float, ...]:
    merged = dict(DEFAULT_WEIGHTS)
    merged.update(weights)
    return tuple(float(merged[name]) for name in FACTOR_NAMES)


def _clip(value: float) -> float:
    if value < 0.0:
        return 0.0
    if value > 1.0:
        return 1.0
    return value


def factor_values(line: Line, as_of: date) -> tuple[float, ...]:
    """The seven factor values of a line, each in [0, 1], in ``FACTOR_NAMES`` order."""
    tier = _clip((5 - line.customer_tier) / 4)
    due = line.promised_date or line.requested_date
    days_ahead = (due - as_of).days
    horizon = line.settings.urgency_horizon_days
    if days_ahead <= 0:
        urgency = 1.0
    elif horizon <= 0:
        urgency = 0.0
    else:
        urgency = _clip(1.0 - days_ahead / horizon)
    price = float(line.unit_price)
    margin = _clip((price - float(line.unit_cost)) / price) if price > 0 else 0.0
    line_value = float(line.quantity) * price
    value = _clip(math.log10(1 + line_value) / _LOG_VALUE_CAP) if line_value > 0 else 0.0
    age = _clip((as_of - line.order_created_at.date()).days / 30)
    penalty = _clip(float(line.late_penalty_per_day) / 1000)
    risk = _clip(float(line.risk))
    return (tier, urgency, margin, value, age, penalty, risk)


def score(line: Line, as_of: date) -> tuple[float, tuple[Factor, ...]]:
    """Score of a line and each factor's value, weight and contribution.

    ``score = Σ weight[f] × factor[f]`` with the line's merged weights; the
    factors come back in ``DEFAULT_WEIGHTS`` order.
    """
    weights = _weight_vector(line.settings.weights)
    values = factor_values(line, as_of)
    factors = tuple(
        Factor(name=name, value=value, weight=weight, contribution=weight * value)
        for name, value, weight in zip(FACTOR_NAMES, values, weights)
    ) + plugin_factors(line)
    return sum(factor.contribution for factor in factors), factors


def plugin_factors(line: Line) -> tuple[Factor, ...]:
    """The line's custom factors, in ``settings.factor_plugins`` order: weight × value, the
    value clipped to [0, 1] and 0 when the line has none (computed outside the engine)."""
    weights = line.settings.factor_plugins
    if not weights:
        return ()
    given = dict(line.plugin_factors)
    found = []
    for name, weight in weights:
        value = given.get(name)
        value = _clip(float(value)) if value is not None else 0.0
        found.append(Factor(name, value, float(weight), float(weight) * value))
    return tuple(found)


def score_value(line: Line, as_of: date) -> float:
    """The score alone, without building ``Factor`` objects (hot path)."""
    return score_parts(line, as_of)[0]


def score_parts(line: Line, as_of: date) -> tuple[float, tuple[float, ...], tuple[float, ...]]:
    """``(score, factor values, weights)``: what :func:`score` reports, as plain floats."""
    weights = _weight_vector(line.settings.weights)
    values = factor_values(line, as_of)
    total = 0.0
    for weight, value in zip(weights, values):
        total += weight * value
    for factor in plugin_factors(line):
        total += factor.contribution
    return total, values, weights


class FactorCache:
    """Shares equal ``Factor`` values between lines: most factors take few distinct values."""

    __slots__ = ("tables",)

    def __init__(self) -> None:
        # weights -> one table per factor position: value -> Factor (a float key, no tuple to build).
        self.tables: dict[tuple[float, ...], tuple[dict[float, Factor], ...]] = {}

    def factors(self, values: tuple[float, ...], weights: tuple[float, ...]) -> tuple[Factor, ...]:
        tables = self.tables.get(weights)
        if tables is None:
            tables = self.tables[weights] = tuple({} for _ in FACTOR_NAMES)
        out = []
        for table, value in zip(tables, values):
            factor = table.get(value)
            if factor is None:
                index = len(out)
                weight = weights[index]
                factor = table[value] = Factor(FACTOR_NAMES[index], value, weight, weight * value)
            out.append(factor)
        return tuple(out)


def rank_key_for(line: Line, line_score: float) -> tuple:
    """Rank key from an already computed score."""
    return (
        STRATEGY_INDEX[effective_strategy(line)],
        line.settings.priority_class,
        -round(line_score, 6),
        line.requested_date,
        line.order_created_at,
        line.order,
        line.line,
    )


def rank_key(line: Line, as_of: date) -> tuple:
    """The processing-order key of a line.

    ``(strategy order, priority_class, −score rounded to 6 decimals,
    requested_date, order created_at, order number, line number)``; the
    strategy is the effective one (credit hold → ``fill``).
    """
    return rank_key_for(line, score_value(line, as_of))
