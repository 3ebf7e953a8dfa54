"""In Chromium: a planner reads why a line is short, when it will be covered and which custom
factors exist (Why page), the order's projected dates and the run's price of fairness.
Screenshots go to artifacts/screenshots/depth-*.png."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from allocation.services import run_full
from tests.runs.test_depth_outputs import deep_engine  # noqa: F401 (fixture)
from tests.runs.test_quotes import MASTER, order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(django_settings.BASE_DIR) / "artifacts" / "screenshots"


def test_planner_reads_shortfall_reasons_projected_dates_and_the_price_of_fairness(
    page, live_server, planner, ingest_events, deep_engine  # noqa: F811
):
    ingest_events([*MASTER, order("q-1", "Q-1", "BIG", "10", kind="quote"), order("o-1", "SO-1", "SMALL", "15")])
    run = run_full(as_of=dt.date(2026, 6, 1))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", planner.username)
    page.fill("input[name=password]", "pw-" + planner.username)
    page.click("button[type=submit]")
    page.wait_for_load_state()

    page.goto(live_server.url + reverse("allocation:line_why", args=["SO-1", 1]))
    reason = page.locator("#shortfall-reasons tr[data-reason=taken_by_higher_rank]")
    assert reason.locator("td").nth(1).inner_text() == "5"
    assert "2026-06-12" in page.locator("#projected-date").inner_text()
    assert page.locator("#factor-plugins tr[data-plugin]").count() == 2
    page.locator("#shortfall-reasons").screenshot(path=str(SCREENSHOTS / "depth-why.png"))

    page.goto(live_server.url + reverse("allocation:order_detail", args=["SO-1"]))
    assert page.locator("td[data-projected='1']").inner_text() == "2026-06-12"
    page.screenshot(path=str(SCREENSHOTS / "depth-order.png"), full_page=True)

    page.goto(live_server.url + reverse("allocation:run_detail", args=[run.pk]))
    assert "10.0%" in page.locator("#price-of-fairness").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "depth-run.png"), full_page=True)
