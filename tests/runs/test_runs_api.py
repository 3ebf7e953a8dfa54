"""The runs API by persona: who may read allocations, decisions and runs, and who may start a run.

Denied requests change nothing (no run row is created).
"""
from __future__ import annotations

import pytest

from allocation.models import AllocationRun
from config import roles

READERS = sorted(roles.READERS)
NON_READERS = [roles.INTEGRATION, "outsider"]
STARTERS = [roles.PLANNER, roles.POLICY_ADMIN]
NON_STARTERS = [roles.CUSTOMER_SERVICE, roles.APPROVER, roles.FINANCE, roles.INTEGRATION, "outsider"]


@pytest.fixture
def client_as(personas, api_client_for):
    return lambda persona: api_client_for(personas[persona])


@pytest.mark.django_db
@pytest.mark.parametrize("persona", READERS)
def test_readers_list_allocations_with_filters(valves_stage1, client_as, persona):
    # The allocations were made by the incremental run ingestion triggered; the full run kept them.
    first_run = AllocationRun.objects.order_by("id").first().pk
    response = client_as(persona).get("/api/v1/allocations", {"order": "SO-2"})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 2
    assert response.json()["results"] == [
        {"order": "SO-2", "line": 1, "sku": "VALVE-10", "location": "DC-EAST", "quantity": "30",
         "confirmed_date": "2026-06-01", "supply_ref": None, "state": "reserved", "run": first_run},
        {"order": "SO-2", "line": 1, "sku": "VALVE-10", "location": "DC-WEST", "quantity": "20",
         "confirmed_date": "2026-06-01", "supply_ref": None, "state": "reserved", "run": first_run},
    ]


@pytest.mark.django_db
def test_allocation_filters_combine_and_a_bad_state_names_the_field(valves_stage1, client_as):
    client = client_as(roles.PLANNER)
    by_location = client.get("/api/v1/allocations", {"sku": "VALVE-10", "location": "DC-WEST"}).json()
    assert [(r["order"], r["quantity"]) for r in by_location["results"]] == [("SO-2", "20"), ("SO-3", "10")]
    assert len(client.get("/api/v1/allocations", {"state": "proposed"}).json()["results"]) == 0
    bad = client.get("/api/v1/allocations", {"state": "lost"})
    assert bad.status_code == 400
    assert list(bad.json()) == ["state"]


@pytest.mark.django_db
@pytest.mark.parametrize("persona", NON_READERS)
def test_non_readers_are_refused_everything(valves_stage1, client_as, persona):
    client = client_as(persona)
    assert client.get("/api/v1/allocations").status_code == 403
    assert client.get("/api/v1/lines/SO-1/1/decision").status_code == 403
    assert client.get(f"/api/v1/runs/{valves_stage1.pk}").status_code == 403
    assert client.get("/api/v1/runs").status_code == 403


@pytest.mark.django_db
def test_anonymous_is_refused(valves_stage1, client):
    runs = AllocationRun.objects.count()
    assert client.get("/api/v1/allocations").status_code == 401
    assert client.post("/api/v1/runs", {}, content_type="application/json").status_code == 401
    assert AllocationRun.objects.count() == runs


@pytest.mark.django_db
def test_line_decision_shows_the_latest_decision_allocations_and_open_exceptions(valves_stage1, client_as):
    response = client_as(roles.CUSTOMER_SERVICE).get("/api/v1/lines/SO-3/1/decision")
    assert response.status_code == 200
    body = response.json()
    assert (body["order"], body["line"], body["sku"], body["quantity"]) == ("SO-3", 1, "VALVE-10", "40")
    assert body["decision"]["run"] == AllocationRun.objects.order_by("id").first().pk  # ingestion's run
    assert body["decision"]["strategy"] == "redistribute"
    assert body["decision"]["priority_class"] == 5
    assert body["decision"]["shortfall"] == "0"
    assert [(a["location"], a["quantity"], a["supply_ref"]) for a in body["allocations"]] == [
        ("DC-WEST", "10", None), ("DC-EAST", "30", "PO-1"),
    ]
    assert [(e["type"], e["status"]) for e in body["exceptions"]] == [("promise_at_risk", "open")]


@pytest.mark.django_db
def test_line_decision_of_a_missing_line_is_404(valves_stage1, client_as):
    assert client_as(roles.PLANNER).get("/api/v1/lines/SO-9/1/decision").status_code == 404
    assert client_as(roles.PLANNER).get("/api/v1/lines/SO-1/7/decision").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("persona", STARTERS)
def test_planner_and_policy_admin_start_a_run(
    valves_stage1, client_as, persona, in_process_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(persona).post("/api/v1/runs", {"items": ["PUMP-2"]}, format="json")
    assert response.status_code == 202
    run = AllocationRun.objects.get(pk=response.json()["id"])
    assert (run.trigger, run.scope, run.scope_items, run.actor.username) == (
        "manual", "items", ["PUMP-2"], f"{'pat_planner' if persona == roles.PLANNER else 'pia_policy'}",
    )
    assert run.status == "succeeded"  # tasks run in-process: executed once the request committed

    detail = client_as(roles.FINANCE).get(f"/api/v1/runs/{run.pk}")
    assert detail.status_code == 200
    assert (detail.json()["status"], detail.json()["progress"], detail.json()["line_count"]) == ("succeeded", 100, 5)


@pytest.mark.django_db
def test_starting_a_full_run_without_a_body(
    valves_stage1, client_as, in_process_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(roles.PLANNER).post("/api/v1/runs", format="json")
    assert response.status_code == 202
    run = AllocationRun.objects.get(pk=response.json()["id"])
    assert (run.scope, run.status, run.changed_line_count) == ("full", "succeeded", 0)


@pytest.mark.django_db
@pytest.mark.parametrize("persona", NON_STARTERS)
def test_others_cannot_start_a_run_and_nothing_changes(valves_stage1, client_as, persona):
    runs = AllocationRun.objects.count()
    response = client_as(persona).post("/api/v1/runs", {"items": ["PUMP-2"]}, format="json")
    assert response.status_code == 403
    assert AllocationRun.objects.count() == runs


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"items": "PUMP-2"}, 'Expected a list of items but got type "str".'),
        ({"items": []}, "This list may not be empty."),
        ({"items": ["NOPE-1", "PUMP-2"]}, "unknown SKU: NOPE-1"),
    ],
)
def test_bad_run_requests_name_the_field_and_change_nothing(valves_stage1, client_as, body, message):
    runs = AllocationRun.objects.count()
    response = client_as(roles.PLANNER).post("/api/v1/runs", body, format="json")
    assert response.status_code == 400
    assert response.json() == {"items": [message]}
    assert AllocationRun.objects.count() == runs


@pytest.mark.django_db
def test_missing_run_is_404(valves_stage1, client_as):
    assert client_as(roles.PLANNER).get(f"/api/v1/runs/{valves_stage1.pk + 100}").status_code == 404
