"""Strict input on every exception write (issue 8): unknown fields, ids that are not positive
JSON integers, oversized bulk selections, far-away deferrals, NUL and lone surrogates are a
4xx naming the field, through the API, the forms and the services; nothing changes."""
import datetime as dt
import json

import pytest
from django.urls import reverse

from exceptions import services
from exceptions.errors import InvalidAction
from exceptions.forms import BulkForm, DeferForm
from exceptions.models import DecisionException, PromiseChange
from tests.exceptions.test_api import ACTION_BODIES
from tests.exceptions.test_api import snapshot as api_snapshot

pytestmark = pytest.mark.django_db

BUSINESS_DATE = dt.date(2026, 6, 1)  # tests/conftest.py pins it
def snapshot():
    return (*api_snapshot(), DecisionException.history.count())


def post_json(client, url, body):
    """A raw JSON body: ``json.dumps`` escapes lone surrogates as ``\\ud800``, as a client would."""
    return client.post(url, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def scene(world, recorded_runs):
    world.stock(world.east, 40)
    world.stock(world.west, 10)
    line = world.line(world.shop, 10, unit_price="10")
    world.allocate(line, world.east, 5)
    return world.exception(line)


@pytest.fixture
def planner_api(api_client_for, planner):
    return api_client_for(planner)


# ----------------------------------------------------------------------------- one action


@pytest.mark.parametrize("action", sorted(ACTION_BODIES))
def test_an_unknown_field_is_a_400_naming_it_and_nothing_changes(scene, planner_api, action):
    before = snapshot()
    response = post_json(planner_api, f"/api/v1/exceptions/{scene.pk}/{action}", {"version": 1, **ACTION_BODIES[action], "verison": 2})
    assert response.status_code == 400
    assert response.json() == {"verison": ["Unknown field."]}
    assert snapshot() == before


def test_an_unknown_field_inside_a_split_part_is_named(scene, planner_api):
    before = snapshot()
    body = {**ACTION_BODIES["split"], "version": 1, "parts": [{"location": "DC-EAST", "quantity": "3", "qty": "9"}]}
    response = post_json(planner_api, f"/api/v1/exceptions/{scene.pk}/split", body)
    assert response.status_code == 400
    assert response.json() == {"parts": {"0": {"qty": ["Unknown field."]}}}
    assert snapshot() == before


@pytest.mark.parametrize("version", ["1", True, 1.0, 1e30, 0, -1, 2**40, None, [1]])
def test_version_must_be_a_positive_json_integer(scene, planner_api, version):
    before = snapshot()
    response = post_json(planner_api, f"/api/v1/exceptions/{scene.pk}/claim", {"version": version})
    assert response.status_code == 400
    assert list(response.json()) == ["version"]
    assert snapshot() == before


@pytest.mark.parametrize("bad", ["bad\x00text", "bad\ud800text"])
@pytest.mark.parametrize(
    ("action", "field"),
    [("comment", "body"), ("dismiss", "reason"), ("defer", "reason"), ("hold", "note"), ("assign", "assignee"),
     ("override", "note"), ("override", "location")],
)
def test_nul_and_lone_surrogates_are_a_400_naming_the_field(scene, planner_api, action, field, bad):
    before = snapshot()
    response = post_json(planner_api, f"/api/v1/exceptions/{scene.pk}/{action}", {"version": 1, **ACTION_BODIES[action], field: bad})
    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert snapshot() == before


# ----------------------------------------------------------------------------- defer


@pytest.mark.parametrize("promised", ["9999-12-31", "2027-06-02", "0001-01-01", "2026-05-31"])
def test_defer_outside_business_date_to_a_year_ahead_is_refused(scene, planner_api, promised):
    before = snapshot()
    response = post_json(planner_api, f"/api/v1/exceptions/{scene.pk}/defer", {"version": 1, "promised_date": promised, "reason": "late PO"})
    assert response.status_code == 400
    assert list(response.json()) == ["promised_date"]
    assert snapshot() == before


def test_defer_to_the_last_day_of_the_horizon_works(scene, planner_api):
    response = post_json(planner_api, f"/api/v1/exceptions/{scene.pk}/defer", {"version": 1, "promised_date": "2027-06-01", "reason": "late PO"})
    assert response.status_code == 200
    assert PromiseChange.objects.get().promised_date == dt.date(2027, 6, 1)


def test_defer_horizon_is_a_setting(scene, planner_api, settings):
    settings.ALLOT_DEFER_MAX_DAYS = 30
    response = post_json(planner_api, f"/api/v1/exceptions/{scene.pk}/defer", {"version": 1, "promised_date": "2026-07-02", "reason": "late PO"})
    assert response.status_code == 400
    assert response.json() == {"promised_date": ["The new promised date must be on or before 2026-07-01 (30 days ahead)."]}


def test_defer_service_refuses_a_date_beyond_the_horizon(scene, customer_service):
    with pytest.raises(InvalidAction) as refused:
        services.defer_promise(scene.pk, actor=customer_service, expected_version=1, promised_date=dt.date(9999, 12, 31), reason="x")
    assert refused.value.data["field"] == "promised_date"
    assert PromiseChange.objects.count() == 0


def test_defer_form_and_screen_refuse_9999(client, scene, planner):
    form = DeferForm({"version": 1, "promised_date": "9999-12-31", "reason": "late PO"})
    assert not form.is_valid()
    assert list(form.errors) == ["promised_date"]
    client.force_login(planner)
    before = snapshot()
    response = client.post(
        reverse("exceptions:exception_action", args=[scene.pk, "defer"]),
        {"version": 1, "promised_date": "9999-12-31", "reason": "late PO"},
    )
    assert response.status_code == 400
    assert "2027-06-01" in response.content.decode()
    assert snapshot() == before


# ----------------------------------------------------------------------------- bulk


def test_bulk_over_the_cap_is_a_400_naming_items(scene, planner_api):
    before = snapshot()
    items = [{"id": pk, "version": 1} for pk in range(1, 100_001)]
    response = post_json(planner_api, "/api/v1/exceptions/bulk/claim", {"items": items})
    assert response.status_code == 400
    assert response.json() == {"items": ["At most 500 exceptions at once; got 100000."]}
    assert snapshot() == before


def test_bulk_cap_is_a_setting_and_the_cap_itself_is_allowed(world, planner_api, settings, recorded_runs):
    settings.ALLOT_BULK_MAX_IDS = 2
    exceptions = [world.exception(world.line(world.shop, 1)) for _ in range(3)]
    over = post_json(planner_api, "/api/v1/exceptions/bulk/claim", {"items": [{"id": e.pk, "version": 1} for e in exceptions]})
    assert (over.status_code, list(over.json())) == (400, ["items"])
    assert set(DecisionException.objects.values_list("status", flat=True)) == {"open"}
    at_cap = post_json(planner_api, "/api/v1/exceptions/bulk/claim", {"items": [{"id": e.pk, "version": 1} for e in exceptions[:2]]})
    assert at_cap.status_code == 200
    assert sorted(at_cap.json()["done"]) == sorted(e.pk for e in exceptions[:2])


@pytest.mark.parametrize("bad_id", ["1", True, 1e30, 1.5, 0, -3, 2**64, None, "1e30"])
def test_bulk_ids_must_be_positive_json_integers(scene, planner_api, bad_id):
    before = snapshot()
    response = post_json(planner_api, "/api/v1/exceptions/bulk/claim", {"items": [{"id": bad_id, "version": 1}]})
    assert response.status_code == 400
    assert list(response.json()) == ["items"]
    assert snapshot() == before


def test_bulk_repeated_ids_and_unknown_fields_are_named(scene, planner_api):
    before = snapshot()
    twice = post_json(planner_api, "/api/v1/exceptions/bulk/claim", {"items": [{"id": scene.pk, "version": 1}, {"id": scene.pk, "version": 2}]})
    assert twice.json() == {"items": [f"Each exception once; repeated: {scene.pk}."]}
    top = post_json(planner_api, "/api/v1/exceptions/bulk/dismiss", {"items": [{"id": scene.pk, "version": 1}], "reason": "x", "ids": [scene.pk]})
    assert (top.status_code, top.json()) == (400, {"ids": ["Unknown field."]})
    inner = post_json(planner_api, "/api/v1/exceptions/bulk/claim", {"items": [{"id": scene.pk, "version": 1, "force": True}]})
    assert (inner.status_code, inner.json()) == (400, {"items": {"0": {"force": ["Unknown field."]}}})
    nul = post_json(planner_api, "/api/v1/exceptions/bulk/dismiss", {"items": [{"id": scene.pk, "version": 1}], "reason": "x\x00"})
    assert (nul.status_code, list(nul.json())) == (400, ["reason"])
    assignee = post_json(planner_api, "/api/v1/exceptions/bulk/assign", {"items": [{"id": scene.pk, "version": 1}], "assignee": "pat\ud800"})
    assert (assignee.status_code, list(assignee.json())) == (400, ["assignee"])
    assert snapshot() == before


def test_bulk_service_refuses_oversized_and_non_integer_selections(scene, planner, settings):
    settings.ALLOT_BULK_MAX_IDS = 1
    for selection in ({scene.pk: 1, scene.pk + 1: 1}, {True: 1}, {scene.pk: "1"}, {-1: 1}):
        with pytest.raises(InvalidAction) as refused:
            services.bulk_claim(selection, actor=planner)
        assert refused.value.data["field"] == "ids"
    assert DecisionException.objects.get().status == "open"


@pytest.mark.parametrize("value", ["abc:1", "-1:1", "0:1", "1e30:1", "1:0", "1:2:3", "99999999999999999999:1", "1 :1", "١:1"])
def test_bulk_form_refuses_selections_that_are_not_positive_id_version_pairs(value):
    form = BulkForm(_querydict(action="claim", selected=[value]))
    assert not form.is_valid()
    assert list(form.errors) == ["selected"]


def test_bulk_form_caps_the_selection_and_refuses_repeats(settings):
    assert not BulkForm(_querydict(action="claim", selected=[f"{pk}:1" for pk in range(1, 502)])).is_valid()
    settings.ALLOT_BULK_MAX_IDS = 600
    assert BulkForm(_querydict(action="claim", selected=[f"{pk}:1" for pk in range(1, 502)])).is_valid()
    repeated = BulkForm(_querydict(action="claim", selected=["1:1", "1:2"]))
    assert (repeated.is_valid(), list(repeated.errors)) == (False, ["selected"])


def test_bulk_screen_with_too_many_ids_changes_nothing(client, scene, planner):
    client.force_login(planner)
    before = snapshot()
    selected = [f"{scene.pk}:1"] + [f"{pk}:1" for pk in range(scene.pk + 1, scene.pk + 600)]
    response = client.post(reverse("exceptions:bulk_action", args=["shortages"]), {"action": "claim", "selected": selected})
    assert response.status_code == 400
    assert "Selection: At most 500 exceptions at once; got 600." in response.content.decode()
    assert snapshot() == before


def _querydict(**values):
    from django.http import QueryDict

    data = QueryDict(mutable=True)
    for key, value in values.items():
        data.setlist(key, value if isinstance(value, list) else [value])
    return data


# ----------------------------------------------------------------------------- approvals


@pytest.fixture
def pending_approval(world, planner):
    from exceptions import approvals

    line = world.line(world.shop, 1)
    exception = world.exception(line)
    return approvals.request_approval(kind="override", subject=exception, actor=planner, note="please", payload={})


@pytest.mark.parametrize(
    ("decision", "body", "field"),
    [("approve", {"reason": "ok", "reasons": "x"}, "reasons"), ("reject", {"reason": "no", "force": True}, "force"),
     ("approve", {"reason": "ok\x00"}, "reason"), ("reject", {"reason": "\udc00"}, "reason")],
)
def test_approval_decisions_are_strict(pending_approval, api_client_for, approver, decision, body, field):
    response = post_json(api_client_for(approver), f"/api/v1/approvals/{pending_approval.pk}/{decision}", body)
    assert response.status_code == 400
    assert list(response.json()) == [field]
    pending_approval.refresh_from_db()
    assert pending_approval.status == "pending"
