"""Run screens: runs list and detail (live progress), a line's Why page, the shortage board and
the policy Simulate button with its progress and result — full pages, HTMX partials, roles.

Data comes from the valves scenario run through the real stack (tests/allocation/conftest.py),
or from AllocationRun rows made directly where a test needs a run in a given state.
"""
from __future__ import annotations

import datetime as dt
import html as html_lib
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from allocation.models import AllocationRun, LineDecisionLog, RunStatus
from exceptions.models import DecisionException

from .conftest import scenario_events, scenario_policy

POLL = 'hx-trigger="every 1s"'
READER_ROLES = ["planner", "customer_service", "policy_admin", "approver", "finance"]
NOT_READERS = ["integration", "outsider"]
NOT_STARTERS = ["customer_service", "approver", "finance", "integration", "outsider"]


def html_of(response) -> str:
    return response.content.decode()


def row_keys(html: str, attribute: str = "data-line") -> list[str]:
    return re.findall(rf'<tr {attribute}="([^"]+)"', html)


def make_run(**fields) -> AllocationRun:
    values = {"trigger": "manual", "scope": "full", "as_of": dt.date(2026, 6, 1), "status": RunStatus.QUEUED}
    values.update(fields)
    return AllocationRun.objects.create(**values)


def finished_run(**fields) -> AllocationRun:
    now = timezone.now()
    return make_run(
        status=RunStatus.SUCCEEDED, progress=100, phase="done", started_at=now, finished_at=now,
        line_count=5, changed_line_count=3, exceptions_raised=2, exceptions_resolved=1,
        timings={"load": 0.5, "engine": 0.25, "persist": 0.25, "total": 1.0}, **fields,
    )


# --- runs list ---------------------------------------------------------------------------------


def test_run_list_full_page_shows_each_run_with_its_figures(as_planner, planner):
    done = finished_run(actor=planner)
    running = make_run(status=RunStatus.RUNNING, progress=5, phase="loading", trigger="event", scope="items",
                       scope_items=["VALVE-10"])

    response = as_planner.get(reverse("allocation:run_list"))

    html = html_of(response)
    assert response.status_code == 200
    assert "<html" in html and "Run full allocation" in html and "Run items" in html
    assert re.findall(r'<tr id="run-(\d+)"', html) == [str(running.pk), str(done.pk)]
    done_row = html.split(f'<tr id="run-{done.pk}"')[1].split("</tr>")[0]
    assert 'data-status="succeeded"' in done_row and POLL not in done_row
    assert '<td class="num">5</td>' in done_row and '<td class="num">3</td>' in done_row
    assert '<td class="num">2 / 1</td>' in done_row and "1.00 s" in done_row and "pat_planner" in done_row
    running_row = html.split(f'<tr id="run-{running.pk}"')[1].split("</tr>")[0]
    assert f'hx-get="/runs/{running.pk}/" {POLL}' in running_row
    assert 'aria-valuenow="5"' in running_row and "5% · loading" in running_row and "VALVE-10" in running_row


def test_run_list_filters_by_status_and_trigger_and_answers_htmx_with_the_results_partial(as_planner):
    done = finished_run()
    make_run(status=RunStatus.FAILED, error="boom")
    event = finished_run(trigger="event")

    response = as_planner.get(
        reverse("allocation:run_list"), {"status": "succeeded", "trigger": "manual"},
        HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results",
    )

    html = html_of(response)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="results"') and "<html" not in html
    assert re.findall(r'<tr id="run-(\d+)"', html) == [str(done.pk)]
    assert str(event.pk) not in re.findall(r'<tr id="run-(\d+)"', html)


def test_run_list_rejects_an_unknown_status_naming_the_field(as_planner):
    finished_run()

    response = as_planner.get(reverse("allocation:run_list"), {"status": "sleeping"})

    assert response.status_code == 400
    assert "Status: Select a valid choice. sleeping is not one of the available choices." in html_of(response)
    assert re.findall(r'<tr id="run-(\d+)"', html_of(response)) == []


def test_run_list_paginates_25_a_page(as_planner):
    runs = [finished_run() for _ in range(27)]

    first = html_of(as_planner.get(reverse("allocation:run_list")))
    next_link = re.search(r'<a href="([^"]*)"[^>]*rel="next"', first)
    second = html_of(as_planner.get(reverse("allocation:run_list") + html_lib.unescape(next_link.group(1))))

    assert len(re.findall(r'<tr id="run-', first)) == 25 and "25 shown" in first
    assert re.findall(r'<tr id="run-(\d+)"', second) == [str(runs[1].pk), str(runs[0].pk)]
    assert 'rel="next"' not in second


def test_run_list_costs_a_fixed_number_of_queries(as_planner, planner, django_assert_max_num_queries):
    for _ in range(20):
        finished_run(actor=planner)
    as_planner.get(reverse("allocation:run_list"))  # warm the session and role caches

    with django_assert_max_num_queries(5):
        response = as_planner.get(reverse("allocation:run_list"))
    assert len(re.findall(r'<tr id="run-', html_of(response))) == 20


def test_row_partial_polls_while_the_run_is_unfinished_and_stops_once_it_ended(as_planner):
    run = make_run(status=RunStatus.RUNNING, progress=40, phase="allocating")
    url = reverse("allocation:run_detail", args=[run.pk])

    polling = html_of(as_planner.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET=f"run-{run.pk}"))
    AllocationRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, progress=100, phase="done")
    ended = html_of(as_planner.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET=f"run-{run.pk}"))

    assert polling.lstrip().startswith(f'<tr id="run-{run.pk}"') and "<html" not in polling
    assert f'hx-get="{url}" {POLL} hx-target="this" hx-swap="outerHTML"' in polling
    assert ended.lstrip().startswith(f'<tr id="run-{run.pk}"')
    assert "hx-trigger" not in ended and 'data-status="succeeded"' in ended and 'aria-valuenow="100"' in ended


@pytest.mark.parametrize("role", READER_ROLES)
def test_readers_see_the_runs_list_and_a_run(client, personas, role):
    run = finished_run()
    client.force_login(personas[role])

    assert client.get(reverse("allocation:run_list")).status_code == 200
    assert client.get(reverse("allocation:run_detail", args=[run.pk])).status_code == 200


@pytest.mark.parametrize("role", NOT_READERS)
def test_integration_and_outsiders_are_refused_every_run_screen(client, personas, role):
    run = finished_run()
    client.force_login(personas[role])

    for url in (
        reverse("allocation:run_list"),
        reverse("allocation:run_detail", args=[run.pk]),
        reverse("allocation:line_why", args=["SO-1", 1]),
        reverse("allocation:shortage_board", args=["VALVE-10"]),
        reverse("allocation:simulation_status", args=[run.pk]),
    ):
        assert client.get(url).status_code == 403, url


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(reverse("allocation:run_list"))

    assert (response.status_code, response["Location"]) == (302, "/login/?next=/runs/")


# --- starting runs -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["planner", "policy_admin"])
def test_planners_and_policy_admins_start_a_full_run(client, personas, role):
    client.force_login(personas[role])

    response = client.post(reverse("allocation:run_start"), {"scope": "full", "skus": "ignored"})

    run = AllocationRun.objects.get()
    assert (response.status_code, response["Location"]) == (302, "/runs/")
    assert (run.trigger, run.scope, run.scope_items, run.status, run.actor) == (
        "manual", "full", [], "queued", personas[role],
    )
    assert f"Run #{run.pk} started." in html_of(client.get(reverse("allocation:run_list")))


@pytest.mark.parametrize("role", NOT_STARTERS)
def test_other_roles_cannot_start_a_run_and_nothing_starts(client, personas, role):
    client.force_login(personas[role])

    response = client.post(reverse("allocation:run_start"), {"scope": "full"})

    assert response.status_code == 403
    assert AllocationRun.objects.count() == 0


def test_readers_who_cannot_start_do_not_see_the_start_buttons(client, finance):
    client.force_login(finance)

    html = html_of(client.get(reverse("allocation:run_list")))

    assert "Run full allocation" not in html and 'id="run-start"' not in html


def test_run_items_runs_the_listed_skus(as_planner, distributor):
    response = as_planner.post(reverse("allocation:run_start"), {"scope": "items", "skus": "VLV-0002, VLV-0001\nVLV-0002"})

    run = AllocationRun.objects.get()
    assert response.status_code == 302
    assert (run.scope, run.scope_items) == ("items", ["VLV-0001", "VLV-0002"])


@pytest.mark.parametrize(
    ("skus", "message"),
    [("", "SKUs: List at least one SKU to run items."), ("VLV-0001 NOPE-1", "SKUs: Unknown SKU: NOPE-1.")],
)
def test_run_items_with_bad_skus_is_a_400_naming_the_field_and_starts_nothing(as_planner, distributor, skus, message):
    page = as_planner.post(reverse("allocation:run_start"), {"scope": "items", "skus": skus})
    fragment = as_planner.post(reverse("allocation:run_start"), {"scope": "items", "skus": skus}, HTTP_HX_REQUEST="true")

    assert page.status_code == 400 and message in html_of(page) and "<html" in html_of(page)
    assert fragment.status_code == 400 and html_of(fragment).lstrip().startswith('<div id="run-start"')
    assert message in html_of(fragment)
    assert AllocationRun.objects.count() == 0


def test_an_unknown_scope_is_a_400_naming_the_field_and_starts_nothing(as_planner):
    response = as_planner.post(reverse("allocation:run_start"), {"scope": "galaxy"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 400
    assert "Scope: Select a valid choice. galaxy is not one of the available choices." in html_of(response)
    assert AllocationRun.objects.count() == 0


def test_starting_from_htmx_answers_with_a_client_side_location(as_planner):
    response = as_planner.post(reverse("allocation:run_start"), {"scope": "full"}, HTTP_HX_REQUEST="true")

    assert (response.status_code, response["HX-Location"]) == (204, "/runs/")
    assert AllocationRun.objects.count() == 1


def test_start_is_post_only(as_planner):
    assert as_planner.get(reverse("allocation:run_start")).status_code == 405
    assert AllocationRun.objects.count() == 0


def test_a_started_run_executes_after_commit_and_the_list_shows_it_finished(
    as_planner, valves, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        as_planner.post(reverse("allocation:run_start"), {"scope": "full"})

    run = AllocationRun.objects.order_by("-id").first()
    row = html_of(as_planner.get(reverse("allocation:run_detail", args=[run.pk]),
                                 HTTP_HX_REQUEST="true", HTTP_HX_TARGET=f"run-{run.pk}"))
    assert (run.status, run.line_count, run.actor.username) == ("succeeded", 5, "pat_planner")
    assert 'data-status="succeeded"' in row and "hx-trigger" not in row


# --- run detail --------------------------------------------------------------------------------


def test_run_detail_shows_counts_phase_bars_exceptions_and_decisions(as_planner, valves):
    first = AllocationRun.objects.order_by("id").first()  # the incremental run of the ingest decided the lines
    exception = DecisionException.objects.get(type="promise_at_risk", line__order__number="SO-3")

    response = as_planner.get(reverse("allocation:run_detail", args=[first.pk]))

    html = html_of(response)
    assert response.status_code == 200
    assert "<dt>Lines ranked</dt><dd>5</dd>" in html and "<dt>Lines changed</dt><dd>5</dd>" in html
    assert "<dt>Exceptions raised</dt><dd>2</dd>" in html
    assert re.findall(r'<tr data-phase="(\w+)">', html) == ["load", "engine", "persist"]
    assert f'<tr data-exception="{exception.pk}">' in html and "/orders/SO-3/lines/1/why/" in html
    assert row_keys(html) == ["SO-1/1", "SO-2/1", "SO-3/1", "SO-4/2", "SO-4/1"]
    assert 'href="/orders/SO-1/lines/1/why/">Why</a>' in html
    assert POLL not in html


def test_run_detail_of_a_run_that_changed_nothing_says_so(as_planner, valves):
    html = html_of(as_planner.get(reverse("allocation:run_detail", args=[valves.pk])))

    assert "No line's decision changed in this run." in html
    assert "This run raised no new exception." in html


def test_run_detail_summary_polls_while_running_and_asks_for_a_refresh_once_finished(as_planner):
    run = make_run(status=RunStatus.RUNNING, progress=5, phase="loading")
    url = reverse("allocation:run_detail", args=[run.pk])

    page = html_of(as_planner.get(url))
    running = as_planner.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="run-summary")
    AllocationRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, progress=100, phase="done")
    finished = as_planner.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="run-summary")

    assert f'<div id="run-summary" hx-get="{url}" {POLL}' in page and "Decisions appear when the run finishes." in page
    assert "Exceptions appear when the run finishes." in page
    assert html_of(running).lstrip().startswith('<div id="run-summary"') and POLL in html_of(running)
    assert "HX-Refresh" not in running
    assert "hx-trigger" not in html_of(finished) and finished["HX-Refresh"] == "true"


def test_run_detail_of_a_failed_run_shows_its_error(as_planner):
    run = make_run(status=RunStatus.FAILED, phase="failed", error="IntegrityError: boom")

    html = html_of(as_planner.get(reverse("allocation:run_detail", args=[run.pk])))

    assert "The run failed" in html and "<pre>IntegrityError: boom</pre>" in html and POLL not in html


def test_run_detail_sections_paginate_as_htmx_partials(as_planner, valves):
    first = AllocationRun.objects.order_by("id").first()
    url = reverse("allocation:run_detail", args=[first.pk])

    decisions = html_of(as_planner.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="run-decisions"))
    exceptions = html_of(as_planner.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="run-exceptions"))

    assert decisions.lstrip().startswith('<section id="run-decisions"') and len(row_keys(decisions)) == 5
    assert exceptions.lstrip().startswith('<section id="run-exceptions"') and len(row_keys(exceptions, "data-exception")) == 2


def test_run_detail_of_a_missing_run_is_404(as_planner):
    assert as_planner.get(reverse("allocation:run_detail", args=[999])).status_code == 404


# --- why ---------------------------------------------------------------------------------------


def test_why_shows_rank_factor_contributions_and_the_rule_behind_each_setting(as_planner, valves):
    version = valves.policy_version

    response = as_planner.get(reverse("allocation:line_why", args=["SO-1", 1]))

    html = html_of(response)
    assert response.status_code == 200
    assert "<dt>Rank</dt><dd><strong>1</strong>" in html
    assert '<span class="badge" data-strategy="win">win</span>' in html
    assert "<dt>Priority class</dt><dd>1</dd>" in html and "<dt>Score</dt><dd>0.766041</dd>" in html
    assert '<li><span class="muted">strategy</span> win (1 of 5)</li>' in html
    assert '<li><span class="muted">score</span> 0.766041 (higher first)</li>' in html
    assert re.findall(r'<tr data-factor="(\w+)">', html) == ["tier", "urgency", "margin", "value", "age", "penalty", "risk"]
    tier = html.split('<tr data-factor="tier">')[1].split("</tr>")[0]
    assert '<td class="num">1.000</td>' in tier and '<td class="num">0.35</td>' in tier and '<td class="num">0.3500</td>' in tier
    assert 'style="width: 100.0%"' in tier
    strategy = html.split('<tr data-setting="strategy">')[1].split("</tr>")[0]
    assert "<code>&quot;win&quot;</code>" in strategy
    explain = f"/policies/explain/?order=SO-1&amp;line=1&amp;version={version.pk}"
    assert f'href="{explain}#rule-1" data-source="rules[1]"' in strategy
    explained = html_of(as_planner.get(explain.replace("&amp;", "&")))
    assert '<tr id="rule-1" data-position="1" class="highlight">' in explained
    # The source reads as the rule's scope, not rules[1] (issue 9, plain words).
    assert "rule for customer_segment = healthcare</a>" in strategy and ">rules[1]<" not in strategy
    split = html.split('<tr data-setting="max_split_locations">')[1].split("</tr>")[0]
    assert "<code>2</code>" in split and "default" in split
    assert f'href="/policies/explain/?order=SO-1&amp;line=1&amp;version={version.pk}"' in html
    assert "<li>on-hand DC-EAST VALVE-10 60</li>" in html
    assert "Nothing: the line got all it could hold under its strategy." in html
    assert "No open exception." in html and "This is the line's first decision." in html


def test_why_shows_current_allocations_and_open_exceptions(as_planner, valves):
    html = html_of(as_planner.get(reverse("allocation:line_why", args=["SO-3", 1])))

    allocations = html.split('id="allocations"')[1].split("</section>")[0]
    assert allocations.count("<tr>") == 3  # header + two allocations
    assert "DC-WEST" in allocations and "PO-1" in allocations and "2026-06-10" in allocations
    assert re.findall(r'<tr data-exception-type="(\w+)">', html) == ["promise_at_risk"]
    assert "<li>inbound PO-1 DC-EAST VALVE-10 30 eta 2026-06-10</li>" in html
    assert "Only <strong>10</strong> of 40 confirmed by the due date 2026-06-03; later:" in html
    assert "<li>30 from PO-1 at DC-EAST, confirmed 2026-06-10</li>" in html


def test_why_lists_earlier_decisions_newest_first_with_run_and_policy_version(
    as_planner, valves, django_capture_on_commit_callbacks
):
    from integrations.services import ingest, process_pending

    with django_capture_on_commit_callbacks(execute=True):
        ingest(scenario_events("valves-2.jsonl"), actor=None, via="file")
        process_pending()
    logs = list(LineDecisionLog.objects.filter(line__order__number="SO-1").order_by("-id"))

    html = html_of(as_planner.get(reverse("allocation:line_why", args=["SO-1", 1])))

    assert len(logs) == 2
    assert re.findall(r'<tr data-log="(\d+)">', html) == [str(logs[1].pk)]
    earlier = html.split(f'<tr data-log="{logs[1].pk}">')[1].split("</tr>")[0]
    assert f"#{logs[1].run_id}</a>" in earlier and f"v{valves.policy_version.number}" in earlier
    assert "DC-EAST VALVE-10 60 on hand" in earlier
    assert f"in run <a href=\"/runs/{logs[0].run_id}/\">#{logs[0].run_id}</a>" in html


def test_why_of_a_line_no_run_decided_shows_the_empty_state(as_planner, distributor):
    response = as_planner.get(reverse("allocation:line_why", args=["SO-1", 1]))

    html = html_of(response)
    assert response.status_code == 200
    assert 'id="no-decision"' in html and 'id="factors"' not in html
    assert "No decision recorded." in html


def test_why_of_an_unknown_line_is_404(as_planner, distributor):
    assert as_planner.get(reverse("allocation:line_why", args=["SO-1", 99])).status_code == 404
    assert as_planner.get(reverse("allocation:line_why", args=["NOPE", 1])).status_code == 404


def test_order_detail_links_each_line_to_its_why_page(as_planner, valves):
    html = html_of(as_planner.get(reverse("allocation:order_detail", args=["SO-4"])))

    assert 'href="/orders/SO-4/lines/1/why/"' in html and 'href="/orders/SO-4/lines/2/why/"' in html


# --- shortage board ----------------------------------------------------------------------------


def test_shortage_board_ranks_competing_lines_with_holdings_and_supply(as_planner, valves):
    response = as_planner.get(reverse("allocation:shortage_board", args=["VALVE-10"]))

    html = html_of(response)
    assert response.status_code == 200
    assert row_keys(html) == ["SO-1/1", "SO-2/1", "SO-3/1", "SO-4/1"]
    first = html.split('<tr data-line="SO-1/1">')[1].split("</tr>")[0]
    assert "HOSP-1" in first and "<td>win</td>" in first and "0.766041" in first and "DC-EAST on hand: 60" in first
    so3 = html.split('<tr data-line="SO-3/1">')[1].split("</tr>")[0]
    assert "DC-WEST on hand: 10" in so3 and "DC-EAST PO-1: 30" in so3
    assert re.findall(r'<tr data-location="([\w-]+)">', html) == ["DC-EAST", "DC-WEST"]
    assert re.findall(r'<tr data-supply="([\w-]+)">', html) == ["PO-2", "PO-1"]  # by ETA


def test_shortage_board_includes_lines_holding_the_item_as_a_substitute(as_planner, valves):
    from allocation.models import Allocation, Item, Location, OrderLine

    so2 = OrderLine.objects.get(order__number="SO-2", line=1)
    Allocation.objects.create(
        line=so2, item=Item.objects.get(sku="VALVE-10X"), location=Location.objects.get(code="DC-EAST"),
        quantity=30, confirmed_date=dt.date(2026, 6, 1), state="proposed",
    )

    html = html_of(as_planner.get(reverse("allocation:shortage_board", args=["VALVE-10X"])))

    assert row_keys(html) == ["SO-2/1"]
    row = html.split('<tr data-line="SO-2/1">')[1].split("</tr>")[0]
    assert "substitute for VALVE-10" in row and "DC-EAST on hand (VALVE-10X): 30" in row
    assert "DC-EAST on hand: 30" in row and "DC-WEST on hand: 20" in row


def test_shortage_board_of_an_unknown_item_is_404(as_planner, distributor):
    assert as_planner.get(reverse("allocation:shortage_board", args=["NOPE"])).status_code == 404


def test_inventory_rows_link_to_the_shortage_board(as_planner, valves):
    html = html_of(as_planner.get(reverse("allocation:inventory_list")))

    assert 'href="/items/VALVE-10/shortage/"' in html


# --- simulation --------------------------------------------------------------------------------


@pytest.fixture
def losing_draft(valves):
    """A draft of the valves policy in which healthcare lines ``lose``."""
    from policies.services import import_document

    document = scenario_policy()
    document["name"] = "healthcare-lose"
    document["rules"][1]["settings"] = {"strategy": "lose", "priority_class": 1}
    return import_document(document, actor=None)


def test_version_page_shows_the_simulate_button_to_policy_admins_on_drafts_only(client, policy_admin, planner, losing_draft, valves):
    client.force_login(policy_admin)
    draft_page = html_of(client.get(reverse("policies:version_detail", args=[losing_draft.pk])))
    active_page = html_of(client.get(reverse("policies:version_detail", args=[valves.policy_version.pk])))
    client.force_login(planner)
    planner_page = html_of(client.get(reverse("policies:version_detail", args=[losing_draft.pk])))

    assert f'hx-post="/policies/versions/{losing_draft.pk}/simulate/"' in draft_page
    assert 'id="simulation-panel"' not in active_page
    assert 'id="simulation-panel"' not in planner_page


def test_simulation_page_shows_healthcare_losing_60_on_so1(client, policy_admin, losing_draft, django_capture_on_commit_callbacks):
    client.force_login(policy_admin)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("allocation:simulate_start", args=[losing_draft.pk]))

    run = AllocationRun.objects.get(is_simulation=True)
    assert (response.status_code, response["Location"]) == (302, f"/simulations/{run.pk}/")
    html = html_of(client.get(response["Location"]))
    losing = html.split('<div id="losing">')[1].split('<div id="gaining">')[0]
    assert row_keys(losing) == ["SO-1/1"]
    so1 = losing.split('<tr data-line="SO-1/1">')[1].split("</tr>")[0]
    assert '<td>healthcare</td>' in so1
    assert '<td class="num">60</td><td class="num">0</td><td class="num loses">60</td><td class="num">60 → 0</td>' in so1
    assert "top 1 of 1 · 60 reserved and 60 on time lost" in losing
    segment = html.split('<tr data-name="healthcare">')[1].split("</tr>")[0]
    assert '<td class="num">100.0%</td>' in segment and '<td class="num">0.0%</td>' in segment
    assert "-100.0 pts" in segment
    assert "hx-trigger" not in html and (run.status, run.actor) == ("succeeded", policy_admin)


def test_simulate_from_htmx_returns_a_polling_panel_until_the_simulation_ends(
    client, policy_admin, losing_draft, django_capture_on_commit_callbacks
):
    client.force_login(policy_admin)

    started = client.post(reverse("allocation:simulate_start", args=[losing_draft.pk]), HTTP_HX_REQUEST="true")
    run = AllocationRun.objects.get(is_simulation=True)
    status_url = reverse("allocation:simulation_status", args=[run.pk])
    queued = html_of(client.get(status_url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="simulation-panel"))
    from allocation.tasks import simulate_task

    simulate_task(run.pk, losing_draft.pk)
    finished = html_of(client.get(status_url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="simulation-panel"))

    assert started.status_code == 200
    assert html_of(started).lstrip().startswith('<section class="card" id="simulation-panel" data-status="queued"')
    assert f'hx-get="{status_url}" {POLL}' in html_of(started) and "<html" not in html_of(started)
    assert POLL in queued
    assert finished.lstrip().startswith('<section class="card" id="simulation-panel" data-status="succeeded"')
    assert "hx-trigger" not in finished and row_keys(finished.split('<div id="losing">')[1])[0] == "SO-1/1"
    assert f'hx-post="/policies/versions/{losing_draft.pk}/simulate/"' in finished  # simulate again


@pytest.mark.parametrize("role", ["planner", "approver", "finance", "integration", "outsider"])
def test_only_policy_admins_simulate_and_a_refused_simulate_runs_nothing(client, personas, losing_draft, role):
    client.force_login(personas[role])

    response = client.post(reverse("allocation:simulate_start", args=[losing_draft.pk]))

    assert response.status_code == 403
    assert AllocationRun.objects.filter(is_simulation=True).count() == 0


def test_simulating_a_version_that_is_not_a_draft_is_a_conflict(client, policy_admin, valves):
    client.force_login(policy_admin)

    response = client.post(reverse("allocation:simulate_start", args=[valves.policy_version.pk]))

    assert response.status_code == 409
    assert "Only drafts are simulated" in html_of(response)
    assert AllocationRun.objects.filter(is_simulation=True).count() == 0


def test_simulation_of_a_missing_or_real_run_is_404(as_planner, valves):
    assert as_planner.get(reverse("allocation:simulation_status", args=[valves.pk])).status_code == 404
    assert as_planner.get(reverse("allocation:simulation_status", args=[999])).status_code == 404


def test_run_detail_of_a_simulation_redirects_to_the_simulation_page(as_planner):
    run = make_run(trigger="simulation", is_simulation=True)

    response = as_planner.get(reverse("allocation:run_detail", args=[run.pk]))

    assert (response.status_code, response["Location"]) == (302, f"/simulations/{run.pk}/")
    row = as_planner.get(reverse("allocation:run_detail", args=[run.pk]), HTTP_HX_REQUEST="true", HTTP_HX_TARGET=f"run-{run.pk}")
    assert row.status_code == 200 and html_of(row).lstrip().startswith(f'<tr id="run-{run.pk}"') and POLL in html_of(row)


def test_an_unfinished_run_page_refreshes_itself_without_javascript(as_planner):
    running = make_run(status=RunStatus.RUNNING)
    done = finished_run()

    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in html_of(
        as_planner.get(reverse("allocation:run_detail", args=[running.pk]))
    )
    assert "<noscript>" not in html_of(as_planner.get(reverse("allocation:run_detail", args=[done.pk])))


# --- query counts --------------------------------------------------------------------------------


def test_why_and_shortage_board_cost_a_fixed_number_of_queries(as_planner, valves, django_assert_max_num_queries):
    as_planner.get(reverse("allocation:run_list"))  # warm the session and role caches
    first_run = AllocationRun.objects.order_by("id").first()

    with django_assert_max_num_queries(9):
        why = as_planner.get(reverse("allocation:line_why", args=["SO-3", 1]))
    with django_assert_max_num_queries(9):
        board = as_planner.get(reverse("allocation:shortage_board", args=["VALVE-10"]))
    with django_assert_max_num_queries(8):
        detail = as_planner.get(reverse("allocation:run_detail", args=[first_run.pk]))

    assert (why.status_code, board.status_code, detail.status_code) == (200, 200, 200)
    assert len(row_keys(html_of(board))) == 4 and len(row_keys(html_of(detail))) == 5
