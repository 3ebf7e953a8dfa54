"""The API lists answer ?format=csv (and Accept: text/csv) with every filtered row, streamed
and recorded (via "api", no byte order mark); JSON stays the default."""
import pytest

from integrations.models import ExportRecord
from tests.exports.conftest import body_of, csv_rows


def test_orders_api_csv_is_every_filtered_order(api_client_for, finance, distributor):
    client = api_client_for(finance)
    response = client.get("/api/v1/orders", {"format": "csv", "status": "open", "page_size": "1"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = body_of(response)
    assert not body.startswith("\ufeff".encode())
    rows = csv_rows(client.get("/api/v1/orders", {"format": "csv", "status": "open", "page_size": "1"}))
    assert [row[0] for row in rows] == ["order", "SO-1", "SO-2"]  # the page size does not cut the export
    record = ExportRecord.objects.order_by("-id").first()
    assert (record.via, record.screen, record.path, record.filters, record.row_count) == (
        "api", "orders", "/api/v1/orders", {"status": "open"}, 2)


def test_accept_header_negotiates_csv(api_client_for, planner, distributor):
    response = api_client_for(planner).get("/api/v1/allocations", {"order": "SO-1"}, HTTP_ACCEPT="text/csv")
    assert csv_rows(response) == [
        ["order", "line", "sku", "location", "quantity", "confirmed_date", "supply_ref", "state", "run"],
        ["SO-1", "1", "VLV-0001", "DC-EAST-1", "60", "2026-06-01", "", "reserved", ""],
        ["SO-1", "2", "PMP-0001", "DC-WEST-1", "5", "2026-06-01", "", "reserved", ""],
    ]


def test_json_stays_the_default(api_client_for, planner, distributor):
    response = api_client_for(planner).get("/api/v1/orders")
    assert response["Content-Type"] == "application/json"
    assert [order["number"] for order in response.json()["results"]] == ["SO-1", "SO-2", "SO-3"]
    assert not ExportRecord.objects.exists()


@pytest.mark.parametrize(
    ("url", "persona", "params", "first_column"),
    [
        ("/api/v1/inventory", "planner", {"sku": "VLV-0002"}, ["sku", "VLV-0002"]),
        ("/api/v1/supply", "planner", {}, ["ref", "PO-H1", "ASN-1", "PO-1"]),
        ("/api/v1/items", "planner", {}, ["sku", "PMP-0001", "VLV-0001", "VLV-0002"]),
        ("/api/v1/customers", "planner", {}, ["code", "HC-0001", "RET-0001"]),
        ("/api/v1/locations", "planner", {}, ["code", "DC-EAST-1", "DC-WEST-1"]),
        ("/api/v1/events", "finance", {"status": "failed"}, ["event", "2"]),
        ("/api/v1/exceptions", "planner", {"status": "all"}, ["case", "1", "2"]),
        ("/api/v1/cases", "planner", {"status": "open"}, ["case", "1"]),
        ("/api/v1/approvals", "approver", {"status": "pending"}, ["approval", "1"]),
        ("/api/v1/runs", "planner", {}, ["run", "2", "1"]),
    ],
)
def test_each_api_list_exports_csv(api_client_for, personas, export_world, url, persona, params, first_column):
    from allocation.models import AllocationRun
    from exceptions.models import ApprovalRequest, DecisionException
    from integrations.models import Event

    ids = {
        "event": [str(Event.objects.get(event_id="e-2").pk)],
        "case": [str(pk) for pk in DecisionException.objects.order_by("pk").values_list("pk", flat=True)],
        "approval": [str(ApprovalRequest.objects.get().pk)],
        "run": [str(pk) for pk in AllocationRun.objects.order_by("-pk").values_list("pk", flat=True)],
    }
    header = first_column[0]
    if header in ids:  # database ids, in the order the list shows them
        first_column = [header, *ids[header][: len(first_column) - 1]]
    response = api_client_for(personas[persona]).get(url, {**params, "format": "csv"})
    assert response.status_code == 200, body_of(response)
    assert [row[0] for row in csv_rows(response)] == first_column
    assert ExportRecord.objects.get().via == "api"


def test_api_csv_escapes_formula_cells(api_client_for, approver, export_world):
    rows = csv_rows(api_client_for(approver).get("/api/v1/approvals", {"format": "csv"}))
    assert rows[1][7] == "'=2+2 please"


def test_a_detail_as_csv_is_its_fields(api_client_for, planner, distributor):
    rows = csv_rows(api_client_for(planner).get("/api/v1/customers/RET-0001", {"format": "csv"}))
    assert rows[0][:3] == ["code", "name", "tier"]
    assert rows[1][:3] == ["RET-0001", "Reno Web Shop", "4"]
    assert not ExportRecord.objects.exists()  # a single record is not a list export


def test_an_api_filter_error_stays_an_error(api_client_for, planner, distributor):
    response = api_client_for(planner).get("/api/v1/allocations", {"state": "bogus", "format": "csv"})
    assert response.status_code == 400
    assert not ExportRecord.objects.exists()
