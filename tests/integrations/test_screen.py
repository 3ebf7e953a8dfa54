"""The Events screen: list with filters (full page and HTMX fragment), detail, retry by role."""
from __future__ import annotations

import re

import pytest
from django.test import Client

from config import roles
from integrations.models import Event
from tests.integrations.conftest import envelope, ingest_and_apply, line, order_event

pytestmark = pytest.mark.django_db

LIST_URL = "/integrations/events/"
READERS = {roles.INTEGRATION, roles.PLANNER, roles.FINANCE}


@pytest.fixture
def parked_order(master):
    """An order whose customer never arrives: it stays parked."""
    ingest_and_apply([order_event("o-1", "SO-7", [line(1)], customer="NOPE-1")])
    return Event.objects.get(event_id="o-1")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_parked_event_is_visible_as_parked_on_the_events_screen(parked_order, integration):
    response = logged_in(integration).get(LIST_URL, {"status": "parked"})

    html = response.content.decode()
    assert response.status_code == 200
    assert '<tr data-key="erp:o-1">' in html
    assert '<span class="badge parked">Parked</span>' in html
    assert "data: unknown reference customer:NOPE-1" in html
    assert html.count("<tr data-key=") == 1 + 1  # one event row, one source row (erp)
    assert "<h1>Events</h1>" in html
    assert f'action="/integrations/events/{parked_order.pk}/retry/"' in html


def test_only_the_integration_role_sees_retry_buttons_in_the_list(parked_order, planner, finance):
    for user in (planner, finance):
        html = logged_in(user).get(LIST_URL).content.decode()
        assert '<span class="badge parked">Parked</span>' in html
        assert "/retry/" not in html


def test_htmx_request_gets_only_the_rows_fragment(parked_order, integration):
    response = logged_in(integration).get(LIST_URL, {"q": "SO-7"}, HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="event-rows">')
    assert "<h1>" not in html
    assert html.count("<tr data-key=") == 1


def test_filters_and_empty_state(master, integration):
    client = logged_in(integration)
    no_match = client.get(LIST_URL, {"status": "failed"}).content.decode()
    bad_filter = client.get(LIST_URL, {"status": "sleeping"})
    by_type = client.get(LIST_URL, {"type": "item.upserted"}).content.decode()

    assert "No events match these filters." in no_match
    assert bad_filter.status_code == 400
    assert "Fix the filters marked above to see events." in bad_filter.content.decode()
    assert by_type.count('<tr data-key="erp:m-') == 2


def test_empty_screen_explains_where_events_come_from(db):
    from tests.fixtures.personas import make_user

    # Not the integration persona: it comes bound to source erp, and this screen has no source.
    html = logged_in(make_user("svc_new", roles.INTEGRATION)).get(LIST_URL).content.decode()
    assert "No events yet." in html
    assert "No sources yet" in html


def test_list_paginates_50_per_page(db, integration):
    events = [envelope(f"l-{i:03}", "location.upserted", {"code": f"L{i:03}", "name": "x", "region": "east", "kind": "hub"}) for i in range(120)]
    ingest_and_apply(events)
    client = logged_in(integration)
    first = client.get(LIST_URL).content.decode()
    second = client.get(LIST_URL + _next_link(first)).content.decode()
    third = client.get(LIST_URL + _next_link(second)).content.decode()
    assert first.count('<tr data-key="erp:l-') == 50
    assert second.count('<tr data-key="erp:l-') == 50
    assert third.count('<tr data-key="erp:l-') == 20
    assert 'rel="next"' not in third and 'rel="prev"' in third
    seen = [re.findall(r'data-key="erp:(l-\d+)"', page) for page in (first, second, third)]
    assert sum(seen, []) == [f"l-{i:03}" for i in reversed(range(120))]  # newest first, each once


def _next_link(html: str) -> str:
    match = re.search(r'<a href="([^"]*)"[^>]*rel="next"', html)
    assert match, "no Next link"
    return match.group(1).replace("&amp;", "&")


def test_sources_section_shows_last_event_and_freshness(master, integration):
    from django.utils import timezone

    from integrations.models import Source

    Source.objects.filter(code="erp").update(last_event_at=timezone.now() - timezone.timedelta(minutes=61))
    ingest_and_apply([envelope("w-1", "location.upserted", {"code": "DC-9", "name": "x", "region": "east", "kind": "hub"}, source="wms")])
    html = logged_in(integration).get(LIST_URL).content.decode()
    section = html[html.index('id="sources"') :]
    assert '<tr data-key="erp">' in section and '<tr data-key="wms">' in section
    erp_row = section[section.index('<tr data-key="erp">') : section.index('<tr data-key="wms">')]
    wms_row = section[section.index('<tr data-key="wms">') :]
    assert '<span class="badge warn">stale</span>' in erp_row
    assert '<span class="badge ok">fresh</span>' in wms_row.split("</tr>")[0]


def test_detail_shows_data_errors_and_duplicate_deliveries(parked_order, integration):
    from integrations.services import ingest

    ingest([order_event("o-1", "SO-7", [line(1, quantity="77")], customer="NOPE-1")])
    html = logged_in(integration).get(f"/integrations/events/{parked_order.pk}/").content.decode()
    assert "<code>data</code>: unknown reference customer:NOPE-1" in html
    assert "<code>customer:NOPE-1</code>" in html
    assert "&quot;number&quot;: &quot;SO-7&quot;" in html
    assert "&quot;quantity&quot;: &quot;77&quot;" in html  # the differing redelivery
    assert ">Retry</button>" in html


def test_detail_of_missing_event_is_404(integration):
    assert logged_in(integration).get("/integrations/events/999999/").status_code == 404


@pytest.mark.parametrize("persona", [*roles.ALL_ROLES, "outsider"])
def test_screen_role_matrix(request, parked_order, persona):
    client = logged_in(request.getfixturevalue(persona))
    listing = client.get(LIST_URL)
    detail = client.get(f"/integrations/events/{parked_order.pk}/")
    expected = 200 if persona in READERS else 403
    assert (listing.status_code, detail.status_code) == (expected, expected)
    if persona in READERS:
        assert (">Retry</button>" in detail.content.decode()) is (persona == roles.INTEGRATION)


@pytest.mark.parametrize("persona", [*roles.ALL_ROLES, "outsider"])
def test_retry_role_matrix(request, parked_order, persona, django_capture_on_commit_callbacks):
    client = logged_in(request.getfixturevalue(persona))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/integrations/events/{parked_order.pk}/retry/")
    parked_order.refresh_from_db()
    if persona == roles.INTEGRATION:
        assert response.status_code == 302
        assert response["Location"] == f"/integrations/events/{parked_order.pk}/"
        # Still waiting for its customer: retried, parked again.
        assert (parked_order.status, parked_order.attempts, parked_order.retried_by.username) == ("parked", 2, "svc_integration")
    else:
        assert response.status_code == 403
        assert (parked_order.status, parked_order.attempts, parked_order.retried_by) == ("parked", 1, None)


def test_retry_applies_a_parked_event_once_its_reference_exists(parked_order, integration, django_capture_on_commit_callbacks):
    from allocation.models import Customer

    Customer.objects.create(code="NOPE-1", name="Created by hand", tier=2, segment="retail", region="east")
    with django_capture_on_commit_callbacks(execute=True):
        response = logged_in(integration).post(f"/integrations/events/{parked_order.pk}/retry/", follow=True)
    parked_order.refresh_from_db()
    assert parked_order.status == "applied"
    # (the message is rendered before the test's captured on-commit processing runs)
    assert "Event erp:o-1 was retried; it is now" in response.content.decode()


def test_retry_of_an_applied_event_changes_nothing(master, integration):
    event = Event.objects.get(event_id="m-1")
    response = logged_in(integration).post(f"/integrations/events/{event.pk}/retry/", follow=True)
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("applied", 1)
    assert "Only failed or parked events can be retried; this one is applied." in response.content.decode()


def test_anonymous_is_sent_to_login(db):
    response = Client().get(LIST_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
