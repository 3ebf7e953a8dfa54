"""In Chromium: a planner starts a full run from the runs page, watches runs finish (polling),
opens the run, a line's Why page and the shortage board; a policy admin simulates a draft.

Screenshots go to artifacts/screenshots/ for a person to look at.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from allocation.models import AllocationRun, RunStatus

from .conftest import scenario_policy

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(django_settings.BASE_DIR) / "artifacts" / "screenshots"


@pytest.fixture
def shots():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return lambda page, name: page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(page, live_server, user) -> None:
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "pw-" + user.username)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_planner_starts_a_full_run_sees_it_finish_and_reads_why(page, live_server, planner, valves, shots):
    log_in(page, live_server, planner)
    page.goto(live_server.url + reverse("allocation:run_list"))
    before = AllocationRun.objects.count()

    page.get_by_role("button", name="Run full allocation").click()
    page.locator(".messages li", has_text="started.").wait_for()

    run = AllocationRun.objects.order_by("-id").first()
    assert AllocationRun.objects.count() == before + 1 and (run.trigger, run.actor) == ("manual", planner)
    row = page.locator(f"#run-{run.pk}")
    row.wait_for()
    assert row.get_attribute("data-status") == "succeeded"
    assert page.url == live_server.url + "/runs/"
    shots(page, "runs-list")

    page.click(f"#run-{run.pk} >> text=#{run.pk}")
    page.locator("#run-summary").wait_for()
    assert page.locator("#run-summary [data-status]").first.inner_text() == "Succeeded"
    assert page.locator("tr[data-phase]").count() == 3
    shots(page, "run-detail")

    page.goto(live_server.url + reverse("allocation:line_why", args=["SO-1", 1]))
    factors = page.locator("#factors tr[data-factor]")
    assert factors.count() == 7
    tier_bar = page.locator('#factors tr[data-factor="tier"] .bar > span')
    assert tier_bar.bounding_box()["width"] > 50
    assert page.locator('#settings tr[data-setting="strategy"]').inner_text().split("\t")[:2] == ['strategy', '"win"']
    shots(page, "why-so1")

    page.goto(live_server.url + reverse("allocation:line_why", args=["SO-3", 1]))
    assert page.locator("#exceptions tr[data-exception-type]").inner_text().startswith("Promise At Risk\tOpen\tSO-3/1 VALVE-10: 40 of 40 covered")
    shots(page, "why-so3")

    page.goto(live_server.url + reverse("allocation:shortage_board", args=["VALVE-10"]))
    assert page.locator("#competing tbody tr").first.get_attribute("data-line") == "SO-1/1"
    shots(page, "shortage-valve10")


def test_an_unfinished_run_row_updates_itself_until_the_run_ends(page, live_server, planner, valves, shots):
    running = AllocationRun.objects.create(
        trigger="scheduled", scope="full", as_of=valves.as_of, status=RunStatus.RUNNING, progress=40, phase="allocating"
    )
    log_in(page, live_server, planner)
    page.goto(live_server.url + reverse("allocation:run_list"))
    row = page.locator(f"#run-{running.pk}")
    assert row.get_attribute("data-status") == "running" and "40% · allocating" in row.inner_text()
    shots(page, "runs-list-running")

    AllocationRun.objects.filter(pk=running.pk).update(status=RunStatus.SUCCEEDED, progress=100, phase="done")

    page.locator(f'#run-{running.pk}[data-status="succeeded"]').wait_for(timeout=5000)
    assert page.locator(f"#run-{running.pk}").get_attribute("hx-trigger") is None
    assert "100% · done" in page.locator(f"#run-{running.pk}").inner_text()


def test_policy_admin_simulates_a_draft_and_sees_what_it_changes(page, live_server, policy_admin, valves, shots):
    from policies.services import import_document

    document = scenario_policy()
    document["name"] = "healthcare-lose"
    document["rules"][1]["settings"] = {"strategy": "lose", "priority_class": 1}
    draft = import_document(document, actor=None)
    log_in(page, live_server, policy_admin)
    page.goto(live_server.url + reverse("policies:version_detail", args=[draft.pk]))

    page.get_by_role("button", name="Simulate", exact=True).click()
    panel = page.locator('#simulation-panel[data-status="succeeded"]')
    panel.wait_for(timeout=10000)

    losing = panel.locator('#losing tr[data-line="SO-1/1"]')
    assert re.split(r"\s+", losing.inner_text().strip()) == ["SO-1/1", "healthcare", "b2b_contract", "60", "0", "60", "60", "→", "0"]
    shots(page, "simulation-panel")


def test_run_items_shows_a_bad_sku_in_place_then_runs_the_good_one(page, live_server, planner, valves, shots):
    log_in(page, live_server, planner)
    page.goto(live_server.url + reverse("allocation:run_list"))
    before = AllocationRun.objects.count()

    page.fill("#run-start input[name=skus]", "NOPE-1")
    page.press("#run-start input[name=skus]", "Enter")
    page.locator("#run-start [role=alert]").wait_for()

    assert page.locator("#run-start [role=alert]").inner_text() == "SKUs: Unknown SKU: NOPE-1."
    assert AllocationRun.objects.count() == before
    shots(page, "runs-start-error")
    page.fill("#run-start input[name=skus]", "PUMP-2")
    page.press("#run-start input[name=skus]", "Enter")
    page.locator(".messages li", has_text="started.").wait_for()
    run = AllocationRun.objects.order_by("-id").first()
    assert (run.scope, run.scope_items, run.status) == ("items", ["PUMP-2"], "succeeded")
    assert page.locator(f"#run-{run.pk}").get_attribute("data-status") == "succeeded"


def test_run_page_polls_until_the_run_ends_then_shows_its_decisions(page, live_server, planner, valves, shots):
    running = AllocationRun.objects.create(
        trigger="manual", scope="full", as_of=valves.as_of, status=RunStatus.RUNNING, progress=5, phase="loading"
    )
    log_in(page, live_server, planner)
    page.goto(live_server.url + reverse("allocation:run_detail", args=[running.pk]))
    assert page.locator("#run-decisions").inner_text().endswith("Decisions appear when the run finishes.")
    shots(page, "run-detail-running")

    AllocationRun.objects.filter(pk=running.pk).update(status=RunStatus.SUCCEEDED, progress=100, phase="done")

    page.locator('#run-summary[data-status="succeeded"]').wait_for(timeout=5000)
    page.locator("#run-decisions >> text=No line's decision changed in this run.").wait_for(timeout=5000)
    assert page.locator("#run-summary").get_attribute("hx-trigger") is None
