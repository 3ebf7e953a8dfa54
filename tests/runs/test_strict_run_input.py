"""Starting a run is strict (issue 8): a misspelt field used to be dropped, so a request meant for
two SKUs started a full run. Now it is a 400 naming the field and no run is created."""
from __future__ import annotations

import json

import pytest

from allocation.models import AllocationRun
from config import roles

pytestmark = pytest.mark.django_db


@pytest.fixture
def planner_api(personas, api_client_for):
    return api_client_for(personas[roles.PLANNER])


def post_json(client, body):
    return client.post("/api/v1/runs", data=json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"scop": ["PUMP-2"]}, ["scop"]),
        ({"skus": ["PUMP-2"]}, ["skus"]),
        ({"item": ["PUMP-2"]}, ["item"]),
        ({"items": ["PUMP-2"], "scope": "full"}, ["scope"]),
        ({"Items": ["PUMP-2"], "as_of": "2026-06-01"}, ["Items", "as_of"]),
    ],
)
def test_a_misspelt_field_is_a_400_naming_it_and_starts_nothing(valves_stage1, planner_api, body, fields):
    runs = AllocationRun.objects.count()
    response = post_json(planner_api, body)
    assert response.status_code == 400
    assert response.json() == {name: ["Unknown field."] for name in fields}
    assert AllocationRun.objects.count() == runs


@pytest.mark.parametrize("sku", ["PUMP\x00-2", "PUMP-\ud800", "P" * 65, 7, None, {"sku": "PUMP-2"}])
def test_bad_skus_are_a_400_naming_items(valves_stage1, planner_api, sku):
    runs = AllocationRun.objects.count()
    response = post_json(planner_api, {"items": [sku]})
    assert response.status_code == 400
    assert list(response.json()) == ["items"]
    assert AllocationRun.objects.count() == runs


def test_more_than_the_item_cap_is_a_400(valves_stage1, planner_api):
    runs = AllocationRun.objects.count()
    response = post_json(planner_api, {"items": [f"SKU-{n}" for n in range(1001)]})
    assert (response.status_code, list(response.json())) == (400, ["items"])
    assert AllocationRun.objects.count() == runs


def test_the_right_field_still_starts_a_scoped_run(valves_stage1, planner_api, in_process_tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_json(planner_api, {"items": ["PUMP-2"]})
    assert response.status_code == 202
    assert AllocationRun.objects.get(pk=response.json()["id"]).scope_items == ["PUMP-2"]
