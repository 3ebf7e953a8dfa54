"""Plain words and scope values in Chromium: the case page reads its jeopardy as band, stake
and days late; a policy rule's customer input suggests customers as one types (HTMX), and a
misspelt segment is saved with a warning beside the rule. Screenshots in /tmp/shots/notify/."""
import datetime as dt
import os
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse

from allocation.models import Customer
from policies import services as policy_services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("ALLOT_SHOTS_DIR", "/tmp/shots/notify"))


def logged_in(page, live_server, client, user):
    client.force_login(user)
    page.context.clear_cookies()
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    return page


def test_case_page_in_plain_words(page, live_server, client, world, planner):
    world.stock(world.east, 40)
    line = world.line(world.hospital, 20, unit_price="10", promised=dt.date(2026, 6, 2))
    world.allocate(line, world.east, 10)
    case = world.exception(line, jeopardy_score=Decimal("4321"), jeopardy_band="medium",
                           details={"promised": "2026-06-02", "confirmed_date": "2026-06-09", "shortfall": "10"})
    logged_in(page, live_server, client, planner)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/exceptions/{case.pk}/")
    assert page.locator("#jeopardy").inner_text() == "At risk · 200 at stake · 7 days late · 10 not covered"
    page.click("#override summary")
    options = page.locator("#form-override select[name=option] option").all_inner_texts()
    assert any("30 not promised to anyone" in o for o in options), options
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "5-case-in-plain-words.png"), full_page=True)


def test_rule_scope_from_the_data_and_a_warning_for_a_typo(page, live_server, client, world, policy_admin):
    for index in range(25):
        Customer.objects.create(code=f"HC-{index:04d}", name=f"Clinic {index}", tier=2, segment="healthcare",
                                region="east", home_location=world.east)
    draft = policy_services.create_draft(actor=policy_admin, name="spring")
    logged_in(page, live_server, client, policy_admin)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + reverse("policies:version_detail", args=[draft.pk]))
    page.click("#rules-form-new >> text=Add rule")
    form = page.locator("#rules-form-new form")
    form.wait_for()
    # Customers: looked up as one types (the datalist refills from the server).
    with page.expect_response(lambda r: "/policies/scope-values/customer/" in r.url):
        form.locator("input[name=customer]").type("HC-001")
    page.wait_for_function("document.querySelectorAll('#scope-customer option').length === 10")
    assert page.evaluate("document.querySelector('#scope-customer option').value") == "HC-0010"
    form.locator("input[name=customer]").fill("")
    segments = page.evaluate("[...document.querySelectorAll('#scope-customer_segment option')].map(o => o.value)")
    assert segments == ["healthcare", "retail"]
    form.locator("input[name=customer_segment]").fill("helthcare")
    form.locator("textarea[name=settings]").fill('{"priority_class": 2}')
    page.screenshot(path=str(SHOTS / "6-rule-form-scope-from-data.png"), full_page=True)
    form.locator("button[type=submit]").click()
    warning = page.locator("[data-scope-warning]")
    warning.wait_for()
    assert "customer_segment = helthcare matches no customer segment in the data yet" in warning.inner_text()
    assert draft.rules.filter(scope={"customer_segment": "helthcare"}).exists()  # saved: a warning, not an error
    page.screenshot(path=str(SHOTS / "7-rule-saved-with-warning.png"), full_page=True)
