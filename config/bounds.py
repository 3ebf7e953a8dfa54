"""The bounds every write checks its input against, in one place.

Anything accepted here can be stored, read back and computed with: timestamps and dates lie
within ``WINDOW_YEARS`` of now (a value near year 1 or 9999 stores, then overflows when it is
read or shifted by a time zone), text holds no NUL and no unpaired surrogate (PostgreSQL
refuses both, and UTF-8 cannot encode a lone surrogate), and numbers fit the decimal columns
they are written to. Each check returns the problem as a sentence, or None when the value is
fine, so callers put it on the field they validate.

The window is the events' one, ``settings.ALLOT_EVENT_TIME_WINDOW_YEARS`` (ten years unless
configured), so a policy, a promise and an event agree on what a sane date is.
"""
from __future__ import annotations

import datetime as dt
import math
import re
import reprlib
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings

# Timestamps and dates are accepted this many years either side of now (unless configured).
WINDOW_YEARS = 10

# NUL and UTF-16 surrogate code points (a lone one survives JSON decoding as a str character).
_FORBIDDEN_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


def window_years() -> int:
    """Years either side of now that dates may lie: the events' setting, else ``WINDOW_YEARS``."""
    if settings.configured:
        return int(getattr(settings, "ALLOT_EVENT_TIME_WINDOW_YEARS", WINDOW_YEARS))
    return WINDOW_YEARS


def _window() -> dt.timedelta:
    return dt.timedelta(days=round(365.25 * window_years()))


def datetime_window(now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """The earliest and latest accepted instant: ``WINDOW_YEARS`` either side of ``now``."""
    now = now or dt.datetime.now(dt.UTC)
    return now - _window(), now + _window()


def date_window(today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The earliest and latest accepted date: ``WINDOW_YEARS`` either side of ``today``."""
    today = today or dt.datetime.now(dt.UTC).date()
    return today - _window(), today + _window()


def datetime_problem(value: dt.datetime, *, now: dt.datetime | None = None) -> str | None:
    """Why an aware ``value`` is out of the window, or None.

    Compared in UTC without converting ``value`` first: converting year 9999 with a negative
    offset is itself the overflow this guards against.
    """
    earliest, latest = datetime_window(now)
    try:
        inside = earliest <= value <= latest
    except (OverflowError, TypeError):
        inside = False
    if inside:
        return None
    return f"must lie between {earliest:%Y-%m-%d} and {latest:%Y-%m-%d} ({window_years()} years either side of now)."


def date_problem(value: dt.date, *, today: dt.date | None = None) -> str | None:
    """Why ``value`` is out of the date window, or None."""
    earliest, latest = date_window(today)
    if earliest <= value <= latest:
        return None
    return f"must lie between {earliest.isoformat()} and {latest.isoformat()} ({window_years()} years either side of today)."


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (a NUL or an unpaired surrogate), or None."""
    match = _FORBIDDEN_CHARACTERS.search(value)
    if match is None:
        return None
    if match.group() == "\x00":
        return "must not contain NUL characters."
    return "must not contain unpaired surrogate characters (invalid Unicode)."


def storable_text(value: str) -> str:
    """``value`` with each NUL and unpaired surrogate replaced by U+FFFD: safe to encode, render
    and compare, for echoing input that ``text_problem`` refused."""
    return _FORBIDDEN_CHARACTERS.sub("\ufffd", value)


def decimal_problem(value: Any, *, max_digits: int, decimal_places: int, minimum: Decimal | None = None) -> str | None:
    """Why a number does not fit a ``DecimalField(max_digits, decimal_places)``, or None.

    Accepts ints, finite floats (by their shortest repr, so ``0.1`` is ``0.1``), Decimals and
    numeric strings; booleans are not numbers.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        return f"must be a number; got {short_repr(value)}."
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number."
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return f"must be a number; got {short_repr(value)}."
    if not number.is_finite():
        return "must be a finite number."
    if minimum is not None and number < minimum:
        return f"must be at least {minimum}; got {short_repr(value)}."
    largest = Decimal(10) ** (max_digits - decimal_places) - Decimal(1).scaleb(-decimal_places)
    if abs(number) > largest:
        return f"must be at most {largest}; got {short_repr(value)}."
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > decimal_places:
        return f"must have at most {decimal_places} decimal places; got {short_repr(value)}."
    return None


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr`` bounded in length and nesting, safe for any decoded JSON (deep lists included)."""
    shortener = reprlib.Repr()
    shortener.maxlevel, shortener.maxstring, shortener.maxother = 3, limit, limit
    shortener.maxlist = shortener.maxdict = 5
    return shortener.repr(value)
