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
    """The decision's shortfall reasons as JSON objects (``reason``, ``quantity`` and what it
    names), in the order the engine gave them; ``[]`` for a covered line or an engine without them."""
    reasons = getattr(decision, "shortfall_reasons", None) or ()
    out: list[dict[str, Any]] = []
    for reason in reasons:
        plain = _plain(reason)
        if isinstance(plain, dict) and plain.get("reason"):
            # Empty details (None, empty lists) are left out: the log stays small and readable.
            out.append({k: v for k, v in plain.items() if v not in (None, [], {}, "")})
    return out


def projected_date(decision: Any) -> dt.date | None:
    """The decision's projected date (None when covered, never covered, or not computed)."""
    value = getattr(decision, "projected_date", None)
    return value if isinstance(value, dt.date) else None


def price_of_fairness(result: Any) -> dict[str, Any]:
    """The run's price of fairness as stored on the run row: ``{"total": x, "classes": [...]}``
    with one entry per strategy and priority class that had a shortage; ``{}`` when the engine
    computed none (every class in ``rank`` mode, or an engine without it)."""
    value = getattr(result, "price_of_fairness", None)
    if value is None:
        return {}
    plain = _plain(value)
    if isinstance(plain, dict):
        return plain
    if isinstance(plain, list):  # a bare list of per-class entries
        return {"classes": plain, "total": sum(float(entry.get("price", 0) or 0) for entry in plain if isinstance(entry, dict))}
    return {"total": plain}


def merge_price_of_fairness(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One run's price from the prices of its chunks (a full run fanned out over item groups):
    the per-class entries concatenated, the totals added."""
    classes: list[Any] = []
    total = 0.0
    seen = False
    for part in parts:
        if not part:
            continue
        seen = True
        classes.extend(part.get("classes", []))
        total += float(part.get("total", 0) or 0)
    return {"total": total, "classes": classes} if seen else {}


def _quantity_text(value: Any) -> str:
    return str(value) if value is not None else "?"


def _names(value: Any) -> str:
    if isinstance(value, list):
        parts = []
        for entry in value:
            if isinstance(entry, dict):
                label = entry.get("order") and f"{entry.get('order')}/{entry.get('line')}" or str(entry.get("line_key", entry))
                if entry.get("quantity") is not None:
                    label += f" ({entry['quantity']})"
                parts.append(label)
            else:
                parts.append(str(entry))
        return ", ".join(parts)
    return str(value)


def reason_text(reason: Mapping[str, Any]) -> str:
    """One stored shortfall reason in words, e.g. "Taken by higher-ranked lines: 30 (SO-1/1 (20), SO-2/1 (10))"."""
    code = str(reason.get("reason", ""))
    text = f"{REASON_LABELS.get(code, code.replace('_', ' ').capitalize())}: {_quantity_text(reason.get('quantity'))}"
    details = {k: v for k, v in reason.items() if k not in ("reason", "quantity")}
    if not details:
        return text
    shown = "; ".join(f"{key.replace('_', ' ')} {_names(value)}" for key, value in details.items())
    return f"{text} ({shown})"


def reason_totals(logs: Iterable[Any]) -> dict[str, Decimal]:
    """Short quantity by cause over decision-log rows (their ``shortfall_reasons``), in REASONS order."""
    totals: dict[str, Decimal] = {}
    for log in logs:
        for reason in getattr(log, "shortfall_reasons", None) or ():
            code = reason.get("reason")
            try:
                quantity = Decimal(str(reason.get("quantity", 0)))
            except ArithmeticError:
                continue
            totals[code] = totals.get(code, Decimal(0)) + quantity
    return {code: totals[code] for code in sorted(totals, key=lambda c: (REASONS.index(c) if c in REASONS else len(REASONS), c))}
