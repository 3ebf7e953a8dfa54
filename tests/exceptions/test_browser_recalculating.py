"""In a real browser: an override answers at once, the exception page says "Recalculating" while
its run waits on the background thread, and updates by itself when the decisions land."""
import os
import threading
from pathlib import Path

import pytest

from allocation.models import Allocation, AllocationRun
from config import inprocess

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("ALLOT_SCREENSHOTS", Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"))


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_an_override_shows_recalculating_then_the_page_updates_by_itself(
    page, live_server, world, planner, settings, in_process_tasks
):
    settings.ALLOT_INPROCESS_BACKGROUND = True
    world.stock(world.east, 40)
    world.stock(world.west, 5)
    hospital = world.line(world.hospital, 20, unit_price="10")
    shop = world.line(world.shop, 30, unit_price="10")
    world.allocate(hospital, world.east, 10)
    world.allocate(shop, world.east, 30)
    exception = world.exception(hospital)

    # Keep the background thread busy so the run is seen waiting; opened after the screenshot.
    opened, busy = threading.Event(), threading.Event()
    inprocess.executor.submit(lambda: (busy.set(), opened.wait(30)))
    assert busy.wait(5)
    try:
        page.context.clear_cookies()
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", planner.username)
        page.fill("input[name=password]", f"pw-{planner.username}")
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_load_state()
        page.goto(f"{live_server.url}/exceptions/{exception.pk}/")
        page.click("#form-claim button")
        page.wait_for_selector("text=Claimed.")
        page.click("#override summary")
        page.select_option("#form-override select[name=option]", "VALVE-10|DC-WEST|")
        page.fill("#form-override input[name=quantity]", "5")
        page.select_option("#form-override select[name=reason_code]", "expedite")
        page.fill("#form-override input[name=note]", "rush for the ward")
        page.click("#form-override button[type=submit]")
        page.wait_for_selector("#run-follow[data-status=queued] >> text=Recalculating")
        assert AllocationRun.objects.get().status == "queued"
        shot(page, "k_recalculating")
    finally:
        opened.set()
    # No click: the block polls, sees the run finish, and the page reloads with the new decisions.
    page.wait_for_selector("#run-follow[data-status=succeeded] >> text=Decisions updated", timeout=20000)
    shot(page, "k_decisions_updated")
    assert inprocess.executor.wait_idle(30)
    assert sorted(Allocation.objects.filter(line=hospital).values_list("location__code", "state")) == [
        ("DC-EAST", "reserved"), ("DC-WEST", "pinned"),
    ]
    assert "DC-EAST" in page.locator("body").inner_text()
