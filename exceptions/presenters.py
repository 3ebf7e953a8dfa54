"""Plain words for what the engine and the cases record (the display layer; the engine's own
texts in ``allocation.engine.explain`` and the API keep their exact facts and scores).

* Jeopardy reads as a band with the value at stake and how late the line is, not a score:
  "High risk · 12,400 at stake · 5 days late" (``jeopardy_summary``).
* A supply option reads as what a planner can do with it: "12 not promised to anyone; up to
  81 if you take it from lower-priority lines" instead of "free 12, takeable 81"
  (``supply_option_text``).
* The engine's constraint texts ("strategy fill: ceiling 0 (held before the run)") are
  rewritten sentence by sentence (``constraint_words``); a text no pattern knows is shown as
  it is.
* A setting's source reads as the rule's scope ("customer_segment = healthcare") instead of
  ``rules[2]`` (``rule_source_text``).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

BAND_WORDS = {"high": "High risk", "medium": "At risk", "low": "Low risk"}


def _decimal(value: Any) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return Decimal(0)
    return number if number.is_finite() else Decimal(0)


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def quantity_text(value: Any) -> str:
    number = _decimal(value)
    text = f"{number:,.3f}".rstrip("0").rstrip(".")
    return text or "0"


def money_text(value: Any) -> str:
    return f"{_decimal(value):,.0f}"


@dataclass(frozen=True)
class JeopardySummary:
    band: str
    band_label: str
    value_at_stake: str
    days_late: int | None
    uncovered: str
    text: str

    def __str__(self) -> str:
        return self.text


def jeopardy_summary(case: Any, *, today: dt.date) -> JeopardySummary:
    """Band, value at stake and days late of a case, from its stored facts.

    The line is due on the later of its promised (else requested) date and ``today`` (the
    as-of date); it is late by the days its latest confirmed date lies beyond that. A
    quantity nothing covers reads as "N not covered" (no date to count from).
    """
    band = str(getattr(case, "jeopardy_band", "") or "low")
    details = getattr(case, "details", None) or {}
    promised = _date(details.get("promised")) or _date(details.get("requested"))
    due = max(promised, today) if promised else None
    confirmed = _date(details.get("confirmed_date"))
    days_late = (confirmed - due).days if confirmed and due and confirmed > due else (0 if confirmed and due else None)
    uncovered = _decimal(details.get("shortfall"))
    parts = [BAND_WORDS.get(band, band), f"{money_text(getattr(case, 'value', 0))} at stake"]
    if days_late:
        parts.append(f"{days_late} day{'s' if days_late != 1 else ''} late")
    if uncovered > 0:
        parts.append(f"{quantity_text(uncovered)} not covered")
    if days_late == 0 and uncovered <= 0:
        parts.append("on time")
    return JeopardySummary(
        band=band, band_label=BAND_WORDS.get(band, band), value_at_stake=money_text(getattr(case, "value", 0)),
        days_late=days_late, uncovered=quantity_text(uncovered) if uncovered > 0 else "", text=" · ".join(parts),
    )


def supply_option_text(option: Any) -> str:
    """"12 not promised to anyone; up to 81 if you take it from lower-priority lines"."""
    free, takeable = _decimal(option.free), _decimal(option.takeable)
    if takeable <= 0:
        return "nothing you can take (all released or pinned for other lines)"
    if free >= takeable:
        return f"{quantity_text(free)} not promised to anyone"
    start = f"{quantity_text(free)} not promised to anyone" if free > 0 else "nothing free"
    return f"{start}; up to {quantity_text(takeable)} if you take it from the lines holding it"


_CONSTRAINTS: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"^strategy fill: ceiling 0 \(held before the run\)$"),
     lambda m: "Its strategy is \u201cfill\u201d: it keeps what it held before this run and gets nothing new \u2014 it held nothing."),
    (re.compile(r"^strategy fill: ceiling (?P<q>[\d.,]+) \(held before the run\)$"),
     lambda m: f"Its strategy is \u201cfill\u201d: it may keep the {m['q']} it held before this run, but gets nothing more."),
    (re.compile(r"^strategy lose: allocation released$"),
     lambda m: "Its strategy is \u201close\u201d: what it held was given up to other lines."),
    (re.compile(r"^credit hold: no new allocation$"),
     lambda m: "The customer is on credit hold: the line gets no new stock until the hold is lifted."),
    (re.compile(r"^allow_partial=false: (?P<q>[\d.,]+) not coverable, nothing allocated$"),
     lambda m: f"The order takes no partial shipments and {m['q']} cannot be covered, so nothing was allocated."),
    (re.compile(r"^max_split_locations=(?P<n>\d+) reached$"),
     lambda m: f"It may ship from at most {m['n']} location(s) and all of them are used."),
    (re.compile(r"^protection #(?P<i>\d+) at (?P<loc>\S+) reserves (?P<q>[\d.,]+) for (?P<scope>.+) \((?P<sku>[^()]+)\)$"),
     lambda m: f"{m['q']} of {m['sku']} at {m['loc']} is set aside for {_scope_words(m['scope'])} (protection #{m['i']})."),
    (re.compile(r"^quota #(?P<i>\d+) (?P<period>\S+) (?P<key>.+) exhausted$"),
     lambda m: f"The {m['period']} quota for {m['key']} is used up (quota #{m['i']})."),
    (re.compile(r"^inbound (?P<ref>\S+) confidence (?P<c>[\d.]+) below (?P<min>[\d.]+)$"),
     lambda m: f"Inbound {m['ref']} is not trusted enough to promise from (confidence {m['c']}, needs {m['min']})."),
    (re.compile(r"^no more supply of (?P<sku>\S+) at (?P<where>.+)$"),
     lambda m: f"There is no more {m['sku']} at {m['where']}, on hand or inbound."),
    (re.compile(r"^ship_complete order (?P<o>\S+) blocked: line\(s\) (?P<lines>.+) not fully coverable$"),
     lambda m: f"Order {m['o']} ships complete and line(s) {m['lines']} cannot be fully covered, so it waits."),
]


def _scope_words(scope: str) -> str:
    if scope in ("", "everyone"):
        return "everyone"
    return ", ".join(part.replace("=", " = ") for part in scope.split(", "))


def constraint_words(text: str) -> str:
    """A constraint text of the engine in a planner's words (unknown texts unchanged)."""
    raw = str(text or "")
    for pattern, words in _CONSTRAINTS:
        match = pattern.match(raw)
        if match:
            return words(match)
    return raw


_FLOOR = [
    (re.compile(r"win floor: (?P<q>[\d.,]+) by (?P<d>[\d-]+), (?P<c>[\d.,]+) confirmed by then"),
     lambda m: f"it should get {m['q']} by {m['d']} but only {m['c']} is confirmed by then"),
    (re.compile(r"gain floor: held (?P<b>[\d.,]+) before the run, (?P<n>[\d.,]+) now"),
     lambda m: f"it held {m['b']} before this run and holds {m['n']} now"),
    (re.compile(r"tier-1 customer line short by (?P<q>[\d.,]+)"),
     lambda m: f"a tier-1 customer's line is {m['q']} short"),
]


def floor_words(text: str) -> str:
    raw = str(text or "")
    for pattern, words in _FLOOR:
        raw = pattern.sub(words, raw)
    return raw


def scope_words(scope: Any) -> str:
    """A rule's scope as "customer_segment = healthcare, channel = ecommerce"; empty: every line."""
    if not scope:
        return "every line (global rule)"
    if isinstance(scope, dict):
        return ", ".join(f"{key} = {value}" for key, value in scope.items())
    return _scope_words(str(scope))


def rule_source_text(rule: Any, position: int | None) -> str:
    """Where a setting comes from, as the rule's scope (``rules[2]`` only as a fallback)."""
    if rule is not None:
        return f"rule for {scope_words(getattr(rule, 'scope', None))}"
    if position is not None:
        return f"rule #{position}"
    return "default"
