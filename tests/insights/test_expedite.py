"""Expedite: inbound that makes valuable lines late is a case; approved by another person, it
writes purchase.expedite_requested and nothing else."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from allocation.insights import expedite, transfers

DAY = dt.date(2026, 6, 1)


@pytest.fixture
def late_inbound(two_warehouses, in_process_tasks, django_capture_on_commit_callbacks):
    """WH-A's stock is gone; a PO of 40 at WH-B due in 10 days is all B-1 and B-2 (due today) can have."""
    from allocation.models import InventoryPosition, Supply
    from allocation.services import run_full

    InventoryPosition.objects.filter(location__code="WH-A").update(on_hand=0)
    Supply.objects.create(ref="PO-SLOW", kind="purchase_order", item=two_warehouses["item"], location=two_warehouses["b"],
                          quantity=40, eta=DAY + dt.timedelta(days=10), supplier="HARBOR", confidence=1)
    assert run_full(as_of=DAY).status == "succeeded"
    return two_warehouses


@pytest.mark.django_db
def test_late_inbound_blocking_lines_is_recommended_for_expedite_and_approved_sends_the_message(late_inbound, planner, approver):
    from allocation.models import Supply
    from exceptions import approvals
    from exceptions.models import DecisionException
    from integrations.models import OutboxMessage

    (found,) = expedite.recommend(DAY)
    assert (found["ref"], found["value_at_stake"], found["needed_by"]) == ("PO-SLOW", Decimal("750.00"), DAY)
    assert expedite.refresh(DAY)["raised"] == ["expedite:PO-SLOW"]
    assert expedite.refresh(DAY)["raised"] == []
    case = DecisionException.objects.get(key="expedite:PO-SLOW")
    assert case.type == "expedite_recommended" and case.value == Decimal("750.00") and "needed by 2026-06-01" in case.message

    approval = transfers.request(case.pk, actor=planner)
    assert approval.kind == "expedite.recommendation"
    approvals.approve(approval.pk, actor=approver, reason="call them")
    message = OutboxMessage.objects.get(type="purchase.expedite_requested")
    assert message.message_id == f"purchase.expedite_requested:{case.pk}"
    assert (message.payload["ref"], message.payload["supplier"], message.payload["needed_by"]) == ("PO-SLOW", "HARBOR", "2026-06-01")
    assert Supply.objects.get(ref="PO-SLOW").eta == DAY + dt.timedelta(days=10)  # the ERP sends the new ETA
    case.refresh_from_db()
    assert case.status == "resolved"
