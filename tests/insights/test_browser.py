"""In Chromium: the Models screen after training, and a transfer recommendation a planner asks for
and another approver accepts in Approvals. Screenshots go to /tmp/shots/ds/ (ALLOT_SHOTS_DIR)."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from django.urls import reverse

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("ALLOT_SHOTS_DIR", "/tmp/shots/ds"))
DAY = dt.date(2026, 6, 1)


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(page, live_server, user) -> None:
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pw-" + user.username)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_models_screen_and_a_transfer_accepted_through_approval(
    page, live_server, planner, approver, make_receipts, two_warehouses, in_process_tasks
):
    from allocation.insights import reliability, transfers
    from allocation.models import Supply
    from exceptions.models import DecisionException
    from integrations.models import OutboxMessage

    make_receipts("HARBOR", "WH-B", "purchase_order", [3, 0, 5, 2, 7, 1, -1, 4, 2, 6] * 3)
    make_receipts("KEYSTONE", "WH-B", "purchase_order", [0, -1, 0, 0, 0, 0, 1, 0, 0, 0] * 3)
    Supply.objects.create(ref="PO-OPEN-1", kind="purchase_order", item=two_warehouses["item"], location=two_warehouses["b"],
                          quantity=5, eta=DAY + dt.timedelta(days=20), supplier="HARBOR", confidence=1)
    version = reliability.train(as_of=DAY)
    transfers.refresh(DAY)
    case = DecisionException.objects.get(type="transfer_recommended")

    log_in(page, live_server, planner)
    page.goto(live_server.url + reverse("insights:models"))
    card = page.locator("[data-model=supplier_reliability]")
    assert card.locator("[data-status]").get_attribute("data-status") == version.status == "active"
    assert str(version.quality["brier"]) in card.inner_text()
    shot(page, "models")

    page.goto(live_server.url + reverse("insights:recommendation_detail", args=[case.pk]))
    assert "Transfer 40 of WIDGET from WH-A to WH-B" in page.inner_text("body")
    shot(page, "recommendation")
    page.fill("#note", "B is out, A has 50 idle")
    page.get_by_role("button", name="Ask for approval").click()
    page.wait_for_load_state()
    assert page.locator("[data-status=awaiting_approval]").count() == 1
    shot(page, "recommendation-awaiting")

    page.context.clear_cookies()
    log_in(page, live_server, approver)
    page.goto(live_server.url + reverse("exceptions:approval_inbox"))
    shot(page, "approval-inbox")
    page.locator("form[action*='/decide/'] button[value=approve]").first.click()
    page.wait_for_load_state()
    assert OutboxMessage.objects.filter(type="transfer.requested").count() == 1
    assert Supply.objects.filter(ref=f"TRF-{case.pk}", kind="transfer").exists()
    page.goto(live_server.url + reverse("insights:recommendation_detail", args=[case.pk]))
    shot(page, "recommendation-approved")
