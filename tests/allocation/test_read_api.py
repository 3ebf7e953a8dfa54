"""The read API: items, locations, customers, orders, inventory, supply; roles; schema and docs."""
import pytest
from rest_framework.test import APIClient

from allocation.models import Customer, Item, Location, Order, Supply

READER_ROLES = ("planner", "customer_service", "policy_admin", "approver", "finance")
ENDPOINTS = [
    "/api/v1/items",
    "/api/v1/items/VLV-0001",
    "/api/v1/locations",
    "/api/v1/locations/DC-EAST-1",
    "/api/v1/customers",
    "/api/v1/customers/HC-0001",
    "/api/v1/orders",
    "/api/v1/orders/SO-1",
    "/api/v1/inventory",
    "/api/v1/supply",
    "/api/v1/supply/PO-1",
]


@pytest.fixture
def api(api_client_for, planner):
    return api_client_for(planner)


def snapshot() -> list:
    return [
        list(model.objects.order_by("pk").values())
        for model in (Item, Location, Customer, Order, Supply)
    ]


@pytest.mark.parametrize("url", ENDPOINTS)
def test_every_reader_role_reads(api_client_for, personas, distributor, url):
    for role in READER_ROLES:
        assert api_client_for(personas[role]).get(url).status_code == 200, role


@pytest.mark.parametrize("url", ENDPOINTS)
def test_integration_and_outsider_are_403_anonymous_401_and_nothing_changes(api_client_for, personas, distributor, url):
    before = snapshot()

    assert api_client_for(personas["integration"]).get(url).status_code == 403
    assert api_client_for(personas["outsider"]).get(url).status_code == 403
    assert APIClient().get(url).status_code == 401
    assert api_client_for(personas["integration"]).delete(url).status_code == 403

    assert snapshot() == before


@pytest.mark.parametrize("url", ["/api/v1/items/VLV-0001", "/api/v1/orders", "/api/v1/supply/PO-1"])
def test_writes_are_not_offered_to_readers(api, distributor, url):
    before = snapshot()

    assert api.post(url, {"sku": "NEW"}, format="json").status_code in (403, 405)
    assert api.delete(url).status_code in (403, 405)

    assert snapshot() == before


def test_order_detail_by_number_with_nested_lines_and_allocations(api, distributor):
    response = api.get("/api/v1/orders/SO-2")

    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("number", "customer", "channel", "requested_date", "promised_date", "status")} == {
        "number": "SO-2", "customer": "RET-0001", "channel": "ecommerce", "requested_date": "2026-06-10",
        "promised_date": "2026-06-12", "status": "open",
    }
    assert (body["line_count"], body["ordered_quantity"], body["allocated_quantity"]) == (1, "10.000", "5.000")
    assert body["lines"] == [{
        "line": 1, "sku": "VLV-0002", "quantity": "10.000", "shipped_quantity": "0.000", "unit_price": "90.0000",
        "unit_cost": "62.0000", "allow_substitute": False, "ship_from": None, "status": "open",
        "allocated_quantity": "5.000",
        "allocations": [{"sku": "VLV-0002", "location": "DC-WEST-1", "supply_ref": None, "quantity": "5.000",
                         "confirmed_date": "2026-06-10", "state": "proposed"}],
    }]
    assert "id" not in body


def test_unknown_codes_are_404(api, distributor):
    for url in ("/api/v1/orders/SO-404", "/api/v1/items/NOPE", "/api/v1/customers/NOPE", "/api/v1/supply/NOPE"):
        assert api.get(url).status_code == 404, url


def test_item_lists_substitutes_by_sku(api, distributor):
    body = api.get("/api/v1/items/VLV-0001").json()

    assert body == {"sku": "VLV-0001", "description": "Ball valve 1in brass", "item_class": "valves", "uom": "EA",
                    "unit_cost": "60.0000", "pack_size": "1.000", "substitutes": [{"sku": "VLV-0002", "priority": 1}]}


@pytest.mark.parametrize(
    ("url", "key", "expected"),
    [
        ("/api/v1/orders?has_shortage=true", "number", ["SO-2"]),
        ("/api/v1/orders?segment=healthcare&status=open", "number", ["SO-1"]),
        ("/api/v1/orders?q=mercy", "number", ["SO-1", "SO-3"]),
        ("/api/v1/items?item_class=valves", "sku", ["VLV-0001", "VLV-0002"]),
        ("/api/v1/items?q=pump", "sku", ["PMP-0001"]),
        ("/api/v1/locations?region=west", "code", ["DC-WEST-1"]),
        ("/api/v1/customers?credit_hold=true", "code", ["RET-0001"]),
        ("/api/v1/customers?tier=1", "code", ["HC-0001"]),
        ("/api/v1/inventory?short_only=true", "sku", ["VLV-0002"]),
        ("/api/v1/inventory?location=DC-WEST-1", "sku", ["PMP-0001", "VLV-0002"]),
        ("/api/v1/supply?min_confidence=0.8&status=open", "ref", ["PO-1"]),
        ("/api/v1/supply?sku=PMP-0001", "ref", ["ASN-1"]),
    ],
)
def test_filters(api, distributor, url, key, expected):
    response = api.get(url)

    assert response.status_code == 200
    assert [row[key] for row in response.json()["results"]] == expected


def test_inventory_figures(api, distributor):
    rows = api.get("/api/v1/inventory?sku=VLV-0001").json()["results"]

    assert [(row["location"], row["on_hand"], row["quality_hold"], row["available"], row["allocated"], row["free"])
            for row in rows] == [("DC-EAST-1", "100.000", "10.000", "90.000", "60.000", "30.000")]


def test_supply_receipt_history(api, distributor):
    body = api.get("/api/v1/supply?status=received").json()["results"]

    assert [(row["ref"], row["last_days_late"], row["last_received_at"]) for row in body] == [
        ("PO-H1", 3, "2026-05-23T10:00:00Z")
    ]


def test_bad_filter_is_400_naming_the_field(api, distributor):
    response = api.get("/api/v1/supply?min_confidence=2&eta_from=soon")

    assert response.status_code == 400
    assert set(response.json()) == {"min_confidence", "eta_from"}


def test_list_is_paginated(api, distributor):
    body = api.get("/api/v1/orders").json()

    assert (set(body), body["next"], body["previous"]) == ({"next", "previous", "results"}, None, None)
    assert [row["number"] for row in body["results"]] == ["SO-1", "SO-2", "SO-3"]


def test_order_list_query_count_is_fixed(api, distributor, django_assert_max_num_queries):
    with django_assert_max_num_queries(7):
        response = api.get("/api/v1/orders")
    assert response.status_code == 200


def test_schema_generates_without_warnings_and_docs_render(client, planner, distributor, capsys):
    from drf_spectacular.generators import SchemaGenerator

    generator = SchemaGenerator()
    schema = generator.get_schema(request=None, public=True)
    captured = capsys.readouterr()
    ours = [line for line in (captured.out + captured.err).splitlines()
            if "allocation/api/views.py" in line or "allocation/api/serializers.py" in line]
    assert ours == []
    for path in ("/api/v1/items", "/api/v1/items/{sku}", "/api/v1/orders/{number}", "/api/v1/inventory",
                 "/api/v1/supply/{ref}", "/api/v1/customers/{code}", "/api/v1/locations/{code}"):
        assert path in schema["paths"], path

    client.force_login(planner)
    schema_response = client.get("/api/schema/")
    docs = client.get("/api/docs/")
    assert schema_response.status_code == 200
    assert b"/api/v1/orders/{number}" in schema_response.content
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
