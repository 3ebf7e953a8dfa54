"""The planner's flows in a real browser (Debian's Chromium, headless), with screenshots in
artifacts/screenshots/ for a person to look at."""
import re
from decimal import Decimal
from pathlib import Path

import pytest

from allocation.choices import AllocationState
from allocation.models import Allocation
from exceptions.choices import ExceptionType
from exceptions.models import ApprovalRequest, DecisionException

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


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


def test_claim_override_with_reason_then_another_user_approves(page, live_server, world, planner, approver, recorded_runs):
    world.stock(world.east, 2000)
    line = world.line(world.hospital, 1500, unit_price="10")  # worth 15,000: needs an approver
    other = world.line(world.shop, 300, unit_price="10")
    world.allocate(other, world.east, 300)
    exception = world.exception(line)

    log_in(page, live_server, planner)
    page.goto(f"{live_server.url}/exceptions/{exception.pk}/")
    page.click("#form-claim button")
    page.wait_for_selector("text=Claimed.")
    page.click("#override summary")
    page.select_option("#form-override select[name=option]", "VALVE-10|DC-EAST|")
    page.fill("#form-override input[name=quantity]", "1500")
    page.select_option("#form-override select[name=reason_code]", "customer_commitment")
    page.fill("#form-override input[name=note]", "ward reopening")
    page.wait_for_selector("#consequence >> text=needs an approver")
    shot(page, "override-consequence")
    page.click("#form-override button[type=submit]")
    page.wait_for_selector("text=Waiting for an approver")
    shot(page, "override-awaiting-approval")
    assert Allocation.objects.filter(line=line).count() == 0

    log_in(page, live_server, approver)
    page.goto(f"{live_server.url}/exceptions/approvals/")
    approval = ApprovalRequest.objects.get()
    row = page.locator(f"tr[data-key='{approval.pk}']")
    row.locator("input[name=reason]").fill("agreed with sales")
    shot(page, "approval-inbox")
    row.locator("button[value=approve]").click()
    page.wait_for_selector(f"text=Approved request #{approval.pk}.")
    assert list(Allocation.objects.filter(line=line).values_list("quantity", "state")) == [(Decimal("1500.000"), "pinned")]
    exception.refresh_from_db()
    assert exception.status == "resolved"


def test_accept_a_proposed_substitution(page, live_server, world, planner, recorded_runs):
    world.stock(world.east, 10, item=world.substitute)
    line = world.line(world.hospital, 10, allow_substitute=True)
    world.allocate(line, world.east, 10, state=AllocationState.PROPOSED, item=world.substitute)
    world.exception(line, ExceptionType.SUBSTITUTION_PROPOSED)
    log_in(page, live_server, planner)
    page.goto(f"{live_server.url}/exceptions/queues/substitutions/")
    page.keyboard.press("j")
    page.keyboard.press("a")  # accept from the queue, by keyboard
    page.wait_for_selector("text=Substitution accepted")
    shot(page, "substitution-accepted")
    assert list(Allocation.objects.filter(line=line).values_list("item__sku", "state")) == [("VALVE-10B", "reserved")]


def test_bulk_dismiss(page, live_server, world, planner):
    exceptions = [world.exception(world.line(world.shop, 1)) for _ in range(3)]
    log_in(page, live_server, planner)
    page.goto(f"{live_server.url}/exceptions/queues/shortages/")
    for exception in exceptions[:2]:
        page.check(f"input[name=selected][value='{exception.pk}:1']")
    page.select_option("select[name=action]", "dismiss")
    page.fill("#bulk input[name=reason]", "duplicates of SO-9")
    shot(page, "bulk-before")
    page.click("text=Apply to selected")
    page.wait_for_selector("text=Dismiss: 2 done.")
    shot(page, "bulk-after")
    statuses = list(DecisionException.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == ["dismissed", "dismissed", "open"]


def test_keyboard_navigation_through_a_queue(page, live_server, world, planner):
    exceptions = [world.exception(world.line(world.shop, 1, unit_price=str(10 * (i + 1)))) for i in range(3)]
    log_in(page, live_server, planner)
    page.goto(f"{live_server.url}/exceptions/queues/shortages/?sort=value")
    page.keyboard.press("j")
    page.keyboard.press("j")
    second = exceptions[1]
    assert page.locator("tr.selected").get_attribute("data-key") == str(second.pk)
    page.keyboard.press("k")
    assert page.locator("tr.selected").get_attribute("data-key") == str(exceptions[2].pk)
    page.keyboard.press("?")
    assert page.locator("#key-help").is_visible()
    shot(page, "queue-keyboard-help")
    page.keyboard.press("Escape")
    page.keyboard.press("c")
    page.wait_for_selector("text=Claimed.")
    assert DecisionException.objects.get(pk=exceptions[2].pk).status == "claimed"
    page.goto(f"{live_server.url}/exceptions/queues/shortages/?sort=value")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/exceptions/{exceptions[2].pk}/$"))
    page.goto(f"{live_server.url}/exceptions/queues/shortages/?sort=value")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("o")  # the override form opens in the queue's side panel, not on another page
    page.wait_for_selector("#case-panel details#panel-override[open]")
    assert page.locator("#case-panel [data-case]").get_attribute("data-case") == str(exceptions[1].pk)
    assert page.evaluate("document.activeElement.name") == "option"
    shot(page, "queue-panel-override-open")


def test_workbench_moves_quantity_between_two_lines(page, live_server, world, planner, recorded_runs):
    world.stock(world.east, 40)
    hospital = world.line(world.hospital, 20, unit_price="10")
    shop = world.line(world.shop, 30, unit_price="10")
    world.allocate(hospital, world.east, 10)
    world.allocate(shop, world.east, 30)
    log_in(page, live_server, planner)
    page.goto(f"{live_server.url}/exceptions/workbench/VALVE-10/?location=DC-EAST")
    assert page.locator("#unassigned").inner_text() == "0"
    assert page.locator("#commit").is_disabled()
    page.fill(f"input[name=line-{shop.pk}]", "20")
    assert page.locator("#freed").inner_text() == "10"
    assert page.locator("#unassigned").inner_text() == "10"
    page.fill(f"input[name=line-{hospital.pk}]", "25")
    assert page.locator("#unassigned").inner_text() == "-5"
    assert page.locator("#commit").is_disabled()
    shot(page, "workbench-over")
    page.fill(f"input[name=line-{hospital.pk}]", "20")
    assert (page.locator("#given").inner_text(), page.locator("#unassigned").inner_text()) == ("10", "0")
    page.select_option("select[name=reason_code]", "customer_commitment")
    page.fill("input[name=note]", "hospital first")
    shot(page, "workbench-balanced")
    page.click("#commit")
    page.wait_for_selector("text=Workbench committed")
    shot(page, "workbench-committed")
    assert list(Allocation.objects.filter(line=hospital).values_list("quantity", "state")) == [(Decimal("20.000"), "pinned")]
    assert list(Allocation.objects.filter(line=shop).values_list("quantity", "state")) == [(Decimal("20.000"), "pinned")]


def test_stale_claim_shows_what_changed(page, live_server, world, planner, customer_service):
    from exceptions import services

    exception = world.exception(world.line(world.shop, 1))
    log_in(page, live_server, planner)
    page.goto(f"{live_server.url}/exceptions/{exception.pk}/")
    services.claim(exception.pk, actor=customer_service, expected_version=1)  # someone else, meanwhile
    page.click("#form-claim button")
    page.wait_for_selector("#stale")
    assert "claimed by casey_cs" in page.locator("#stale").inner_text()
    shot(page, "stale-claim")
    exception.refresh_from_db()
    assert (exception.assignee, exception.version) == (customer_service, 2)
