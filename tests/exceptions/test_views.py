"""The exceptions screens: full pages and HTMX partials, actions through forms, 409 and 400
answers, the approvals inbox (four-eyes) and the shortage workbench."""
from decimal import Decimal

import pytest
from django.urls import reverse

from allocation.models import Allocation
from exceptions.models import ApprovalRequest, DecisionException, SavedView

pytestmark = pytest.mark.django_db


@pytest.fixture
def scene(world, recorded_runs):
    world.stock(world.east, 40)
    hospital = world.line(world.hospital, 20, unit_price="10")
    shop = world.line(world.shop, 30, unit_price="10")
    world.allocate(hospital, world.east, 10)
    world.allocate(shop, world.east, 30)
    return hospital, shop, world.exception(hospital)


def login(client, user):
    client.force_login(user)
    return client


def test_queue_list_counts_and_roles(client, scene, personas):
    for persona, expected in [("planner", 200), ("customer_service", 200), ("approver", 200), ("finance", 200), ("integration", 403), ("outsider", 403)]:
        client.force_login(personas[persona])
        assert client.get(reverse("exceptions:queue_list")).status_code == expected, persona
    client.force_login(personas["planner"])
    page = client.get(reverse("exceptions:queue_list")).content.decode()
    assert 'hx-trigger="every 10s"' in page
    assert "Shortages" in page
    fragment = client.get(reverse("exceptions:queue_list"), HTTP_HX_REQUEST="true").content.decode()
    assert fragment.startswith('\n<div id="queues"') or fragment.lstrip().startswith('<div id="queues"')
    assert "<html" not in fragment


def test_queue_detail_rows_counts_filters_and_empty_state(client, scene, planner):
    _h, _s, exception = scene
    login(client, planner)
    url = reverse("exceptions:queue_detail", args=["shortages"])
    page = client.get(url + "?sort=sla").content.decode()
    assert f'data-key="{exception.pk}"' in page
    assert "queue-keys.js" in page
    rows = client.get(url + "?part=rows&band=high", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in rows and "No cases match these filters." in rows
    counts = client.get(url + "?part=counts", HTTP_HX_REQUEST="true").content.decode()
    assert "open 1" in counts and "<table" not in counts
    assert client.get(url + "?sort=nonsense").status_code == 400
    assert client.get(reverse("exceptions:queue_detail", args=["nope"])).status_code == 404
    empty = client.get(reverse("exceptions:queue_detail", args=["substitutions"])).content.decode()
    assert "This queue is clear" in empty


def test_saved_views_are_per_user(client, scene, planner, customer_service):
    login(client, planner)
    client.post(reverse("exceptions:saved_view_create", args=["shortages"]), {"name": "Mine, overdue", "querystring": "assignee=me&sla=overdue"})
    view = SavedView.objects.get()
    client.get(reverse("exceptions:queue_list"))  # shows (and so consumes) the success message
    assert (view.user, view.querystring) == (planner, "assignee=me&sla=overdue")
    login(client, customer_service)
    assert "Mine, overdue" not in client.get(reverse("exceptions:queue_detail", args=["shortages"])).content.decode()
    assert client.post(reverse("exceptions:saved_view_delete", args=[view.pk])).status_code == 404
    login(client, planner)
    client.post(reverse("exceptions:saved_view_delete", args=[view.pk]))
    assert SavedView.objects.count() == 0


def test_detail_shows_order_alternatives_and_consequence(client, scene, planner, finance):
    hospital, _s, exception = scene
    login(client, planner)
    page = client.get(reverse("exceptions:exception_detail", args=[exception.pk])).content.decode()
    assert "SO-1" in page and "Alternatives and their consequence" in page
    assert "SO-2/1" in page  # the shop line holds the stock at DC-EAST
    assert reverse("allocation:line_why", args=["SO-1", 1]) in page
    preview = client.get(
        reverse("exceptions:override_preview", args=[exception.pk]),
        {"option": "VALVE-10|DC-EAST|", "quantity": "20", "version": 1},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "SO-2/1" in preview and "would lose up to 10" in preview
    login(client, finance)
    page = client.get(reverse("exceptions:exception_detail", args=[exception.pk])).content.decode()
    assert "planners and customer service act on it" in page
    assert client.post(reverse("exceptions:exception_action", args=[exception.pk, "claim"]), {"version": 1}).status_code == 403


def test_actions_through_forms_redirect_and_409_when_stale(client, scene, planner, customer_service):
    hospital, _s, exception = scene
    login(client, planner)
    url = reverse("exceptions:exception_action", args=[exception.pk, "claim"])
    response = client.post(url, {"version": 1})
    assert response.status_code == 302
    htmx = client.post(reverse("exceptions:exception_action", args=[exception.pk, "release"]), {"version": 2}, HTTP_HX_REQUEST="true")
    assert (htmx.status_code, htmx["HX-Location"]) == (204, reverse("exceptions:exception_detail", args=[exception.pk]))
    login(client, customer_service)
    stale = client.post(url, {"version": 1})
    assert stale.status_code == 409
    body = stale.content.decode()
    assert "Someone acted first" in body and "claimed by pat_planner" in body and "claim released" in body
    exception.refresh_from_db()
    assert (exception.status, exception.version) == ("open", 3)


def test_override_form_bad_input_is_400_naming_the_field(client, scene, planner):
    hospital, _s, exception = scene
    login(client, planner)
    before = list(Allocation.objects.values_list("pk", "quantity", "state"))
    response = client.post(
        reverse("exceptions:exception_action", args=[exception.pk, "override"]),
        {"version": 1, "option": "VALVE-10|DC-EAST|", "quantity": "20", "reason_code": "", "note": "x"},
    )
    assert response.status_code == 400
    assert "reason_code: This field is required." in response.content.decode()
    response = client.post(
        reverse("exceptions:exception_action", args=[exception.pk, "override"]),
        {"version": 1, "option": "VALVE-10|DC-EAST|", "quantity": "99", "reason_code": "expedite", "note": "x"},
    )
    assert response.status_code == 400
    assert "quantity: Only 40 can be taken at DC-EAST" in response.content.decode()
    assert list(Allocation.objects.values_list("pk", "quantity", "state")) == before
    ok = client.post(
        reverse("exceptions:exception_action", args=[exception.pk, "override"]),
        {"version": 1, "option": "VALVE-10|DC-EAST|", "quantity": "20", "reason_code": "expedite", "note": "x"},
    )
    assert ok.status_code == 302
    assert list(Allocation.objects.filter(line=hospital).values_list("quantity", "state")) == [(Decimal("20.000"), "pinned")]


def test_approval_inbox_four_eyes_in_the_ui(client, world, planner, approver, recorded_runs):
    from config import roles
    from exceptions import services
    from tests.fixtures.personas import make_user

    world.stock(world.east, 2000)
    line = world.line(world.hospital, 1500, unit_price="10")
    exception = world.exception(line)
    dual = make_user("dual", roles.PLANNER, roles.APPROVER)
    result = services.override(exception.pk, actor=dual, expected_version=1, location="DC-EAST", quantity="1500", reason_code="expedite", note="n")
    login(client, dual)
    inbox = client.get(reverse("exceptions:approval_inbox")).content.decode()
    assert "Nothing waits for your decision" in inbox and "Your own requests" in inbox
    refused = client.post(reverse("exceptions:approval_decide", args=[result.approval.pk]), {"decision": "approve"})
    assert refused.status_code == 403
    assert "You cannot decide a request you made yourself." in refused.content.decode()
    assert Allocation.objects.filter(line=line).count() == 0
    login(client, planner)
    assert client.get(reverse("exceptions:approval_inbox")).status_code == 403
    login(client, approver)
    inbox = client.get(reverse("exceptions:approval_inbox")).content.decode()
    assert f'data-key="{result.approval.pk}"' in inbox and "SO-1/1" in inbox
    assert client.post(reverse("exceptions:approval_decide", args=[result.approval.pk]), {"decision": "approve", "reason": "fine"}).status_code == 302
    assert list(Allocation.objects.filter(line=line).values_list("quantity", "state")) == [(Decimal("1500.000"), "pinned")]


def test_workbench_moves_quantity_between_lines(client, scene, planner):
    hospital, shop, _e = scene
    login(client, planner)
    url = reverse("exceptions:shortage_workbench", args=["VALVE-10"]) + "?location=DC-EAST"
    page = client.get(url).content.decode()
    assert "workbench.js" in page and f'name="line-{shop.pk}"' in page
    response = client.post(url, {
        "location": "DC-EAST",
        f"line-{hospital.pk}": "20", f"seen-{hospital.pk}": "10",
        f"line-{shop.pk}": "20", f"seen-{shop.pk}": "30",
        "reason_code": "customer_commitment", "note": "hospital first",
    })
    assert response.status_code == 302
    assert list(Allocation.objects.filter(line=hospital).values_list("quantity", "state")) == [(Decimal("20.000"), "pinned")]
    assert list(Allocation.objects.filter(line=shop).values_list("quantity", "state")) == [(Decimal("20.000"), "pinned")]


def test_workbench_stale_and_over_available(client, scene, planner):
    hospital, shop, _e = scene
    login(client, planner)
    url = reverse("exceptions:shortage_workbench", args=["VALVE-10"]) + "?location=DC-EAST"
    before = list(Allocation.objects.order_by("pk").values_list("line_id", "quantity", "state"))
    stale = client.post(url, {"location": "DC-EAST", f"line-{hospital.pk}": "20", f"seen-{hospital.pk}": "5", "reason_code": "expedite", "note": "n"})
    assert stale.status_code == 409
    assert "SO-1/1 now holds 10" in stale.content.decode()
    over = client.post(url, {
        "location": "DC-EAST", f"line-{hospital.pk}": "20", f"seen-{hospital.pk}": "10",
        f"line-{shop.pk}": "30", f"seen-{shop.pk}": "30", "reason_code": "expedite", "note": "n",
    })
    assert over.status_code == 400
    assert list(Allocation.objects.order_by("pk").values_list("line_id", "quantity", "state")) == before


HTML_BODIES = {
    "claim": {}, "release": {}, "assign": {"assignee": "pat_planner"}, "accept": {},
    "override": {"option": "VALVE-10|DC-EAST|", "quantity": "5", "reason_code": "expedite", "note": "n"},
    "split": {"part-0-location": "DC-EAST", "part-0-quantity": "2", "part-1-location": "DC-EAST", "part-1-supply": "", "part-1-quantity": "1", "reason_code": "expedite", "note": "n"},
    "defer": {"promised_date": "2026-06-20", "reason": "r"}, "hold": {}, "release_to_warehouse": {},
    "escalate": {}, "dismiss": {"reason": "r"}, "comment": {"body": "b"},
}


def html_snapshot():
    return (
        list(DecisionException.objects.order_by("pk").values_list("status", "version", "assignee_id", "queue_id")),
        list(Allocation.objects.order_by("pk").values_list("line_id", "quantity", "state")),
        ApprovalRequest.objects.count(),
    )


@pytest.mark.parametrize("action", sorted(HTML_BODIES))
def test_html_actions_denied_for_other_roles_change_nothing(client, scene, personas, action):
    _h, _s, exception = scene
    url = reverse("exceptions:exception_action", args=[exception.pk, action])
    before = html_snapshot()
    for persona in ("policy_admin", "approver", "finance", "integration", "outsider"):
        client.force_login(personas[persona])
        assert client.post(url, {"version": 1, **HTML_BODIES[action]}).status_code == 403, persona
    client.logout()
    assert client.post(url, {"version": 1, **HTML_BODIES[action]}).status_code == 302  # to the login page
    assert html_snapshot() == before


def test_bulk_dismiss_through_the_queue_form(client, world, planner, recorded_runs):
    exceptions = [world.exception(world.line(world.shop, 1)) for _ in range(3)]
    login(client, planner)
    response = client.post(
        reverse("exceptions:bulk_action", args=["shortages"]),
        {"action": "dismiss", "selected": [f"{exceptions[0].pk}:1", f"{exceptions[1].pk}:9"], "reason": "noise"},
    )
    assert response.status_code == 302
    assert list(DecisionException.objects.order_by("pk").values_list("status", flat=True)) == ["dismissed", "open", "open"]
    page = client.get(response["Location"]).content.decode()
    assert "Dismiss: 1 done, 1 changed meanwhile (reload to see them)." in page
