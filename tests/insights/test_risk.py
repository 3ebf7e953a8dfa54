"""Late-order risk: from the line's allocations' confidences; fed to the risk factor only when weighted."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

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


def test_apply_sets_risk_only_where_the_policy_weights_it():
    from dataclasses import replace

    from allocation.engine.synthetic import synthetic_input
    from allocation.insights import risk

    engine_input = synthetic_input(200, seed=1)
    assert all(line.risk == 0 for line in risk.apply(engine_input.lines, engine_input.existing, engine_input.inbound))
    weighted = [
        replace(line, settings=replace(line.settings, weights=tuple((k, 0.2 if k == "risk" else w) for k, w in line.settings.weights)))
        for line in engine_input.lines
    ]
    scored = risk.apply(weighted, engine_input.existing, engine_input.inbound)
    assert {line.risk for line in scored if line.key not in {a.line_key for a in engine_input.existing}} == {1.0}  # nothing held
    held = [line for line in scored if line.key in {a.line_key for a in engine_input.existing}]
    assert held and all(0 <= line.risk <= 1 for line in held)


@pytest.mark.django_db
def test_the_late_order_risk_is_recorded_as_a_model_that_falls_back_and_says_why():
    from allocation.insights import risk, services
    from allocation.models import ModelVersion

    first = risk.record_version(as_of=dt.date(2026, 6, 1))
    assert (first.name, first.version, first.status) == ("late_order_risk", 1, "fallback")
    assert first.reason.startswith("no backtest")
    assert risk.record_version(as_of=dt.date(2026, 6, 2)).pk == first.pk  # unchanged: no new version
    outcome = services.refresh(as_of=dt.date(2026, 6, 1))
    assert outcome["late_order_risk_model"]["status"] == "fallback"
    assert ModelVersion.objects.filter(name="late_order_risk").count() == 1
