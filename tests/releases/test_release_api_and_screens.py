"""The Release screens, the waves and recommendations API, and ``manage.py release``."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from allocation import releases
from allocation.choices import AllocationState
from allocation.models import Allocation, AllocationRun, OrderLine, Wave
from integrations.models import OutboxMessage

from .conftest import world_events
from .test_execution_mode import RECOMMEND_WEST


def released_count() -> int:
    return Allocation.objects.filter(state=AllocationState.RELEASED).count()


# --------------------------------------------------------------------------- API


def test_post_waves_runs_a_wave_and_get_reads_it(world, planner, api_client_for):
    client = api_client_for(planner)
    response = client.post("/api/v1/waves", {"location": "DC-EAST"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["location"], body["status"], body["considered"], body["released"], body["held_back"]) == (
        "DC-EAST", "succeeded", 5, 3, 2
    )
    assert body["trigger"] == "api" and body["started_by"] == planner.username
    detail = client.get(f"/api/v1/waves/{body['id']}")
    assert detail.status_code == 200
    lines = detail.json()["lines"]
    assert [(x["order"], x["outcome"], x["reason"]) for x in lines if x["outcome"] != "released"] == [
        ("E4", "held", "capacity"), ("E5", "held", "capacity")
    ]


def test_post_waves_preview_changes_nothing(world, planner, api_client_for):
    response = api_client_for(planner).post("/api/v1/waves", {"location": "DC-WEST", "preview": True}, format="json")
    assert response.status_code == 200
    assert (response.json()["released"], response.json()["remaining"]) == (2, 2)
    assert released_count() == 0 and not Wave.objects.exists()


def test_post_waves_while_one_runs_is_409_naming_it(world, planner, api_client_for):
    running = releases.start_wave(world["DC-EAST"], actor=planner)
    response = api_client_for(planner).post("/api/v1/waves", {"location": "DC-EAST"}, format="json")
    assert response.status_code == 409
    assert response.json()["wave"] == running.pk
    assert released_count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"location": "NOPE"}, "location"),
        ({"location": "DC\x00EAST"}, "location"),
        ({"location": "DC-EAST", "locaton": "x"}, "locaton"),
        ({}, "location"),
        ({"location": ["DC-EAST"]}, "location"),
    ],
)
def test_bad_wave_input_is_a_400_naming_the_field_and_changes_nothing(world, planner, api_client_for, body, field):
    response = api_client_for(planner).post("/api/v1/waves", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert released_count() == 0 and not Wave.objects.exists()


@pytest.mark.parametrize("persona", ["finance", "customer_service", "approver", "integration", "policy_admin"])
def test_only_planners_start_waves(world, request, api_client_for, persona):
    user = request.getfixturevalue(persona)
    response = api_client_for(user).post("/api/v1/waves", {"location": "DC-EAST"}, format="json")
    assert response.status_code == 403
    assert released_count() == 0 and not Wave.objects.exists()


def test_get_a_missing_wave_is_404(world, planner, api_client_for):
    assert api_client_for(planner).get("/api/v1/waves/999999").status_code == 404


@pytest.fixture
def recommend_world(db, activate_policy, ingest, full_run):
    activate_policy(RECOMMEND_WEST)
    ingest(world_events())
    return full_run()


def test_the_api_accepts_recommendations(recommend_world, planner, finance, api_client_for):
    body = {"lines": [{"order": "W1", "line": 1}, {"order": "W2", "line": 1}]}
    assert api_client_for(finance).post("/api/v1/recommendations/accept", body, format="json").status_code == 403
    response = api_client_for(planner).post("/api/v1/recommendations/accept", body, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["accepted_lines"], body["allocations"], body["skipped"]) == (2, 2, [])
    assert AllocationRun.objects.get(pk=body["run"]).status == "succeeded"
    assert sorted(m.payload["order"] for m in OutboxMessage.objects.filter(
        type="reservation.changed", payload__order__startswith="W")) == ["W1", "W2"]
    assert dict(Allocation.objects.filter(line__order__number__startswith="W").values_list("line__order__number", "state")) == {
        "W1": "reserved", "W2": "reserved", "W3": "recommended"
    }
    unknown = api_client_for(planner).post("/api/v1/recommendations/accept", {"lines": [{"order": "ZZ", "line": 1}]}, format="json")
    assert unknown.status_code == 400 and "ZZ/1" in unknown.json()["lines"][0]
    strict = api_client_for(planner).post("/api/v1/recommendations/accept", {"lines": [{"order": "W3", "line": "1"}]}, format="json")
    assert strict.status_code == 400


# --------------------------------------------------------------------------- screens


def test_the_release_screen_shows_capacity_preview_and_what_is_held_back(world, as_planner):
    response = as_planner.get(reverse("allocation:release_location", args=["DC-EAST"]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "3 lines a day" in page and "Run release wave now" in page
    plan = response.context["plan"]
    assert [f"{x.order_number}/{x.line_number}" for x in plan.released] == ["E1/1", "E2/1", "E3/1"]
    assert 'data-reason="capacity"' in page and "No capacity left today" in page
    listing = as_planner.get(reverse("allocation:release_list"))
    assert listing.status_code == 200 and b"DC-WEST" in listing.content


def test_running_a_wave_from_the_screen_and_reading_its_detail(world, as_planner):
    response = as_planner.post(reverse("allocation:release_run", args=["DC-EAST"]))
    wave = Wave.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("allocation:wave_detail", args=[wave.pk])
    detail = as_planner.get(response["Location"])
    assert detail.status_code == 200 and b"3 released" in detail.content
    held = as_planner.get(response["Location"] + "?outcome=held", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="wave-lines")
    assert held.status_code == 200 and held.content.count(b'data-outcome="held"') == 2 and b"<html" not in held.content
    page = as_planner.get(reverse("allocation:release_location", args=["DC-EAST"]))
    assert f'data-wave="{wave.pk}"'.encode() in page.content
    htmx = as_planner.post(reverse("allocation:release_run", args=["DC-EAST"]), HTTP_HX_REQUEST="true")
    assert htmx.status_code == 204 and "/release/waves/" in htmx["HX-Location"]


def test_a_second_planner_on_the_screen_is_told_a_wave_runs(world, as_planner, planner):
    running = releases.start_wave(world["DC-EAST"], actor=planner)
    response = as_planner.post(reverse("allocation:release_run", args=["DC-EAST"]), follow=True)
    assert f"wave #{running.pk}".encode() in response.content
    assert released_count() == 0


@pytest.mark.parametrize("persona", ["finance", "approver"])
def test_readers_see_the_release_screen_but_cannot_run_a_wave(world, client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    page = client.get(reverse("allocation:release_location", args=["DC-EAST"]))
    assert page.status_code == 200 and b"Run release wave now" not in page.content
    assert client.post(reverse("allocation:release_run", args=["DC-EAST"])).status_code == 403
    assert released_count() == 0


def test_unknown_location_and_wave_are_404(world, as_planner):
    assert as_planner.get(reverse("allocation:release_location", args=["NOPE"])).status_code == 404
    assert as_planner.get(reverse("allocation:wave_detail", args=[424242])).status_code == 404


def test_the_recommendation_queue_accepts_one_line_or_in_bulk(recommend_world, as_planner):
    queue = as_planner.get(reverse("allocation:recommendation_queue"))
    assert queue.status_code == 200 and queue.content.count(b'name="single"') == 3
    w1, w2, w3 = (OrderLine.objects.get(order__number=n).pk for n in ("W1", "W2", "W3"))
    response = as_planner.post(reverse("allocation:recommendation_accept"), {"single": w1, "line": [w2]}, follow=True)
    assert b"Accepted 1 line" in response.content
    assert Allocation.objects.get(line_id=w1).state == "reserved" and Allocation.objects.get(line_id=w2).state == "recommended"
    as_planner.post(reverse("allocation:recommendation_accept"), {"line": [w2, w3]})
    assert set(Allocation.objects.filter(line_id__in=[w2, w3]).values_list("state", flat=True)) == {"reserved"}
    bad = as_planner.post(reverse("allocation:recommendation_accept"), {"line": ["1; drop"]}, follow=True)
    assert b"Lines must be chosen from the list" in bad.content
    empty = as_planner.get(reverse("allocation:recommendation_queue"))
    assert b"No recommendation is waiting" in empty.content


def test_the_release_navigation_entry_is_for_planners(world, as_planner, client, finance):
    assert b'href="/release/"' in as_planner.get(reverse("allocation:release_list")).content
    client.force_login(finance)
    assert b'href="/release/"' not in client.get(reverse("allocation:order_list")).content


# --------------------------------------------------------------------------- command


def test_the_release_command_previews_and_runs(world):
    out = StringIO()
    call_command("release", "--location", "DC-EAST", "--preview", stdout=out)
    assert "would release 3 of 5 line(s), hold back 2" in out.getvalue()
    assert released_count() == 0
    out = StringIO()
    call_command("release", "--location", "DC-EAST", "--json", stdout=out)
    result = json.loads(out.getvalue().splitlines()[0])
    assert (result["released"], result["trigger"], result["started_by"]) == (3, "command", "Command")
    out = StringIO()
    call_command("release", stdout=out)  # every location
    assert [line.split(":")[0] for line in out.getvalue().splitlines()] == ["DC-EAST", "DC-EMPTY", "DC-WEST"]


def test_the_release_command_refuses_an_unknown_location(world):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no location NOPE"):
        call_command("release", "--location", "NOPE")


def test_wave_history_pages_by_keyset_and_answers_its_htmx_partial(world, as_planner, planner):
    for _ in range(22):
        releases.run_wave(world["DC-EMPTY"], planner)
    url = reverse("allocation:release_location", args=["DC-EMPTY"])
    first = as_planner.get(url)
    assert first.content.count(b"data-wave=") == 20 and b'rel="next"' in first.content
    cursor = first.context["page_obj"].next_cursor
    partial = as_planner.get(f"{url}?cursor={cursor}", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="wave-history")
    assert partial.status_code == 200 and b"<html" not in partial.content
    assert partial.content.count(b"data-wave=") == 2
    oldest = Wave.objects.order_by("id").values_list("pk", flat=True)[:2]
    assert all(f'data-wave="{pk}"'.encode() in partial.content for pk in oldest)
