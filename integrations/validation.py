"""Validation of canonical event envelopes and their ``data`` per type (events-v1.md).

``validate_envelope`` returns the field errors (``{"field": "data.lines[0].quantity",
"message": "must be >= 0"}``), the parsed ``occurred_at`` and the entity key. It is pure
Python and fast: ingestion calls it for every event before anything is stored.

Hostile input is refused here, at the edge, so nothing stored can wedge processing later:
every string anywhere in the event (keys too) is free of NUL characters and unpaired
surrogates (neither can be stored in PostgreSQL text or encoded as UTF-8); nesting is bounded;
every timestamp and date lies within ``ALLOT_EVENT_TIME_WINDOW_YEARS`` of now and
``occurred_at`` at most ``ALLOT_EVENT_MAX_FUTURE_MINUTES`` ahead (a far-future version would make
every later update stale); codes carry no surrounding spaces; a time zone is a real IANA zone.
"""
from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.utils import timezone

from config import bounds
from integrations.choices import EventType

EVENT_TYPES = frozenset(EventType.values)
TIME_OF_DAY = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
# Nesting allowed inside one envelope (the batch body adds two levels around it).
MAX_EVENT_DEPTH = 16
# A bad key is named in the error path, escaped and cut to this length.
PATH_KEY_CHARS = 64
# What config.bounds.text_problem refuses (NUL, UTF-16 surrogates), for the fast pass.
HOSTILE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


@functools.cache
def iana_time_zones() -> frozenset[str]:
    """The IANA zone names this installation knows (``zoneinfo``; the tzdata package)."""
    return frozenset(zoneinfo.available_timezones())


def printable(text: str) -> str:
    """``text`` with NUL and unpaired surrogates written as ``\\u0000`` escapes: safe to store and echo."""
    if text.isascii() and "\x00" not in text:
        return text
    return text.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")


def _text_problem(text: str) -> str | None:
    problem = bounds.text_problem(text)
    return problem.rstrip(".") if problem else None


def _is_clean(raw: Any, max_depth: int) -> bool:
    """The fast pass of ``hostile_text_errors``: True when no string (key or value) is hostile
    and nesting stays within ``max_depth``. Builds no paths, so valid events pay little."""
    search = HOSTILE_CHARACTERS.search
    stack: list[tuple[Any, int]] = [(raw, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth >= max_depth:
            return False
        pairs: Any = node.items() if type(node) is dict else enumerate(node)
        for key, value in pairs:
            if type(key) is str and search(key):
                return False
            kind = type(value)
            if kind is str:
                if search(value):
                    return False
            elif kind is dict or kind is list:
                push((value, depth + 1))
    return True


def hostile_text_errors(raw: Any, *, max_depth: int = MAX_EVENT_DEPTH) -> list[dict[str, str]]:
    """Errors for every string (value or key, at any depth) holding NUL or an unpaired
    surrogate, and for nesting deeper than ``max_depth``; iterative, so any depth is safe."""
    if type(raw) in (dict, list) and _is_clean(raw, max_depth):
        return []
    errors: list[dict[str, str]] = []
    stack: list[tuple[Any, str, int]] = [(raw, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            problem = _text_problem(node)
            if problem:
                errors.append({"field": path, "message": problem})
        elif isinstance(node, (dict, list)):
            if depth >= max_depth:
                errors.append({"field": path, "message": f"must not be nested more than {max_depth} levels deep"})
                continue
            if isinstance(node, dict):
                for key, value in node.items():
                    name = key if isinstance(key, str) else str(key)
                    child = f"{path}.{printable(name)[:PATH_KEY_CHARS]}" if path else printable(name)[:PATH_KEY_CHARS]
                    problem = _text_problem(name)
                    if problem:
                        errors.append({"field": child, "message": "name " + problem})
                    stack.append((value, child, depth + 1))
            else:
                stack.extend((value, f"{path}[{index}]", depth + 1) for index, value in enumerate(node))
    errors.reverse()  # the stack visits the last child first: report in document order
    return errors


@dataclass(frozen=True)
class TimeWindow:
    """The instants and dates an event may name: ``earliest``..``latest``, and for
    ``occurred_at`` no later than ``latest_occurred``."""

    earliest: dt.datetime
    latest: dt.datetime
    latest_occurred: dt.datetime

    @classmethod
    def around(cls, now: dt.datetime | None = None) -> TimeWindow:
        """The window around ``now`` (default: ``timezone.now()``) from the settings."""
        now = now or timezone.now()
        earliest, latest = bounds.datetime_window(now)
        return cls(earliest, latest, now + dt.timedelta(minutes=settings.ALLOT_EVENT_MAX_FUTURE_MINUTES))

    @property
    def message(self) -> str:
        return f"must be between {self.earliest.date().isoformat()} and {self.latest.date().isoformat()}"

    def check(self, value: dt.datetime) -> str | None:
        return None if self.earliest <= value <= self.latest else self.message

    def check_date(self, value: dt.date) -> str | None:
        return None if self.earliest.date() <= value <= self.latest.date() else self.message


def parse_timestamp(raw: Any) -> dt.datetime | None:
    """An RFC 3339 timestamp with zone, or None when ``raw`` is not one."""
    if not isinstance(raw, str) or len(raw) < 20 or "T" not in raw.upper():
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        return None
    try:
        value.astimezone(dt.UTC)  # 0001-01-01T00:00:00+05:00 has no UTC instant
    except OverflowError:
        return None
    return value


def parse_date(raw: Any) -> dt.date | None:
    if not isinstance(raw, str) or len(raw) != 10:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        return None


def to_decimal(raw: Any) -> Decimal:
    """The Decimal of a validated quantity (strings, ints and floats are accepted)."""
    return raw if isinstance(raw, Decimal) else Decimal(str(raw))


@dataclass
class Checker:
    """Collects errors for one event; each helper returns the parsed value or None."""

    window: TimeWindow = field(default_factory=TimeWindow.around)
    errors: list[dict[str, str]] = field(default_factory=list)

    def error(self, path: str, message: str) -> None:
        self.errors.append({"field": path, "message": message})

    def _get(self, data: dict, name: str, path: str, required: bool) -> tuple[bool, Any]:
        if name not in data or data[name] is None:
            if required:
                self.error(path, "is required")
            return False, None
        return True, data[name]

    def text(self, data: dict, name: str, prefix: str, *, required: bool = True, max_length: int = 64, min_length: int = 1) -> str | None:
        path = f"{prefix}.{name}"
        present, raw = self._get(data, name, path, required)
        if not present:
            return None
        if not isinstance(raw, str):
            self.error(path, "must be a string")
            return None
        if len(raw) < min_length or len(raw) > max_length:
            self.error(path, f"must be {min_length}-{max_length} characters")
            return None
        return raw

    def code(self, data: dict, name: str, prefix: str, *, required: bool = True) -> str | None:
        value = self.text(data, name, prefix, required=required, max_length=64)
        if value is not None and value.strip() != value:
            self.error(f"{prefix}.{name}", "must not start or end with spaces")
            return None
        return value

    def time_zone(self, data: dict, name: str, prefix: str) -> str | None:
        value = self.text(data, name, prefix, required=False, max_length=64)
        if value is not None and value not in iana_time_zones():
            self.error(f"{prefix}.{name}", "must be an IANA time zone such as Europe/Berlin")
            return None
        return value

    def choice(self, data: dict, name: str, prefix: str, options: tuple[str, ...], *, required: bool = True) -> str | None:
        path = f"{prefix}.{name}"
        present, raw = self._get(data, name, path, required)
        if not present:
            return None
        if raw not in options:
            self.error(path, "must be one of " + ", ".join(options))
            return None
        return raw

    def decimal(
        self,
        data: dict,
        name: str,
        prefix: str,
        *,
        required: bool = True,
        minimum: Decimal | None = Decimal(0),
        maximum: Decimal | None = None,
        digits: int = 14,
        places: int = 3,
    ) -> Decimal | None:
        path = f"{prefix}.{name}"
        present, raw = self._get(data, name, path, required)
        if not present:
            return None
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            self.error(path, "must be a decimal number")
            return None
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            self.error(path, "must be a decimal number")
            return None
        if not value.is_finite():
            self.error(path, "must be a decimal number")
            return None
        if minimum is not None and value < minimum:
            self.error(path, f"must be >= {minimum}")
            return None
        if maximum is not None and value > maximum:
            self.error(path, f"must be <= {maximum}")
            return None
        if value.as_tuple().exponent < -places:  # type: ignore[operator]
            self.error(path, f"must have at most {places} decimal places")
            return None
        if abs(value) >= Decimal(10) ** (digits - places):
            self.error(path, f"must be less than {Decimal(10) ** (digits - places)}")
            return None
        return value

    def integer(self, data: dict, name: str, prefix: str, *, required: bool = True, minimum: int = 0, maximum: int = 2_147_483_647) -> int | None:
        path = f"{prefix}.{name}"
        present, raw = self._get(data, name, path, required)
        if not present:
            return None
        if isinstance(raw, bool) or not isinstance(raw, int):
            self.error(path, "must be a whole number")
            return None
        if raw < minimum:
            self.error(path, f"must be >= {minimum}")
            return None
        if raw > maximum:
            self.error(path, f"must be <= {maximum}")
            return None
        return raw

    def boolean(self, data: dict, name: str, prefix: str, *, required: bool = False) -> bool | None:
        path = f"{prefix}.{name}"
        present, raw = self._get(data, name, path, required)
        if not present:
            return None
        if not isinstance(raw, bool):
            self.error(path, "must be true or false")
            return None
        return raw

    def date(self, data: dict, name: str, prefix: str, *, required: bool = True) -> dt.date | None:
        path = f"{prefix}.{name}"
        present, raw = self._get(data, name, path, required)
        if not present:
            return None
        value = parse_date(raw)
        if value is None:
            self.error(path, "must be an ISO date (YYYY-MM-DD)")
            return None
        problem = self.window.check_date(value)
        if problem:
            self.error(path, problem)
            return None
        return value

    def timestamp(self, data: dict, name: str, prefix: str, *, required: bool = True) -> dt.datetime | None:
        path = f"{prefix}.{name}"
        present, raw = self._get(data, name, path, required)
        if not present:
            return None
        value = parse_timestamp(raw)
        if value is None:
            if isinstance(raw, str) and _parses_as_timestamp(raw):
                self.error(path, self.window.message)
            else:
                self.error(path, "must be an RFC 3339 timestamp with zone")
            return None
        problem = self.window.check(value)
        if problem:
            self.error(path, problem)
            return None
        return value


def _parses_as_timestamp(raw: str) -> bool:
    """True for a well-formed timestamp that has no UTC instant (year 1 or 9999 at the edge)."""
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        return False
    return value.tzinfo is not None


def _location(c: Checker, d: dict, p: str) -> str | None:
    code = c.code(d, "code", p)
    c.text(d, "name", p, max_length=200)
    c.code(d, "region", p)
    c.choice(d, "kind", p, ("warehouse", "hub", "store"))
    c.integer(d, "release_capacity_per_day", p, required=False)
    if d.get("cutoff_time") is not None and not (isinstance(d["cutoff_time"], str) and TIME_OF_DAY.fullmatch(d["cutoff_time"])):
        c.error(f"{p}.cutoff_time", "must be a time HH:MM")
    c.time_zone(d, "timezone", p)
    return code and f"location:{code}"


def _item(c: Checker, d: dict, p: str) -> str | None:
    sku = c.code(d, "sku", p)
    c.text(d, "description", p, max_length=300, min_length=0)
    c.code(d, "item_class", p)
    c.text(d, "uom", p, max_length=16)
    c.decimal(d, "unit_cost", p, places=4)
    pack_size = c.decimal(d, "pack_size", p, required=False)
    if pack_size is not None and pack_size == 0:
        c.error(f"{p}.pack_size", "must be > 0")
    substitutes = d.get("substitutes")
    if substitutes is not None:
        if not isinstance(substitutes, list):
            c.error(f"{p}.substitutes", "must be a list")
        else:
            seen: set[str] = set()
            for index, entry in enumerate(substitutes):
                path = f"{p}.substitutes[{index}]"
                if not isinstance(entry, dict):
                    c.error(path, "must be an object")
                    continue
                sub = c.code(entry, "sku", path)
                c.integer(entry, "priority", path, minimum=1)
                if sub is not None and sub == sku:
                    c.error(f"{path}.sku", "must not be the item itself")
                elif sub is not None and sub in seen:
                    c.error(f"{path}.sku", "is listed twice")
                if sub is not None:
                    seen.add(sub)
    return sku and f"item:{sku}"


def _customer(c: Checker, d: dict, p: str) -> str | None:
    code = c.code(d, "code", p)
    c.text(d, "name", p, max_length=200)
    c.integer(d, "tier", p, minimum=1, maximum=4)
    c.code(d, "segment", p)
    c.code(d, "region", p)
    c.code(d, "home_location", p, required=False)
    c.integer(d, "sla_days", p, required=False)
    c.decimal(d, "late_penalty_per_day", p, required=False, places=2)
    c.boolean(d, "credit_hold", p)
    return code and f"customer:{code}"


def _lane(c: Checker, d: dict, p: str) -> str | None:
    location = c.code(d, "location", p)
    region = c.code(d, "region", p)
    c.integer(d, "transit_days", p)
    c.decimal(d, "cost_per_unit", p, digits=12, places=4)
    return location and region and f"lane:{location}:{region}"


def _snapshot(c: Checker, d: dict, p: str) -> str | None:
    location = c.code(d, "location", p)
    sku = c.code(d, "sku", p)
    c.decimal(d, "on_hand", p)
    c.decimal(d, "quality_hold", p, required=False)
    c.decimal(d, "warehouse_hold", p, required=False)
    c.timestamp(d, "as_of", p)
    return location and sku and f"position:{location}:{sku}"


def _adjusted(c: Checker, d: dict, p: str) -> str | None:
    location = c.code(d, "location", p)
    sku = c.code(d, "sku", p)
    c.decimal(d, "delta", p, minimum=None)
    c.text(d, "reason", p, max_length=300)
    c.timestamp(d, "as_of", p)
    return location and sku and f"position:{location}:{sku}"


def _supply(c: Checker, d: dict, p: str) -> str | None:
    ref = c.code(d, "ref", p)
    c.choice(d, "kind", p, ("purchase_order", "asn", "transfer"))
    c.code(d, "sku", p)
    c.code(d, "location", p)
    c.decimal(d, "quantity", p)
    c.date(d, "eta", p)
    c.code(d, "supplier", p, required=False)
    c.decimal(d, "confidence", p, required=False, maximum=Decimal(1), digits=4, places=3)
    c.choice(d, "status", p, ("open", "cancelled"), required=False)
    return ref and f"supply:{ref}"


def _received(c: Checker, d: dict, p: str) -> str | None:
    ref = c.code(d, "ref", p)
    c.decimal(d, "quantity", p)
    c.timestamp(d, "received_at", p)
    return ref and f"supply:{ref}"


def _order(c: Checker, d: dict, p: str) -> str | None:
    number = c.code(d, "number", p)
    c.code(d, "customer", p)
    c.code(d, "channel", p)
    c.timestamp(d, "created_at", p)
    c.date(d, "requested_date", p)
    c.date(d, "promised_date", p, required=False)
    c.boolean(d, "ship_complete", p)
    c.choice(d, "kind", p, ("order", "quote"), required=False)
    # expires_at: an RFC 3339 instant, or a date (the quote expires when that day ends, in
    # TIME_ZONE). Only quotes expire: on an order it is ignored (a converted quote may still carry it).
    if d.get("expires_at") is not None:
        if isinstance(d["expires_at"], str) and len(d["expires_at"]) == 10:
            c.date(d, "expires_at", p)
        else:
            c.timestamp(d, "expires_at", p)
    lines = d.get("lines")
    if not isinstance(lines, list):
        c.error(f"{p}.lines", "is required" if lines is None else "must be a list")
    else:
        seen: set[int] = set()
        for index, entry in enumerate(lines):
            path = f"{p}.lines[{index}]"
            if not isinstance(entry, dict):
                c.error(path, "must be an object")
                continue
            number_of_line = c.integer(entry, "line", path, minimum=1)
            if number_of_line is not None:
                if number_of_line in seen:
                    c.error(f"{path}.line", "is listed twice")
                seen.add(number_of_line)
            c.code(entry, "sku", path)
            c.decimal(entry, "quantity", path)
            c.decimal(entry, "unit_price", path, places=4)
            c.decimal(entry, "unit_cost", path, places=4)
            c.boolean(entry, "allow_substitute", path)
            c.code(entry, "ship_from", path, required=False)
    return number and f"order:{number}"


def _cancelled(c: Checker, d: dict, p: str) -> str | None:
    number = c.code(d, "number", p)
    c.text(d, "reason", p, max_length=300)
    return number and f"order:{number}"


def _credit(c: Checker, d: dict, p: str) -> str | None:
    customer = c.code(d, "customer", p, required=False)
    order = c.code(d, "order", p, required=False)
    if d.get("customer") is None and d.get("order") is None:
        c.error(f"{p}.customer", "customer or order is required")
    elif d.get("customer") is not None and d.get("order") is not None:
        c.error(f"{p}.order", "give customer or order, not both")
    c.boolean(d, "on_hold", p, required=True)
    c.text(d, "reason", p, max_length=300, min_length=0)
    if customer:
        return f"customer:{customer}"
    return order and f"order:{order}"


def _shipment(c: Checker, d: dict, p: str) -> str | None:
    order = c.code(d, "order", p)
    c.integer(d, "line", p, minimum=1)
    c.code(d, "location", p)
    quantity = c.decimal(d, "quantity", p)
    if quantity is not None and quantity == 0:
        c.error(f"{p}.quantity", "must be > 0")
    c.timestamp(d, "shipped_at", p)
    return order and f"order:{order}"


DATA_VALIDATORS = {
    EventType.LOCATION_UPSERTED: _location,
    EventType.ITEM_UPSERTED: _item,
    EventType.CUSTOMER_UPSERTED: _customer,
    EventType.LANE_UPSERTED: _lane,
    EventType.INVENTORY_SNAPSHOT: _snapshot,
    EventType.INVENTORY_ADJUSTED: _adjusted,
    EventType.SUPPLY_UPSERTED: _supply,
    EventType.SUPPLY_RECEIVED: _received,
    EventType.ORDER_UPSERTED: _order,
    EventType.ORDER_CANCELLED: _cancelled,
    EventType.CREDIT_HOLD_CHANGED: _credit,
    EventType.SHIPMENT_CONFIRMED: _shipment,
}


@dataclass
class EnvelopeCheck:
    """The outcome of validating one envelope."""

    errors: list[dict[str, str]]
    event_id: str | None
    source: str | None
    occurred_at: dt.datetime | None
    entity_key: str | None


def validate_envelope(raw: Any, *, default_source: str | None = None, window: TimeWindow | None = None) -> EnvelopeCheck:
    """Check an envelope and its data; ``default_source`` fills a missing ``source``.

    ``window`` bounds every timestamp and date (default: ``TimeWindow.around()`` now); a batch
    passes one window so all its events are judged against the same instant.
    """
    c = Checker(window=window or TimeWindow.around())
    if not isinstance(raw, dict):
        c.error("", "must be an object")
        return EnvelopeCheck(c.errors, None, None, None, None)
    hostile = hostile_text_errors(raw)
    if hostile:
        # Nothing else is read from an event holding text the database cannot store.
        return EnvelopeCheck(hostile, None, None, None, None)
    event_id = c.text(raw, "id", "", max_length=200)
    if event_id is None and "id" in raw and raw["id"] is not None:
        event_id = None
    source = raw.get("source") if raw.get("source") is not None else default_source
    if source is None:
        c.error("source", "is required")
    elif not isinstance(source, str) or not 1 <= len(source) <= 64:
        c.error("source", "must be 1-64 characters")
        source = None
    elif source.strip() != source:
        c.error("source", "must not start or end with spaces")
        source = None
    event_type = raw.get("type")
    if event_type is None:
        c.error("type", "is required")
    elif not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        c.error("type", "must be one of the event types of events-v1")
        event_type = None
    occurred_at = c.timestamp(raw, "occurred_at", "")
    if occurred_at is not None and occurred_at > c.window.latest_occurred:
        c.error(".occurred_at", f"must not be more than {settings.ALLOT_EVENT_MAX_FUTURE_MINUTES} minutes in the future")
        occurred_at = None
    data = raw.get("data")
    entity_key = None
    if data is None:
        c.error("data", "is required")
    elif not isinstance(data, dict):
        c.error("data", "must be an object")
    elif event_type is not None:
        entity_key = DATA_VALIDATORS[EventType(event_type)](c, data, "data")
    # Paths were built as ".id"/".occurred_at" for the envelope; strip the leading dot.
    for error in c.errors:
        if error["field"].startswith("."):
            error["field"] = error["field"][1:]
    return EnvelopeCheck(c.errors, event_id, source, occurred_at, entity_key or None)
