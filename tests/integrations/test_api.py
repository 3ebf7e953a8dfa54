"""The events API and signed webhooks: limits, authentication and the role matrix."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from rest_framework.test import APIClient

from config import roles
from integrations.models import Event, EventBatch, Source
from integrations.services import register_source
from tests.integrations.conftest import envelope

pytestmark = pytest.mark.django_db

EVENTS_URL = "/api/v1/events"


def location_event(event_id: str, code: str = "DC-1", source: str = "erp") -> dict:
    return envelope(event_id, "location.upserted", {"code": code, "name": code, "region": "east", "kind": "warehouse"}, source=source)


def nothing_stored() -> bool:
    return Event.objects.count() == 0 and EventBatch.objects.count() == 0


def post_raw(client: APIClient, body: bytes):
    return client.post(EVENTS_URL, data=body, content_type="application/json")


def test_post_events_answers_202_with_one_result_per_event_and_processes_on_commit(integration, api_client_for, django_capture_on_commit_callbacks):
    client = api_client_for(integration)
    bad = location_event("e-2")
    bad["data"]["kind"] = "castle"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(EVENTS_URL, {"events": [location_event("e-1"), bad]}, format="json")

    assert response.status_code == 202
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": 1,
        "results": [
            {"id": "e-1", "status": "accepted", "errors": []},
            {"id": "e-2", "status": "rejected", "errors": [{"field": "data.kind", "message": "must be one of warehouse, hub, store"}]},
        ],
    }
    event = Event.objects.get()
    assert (event.status, event.batch.via, event.batch.actor) == ("applied", "api", integration)


def test_malformed_json_is_400_and_nothing_stored(integration, api_client_for):
    response = post_raw(api_client_for(integration), b'{"events": [')
    assert response.status_code == 400
    assert response.json()["detail"].startswith("malformed JSON")
    assert nothing_stored()


@pytest.mark.parametrize("payload", [{}, {"events": "nope"}, [location_event("e-1")]])
def test_missing_events_list_is_400_and_nothing_stored(integration, api_client_for, payload):
    response = api_client_for(integration).post(EVENTS_URL, payload, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] in {"the body must be a JSON object with an events list", "events must be a list"}
    assert nothing_stored()


def test_too_many_events_is_400_and_nothing_stored(integration, api_client_for, settings):
    settings.ALLOT_MAX_BATCH_EVENTS = 3
    response = api_client_for(integration).post(EVENTS_URL, {"events": [location_event(f"e-{i}") for i in range(4)]}, format="json")
    assert response.status_code == 400
    assert response.json() == {"detail": "a batch holds at most 3 events, got 4"}
    assert nothing_stored()


def test_more_than_5000_events_is_400_with_the_real_limit(integration, api_client_for):
    events = [{"id": f"e-{i}"} for i in range(5001)]
    response = api_client_for(integration).post(EVENTS_URL, {"events": events}, format="json")
    assert response.status_code == 400
    assert response.json() == {"detail": "a batch holds at most 5000 events, got 5001"}
    assert nothing_stored()


def test_body_over_the_byte_limit_is_400_before_parsing(integration, api_client_for, settings):
    settings.ALLOT_MAX_BATCH_BYTES = 200
    body = json.dumps({"events": [location_event("e-1"), location_event("e-2")]}).encode()
    assert len(body) > 200
    response = post_raw(api_client_for(integration), body)
    assert response.status_code == 400
    assert response.json() == {"detail": "the request body is larger than 200 bytes"}
    assert nothing_stored()


def test_body_over_10_mib_is_400(integration, api_client_for):
    body = b'{"events": [], "padding": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    response = post_raw(api_client_for(integration), body)
    assert response.status_code == 400
    assert response.json() == {"detail": f"the request body is larger than {10 * 1024 * 1024} bytes"}
    assert nothing_stored()


def test_list_events_filters_by_source_status_and_type(integration, api_client_for):
    from tests.integrations.conftest import ingest_and_apply

    ingest_and_apply([location_event("e-1"), location_event("w-1", code="DC-2", source="wms"), envelope("e-3", "supply.received", {"ref": "PO-404", "quantity": "1", "received_at": "2026-06-01T00:00:00Z"})])
    client = api_client_for(integration)

    everything = client.get(EVENTS_URL).json()
    parked = client.get(EVENTS_URL, {"status": "parked"}).json()
    wms = client.get(EVENTS_URL, {"source": "wms", "type": "location.upserted"}).json()
    invalid = client.get(EVENTS_URL, {"status": "sleeping"})

    assert len(everything["results"]) == 3
    assert [e["id"] for e in everything["results"]] == ["e-3", "w-1", "e-1"]
    assert [(e["id"], e["status"], e["parked_references"], e["entity"]) for e in parked["results"]] == [("e-3", "parked", ["supply:PO-404"], "supply:PO-404")]
    assert [e["id"] for e in wms["results"]] == ["w-1"]
    assert invalid.status_code == 400
    assert "status" in invalid.json()


POSTERS = {roles.INTEGRATION}
READERS = {roles.INTEGRATION, roles.PLANNER, roles.FINANCE}


@pytest.mark.parametrize("persona", [*roles.ALL_ROLES, "outsider"])
def test_post_events_role_matrix(request, api_client_for, persona):
    response = api_client_for(request.getfixturevalue(persona)).post(EVENTS_URL, {"events": [location_event("e-1")]}, format="json")
    if persona in POSTERS:
        assert response.status_code == 202
        assert Event.objects.count() == 1
    else:
        assert response.status_code == 403
        assert nothing_stored()


@pytest.mark.parametrize("persona", [*roles.ALL_ROLES, "outsider"])
def test_list_events_role_matrix(request, api_client_for, persona):
    response = api_client_for(request.getfixturevalue(persona)).get(EVENTS_URL)
    assert response.status_code == (200 if persona in READERS else 403)


def test_anonymous_cannot_post_or_list_events(db):
    client = APIClient()
    assert client.post(EVENTS_URL, {"events": [location_event("e-1")]}, format="json").status_code == 401
    assert client.get(EVENTS_URL).status_code == 401
    assert nothing_stored()


# ---------------------------------------------------------------- webhooks


@pytest.fixture
def wms_source(db):
    return register_source(code="wms")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """What a sender computes: HMAC-SHA256 over the timestamp header value, a dot and the body."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_post(client: APIClient, source: Source, payload, *, secret: str | None = None, timestamp: str | None = None):
    body = json.dumps(payload).encode()
    timestamp = timestamp if timestamp is not None else str(int(time.time()))
    return client.post(
        f"/api/v1/webhooks/{source.code}",
        data=body,
        content_type="application/json",
        HTTP_X_ALLOT_SIGNATURE=sign(secret or source.secret, timestamp, body),
        HTTP_X_ALLOT_TIMESTAMP=timestamp,
    )


def test_webhook_with_good_signature_is_accepted(wms_source):
    response = signed_post(APIClient(), wms_source, location_event("w-1", source="wms"))
    assert response.status_code == 202
    assert response.json()["results"] == [{"id": "w-1", "status": "accepted", "errors": []}]
    event = Event.objects.get()
    assert (event.source.code, event.batch.via) == ("wms", "webhook")


def test_webhook_accepts_a_batch_and_an_rfc3339_timestamp(wms_source):
    from django.utils import timezone

    now = timezone.now().isoformat()
    payload = {"events": [location_event("w-1", source="wms"), {**location_event("w-2", code="DC-2"), "source": None}]}
    response = signed_post(APIClient(), wms_source, payload, timestamp=now)
    assert response.status_code == 202
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "accepted"]
    assert set(Event.objects.values_list("source__code", flat=True)) == {"wms"}


def test_webhook_rejects_an_event_naming_another_source(wms_source):
    response = signed_post(APIClient(), wms_source, location_event("w-1", source="erp"))
    assert response.status_code == 202
    assert response.json()["results"][0]["errors"] == [{"field": "source", "message": "must be wms, the source of this webhook"}]
    assert Event.objects.count() == 0


def test_webhook_with_wrong_signature_is_401_and_nothing_stored(wms_source):
    response = signed_post(APIClient(), wms_source, location_event("w-1", source="wms"), secret="not-the-secret")
    assert response.status_code == 401
    assert nothing_stored()


def test_webhook_without_signature_is_401(wms_source):
    response = APIClient().post("/api/v1/webhooks/wms", data=b"{}", content_type="application/json", HTTP_X_ALLOT_TIMESTAMP=str(int(time.time())))
    assert response.status_code == 401
    assert nothing_stored()


def test_webhook_with_old_timestamp_is_401_and_nothing_stored(wms_source):
    response = signed_post(APIClient(), wms_source, location_event("w-1", source="wms"), timestamp=str(int(time.time()) - 301))
    assert response.status_code == 401
    assert response.json() == {"detail": "X-Allot-Timestamp is more than 300 seconds off"}
    assert nothing_stored()


def test_webhook_for_unknown_source_is_401(db):
    source = Source(code="ghost", secret="abc")
    response = signed_post(APIClient(), source, location_event("g-1", source="ghost"))
    assert response.status_code == 401
    assert nothing_stored()


def test_webhook_with_malformed_json_is_400(wms_source):
    body = b"{not json"
    timestamp = str(int(time.time()))
    response = APIClient().post(
        "/api/v1/webhooks/wms", data=body, content_type="application/json", HTTP_X_ALLOT_SIGNATURE=sign(wms_source.secret, timestamp, body), HTTP_X_ALLOT_TIMESTAMP=timestamp
    )
    assert response.status_code == 400
    assert nothing_stored()
