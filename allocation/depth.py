"""The engine's depth outputs as stored data and as words (allocation.md "Depth settings").

A run's line decisions may carry **shortfall reasons** (why a short line is short, each with the
quantity it explains and the lines, protection, quota or supply it names) and a **projected
date** (when open inbound would cover the shortfall); the run may carry the **price of
fairness** (priority-weighted fill in ``rank`` mode minus what the chosen ``share_mode`` gave),
in total and per strategy and priority class. This module turns those engine values into the
JSON the decision log and the run row keep, and renders the stored JSON in words for the Why
page, the run page and the API. Everything reads the engine values by name with defaults, so
it works with an engine that does not produce them (nothing is stored then).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

# The spec's reasons, in the order the Why page lists them (allocation.md).
REASONS: tuple[str, ...] = (
    "taken_by_higher_rank",
    "protected_for",
    "quota_exhausted",
    "split_limit",
    "below_min_fill",
    "beyond_horizon",
    "inbound_below_confidence",
    "no_supply",
)
REASON_LABELS: dict[str, str] = {
    "taken_by_higher_rank": "Taken by higher-ranked lines",
    "protected_for": "Protected for other lines",
    "quota_exhausted": "Quota exhausted",
    "split_limit": "Split limit reached",
    "below_min_fill": "Below the minimum fill",
    "beyond_horizon": "Beyond the allocation horizon",
    "inbound_below_confidence": "Inbound below the confidence threshold",
    "no_supply": "No supply",
    "strategy_ceiling": "Strategy ceiling",
    "pack_size": "Less than a pack",
    "fair_share": "Fair share of the class",
}


def _plain(value: Any) -> Any:
    """JSON-ready: decimals as normalised text, dates ISO, tuples and named tuples as lists or objects."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "_asdict"):  # a NamedTuple
        return {str(k): _plain(v) for k, v in value._asdict().items()}
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return value


def shortfall_reasons(decision: Any) -> list[dict[str, Any]]:
    """The decision's shortfall reasons as JSON objects (the engine's ``ShortfallReason.as_json()``:
    ``code``, ``quantity``, ``text`` and what it names), in the engine's order; ``[]`` for a
    covered line or an engine without them."""
    out: list[dict[str, Any]] = []
    for reason in getattr(decision, "shortfall_reasons", None) or ():
        plain = reason.as_json() if hasattr(reason, "as_json") else _plain(reason)
        if isinstance(plain, dict) and plain.get("code"):
            out.append(_plain(plain))
    return out


def projected_date(decision: Any) -> dt.date | None:
    """The decision's projected date (None when covered, never covered, or not computed)."""
    value = getattr(decision, "projected_date", None)
    return value if isinstance(value, dt.date) else None


def _class_entry(price: Any) -> dict[str, Any]:
    entry = _plain(price)
    for name in ("rank_fill", "fill", "price"):
        if isinstance(entry.get(name), float):
            entry[name] = round(entry[name], 6)
    return entry


def price_of_fairness(result: Any) -> dict[str, Any]:
    """The run's price of fairness as stored on the run row (``AllocationRun.price_of_fairness``).

    ``{"classes": [{strategy, priority_class, share_mode, lines, rank_fill, fill, price}, ...],
    "lines": n, "price": p}``: one entry per strategy and priority class that shared in
    ``pro_rata`` or ``equal`` mode (the engine's ``EngineResult.fairness``); ``price`` for the
    run is the class prices averaged by their line counts (the engine gives each class's fills,
    not the weights behind them). ``{}`` when no class shared, or the engine has no fairness.
    """
    classes = [_class_entry(price) for price in getattr(result, "fairness", None) or ()]
    if not classes:
        return {}
    lines = sum(int(entry.get("lines") or 0) for entry in classes)
    if lines:
        price = sum(float(entry.get("price") or 0) * int(entry.get("lines") or 0) for entry in classes) / lines
    else:
        price = sum(float(entry.get("price") or 0) for entry in classes) / len(classes)
    return {"classes": classes, "lines": lines, "price": round(price, 6)}


def unique_warnings(warnings: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Warnings without repeats (a simulation computes plugins under two policies)."""
    seen: set[tuple] = set()
    out = []
    for warning in warnings:
        key = (warning.get("kind"), warning.get("plugin"), warning.get("problem"))
        if key not in seen:
            seen.add(key)
            out.append(dict(warning))
    return out


def reason_text(reason: Mapping[str, Any]) -> str:
    """One stored shortfall reason in words: the engine's text, else its code and quantity."""
    if reason.get("text"):
        return str(reason["text"])
    code = str(reason.get("code", ""))
    return f"{REASON_LABELS.get(code, code.replace('_', ' ').capitalize())}: {reason.get('quantity', '?')}"


def reason_totals(logs: Iterable[Any]) -> dict[str, Decimal]:
    """Short quantity by cause over decision-log rows (their ``shortfall_reasons``), spec order first."""
    totals: dict[str, Decimal] = {}
    for log in logs:
        for reason in getattr(log, "shortfall_reasons", None) or ():
            code = reason.get("code")
            try:
                quantity = Decimal(str(reason.get("quantity", 0)))
            except ArithmeticError:
                continue
            totals[code] = totals.get(code, Decimal(0)) + quantity
    return {code: totals[code] for code in sorted(totals, key=lambda c: (REASONS.index(c) if c in REASONS else len(REASONS), c))}
