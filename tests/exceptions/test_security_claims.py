"""A colleague's claim moves only through the confirmed take-over (issue 8): assign and release
by someone who does not hold the claim are refused (403 naming the holder), in the services,
the API, the screens and bulk assign; the take-over itself is recorded."""
import pytest
from django.test import Client
from django.urls import reverse

from exceptions import services
from exceptions.errors import ActionNotAllowed, InvalidAction
from exceptions.models import DecisionException

pytestmark = pytest.mark.django_db


@pytest.fixture
def claimed(world, planner):
    """An exception claimed by the planner (version 2)."""
    exception = world.exception(world.line(world.hospital, 5))
    services.claim(exception.pk, actor=planner, expected_version=1)
    return exception


def state(exception):
    row = DecisionException.objects.get(pk=exception.pk)
    return row.status, row.assignee.username if row.assignee else None, row.version


def test_a_colleague_cannot_release_or_reassign_a_claim(claimed, planner, customer_service):
    with pytest.raises(ActionNotAllowed) as caught:
        services.release(claimed.pk, actor=customer_service, expected_version=2)
    assert "pat_planner holds this claim" in caught.value.message
    assert caught.value.data["field"] == "assignee"
    with pytest.raises(ActionNotAllowed):
        services.assign(claimed.pk, actor=customer_service, expected_version=2, assignee=customer_service)
    assert state(claimed) == ("claimed", "pat_planner", 2)


def test_the_holder_still_releases_and_reassigns(claimed, planner, customer_service):
    services.assign(claimed.pk, actor=planner, expected_version=2, assignee=customer_service)
    assert state(claimed) == ("claimed", "casey_cs", 3)
    services.release(claimed.pk, actor=customer_service, expected_version=3)
    assert state(claimed) == ("open", None, 4)


def test_claiming_a_colleagues_claim_needs_the_confirmed_take_over(claimed, planner, customer_service):
    with pytest.raises(InvalidAction) as caught:
        services.claim(claimed.pk, actor=customer_service, expected_version=2)
    assert caught.value.data["field"] == "take_over"
    # A take-over needs a reason too (issue 9, safe actions).
    with pytest.raises(InvalidAction) as caught:
        services.claim(claimed.pk, actor=customer_service, expected_version=2, take_over=True)
    assert caught.value.data["field"] == "reason"
    result = services.claim(claimed.pk, actor=customer_service, expected_version=2, take_over=True, reason="pat is out")
    assert result.message == "Taken over from pat_planner; they have been told."
    assert state(claimed) == ("claimed", "casey_cs", 3)
    assert claimed.history.first().history_change_reason == "taken over by casey_cs from pat_planner: pat is out"
    # Now the new holder may release it.
    services.release(claimed.pk, actor=customer_service, expected_version=3)
    assert state(claimed) == ("open", None, 4)


def test_bulk_assign_skips_a_colleagues_claim(world, claimed, planner, customer_service):
    other = world.exception(world.line(world.shop, 1))
    result = services.bulk_assign({claimed.pk: 2, other.pk: 1}, actor=customer_service, assignee=customer_service)
    assert (result.done, result.skipped) == ([other.pk], {claimed.pk: "claimed by pat_planner"})
    assert state(claimed) == ("claimed", "pat_planner", 2)


def test_api_refuses_assign_and_release_by_a_non_holder_and_takes_over_on_confirmation(claimed, customer_service, api_client_for):
    client = api_client_for(customer_service)
    release = client.post(f"/api/v1/exceptions/{claimed.pk}/release", {"version": 2}, format="json")
    assert release.status_code == 403
    assert "pat_planner holds this claim" in release.json()["detail"]
    assign = client.post(f"/api/v1/exceptions/{claimed.pk}/assign", {"version": 2, "assignee": "casey_cs"}, format="json")
    assert assign.status_code == 403
    plain = client.post(f"/api/v1/exceptions/{claimed.pk}/claim", {"version": 2}, format="json")
    assert plain.status_code == 400
    assert "take_over" in plain.json()
    unexplained = client.post(f"/api/v1/exceptions/{claimed.pk}/claim", {"version": 2, "take_over": True}, format="json")
    assert unexplained.status_code == 400 and "reason" in unexplained.json()
    taken = client.post(
        f"/api/v1/exceptions/{claimed.pk}/claim", {"version": 2, "take_over": True, "reason": "pat is out"}, format="json"
    )
    assert taken.status_code == 200
    assert state(claimed) == ("claimed", "casey_cs", 3)


def test_screen_offers_the_take_over_and_refuses_a_release(claimed, customer_service):
    client = Client()
    client.force_login(customer_service)
    page = client.get(reverse("exceptions:exception_detail", args=[claimed.pk])).content.decode()
    assert 'id="form-take-over"' in page
    assert "Release claim" not in page
    release = client.post(reverse("exceptions:exception_action", args=[claimed.pk, "release"]), {"version": 2})
    assert release.status_code == 403
    taken = client.post(
        reverse("exceptions:exception_action", args=[claimed.pk, "claim"]), {"version": 2, "take_over": "1", "reason": "pat is out"}
    )
    assert taken.status_code == 302
    assert state(claimed) == ("claimed", "casey_cs", 3)
