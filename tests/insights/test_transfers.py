"""A transfer recommendation on two warehouses: raised as a case, asked for, approved by another
person (four-eyes), then the outbound message, the expected supply and the next run using it."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from allocation.insights import transfers

DAY = dt.date(2026, 6, 1)


@pytest.fixture
def allocated(two_warehouses, in_process_tasks, django_capture_on_commit_callbacks):
    from allocation.services import run_full

    run = run_full(as_of=DAY)
    assert run.status == "succeeded", run.error
    return two_warehouses


@pytest.mark.django_db
def test_idle_stock_at_one_warehouse_and_short_lines_at_the_other_make_one_recommendation(allocated):
    from allocation.models import Allocation

    assert not Allocation.objects.exists()  # WH-B lines cannot ship from WH-A: both short
    (found,) = transfers.recommend(DAY)
    assert (found.sku, found.source, found.destination, found.quantity, found.transit_days) == ("WIDGET", "WH-A", "WH-B", 40, 2)
    assert [(x["order"], x["quantity"]) for x in found.lines] == [("B-1", "30"), ("B-2", "10")]
    assert found.value_at_stake == Decimal("750.00")  # 30 x 20 + 10 x 15


@pytest.mark.django_db
def test_accepting_through_four_eyes_writes_the_message_and_supply_and_the_next_run_uses_it(
    allocated, planner, approver, in_process_tasks, django_capture_on_commit_callbacks
):
    from allocation.models import Allocation, Supply
    from exceptions import approvals
    from exceptions.errors import SelfApprovalRefused
    from exceptions.models import DecisionException
    from integrations.models import OutboxMessage

    outcome = transfers.refresh(DAY)
    assert outcome["raised"] == ["transfer:WIDGET:WH-A>WH-B"]
    assert transfers.refresh(DAY)["raised"] == []  # one case per recommendation
    case = DecisionException.objects.get(key="transfer:WIDGET:WH-A>WH-B")
    assert (case.type, case.status, case.value) == ("transfer_recommended", "open", Decimal("750.00"))
    assert "Transfer 40 of WIDGET from WH-A to WH-B" in case.message

    planner.groups.add(*approver.groups.all())  # even an approving planner cannot approve their own request
    approval = transfers.request(case.pk, actor=planner, note="move it")
    case.refresh_from_db()
    assert case.status == "awaiting_approval"
    assert not Supply.objects.filter(kind="transfer").exists() and not OutboxMessage.objects.filter(type="transfer.requested").exists()
    with pytest.raises(SelfApprovalRefused):
        approvals.approve(approval.pk, actor=planner)

    with django_capture_on_commit_callbacks(execute=True):
        approvals.approve(approval.pk, actor=approver, reason="ok")
    supply = Supply.objects.get(ref=f"TRF-{case.pk}")
    assert (supply.kind, supply.location.code, supply.quantity, supply.eta) == ("transfer", "WH-B", 40, DAY + dt.timedelta(days=2))
    message = OutboxMessage.objects.get(type="transfer.requested")
    assert message.message_id == f"transfer.requested:{case.pk}"
    assert message.payload["from"] == "WH-A" and message.payload["to"] == "WH-B" and message.payload["quantity"] == "40"
    assert message.payload["lines"] == [{"order": "B-1", "line": 1}, {"order": "B-2", "line": 1}]
    case.refresh_from_db()
    assert case.status == "resolved" and "approved by" in case.resolution_reason
    # The run the approval asked for allocated the transfer to both lines.
    taken = {(a.line.order.number, a.supply.ref if a.supply else None, a.quantity) for a in Allocation.objects.select_related("line__order", "supply")}
    assert taken == {("B-1", supply.ref, 30), ("B-2", supply.ref, 10)}
    assert transfers.refresh(DAY)["raised"] == []  # nothing short any more


@pytest.mark.django_db
def test_a_rejected_transfer_opens_the_case_again_and_executes_nothing(allocated, planner, approver):
    from allocation.models import Supply
    from exceptions import approvals
    from exceptions.models import DecisionException

    transfers.refresh(DAY)
    case = DecisionException.objects.get(type="transfer_recommended")
    approval = transfers.request(case.pk, actor=planner)
    approvals.reject(approval.pk, actor=approver, reason="truck full")
    case.refresh_from_db()
    assert case.status == "open"
    assert not Supply.objects.filter(kind="transfer").exists()


@pytest.mark.django_db
def test_only_a_planner_asks(allocated, approver):
    transfers.refresh(DAY)
    from exceptions.models import DecisionException

    with pytest.raises(transfers.TransferError):
        transfers.request(DecisionException.objects.get(type="transfer_recommended").pk, actor=approver)


@pytest.mark.django_db
def test_the_recommendations_screen_lists_the_transfer_and_stockout_and_refuses_other_roles(allocated, client, planner, finance):
    from allocation.insights import stockout

    transfers.refresh(DAY)
    stockout.check(DAY, horizon=14)
    client.force_login(finance)
    assert client.get("/insights/recommendations/").status_code == 403
    assert client.get("/insights/models/").status_code == 403
    client.force_login(planner)
    html = client.get("/insights/recommendations/").content.decode()
    assert 'data-key="transfer:WIDGET:WH-A&gt;WH-B"' in html and "750.00" in html
    assert 'data-key="stockout_risk:WIDGET@WH-B"' in html and "WIDGET at WH-B runs out now" in html
    assert client.post("/insights/recommendations/999999/request/").status_code == 302  # unknown: a message, nothing done
