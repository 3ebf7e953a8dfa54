"""In Chromium: a planner opens DC-EAST's Release screen (capacity, preview, held back and
why), runs the wave and reads its detail; then accepts a recommendation from the queue.

Screenshots go to /tmp/shots/release/ for a person to look at.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from allocation.models import Allocation, Wave

from .conftest import order
from .test_execution_mode import RECOMMEND_WEST

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/shots/release")


def log_in(page, live_server, user) -> None:
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pw-" + user.username)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_a_planner_previews_and_runs_a_wave_then_accepts_a_recommendation(
    page, live_server, planner, world, ingest, full_run, activate_policy
):
    SHOTS.mkdir(parents=True, exist_ok=True)
    activate_policy(RECOMMEND_WEST, {"scope": {"customer": "CUST-B"}, "settings": {"auto_release_max_value": 15}})
    ingest([
        order("SC1", "CUST-A", [(1, "BOLT", 5, "2.00", "DC-EAST"), (2, "GEAR", 5, "2.00", "DC-EAST")],
              ship_complete=True, created="2026-05-20T10:00:00Z", at="2026-06-01T07:00:00Z"),
        order("W4", "CUST-W", [(1, "BOLT", 5, "2.00", "DC-WEST")], at="2026-06-01T07:00:00Z"),
        order("E6", "CUST-C", [(1, "NUT", 5, "2.00", "DC-EAST")], at="2026-06-01T07:00:00Z"),
    ])
    full_run()
    log_in(page, live_server, planner)

    page.get_by_role("link", name="Release").first.click()
    page.locator("#locations").wait_for()
    page.click("text=DC-EAST")
    page.locator("#capacity").wait_for()
    assert page.locator("[data-remaining]").inner_text() == "3 lines"
    held = page.locator("#preview-held tr[data-reason]")
    reasons = {held.nth(i).get_attribute("data-reason") for i in range(held.count())}
    assert reasons == {"ship_complete_incomplete", "approval_required", "capacity"}
    page.screenshot(path=str(SHOTS / "release-location.png"), full_page=True)

    page.get_by_role("button", name="Run release wave now").click()
    page.locator(".messages li", has_text="Wave #").wait_for()
    wave = Wave.objects.get()
    assert page.url.endswith(reverse("allocation:wave_detail", args=[wave.pk]))
    assert wave.released_count == 3
    page.screenshot(path=str(SHOTS / "wave-detail.png"), full_page=True)

    page.goto(live_server.url + reverse("allocation:release_location", args=["DC-EAST"]))
    assert page.locator("[data-remaining]").inner_text() == "0 lines"
    assert page.locator(f"tr[data-wave='{wave.pk}']").count() == 1
    page.screenshot(path=str(SHOTS / "release-location-after.png"), full_page=True)

    page.goto(live_server.url + reverse("allocation:recommendation_queue"))
    page.locator("tr[data-line='W4/1']").wait_for()
    page.screenshot(path=str(SHOTS / "recommendations.png"), full_page=True)
    page.locator("tr[data-line='W4/1'] button[name=single]").click()
    page.locator(".messages li", has_text="Accepted 1 line").wait_for()
    assert Allocation.objects.get(line__order__number="W4").state == "reserved"
