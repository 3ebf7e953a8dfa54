"""Jeopardy scoring (pure) and what run exception sync writes: reasons, history, routing."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from exceptions.jeopardy import jeopardy
from exceptions.models import DecisionException


def test_jeopardy_scores_days_tier_penalty_and_value():
    score, band, reason = jeopardy(
        8, 1, Decimal("500"), Decimal("6000"), promised=dt.date(2026, 6, 2), confirmed=dt.date(2026, 6, 10)
    )
    # 8 days x tier weight 4 x (500 penalty + 1% of 6,000)
    assert (score, band, reason) == (Decimal("17920.00"), "high", "promised 06-02, confirmed 06-10, tier 1, penalty 500/day")


@pytest.mark.parametrize(
    ("days", "tier", "penalty", "value", "expected"),
    [
        (0, 1, "500", "6000", (Decimal("0.00"), "low", "0 days late, tier 1, penalty 500/day")),
        (3, 4, "0", "4000", (Decimal("120.00"), "low", "3 days late, tier 4, penalty 0/day")),
        (5, 2, "50", "2000", (Decimal("1050.00"), "medium", "5 days late, tier 2, penalty 50/day")),
        (-2, 3, "10", "100", (Decimal("0.00"), "low", "0 days late, tier 3, penalty 10/day")),
    ],
)
def test_jeopardy_bands(days, tier, penalty, value, expected):
    assert jeopardy(days, tier, Decimal(penalty), Decimal(value)) == expected


def test_jeopardy_reason_names_uncovered_quantity():
    assert jeopardy(30, 2, Decimal("0"), Decimal("1000"), promised=dt.date(2026, 6, 3), uncovered=Decimal("12.500"))[2] == (
        "promised 06-03, 12.5 uncovered, tier 2, penalty 0/day"
    )


@pytest.mark.django_db
def test_run_exceptions_carry_jeopardy_a_queue_and_history(valves_stage1):
    at_risk = DecisionException.objects.get(type="promise_at_risk", line__order__number="SO-3")
    # SO-3: CITY-1 tier 3, no penalty, 40 x 100 = 4,000; due 06-03, confirmed 06-10: 7 days late
    assert (at_risk.jeopardy_score, at_risk.jeopardy_band, at_risk.jeopardy_reason, at_risk.value) == (
        Decimal("560.00"), "low", "promised 06-03, confirmed 06-10, tier 3, penalty 0/day", Decimal("4000.00"),
    )
    assert (at_risk.source, at_risk.status, at_risk.version, at_risk.severity) == ("allocation", "open", 1, "low")
    # Routed as exceptions.routing would route it, before the insert: one write, one history row
    assert at_risk.queue.name == "Promises at risk"
    assert at_risk.due_at == at_risk.raised_at + dt.timedelta(minutes=at_risk.queue.sla_minutes)
    assert [h.history_change_reason for h in at_risk.history.order_by("history_id")] == [
        f"raised by allocation run #{at_risk.run_id}",
    ]
    from exceptions import routing

    at_risk.queue = None
    routing.route([at_risk], now=at_risk.raised_at)
    assert at_risk.queue.name == "Promises at risk"


@pytest.mark.django_db
def test_an_exception_no_longer_raised_is_resolved_with_the_run_named(valves_stage1, ingest_events):
    from allocation.services import run_full

    at_risk = DecisionException.objects.get(type="promise_at_risk", line__order__number="SO-4", line__line=1)
    cancel = {"id": "erp-cancel-4", "type": "order.cancelled", "source": "erp",
              "occurred_at": "2026-06-01T09:00:00Z", "data": {"number": "SO-4", "reason": "customer"}}
    ingest_events([cancel])
    run_full()  # nothing left to change: the event's incremental run already resolved it
    at_risk.refresh_from_db()
    event_run = at_risk.history.latest("history_id")
    assert at_risk.status == "resolved"
    assert at_risk.resolution_reason.startswith("no longer raised by run #")
    assert at_risk.version == 2
    assert event_run.history_change_reason.startswith("auto-resolved by allocation run #")
