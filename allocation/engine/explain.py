"""Explanation text, rendered from the facts a run records (no Django).

A run does not build strings for 100k lines nobody opens: a :class:`LineDecision` keeps the
facts of its supply path and of what it could not get (``path_facts``,
``constraint_facts``), and a :class:`RaisedException` the numbers its message needs
(``facts``). The functions here turn those facts into the texts the Why page, the decision
log and the exception queues show; ``LineDecision.path``, ``.constraints``,
``RaisedException.message`` and ``.details`` call them, so every reader gets the same text.

Quantities in facts are integers in units of ``10 ** -places`` (the run's exact scale, see
``allocation.engine.run``), except those copied from the input unchanged (fixed allocations,
protections), which stay ``Decimal``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

# -- quantities ----------------------------------------------------------------------------

_FORMATTED: dict[Decimal, str] = {}


def fmt_quantity(quantity: Decimal) -> str:
    """A quantity without exponent or trailing zeros: ``Decimal('60.00')`` → ``'60'``."""
    text = _FORMATTED.get(quantity)
    if text is None:
        text = format(quantity, "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        if text in ("", "-0"):
            text = "0"
        if len(_FORMATTED) < 100000:
            # Equal decimals hash alike and format alike once trailing zeros go.
            _FORMATTED[quantity] = text
    return text


def fmt_units(units: int, places: int) -> str:
    """A scaled integer quantity as :func:`fmt_quantity` writes the decimal it stands for."""
    if not places:
        return str(units)
    sign = ""
    if units < 0:
        sign, units = "-", -units
    whole, fraction = divmod(units, 10 ** places)
    if not fraction:
        return f"{sign}{whole}" if whole else "0"
    return f"{sign}{whole}.{fraction:0{places}d}".rstrip("0")


def scope_text(scope: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{dimension}={value}" for dimension, value in scope) or "everyone"


# -- supply path ---------------------------------------------------------------------------

# Flags of a take in ``path_facts``: ``(flags, (item, location, ref, eta), units)``; a fixed
# allocation is ``(FIXED, state, location, item, quantity as Decimal)``.
KEPT = 1
SUBSTITUTE = 2
PROPOSED = 4
FIXED = -1
FROZEN = -2  # a reserved allocation inside the freeze window, fixed like a pinned one


def path_entry(fact: tuple, places: int) -> str:
    flags = fact[0]
    if flags == FIXED:
        _, state, location, item, quantity = fact
        return f"fixed {state} {location} {item} {fmt_quantity(quantity)}"
    if flags == FROZEN:
        _, state, location, item, quantity = fact
        return f"frozen {state} {location} {item} {fmt_quantity(quantity)} (freeze window)"
    _, (item, location, ref, eta), units = fact
    kind = "inbound" if ref is not None else "on-hand"
    if flags & SUBSTITUTE:
        kind = "substitute " + kind
    label = f"kept {kind}" if flags & KEPT else kind
    if ref is not None:
        label = f"{label} {ref} {location} {item} {fmt_units(units, places)} eta {eta.isoformat()}"
    else:
        label = f"{label} {location} {item} {fmt_units(units, places)}"
    if flags & PROPOSED:
        label += " (proposed)"
    return label


def path_texts(path_facts: tuple, places: int) -> tuple[str, ...]:
    """The human-readable supply steps a line took, in the order it took them."""
    return tuple(path_entry(fact, places) for fact in path_facts)


# -- constraints ---------------------------------------------------------------------------


def constraint_text(fact: tuple, places: int) -> str:
    code = fact[0]
    if code == "credit_hold":
        return "credit hold: no new allocation"
    if code == "lose":
        return "strategy lose: allocation released"
    if code == "fill_ceiling":
        return f"strategy fill: ceiling {fmt_units(fact[1], places)} (held before the run)"
    if code == "ship_complete_blocked":
        return (f"ship_complete order {fact[1]} blocked: line(s) "
                + ", ".join(map(str, fact[2])) + " not fully coverable")
    if code == "all_or_nothing":
        return f"allow_partial=false: {fmt_units(fact[1], places)} not coverable, nothing allocated"
    if code == "split":
        return f"max_split_locations={fact[1]} reached"
    if code == "protection":
        _, index, location, quantity, scope, sku = fact
        return (f"protection #{index} at {location} reserves {fmt_quantity(quantity)} "
                f"for {scope_text(scope)} ({sku})")
    if code == "quota":
        _, index, period, key = fact
        return f"quota #{index} {period} {key} exhausted"
    if code == "low_confidence":
        _, ref, confidence, minimum = fact
        return f"inbound {ref} confidence {confidence:g} below {minimum:g}"
    if code == "no_supply":
        return f"no more supply of {fact[1]} at {', '.join(fact[2]) or 'any location'}"
    if code == "beyond_horizon":
        return f"due {fact[1].isoformat()}, beyond the allocation horizon of {fact[2]} days: nothing allocated yet"
    if code == "below_min_fill":
        return (f"min_fill_pct={fact[1]:g}: only {fmt_units(fact[2], places)} coverable, nothing allocated")
    raise ValueError(f"unknown constraint fact {fact!r}")


def constraint_texts(constraint_facts: tuple, places: int) -> tuple[str, ...]:
    """What a line could not get and why, one sentence per fact."""
    return tuple(constraint_text(fact, places) for fact in constraint_facts)


# -- exceptions ----------------------------------------------------------------------------
#
# A line exception's facts are ``(line facts, extra)``; the line facts are shared by all the
# exceptions of one line: ``(places, order, line, item, quantity, covered, shortfall,
# covered_by_due, latest confirmed date, promised, requested, due, strategy, priority_class,
# constraint facts, credit_hold)``. A blocked ship-complete order's facts are ``(places,
# order, lines, short lines, reasons)``.


def _floor_text(extra: tuple, places: int) -> str:
    kind = extra[0]
    if kind == "win":
        _, quantity, due, covered_by_due = extra
        return (f"win floor: {fmt_units(quantity, places)} by {due.isoformat()}, "
                f"{fmt_units(covered_by_due, places)} confirmed by then")
    if kind == "gain":
        _, before, covered = extra
        return f"gain floor: held {fmt_units(before, places)} before the run, {fmt_units(covered, places)} now"
    return f"tier-1 customer line short by {fmt_units(extra[1], places)}"


def exception_message(kind: str, facts: tuple) -> str:
    """The one-line message of an exception a run raised."""
    if kind == "ship_complete_blocked":
        _, order, _, short, _ = facts
        return (f"{order}: ship-complete order blocked, line(s) {', '.join(map(str, short))} "
                "cannot be fully covered")
    line_facts, extra = facts
    (places, order, number, item, quantity, covered, shortfall, _covered_by_due, latest, _promised,
     _requested, due, _strategy, _priority_class, _constraints, _credit_hold) = line_facts
    where = f"{order}/{number} {item}"
    if kind == "priority_shortage":
        return f"{where}: {_floor_text(extra, places)}"
    if kind in ("promise_at_risk", "credit_hold"):
        summary = (f"{fmt_units(covered, places)} of {fmt_units(quantity, places)} covered"
                   + (f", confirmed {latest.isoformat()}" if latest else "")
                   + f", due {due.isoformat()}")
        if kind == "credit_hold":
            return f"{where}: on credit hold, {summary}"
        return f"{where}: {summary}"
    if kind == "substitution_proposed":
        return f"{where}: substitute proposed, " + ", ".join(
            f"{sub_item} {fmt_units(units, places)} at {location}" for sub_item, location, _ref, units in extra
        )
    if kind == "margin_below_floor":
        margin_pct, floor_pct = extra
        return f"{where}: margin {margin_pct:.2f}% below floor {floor_pct:g}%"
    if kind == "allocation_reversed":
        before, after, before_by_due, after_by_due = extra
        return (f"{where}: reserved {fmt_units(before, places)} → {fmt_units(after, places)}, "
                f"by {due.isoformat()} {fmt_units(before_by_due, places)} → {fmt_units(after_by_due, places)}")
    if kind == "split_limit":
        max_split, _locations = extra
        return f"{where}: needs more than {max_split} location(s), short {fmt_units(shortfall, places)}"
    raise ValueError(f"unknown exception type {kind!r}")


def exception_details(kind: str, facts: tuple) -> dict[str, Any]:
    """The JSON-able details of an exception a run raised (a new dict on every call)."""
    if kind == "ship_complete_blocked":
        places, _order, lines, short, reasons = facts
        return {
            "lines": [
                {"line": number, "item": item, "ordered": fmt_units(units, places), "coverable": coverable}
                for number, item, units, coverable in lines
            ],
            "short_lines": list(short),
            "reasons": [_ship_complete_reason(reason) for reason in reasons],
        }
    line_facts, extra = facts
    (places, _order, _number, _item, quantity, covered, shortfall, covered_by_due, latest, promised,
     requested, _due, strategy, priority_class, constraints, _credit_hold) = line_facts
    details: dict[str, Any] = {
        "ordered": fmt_units(quantity, places),
        "covered": fmt_units(covered, places),
        "shortfall": fmt_units(shortfall, places),
        "covered_by_due": fmt_units(covered_by_due, places),
        "confirmed_date": latest.isoformat() if latest else None,
        "promised": promised.isoformat() if promised else None,
        "requested": requested.isoformat(),
        "strategy": strategy,
        "priority_class": priority_class,
        "reasons": list(constraint_texts(constraints, places)),
    }
    if kind == "priority_shortage":
        details["floor"] = _floor_text(extra, places)
        details["floor_kind"] = extra[0]
        if extra[0] == "gain":
            # What the line held when this was raised: it stays open until the line holds it again.
            details["held_before"] = fmt_units(extra[1], places)
    elif kind == "substitution_proposed":
        details["substitutes"] = [
            {"item": sub_item, "location": location, "supply_ref": ref, "quantity": fmt_units(units, places)}
            for sub_item, location, ref, units in extra
        ]
    elif kind == "margin_below_floor":
        margin_pct, floor_pct = extra
        details["margin_pct"] = round(margin_pct, 4)
        details["margin_floor_pct"] = floor_pct
    elif kind == "allocation_reversed":
        before, after, before_by_due, after_by_due = extra
        details["reserved_before"] = fmt_units(before, places)
        details["reserved_after"] = fmt_units(after, places)
        details["reserved_by_due_before"] = fmt_units(before_by_due, places)
        details["reserved_by_due_after"] = fmt_units(after_by_due, places)
    elif kind == "split_limit":
        max_split, locations = extra
        details["max_split_locations"] = max_split
        details["locations"] = list(locations)
    return details


def _ship_complete_reason(reason: tuple) -> str:
    prefix, code = reason[0], reason[1]
    if code == "split":
        return f"{prefix}: max_split_locations={reason[2]} reached"
    if code == "protection":
        return f"{prefix}: protection #{reason[2]}"
    return f"{prefix}: quota #{reason[2]} {reason[3]} exhausted"


# -- shortfall reasons -----------------------------------------------------------------------
#
# ``ShortfallReason(code, quantity, subject)``; quantities are Decimal. ``subject`` per code:

SHORTFALL_SUBJECTS = {
    # lines that hold the supply: ((line_key, order, line, quantity, how), ...), how is
    # "ranked" (took it earlier in rank order), "kept" (a gain line kept it) or "fixed"
    # (released, pinned or frozen allocation)
    "taken_by_higher_rank": "lines",
    "protected_for": "(protection index, sku, location, quantity, scope)",
    "quota_exhausted": "(quota index, period, period key)",
    "split_limit": "(max_split_locations, locations used)",
    "below_min_fill": "(required pct, coverable quantity, ship-complete order or None)",
    "beyond_horizon": "(due date, allocation_horizon_days)",
    "inbound_below_confidence": "(supply ref, confidence, inbound_min_confidence)",
    "no_supply": "(item, candidate locations)",
    # beyond the spec's list, so the quantities add up:
    "strategy_ceiling": "(strategy, ceiling quantity, credit_hold)",
    "pack_size": "(item, pack size)",
    "fair_share": "lines, as taken_by_higher_rank (lower-ranked lines of the class that took their share)",
}


def _lines_text(lines: tuple) -> str:
    parts = []
    for _key, order, number, quantity, how in lines:
        suffix = {"kept": " (kept, gain)", "fixed": " (fixed)"}.get(how, "")
        parts.append(f"{order}/{number} {fmt_quantity(quantity)}{suffix}")
    return ", ".join(parts)


def shortfall_text(reason) -> str:
    """One shortfall reason in a planner's words."""
    code, quantity, subject = reason
    amount = fmt_quantity(quantity)
    if code == "taken_by_higher_rank":
        return f"{amount} went to lines ranked higher: {_lines_text(subject)}"
    if code == "fair_share":
        return f"{amount} went to other lines of the same class as their fair share: {_lines_text(subject)}"
    if code == "protected_for":
        index, sku, location, protected, scope = subject
        return (f"{amount} is protected at {location} for {scope_text(scope)} "
                f"(protection #{index}, {fmt_quantity(protected)} of {sku})")
    if code == "quota_exhausted":
        index, period, key = subject
        return f"{amount} over quota #{index} for the {period} {key}"
    if code == "split_limit":
        max_split, locations = subject
        return (f"{amount} is at other locations, but the line already ships from {max_split} "
                f"({', '.join(locations)}), the most allowed")
    if code == "below_min_fill":
        pct, coverable, order = subject
        if order is not None:
            return (f"{amount} could be covered, but ship-complete order {order} cannot be covered "
                    "in full, so nothing was allocated")
        return (f"{amount} could be covered, below the minimum fill of {pct:g}% of the line, "
                "so nothing was allocated")
    if code == "beyond_horizon":
        due, days = subject
        return f"{amount} not allocated yet: due {due.isoformat()}, more than {days} days ahead"
    if code == "inbound_below_confidence":
        ref, confidence, minimum = subject
        return f"{amount} could come from inbound {ref}, but its confidence {confidence:g} is below {minimum:g}"
    if code == "no_supply":
        item, candidates = subject
        return f"{amount} has no supply of {item} at {', '.join(candidates) or 'any location'}"
    if code == "strategy_ceiling":
        strategy, ceiling, credit_hold = subject
        if credit_hold:
            return f"{amount} not allocated: credit hold, the line keeps at most {fmt_quantity(ceiling)}"
        if strategy == "lose":
            return f"{amount} released: strategy lose"
        return f"{amount} beyond the strategy {strategy} ceiling of {fmt_quantity(ceiling)}"
    if code == "pack_size":
        item, pack = subject
        return f"{amount} left is less than a pack of {fmt_quantity(pack)} {item}"
    raise ValueError(f"unknown shortfall reason {code!r}")


def shortfall_json(reason) -> dict[str, Any]:
    """A shortfall reason as a JSON-able dict (``code``, ``quantity``, ``text`` and what it names)."""
    code, quantity, subject = reason
    out: dict[str, Any] = {"code": code, "quantity": fmt_quantity(quantity), "text": shortfall_text(reason)}
    if code in ("taken_by_higher_rank", "fair_share"):
        out["lines"] = [{"line_id": key, "order": order, "line": number, "quantity": fmt_quantity(q), "how": how}
                        for key, order, number, q, how in subject]
    elif code == "protected_for":
        index, sku, location, protected, scope = subject
        out.update(protection=index, sku=sku, location=location, protected=fmt_quantity(protected),
                   scope=dict(scope))
    elif code == "quota_exhausted":
        out.update(quota=subject[0], period=subject[1], period_key=subject[2])
    elif code == "split_limit":
        out.update(max_split_locations=subject[0], locations=list(subject[1]))
    elif code == "below_min_fill":
        out.update(min_fill_pct=subject[0], coverable=fmt_quantity(subject[1]), ship_complete_order=subject[2])
    elif code == "beyond_horizon":
        out.update(due_date=subject[0].isoformat(), allocation_horizon_days=subject[1])
    elif code == "inbound_below_confidence":
        out.update(supply_ref=subject[0], confidence=subject[1], inbound_min_confidence=subject[2])
    elif code == "no_supply":
        out.update(item=subject[0], locations=list(subject[1]))
    elif code == "strategy_ceiling":
        out.update(strategy=subject[0], ceiling=fmt_quantity(subject[1]), credit_hold=subject[2])
    elif code == "pack_size":
        out.update(item=subject[0], pack_size=fmt_quantity(subject[1]))
    return out
