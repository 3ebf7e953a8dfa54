"""Late-order risk: from the line's allocations' confidences; fed to the risk factor only when weighted."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from allocation.insights.risk import line_risk

DUE = dt.date(2026, 6, 10)


def test_on_hand_on_time_is_no_risk_and_inbound_carries_its_confidence():
    assert line_risk(quantity=Decimal(10), due=DUE, tolerance_days=0, parts=[(None, Decimal(10), DUE)], confidence={}) == 0.0
    parts = [("PO-1", Decimal(5), DUE), ("PO-2", Decimal(5), DUE)]
    assert line_risk(quantity=Decimal(10), due=DUE, tolerance_days=0, parts=parts, confidence={"PO-1": 0.8, "PO-2": 0.5}) == 0.6


def test_short_or_confirmed_late_is_certain_risk_within_tolerance_not():
    assert line_risk(quantity=Decimal(10), due=DUE, tolerance_days=0, parts=[(None, Decimal(4), DUE)], confidence={}) == 1.0
    late = [(None, Decimal(10), DUE + dt.timedelta(days=2))]
    assert line_risk(quantity=Decimal(10), due=DUE, tolerance_days=0, parts=late, confidence={}) == 1.0
    assert line_risk(quantity=Decimal(10), due=DUE, tolerance_days=2, parts=late, confidence={}) == 0.0
