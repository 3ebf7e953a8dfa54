"""The exceptions API: the persona matrix, 409 with the current state, approvals over HTTP."""
from decimal import Decimal

import pytest

from allocation.models import Allocation
from config import roles
from exceptions.models import ApprovalRequest, DecisionException, ExceptionComment, PromiseChange

pytestmark = pytest.mark.django_db

ACTION_BODIES = {
    "claim": {},
    "release": {},
    "assign": {"assignee": "pat_planner"},
    "accept": {},
    "override": {"location": "DC-EAST", "quantity": "5", "reason_code": "expedite", "note": "n"},
    "split": {
        "parts": [{"location": "DC-EAST", "quantity": "3"}, {"location": "DC-WEST", "quantity": "2"}],
        "reason_code": "expedite",
        "note": "n",
    },
    "defer": {"promised_date": "2026-06-20", "reason": "late PO"},
    "hold": {},
    "release_to_warehouse": {},
    "escalate": {},
    "dismiss": {"reason": "noise"},
    "comment": {"body": "hello"},
}


def snapshot():
    return (
        list(DecisionException.objects.order_by("pk").values_list("status", "version", "assignee_id", "queue_id")),
        list(Allocation.objects.order_by("pk").values_list("line_id", "location_id", "quantity", "state")),
        ApprovalRequest.objects.count(),
        ExceptionComment.objects.count(),
        PromiseChange.objects.count(),
    )


@pytest.fixture
def scene(world, recorded_runs):
    world.stock(world.east, 40)
    world.stock(world.west, 10)
    line = world.line(world.shop, 10, unit_price="10")
    world.allocate(line, world.east, 5)
    return world.exception(line)


@pytest.mark.parametrize("action", sorted(ACTION_BODIES))
@pytest.mark.parametrize("persona", [roles.POLICY_ADMIN, roles.APPROVER, roles.FINANCE, roles.INTEGRATION, "outsider"])
def test_roles_that_may_not_act_are_refused_and_nothing_changes(scene, personas, api_client_for, action, persona):
    before = snapshot()
    response = api_client_for(personas[persona]).post(
        f"/api/v1/exceptions/{scene.pk}/{action}", {"version": 1, **ACTION_BODIES[action]}, format="json"
    )
    assert response.status_code == 403
    assert snapshot() == before


@pytest.mark.parametrize("persona", [roles.PLANNER, roles.CUSTOMER_SERVICE])
@pytest.mark.parametrize(
    "action, expected_status",
    [
        ("claim", "claimed"),
        ("assign", "claimed"),
        ("override", "resolved"),
        ("split", "resolved"),
        ("defer", "resolved"),
        ("hold", "claimed"),
        ("release_to_warehouse", "resolved"),
        ("escalate", "open"),
        ("dismiss", "dismissed"),
        ("comment", "open"),
    ],
)
def test_planner_and_customer_service_act(scene, personas, api_client_for, persona, action, expected_status):
    response = api_client_for(personas[persona]).post(
        f"/api/v1/exceptions/{scene.pk}/{action}", {"version": 1, **ACTION_BODIES[action]}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["exception"]["status"], body["exception"]["version"]) == (expected_status, 2)


def test_readers_list_and_detail_others_denied(scene, personas, api_client_for):
    for persona in (roles.PLANNER, roles.CUSTOMER_SERVICE, roles.APPROVER, roles.FINANCE):
        client = api_client_for(personas[persona])
        listed = client.get("/api/v1/exceptions?queue=shortages&sort=sla")
        assert listed.status_code == 200
        assert [row["id"] for row in listed.json()["results"]] == [scene.pk]
        detail = client.get(f"/api/v1/exceptions/{scene.pk}")
        assert (detail.status_code, detail.json()["queue"], detail.json()["order"]) == (200, "shortages", "SO-1")
    for persona in (roles.INTEGRATION, "outsider", roles.POLICY_ADMIN):
        client = api_client_for(personas[persona])
        assert client.get("/api/v1/exceptions").status_code == 403
        assert client.get(f"/api/v1/exceptions/{scene.pk}").status_code == 403


def test_list_filters_validate_and_missing_is_404(scene, planner, api_client_for):
    client = api_client_for(planner)
    assert client.get("/api/v1/exceptions?band=enormous").json() == {"band": ["unknown value 'enormous'"]}
    assert len(client.get("/api/v1/exceptions?type=priority_shortage&assignee=none&band=low").json()["results"]) == 1
    assert len(client.get("/api/v1/exceptions?status=resolved").json()["results"]) == 0
    assert client.get("/api/v1/exceptions/999999").status_code == 404
    assert client.post("/api/v1/exceptions/999999/claim", {"version": 1}, format="json").status_code == 404


def test_stale_version_is_409_with_current_state(scene, planner, customer_service, api_client_for):
    assert api_client_for(planner).post(f"/api/v1/exceptions/{scene.pk}/claim", {"version": 1}, format="json").status_code == 200
    response = api_client_for(customer_service).post(f"/api/v1/exceptions/{scene.pk}/claim", {"version": 1}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["current"]["status"] == "claimed"
    assert body["current"]["assignee"] == "pat_planner"
    assert [c["what"] for c in body["changes"]] == ["claimed by pat_planner"]


def test_bad_input_names_the_field(scene, planner, api_client_for):
    client = api_client_for(planner)
    before = snapshot()
    assert client.post(f"/api/v1/exceptions/{scene.pk}/claim", {}, format="json").json() == {"version": ["This field is required."]}
    bad_reason = client.post(
        f"/api/v1/exceptions/{scene.pk}/override",
        {"version": 1, "location": "DC-EAST", "quantity": "5", "reason_code": "whim", "note": "n"},
        format="json",
    )
    assert (bad_reason.status_code, list(bad_reason.json())) == (400, ["reason_code"])
    too_much = client.post(
        f"/api/v1/exceptions/{scene.pk}/override",
        {"version": 1, "location": "DC-EAST", "quantity": "11", "reason_code": "expedite", "note": "n"},
        format="json",
    )
    assert too_much.status_code == 400
    assert too_much.json()["quantity"] == ["The parts add up to 11, more than the line's 10 still to allocate."]
    assert snapshot() == before


def test_bulk_endpoints(world, planner, api_client_for, recorded_runs):
    exceptions = [world.exception(world.line(world.shop, 1)) for _ in range(3)]
    client = api_client_for(planner)
    items = [{"id": e.pk, "version": 1} for e in exceptions]
    claimed = client.post("/api/v1/exceptions/bulk/claim", {"items": items[:2]}, format="json")
    assert claimed.json() == {"done": [exceptions[0].pk, exceptions[1].pk], "stale": [], "skipped": {}}
    dismissed = client.post("/api/v1/exceptions/bulk/dismiss", {"items": items, "reason": "noise"}, format="json")
    assert dismissed.json() == {"done": [exceptions[2].pk], "stale": [exceptions[0].pk, exceptions[1].pk], "skipped": {}}
    no_reason = client.post("/api/v1/exceptions/bulk/dismiss", {"items": items}, format="json")
    assert (no_reason.status_code, list(no_reason.json())) == (400, ["reason"])


def test_approvals_over_http_four_eyes(world, planner, approver, finance, api_client_for, recorded_runs):
    world.stock(world.east, 2000)
    line = world.line(world.hospital, 1500, unit_price="10")
    exception = world.exception(line)
    requested = api_client_for(planner).post(
        f"/api/v1/exceptions/{exception.pk}/override",
        {"version": 1, "location": "DC-EAST", "quantity": "1500", "reason_code": "expedite", "note": "ward"},
        format="json",
    )
    assert requested.status_code == 202
    approval_id = requested.json()["approval"]["id"]
    assert Allocation.objects.filter(line=line).count() == 0
    # The requester is a planner (not an approver): denied by role; finance reads only.
    assert api_client_for(planner).post(f"/api/v1/approvals/{approval_id}/approve", {}, format="json").status_code == 403
    assert api_client_for(finance).post(f"/api/v1/approvals/{approval_id}/approve", {}, format="json").status_code == 403
    assert len(api_client_for(finance).get("/api/v1/approvals?status=pending").json()["results"]) == 1
    assert len(api_client_for(planner).get("/api/v1/approvals").json()["results"]) == 1
    reject_without_reason = api_client_for(approver).post(f"/api/v1/approvals/{approval_id}/reject", {}, format="json")
    assert (reject_without_reason.status_code, reject_without_reason.json()["reason"]) == (400, ["A reason is required to reject."])
    approved = api_client_for(approver).post(f"/api/v1/approvals/{approval_id}/approve", {"reason": "ok"}, format="json")
    assert (approved.status_code, approved.json()["status"]) == (200, "approved")
    assert list(Allocation.objects.filter(line=line).values_list("quantity", "state")) == [(Decimal("1500.000"), "pinned")]
    again = api_client_for(approver).post(f"/api/v1/approvals/{approval_id}/approve", {}, format="json")
    assert again.status_code == 409


def test_self_approval_refused_over_http(world, api_client_for, recorded_runs):
    from tests.fixtures.personas import make_user

    both = make_user("dual_role", roles.PLANNER, roles.APPROVER)
    world.stock(world.east, 2000)
    exception = world.exception(world.line(world.hospital, 1500, unit_price="10"))
    client = api_client_for(both)
    requested = client.post(
        f"/api/v1/exceptions/{exception.pk}/override",
        {"version": 1, "location": "DC-EAST", "quantity": "1500", "reason_code": "expedite", "note": "n"},
        format="json",
    )
    response = client.post(f"/api/v1/approvals/{requested.json()['approval']['id']}/approve", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, "self_approval")
    assert Allocation.objects.count() == 0
    exception.refresh_from_db()
    assert exception.status == "awaiting_approval"
