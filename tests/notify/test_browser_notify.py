"""Claim take-over in a real browser (Debian's Chromium): the second planner is asked to
confirm and give a reason; the first planner, whose page stays open, sees the bell count rise
without reloading, and opening the notifications page shows why. Screenshots in
/tmp/shots/notify/ (ALLOT_SHOTS_DIR) for a person to look at."""
import os
from pathlib import Path

import pytest

from exceptions import services
from exceptions.models import DecisionException, Notification

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("ALLOT_SHOTS_DIR", "/tmp/shots/notify"))


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(page, live_server, user):
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", f"pw-{user.username}")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_load_state()


def test_take_over_asks_for_confirmation_and_reason_and_the_first_planner_is_told(
    browser, live_server, world, planner, customer_service
):
    world.stock(world.east, 40)
    line = world.line(world.hospital, 20, unit_price="10")
    world.allocate(line, world.east, 10)
    case = world.exception(line)
    services.claim(case.pk, actor=planner, expected_version=1)

    first = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    log_in(first, live_server, planner)
    first.goto(f"{live_server.url}/exceptions/{case.pk}/")
    bell = first.locator("#bell")
    bell.wait_for()
    assert first.locator("[data-testid=bell-count]").count() == 0  # nothing unread yet
    first.evaluate("window.__notReloaded = true")

    second = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(second, live_server, customer_service)
    second.goto(f"{live_server.url}/exceptions/{case.pk}/")
    second.click("#take-over summary")
    form = second.locator("#form-take-over")
    form.wait_for(state="visible")
    # Asked for both: without the reason the browser refuses to submit, and nothing changes.
    form.locator("input[name=take_over]").check()
    form.locator("button[type=submit]").click()
    assert second.evaluate("document.querySelector('#form-take-over input[name=reason]').validity.valueMissing")
    assert DecisionException.objects.get(pk=case.pk).assignee == planner
    form.locator("input[name=reason]").fill("customer on the phone, Pat is in a meeting")
    form.locator("input[name=take_over]").uncheck()
    form.locator("button[type=submit]").click()
    assert second.evaluate("document.querySelector('#form-take-over input[name=take_over]').validity.valueMissing")
    assert DecisionException.objects.get(pk=case.pk).assignee == planner
    form.locator("input[name=take_over]").check()
    shot(second, "1-take-over-asks-confirmation-and-reason")
    form.locator("button[type=submit]").click()
    second.wait_for_selector("text=Taken over from pat_planner; they have been told.")
    shot(second, "2-taken-over")
    assert DecisionException.objects.get(pk=case.pk).assignee == customer_service
    assert Notification.objects.filter(recipient=planner, kind="claim_taken_over").count() == 1

    # The first planner's open page: the bell rises by itself (HTMX refresh, no reload).
    first.wait_for_selector("[data-testid=bell-count]", timeout=25000)
    assert first.locator("[data-testid=bell-count]").inner_text() == "1"
    assert first.evaluate("window.__notReloaded === true")
    shot(first, "3-first-planner-bell-count")
    first.click("#bell")
    first.wait_for_selector("h1:has-text('Notifications')")
    row = first.locator("table.notifications tr.new")
    assert row.count() == 1
    assert "casey_cs took over your claim" in row.inner_text() and "customer on the phone" in row.inner_text()
    shot(first, "4-notifications-page")
    # Shown means read: the bell is empty on the next page.
    first.goto(f"{live_server.url}/exceptions/{case.pk}/")
    first.locator("#bell").wait_for()
    first.wait_for_timeout(800)
    assert first.locator("[data-testid=bell-count]").count() == 0
    assert Notification.objects.get(recipient=planner).read_at is not None
