"""The queue a planner works all day, in a real browser (Debian's Chromium, headless): five
cases cleared in a row from the side panel without a page load, a saved view of filters
applied through HTMX reopening filtered, and the queue at 1280×720 with one line per row.
Screenshots go to $ALLOT_SCREENSHOTS (default artifacts/screenshots/queue)."""
import datetime as dt
import os
from decimal import Decimal
from pathlib import Path

import pytest

from allocation.models import Allocation, Customer
from exceptions.choices import ExceptionType
from exceptions.models import DecisionException, SavedView

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("ALLOT_SCREENSHOTS", Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "queue"))
QUEUE = "/exceptions/queues/shortages/"


def shot(page, name, full_page=False):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def log_in(page, live_server, user):
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", f"pw-{user.username}")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_load_state()


def panel_case(page) -> str:
    return page.locator("#case-panel [data-case]").get_attribute("data-case")


def wait_for_panel_case(page, case) -> None:
    page.wait_for_selector(f"#case-panel [data-case='{case.pk}']")


def test_a_planner_clears_five_cases_in_a_row_without_a_page_load(page, live_server, world, planner, recorded_runs):
    world.stock(world.east, 100)
    world.stock(world.west, 100)
    # Five shortages, worth 50, 40, 30, 20 and 10 a unit: ?sort=value lists them in that order.
    lines = [world.line(world.shop, 2, unit_price=str(price)) for price in (50, 40, 30, 20, 10)]
    first, second, third, fourth, fifth = cases = [world.exception(line) for line in lines]

    log_in(page, live_server, planner)
    page.goto(f"{live_server.url}{QUEUE}?sort=value")
    page.evaluate("window.__stillTheSamePage = true")
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)

    # 1. A click on the row opens it beside the list; dismiss with a reason.
    page.click(f"tr[data-key='{first.pk}'] td:nth-child(3)")
    wait_for_panel_case(page, first)
    page.click("#panel-dismiss summary")
    page.fill("#panel-form-dismiss input[name=reason]", "duplicate of SO-9")
    page.click("#panel-form-dismiss button[type=submit]")
    wait_for_panel_case(page, second)  # the next case opened by itself
    assert f"#{first.pk}: Dismissed" in page.locator("#panel-flash").inner_text()
    assert "done" in page.locator(f"tr[data-key='{first.pk}']").get_attribute("class")

    # 2. Claim (the case stays in the panel), then override from free stock.
    page.click("#panel-claim button")
    page.wait_for_selector("#panel-flash >> text=Claimed.")
    assert panel_case(page) == str(second.pk)
    assert page.locator(f"tr[data-key='{second.pk}'] .badge.claimed").count() == 1
    page.click("#panel-override summary")
    page.select_option("#panel-form-override select[name=option]", "VALVE-10|DC-EAST|")
    page.fill("#panel-form-override input[name=quantity]", "2")
    page.select_option("#panel-form-override select[name=reason_code]", "customer_commitment")
    page.fill("#panel-form-override input[name=note]", "promised by sales")
    page.wait_for_selector("#panel-consequence >> text=nobody loses")
    shot(page, "panel-override-consequence")
    page.click("#panel-form-override button[type=submit]")
    wait_for_panel_case(page, third)

    # 3. Defer the promise, by keyboard: f opens the form with the cursor in it.
    page.keyboard.press("f")
    page.wait_for_selector("#panel-defer[open]")
    assert page.evaluate("document.activeElement.name") == "promised_date"
    page.fill("#panel-form-defer input[name=promised_date]", "2026-06-20")
    page.fill("#panel-form-defer input[name=reason]", "customer agreed")
    page.press("#panel-form-defer input[name=reason]", "Enter")
    wait_for_panel_case(page, fourth)

    # 4. Split between two warehouses.
    page.keyboard.press("s")
    page.wait_for_selector("#panel-split[open]")
    page.fill("#panel-form-split input[name=part-0-location]", "DC-EAST")
    page.fill("#panel-form-split input[name=part-0-quantity]", "1")
    page.fill("#panel-form-split input[name=part-1-location]", "DC-WEST")
    page.fill("#panel-form-split input[name=part-1-quantity]", "1")
    page.select_option("#panel-form-split select[name=reason_code]", "consolidate_shipment")
    page.fill("#panel-form-split input[name=note]", "half from each")
    page.click("#panel-form-split button[type=submit]")
    wait_for_panel_case(page, fifth)

    # 5. Dismiss by keyboard: d, type the reason, Enter.
    page.keyboard.press("d")
    page.keyboard.type("handled by phone")
    page.keyboard.press("Enter")
    page.wait_for_selector("#case-panel >> text=Nothing more in this list.")
    shot(page, "panel-queue-cleared")

    assert page.evaluate("window.__stillTheSamePage") is True and navigations == []
    statuses = {e.pk: e.status for e in DecisionException.objects.all()}
    assert [statuses[c.pk] for c in cases] == ["dismissed", "resolved", "resolved", "resolved", "dismissed"]
    assert list(Allocation.objects.filter(line=lines[1]).values_list("quantity", "state")) == [(Decimal("2.000"), "pinned")]
    assert sorted(Allocation.objects.filter(line=lines[3]).values_list("location__code", "quantity")) == [
        ("DC-EAST", Decimal("1.000")), ("DC-WEST", Decimal("1.000"))]
    assert lines[2].promise_changes.get().promised_date == dt.date(2026, 6, 20)
    # Every action is in the audit trail with its actor.
    for case in cases:
        last = case.history.order_by("-history_date", "-history_id").first()
        assert last.history_user == planner and last.status in ("dismissed", "resolved")
    assert "handled by phone" in DecisionException.objects.get(pk=fifth.pk).resolution_reason
    rows_done = page.locator("tr.done[data-key]").count()
    assert rows_done == 5


def test_a_saved_view_of_filters_applied_without_a_reload_reopens_filtered(page, live_server, world, planner):
    reversed_cases = [world.exception(world.line(world.shop, 1, unit_price=str(p)), ExceptionType.ALLOCATION_REVERSED)
                      for p in (10, 30, 20)]
    shortages = [world.exception(world.line(world.hospital, 1)) for _ in range(2)]

    log_in(page, live_server, planner)
    page.goto(f"{live_server.url}{QUEUE}")
    assert page.locator("tr[data-key]").count() == 5
    page.evaluate("window.__stillTheSamePage = true")
    page.select_option("#filters select[name=type]", "allocation_reversed")  # applied through HTMX
    page.wait_for_function("document.querySelectorAll('tr[data-key]').length === 3")
    page.click("table.queue thead >> text=Value")  # a header sort, through HTMX too
    page.wait_for_selector("table.queue thead a.sorted >> text=Value")
    assert page.evaluate("window.__stillTheSamePage") is True  # no reload so far
    page.fill("#save-view input[name=name]", "Reversed by value")
    page.click("#save-view button[type=submit]")
    page.wait_for_selector("text=Saved view “Reversed by value”.")

    view = SavedView.objects.get()
    assert sorted(view.querystring.split("&")) == ["sort=value", "type=allocation_reversed"]

    page.goto(f"{live_server.url}{QUEUE}")  # the plain queue again: every case
    assert page.locator("tr[data-key]").count() == 5
    page.click("a[data-saved-view] >> text=Reversed by value")
    page.wait_for_load_state()
    keys = page.locator("tr[data-key]").evaluate_all("rows => rows.map(r => r.dataset.key)")
    by_value = sorted(reversed_cases, key=lambda e: -e.value)
    assert keys == [str(e.pk) for e in by_value]
    assert page.locator("#filters select[name=type]").input_value() == "allocation_reversed"
    assert page.locator("#filters input[name=sort]").input_value() == "value"
    assert not any(page.locator(f"tr[data-key='{e.pk}']").count() for e in shortages)
    # A filter changed now keeps the saved sort (the form's hidden sort came with the rows).
    page.select_option("#filters select[name=status]", "open")
    page.wait_for_function("document.querySelectorAll('tr[data-key]').length === 3")
    assert "sort=value" in page.url and "type=allocation_reversed" in page.url


def test_the_queue_at_1280_by_720_with_the_panel_open(page, live_server, world, planner, customer_service, recorded_runs):
    page.set_viewport_size({"width": 1280, "height": 720})
    world.stock(world.east, 30)
    customers = [world.hospital, world.shop] + [
        Customer.objects.create(code=f"C-{n:03d}", name=f"Customer with a long trading name {n}", tier=1 + n % 3,
                                segment="retail", region="east", home_location=world.east)
        for n in range(6)
    ]
    kinds = [ExceptionType.PRIORITY_SHORTAGE, ExceptionType.ALLOCATION_REVERSED, ExceptionType.SPLIT_LIMIT]
    cases = []
    for n in range(36):
        line = world.line(customers[n % len(customers)], 5 + n, unit_price=str(7 + 3 * n))
        if n % 4 == 0:
            world.allocate(line, world.east, 2)
        case = world.exception(line, kinds[n % 3])
        DecisionException.objects.filter(pk=case.pk).update(
            message=f"win floor: {5 + n} by 2026-06-{10 + n % 15}, 0 confirmed by then; a long message that wrapped the old rows",
            reason_types=[kinds[n % 3], "promise_at_risk"] if n % 5 == 1 else [kinds[n % 3]],
        )
        cases.append(case)
    from exceptions import services

    services.claim(cases[3].pk, actor=customer_service, expected_version=1)

    log_in(page, live_server, planner)
    page.goto(f"{live_server.url}{QUEUE}")
    page.keyboard.press("j")
    first = page.locator("tr[data-key]").first.get_attribute("data-key")
    page.wait_for_selector(f"#case-panel [data-case='{first}']")
    shot(page, "queue-panel-1280x720")

    heights = page.locator("tr[data-key]").evaluate_all("rows => rows.map(r => r.getBoundingClientRect().height)")
    assert max(heights) < 30, heights  # one line per row
    visible = page.locator("tr[data-key]").evaluate_all(
        "rows => rows.filter(r => r.getBoundingClientRect().bottom <= window.innerHeight).length")
    assert visible >= 12, visible
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # nothing runs off to the side
    # Grouped by customer: heading rows with the group's count.
    page.select_option("#filters select[name=group]", "customer")
    page.wait_for_selector("tr.group-row")
    shot(page, "queue-grouped-by-customer")
    assert page.locator("tr.group-row").first.inner_text().startswith("C-000")
