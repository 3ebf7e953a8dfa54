"""Stockout risk per item and location (issue 13 item 3), raised and resolved as cases by beat.

Days of cover = (available on hand + open inbound due within the horizon, each counted times
the confidence ATP uses for it - open demand there) / the daily demand rate (order lines placed
in the last ``window_days`` for that item and location, divided by the window). Nothing left
after open demand is 0 days. An item and location with demand whose cover is below
``ALLOT_STOCKOUT_HORIZON_DAYS`` is at risk: one ``stockout_risk`` case per item and location
(key ``stockout_risk:<sku>@<location>``), resolved when it no longer is.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from allocation.insights import demand
from exceptions.choices import ExceptionType, Severity
from integrations.outbox import quantity_text

WINDOW_DAYS = 30


def horizon_days() -> int:
    return int(getattr(settings, "ALLOT_STOCKOUT_HORIZON_DAYS", 14))


@dataclass(frozen=True)
class Cover:
    sku: str
    location: str
    available: Decimal
    inbound: Decimal  # confidence-weighted, due within the horizon
    open_demand: Decimal
    daily_rate: Decimal
    days: float | None  # None: no demand

    @property
    def key(self) -> str:
        return f"{ExceptionType.STOCKOUT_RISK}:{self.sku}@{self.location}"

    def replenishment(self, as_of: dt.date, horizon: int) -> tuple[int, dt.date]:
        """A suggestion: enough to meet open demand and the horizon's demand at the recent rate,
        needed by the day it runs out."""
        need = self.open_demand + self.daily_rate * horizon - self.available - self.inbound
        return max(math.ceil(need), 0), as_of + dt.timedelta(days=math.floor(self.days or 0))


def covers(as_of: dt.date, *, horizon: int | None = None, pic: demand.Picture | None = None) -> list[Cover]:
    horizon = horizon_days() if horizon is None else horizon
    pic = pic or demand.picture(as_of, window_days=WINDOW_DAYS)
    until = as_of + dt.timedelta(days=horizon)
    keys = set(pic.open_demand) | set(pic.recent_demand)
    result = []
    for sku, code in sorted(keys):
        available = pic.available.get((sku, code), demand.ZERO)
        inbound = sum(
            (quantity * Decimal(str(confidence)) for eta, quantity, confidence, _ in pic.inbound.get((sku, code), ()) if eta <= until),
            demand.ZERO,
        )
        open_demand = pic.open_demand.get((sku, code), demand.ZERO)
        rate = pic.recent_demand.get((sku, code), demand.ZERO) / WINDOW_DAYS
        left = available + inbound - open_demand
        if left <= 0:
            days: float | None = 0.0
        elif rate > 0:
            days = round(float(left / rate), 1)
        else:
            days = None
        result.append(Cover(sku, code, available, inbound, open_demand, rate, days))
    return result


def check(as_of: dt.date, *, horizon: int | None = None) -> dict[str, Any]:
    """Raise a case for each item and location at risk without one, resolve the others (beat)."""
    from allocation.insights import cases
    from allocation.models import Item, Location

    horizon = horizon_days() if horizon is None else horizon
    at_risk = [c for c in covers(as_of, horizon=horizon) if c.days is not None and c.days < horizon]
    active = cases.active_keys(ExceptionType.STOCKOUT_RISK)
    wanted = {c.key: c for c in at_risk}
    items = dict(Item.objects.filter(sku__in={c.sku for c in at_risk}).values_list("sku", "pk"))
    locations = dict(Location.objects.filter(code__in={c.location for c in at_risk}).values_list("code", "pk"))
    issues = [
        cases.NewCase(
            type=ExceptionType.STOCKOUT_RISK,
            key=key,
            message=(
                f"{c.sku} at {c.location} runs out {'now' if c.days == 0 else f'in {c.days:g} days'} "
                f"(horizon {horizon} days): {quantity_text(c.available)} on hand + {c.inbound:.0f} inbound by confidence "
                f"- {quantity_text(c.open_demand)} open demand, {c.daily_rate:.1f}/day recently; "
                f"suggest replenishing {c.replenishment(as_of, horizon)[0]} by {c.replenishment(as_of, horizon)[1].isoformat()}"
            ),
            details={
                "sku": c.sku, "location": c.location, "days_of_cover": c.days, "horizon_days": horizon,
                "available": str(c.available), "inbound_by_confidence": str(round(c.inbound, 3)),
                "open_demand": str(c.open_demand), "daily_rate": str(round(c.daily_rate, 3)), "as_of": as_of.isoformat(),
                "replenish_quantity": c.replenishment(as_of, horizon)[0],
                "replenish_by": c.replenishment(as_of, horizon)[1].isoformat(),
            },
            severity=Severity.HIGH if c.days == 0 else Severity.MEDIUM,
            # A risk to know of, not a decision: the decisions are the transfer and expedite
            # recommendations (work cases) and the buyer's replenishment.
            kind="information",
            item_id=items.get(c.sku),
            location_id=locations.get(c.location),
        )
        for key, c in wanted.items()
        if key not in active
    ]
    gone = {key: "no longer at risk within the horizon" for key in active - set(wanted)}
    with transaction.atomic():
        cases.open_cases(issues, what="stockout risk")
        cases.resolve_cases(gone, what="stockout risk")
    return {"at_risk": len(wanted), "raised": sorted(i.key for i in issues), "resolved": sorted(gone)}
