"""An export is allowed to exactly who can see the list: anonymous callers and roles without
the list get nothing, and nothing is recorded for them; the Exports screen is finance's."""
import pytest

from integrations.models import ExportRecord
from tests.exports.conftest import csv_rows


@pytest.mark.parametrize(
    "url",
    ["/orders/?export=csv", "/runs/?export=xlsx", "/integrations/events/?export=csv", "/integrations/outbox/?export=csv",
     "/exceptions/queues/shortages/?export=csv", "/exceptions/approvals/?export=csv", "/integrations/exports/?export=csv",
     "/orders/SO-1/?export=csv"],
)
def test_anonymous_is_sent_to_login_with_nothing_exported(client, export_world, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert not ExportRecord.objects.exists()


@pytest.mark.parametrize("url", ["/api/v1/orders?format=csv", "/api/v1/events?format=csv", "/api/v1/cases?format=csv"])
def test_anonymous_api_gets_nothing(client, export_world, url):
    response = client.get(url)
    assert response.status_code in (401, 403)
    assert b"SO-1" not in response.content and b"e-1" not in response.content
    assert not ExportRecord.objects.exists()


@pytest.mark.parametrize(
    ("persona", "url"),
    [
        ("outsider", "/orders/?export=csv"),
        ("integration", "/orders/?export=csv"),  # the service account reads no order screen
        ("customer_service", "/integrations/events/?export=csv"),
        ("policy_admin", "/integrations/outbox/?export=xlsx"),
        ("policy_admin", "/exceptions/queues/shortages/?export=csv"),
        ("planner", "/exceptions/approvals/?export=csv"),
        ("planner", "/integrations/exports/?export=csv"),
        ("approver", "/integrations/exports/"),
    ],
)
def test_roles_without_the_list_are_refused(client, personas, export_world, persona, url):
    client.force_login(personas[persona])
    response = client.get(url)
    assert response.status_code in (403, 404)
    assert not ExportRecord.objects.exists()


@pytest.mark.parametrize(
    ("persona", "url"),
    [("outsider", "/api/v1/orders"), ("integration", "/api/v1/allocations"), ("customer_service", "/api/v1/events")],
)
def test_api_roles_without_the_list_are_refused(api_client_for, personas, export_world, persona, url):
    response = api_client_for(personas[persona]).get(url, {"format": "csv"})
    assert response.status_code == 403
    assert not ExportRecord.objects.exists()


def test_requesters_export_only_their_own_approvals(api_client_for, planner, export_world):
    rows = csv_rows(api_client_for(planner).get("/api/v1/approvals", {"format": "csv"}))
    assert rows == [rows[0]]  # the pending request is rita's, not the planner's


def test_finance_sees_every_export_and_exports_the_list(client, finance, planner, export_world):
    client.force_login(planner)
    csv_rows(client.get("/orders/", {"status": "open", "export": "csv"}))
    client.force_login(finance)
    page = client.get("/integrations/exports/").content.decode()
    assert "pat_planner" in page and "status=open" in page and "Completed" in page
    rows = csv_rows(client.get("/integrations/exports/", {"username": "pat_planner", "export": "csv"}))
    assert rows[0] == ["export", "user", "screen", "path", "filters", "format", "via", "status", "rows", "started_at",
                       "finished_at"]
    assert [row[1:9] for row in rows[1:]] == [
        ["pat_planner", "orders", "/orders/", '{"status":"open"}', "csv", "screen", "completed", "2"]]
    # exporting the exports is itself recorded
    assert list(ExportRecord.objects.order_by("id").values_list("username", "screen")) == [
        ("pat_planner", "orders"), ("fin_finance", "exports")]


def test_the_exports_screen_is_in_finance_navigation_only(client, finance, planner):
    client.force_login(finance)
    assert 'href="/integrations/exports/"' in client.get("/orders/").content.decode()
    client.force_login(planner)
    assert 'href="/integrations/exports/"' not in client.get("/orders/").content.decode()
