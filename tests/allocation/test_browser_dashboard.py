"""In Chromium: a planner lands on the dashboard, follows the "Backorder lines" card to the short
orders and sees each trend drawn by Chart.js served from static/ (nothing leaves the host); every
role's dashboard on a small demo book is screenshotted to /tmp/shots/kpi/ for a person to look at.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse

from allocation import kpis
from config import roles
from tests.allocation.test_kpis import AS_OF, NOW, book  # noqa: F401  (the hand-made book fixture)
from tests.fixtures.personas import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path("/tmp/shots/kpi")
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def log_in(page, live_server, user) -> None:
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pw-" + user.username)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def watch_requests(page) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    return seen


def outside(urls: list[str]) -> list[str]:
    return [u for u in urls if urlparse(u).scheme in ("http", "https", "ws", "wss")
            and urlparse(u).hostname not in LOCAL_HOSTS]


def test_planner_lands_on_the_dashboard_and_drills_into_the_short_orders(page, live_server, book):  # noqa: F811
    ctx = kpis.Context(now=NOW, as_of=AS_OF)
    for back in (2, 1):
        kpis.snapshot(AS_OF - dt.timedelta(days=back), ctx=ctx)
    kpis.snapshot(AS_OF, ctx=ctx)
    requests = watch_requests(page)
    log_in(page, live_server, make_user("pia_planner", roles.PLANNER))
    assert urlparse(page.url).path == reverse("allocation:dashboard")
    assert page.get_by_role("heading", name="Planning").is_visible()

    card = page.locator('article.kpi-card[data-kpi="backorder_lines"]')
    assert card.locator(".kpi-value").inner_text().startswith("2")  # O2/1 short 3, O4/1 short 2
    # The trend is drawn: Chart.js (from static/) made the canvas visible, sized it and painted it.
    canvas = card.locator("canvas.kpi-chart")
    canvas.wait_for(state="visible")
    assert page.evaluate("typeof Chart") == "function"
    box = canvas.bounding_box()
    assert box["width"] > 150 and box["height"] > 80
    painted = canvas.evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"
    )
    assert painted > 500
    assert card.locator("table.kpi-data").evaluate("t => t.classList.contains('visually-hidden')")
    assert any(u.endswith("/vendor/chartjs/chart.umd.min.js") for u in requests)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "planner-scenario.png"), full_page=True)

    card.locator("a.kpi-drill").click()
    page.wait_for_load_state()
    assert urlparse(page.url).path == reverse("allocation:order_list")
    query = parse_qs(urlparse(page.url).query)
    assert query["status"] == ["open"] and query["has_shortage"] == ["true"]
    shown = page.locator("#results tbody tr").evaluate_all("rows => rows.map(r => r.dataset.key)")
    assert sorted(shown) == ["O2", "O4"]
    assert page.locator("#results tbody tr .badge.warn", has_text="short").count() == 2
    assert outside(requests) == []


@pytest.fixture
def demo_book(transactional_db, settings):
    """A small demo book (the demo generator through ingestion), one full run, 30 days of snapshots."""
    from allocation.demo import load_demo_book
    from allocation.services import run_full

    settings.CELERY_TASK_ALWAYS_EAGER = True
    load_demo_book(seed=7, lines=600, business_date=AS_OF, batch_size=2000)
    run = run_full(trigger="manual")
    assert run.status == "succeeded", run.error
    kpis.backfill_demo_history()


def test_every_roles_dashboard_on_a_demo_book(page, live_server, demo_book):
    SHOTS.mkdir(parents=True, exist_ok=True)
    requests = watch_requests(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    for role, title, codes in kpis.ROLE_DASHBOARDS:
        user = make_user(f"shot_{role}", role)
        page.context.clear_cookies()
        log_in(page, live_server, user)
        assert urlparse(page.url).path == reverse("allocation:dashboard")
        section = page.locator(f"section[aria-labelledby='section-{role}']")
        assert section.get_by_role("heading", name=title, exact=True).is_visible()
        assert section.locator("article.kpi-card").count() == len(codes)
        # every card with a trend of two or more days drew it
        page.wait_for_function(
            "() => [...document.querySelectorAll('figure.kpi-trend')].every(f => f.dataset.drawn)"
        )
        page.screenshot(path=str(SHOTS / f"{role}.png"), full_page=True)
    assert outside(requests) == []
