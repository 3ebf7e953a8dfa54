"""What is at stake when a line is late: a score, a band and a reason a planner can read.

``score = days late × tier weight × (late penalty per day + 1% of the line value per day)``
with tier weights 4, 3, 2, 1 for tiers 1 to 4, so a late tier-1 line with a contractual
penalty ranks above a late web order of the same value. Bands: ``high`` from 10,000,
``medium`` from 1,000, else ``low``. Pure: no Django, no I/O.
"""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

TIER_WEIGHT = {1: 4, 2: 3, 3: 2, 4: 1}
HIGH_FROM = Decimal(10000)
MEDIUM_FROM = Decimal(1000)
VALUE_RATE_PER_DAY = Decimal("0.01")


def _number(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def jeopardy(
    days_late: int,
    tier: int,
    penalty_per_day: Decimal,
    value: Decimal,
    *,
    promised: dt.date | None = None,
    confirmed: dt.date | None = None,
    uncovered: Decimal | None = None,
) -> tuple[Decimal, str, str]:
    """Score, band (low/medium/high) and reason of a late or uncovered line.

    ``promised`` / ``confirmed`` (the date it was due and the date it is now confirmed for)
    and ``uncovered`` (quantity nothing covers) only shape the reason text.
    """
    days = max(int(days_late), 0)
    weight = TIER_WEIGHT.get(int(tier), 1)
    daily = Decimal(penalty_per_day) + Decimal(value) * VALUE_RATE_PER_DAY
    score = (Decimal(days) * weight * daily).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    band = "high" if score >= HIGH_FROM else "medium" if score >= MEDIUM_FROM else "low"
    parts: list[str] = []
    if promised is not None:
        parts.append(f"promised {promised:%m-%d}")
    if confirmed is not None:
        parts.append(f"confirmed {confirmed:%m-%d}")
    if uncovered:
        parts.append(f"{_number(Decimal(uncovered))} uncovered")
    if not parts:
        parts.append(f"{days} days late")
    parts.append(f"tier {tier}")
    parts.append(f"penalty {_number(Decimal(penalty_per_day))}/day")
    return score, band, ", ".join(parts)
