"""Stockout risk: days of cover against open and recent demand, one case per item and location."""
from __future__ import annotations

import datetime as dt

import pytest

from allocation.insights import stockout

DAY = dt.date(2026, 6, 1)


@pytest.mark.django_db
def test_short_location_is_at_risk_and_resolves_when_covered(two_warehouses):
    from allocation.models import InventoryPosition
    from exceptions.models import DecisionException

    covers = {(c.sku, c.location): c for c in stockout.covers(DAY, horizon=14)}
    b = covers[("WIDGET", "WH-B")]
    assert (b.available, b.open_demand, b.days) == (0, 40, 0.0)
    assert ("WIDGET", "WH-A") not in covers  # no demand at WH-A
    outcome = stockout.check(DAY, horizon=14)
    assert outcome["raised"] == ["stockout_risk:WIDGET@WH-B"]
    assert stockout.check(DAY, horizon=14)["raised"] == []  # one case per item and location
    case = DecisionException.objects.get(key="stockout_risk:WIDGET@WH-B")
    # 40 open + 14 days x 40/30 a day - 0 on hand = 58.7 -> 59, needed today (it runs out now).
    assert (case.details["replenish_quantity"], case.details["replenish_by"]) == (59, "2026-06-01")
    assert "suggest replenishing 59 by 2026-06-01" in case.message
    assert (case.type, case.item.sku, case.location.code, case.severity) == ("stockout_risk", "WIDGET", "WH-B", "high")

    # 40 open + 40 ordered in the last 30 days (1.33/day): 100 on hand leaves 60, i.e. 45 days of cover.
    InventoryPosition.objects.filter(location__code="WH-B").update(on_hand=100)
    b = {(c.sku, c.location): c for c in stockout.covers(DAY, horizon=14)}[("WIDGET", "WH-B")]
    assert b.days == pytest.approx(45.0)
    assert stockout.check(DAY, horizon=14)["resolved"] == ["stockout_risk:WIDGET@WH-B"]
    case.refresh_from_db()
    assert case.status == "resolved"


@pytest.mark.django_db
def test_inbound_counts_by_confidence_within_the_horizon(two_warehouses):
    from allocation.models import Supply

    item, b = two_warehouses["item"], two_warehouses["b"]
    Supply.objects.create(ref="PO-1", kind="purchase_order", item=item, location=b, quantity=100, eta=DAY + dt.timedelta(days=3), confidence="0.5")
    Supply.objects.create(ref="PO-2", kind="purchase_order", item=item, location=b, quantity=100, eta=DAY + dt.timedelta(days=30))
    cover = {(c.sku, c.location): c for c in stockout.covers(DAY, horizon=14)}[("WIDGET", "WH-B")]
    assert cover.inbound == 50  # PO-1 at half, PO-2 beyond the horizon
    assert cover.days == pytest.approx(float(10 / (40 / 30)), abs=0.1)  # (50 - 40) / 1.33


@pytest.mark.django_db
def test_a_replenishment_suggestion_approved_by_another_writes_its_message(two_warehouses, planner, approver):
    from allocation.insights import transfers
    from exceptions import approvals
    from exceptions.errors import SelfApprovalRefused
    from exceptions.models import DecisionException
    from integrations.models import OutboxMessage

    stockout.check(DAY, horizon=14)
    case = DecisionException.objects.get(key="stockout_risk:WIDGET@WH-B")
    assert case.kind == "information"  # a risk to know of; the suggestion is a decision someone asks for
    approval = transfers.request(case.pk, actor=planner)
    assert approval.kind == "replenishment.suggestion"
    with pytest.raises(SelfApprovalRefused):
        approvals.approve(approval.pk, actor=planner, reason="mine")
    assert not OutboxMessage.objects.filter(type="replenishment.suggested").exists()
    approvals.approve(approval.pk, actor=approver, reason="buy it")
    message = OutboxMessage.objects.get(type="replenishment.suggested")
    assert message.message_id == f"replenishment.suggested:{case.pk}"
    assert {k: message.payload[k] for k in ("sku", "location", "quantity", "by", "requested_by")} == {
        "sku": "WIDGET", "location": "WH-B", "quantity": 59, "by": "2026-06-01", "requested_by": planner.username,
    }
    case.refresh_from_db()
    assert case.status == "resolved" and "replenishment of 59 WIDGET at WH-B" in case.resolution_reason
