"""Finance in a real browser (Debian's Chromium, headless): from an order page to a given
override, its approver and reason in at most three clicks. Screenshots in /tmp/shots/audit/."""
from pathlib import Path

import pytest

from exceptions import approvals, services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/shots/audit")


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(page, live_server, user):
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", f"pw-{user.username}")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_load_state()


def test_finance_finds_an_override_from_the_order_page_in_three_clicks(
    page, live_server, world, active_policy, run_all, planner, approver, finance
):
    world.stock(world.east, 2000)
    line = world.line(world.hospital, 1500, unit_price="10")
    run_all()
    exception = world.exception(line)
    services.claim(exception.pk, actor=planner, expected_version=exception.version)
    exception.refresh_from_db()
    approval = services.override(exception.pk, actor=planner, expected_version=exception.version, location="DC-EAST",
                                 quantity="1500", reason_code="customer_commitment", note="ward reopening").approval
    approvals.approve(approval.pk, actor=approver, reason="agreed with sales")

    log_in(page, live_server, finance)
    page.goto(f"{live_server.url}/orders/{line.order.number}/")
    page.wait_for_selector("#timeline table.audit")  # the timeline loads with the page (HTMX)
    shot(page, "order-timeline")
    clicks = 0
    page.click(f"#timeline a:text('Approval #{approval.pk}')")  # 1
    clicks += 1
    page.wait_for_selector("#decision-reason")
    shot(page, "approval-detail")
    assert clicks <= 3
    text = page.inner_text("main")
    assert "Override SO-1/1: pin 1500 at DC-EAST on hand" in text
    assert "agreed with sales" in text and "avery_approver" in text and "pat_planner" in text
    assert "ward reopening" in text

    page.click("nav.mainnav a:text('Audit')")
    page.select_option("select[name=kind]", "override")
    page.wait_for_selector("tr[data-kind='override']")
    shot(page, "audit-trail-overrides")
    page.goto(f"{live_server.url}/audit/credit-holds/")
    shot(page, "credit-holds")
    page.goto(f"{live_server.url}/audit/approvals/")
    shot(page, "overrides-and-approvals")
    page.goto(f"{live_server.url}/audit/policy-changes/")
    shot(page, "policy-changes")
    page.goto(f"{live_server.url}/orders/{line.order.number}/lines/1/why/?at=2100-01-01T00:00")
    shot(page, "why-at")
