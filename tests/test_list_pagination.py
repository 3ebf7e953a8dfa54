"""Keyset (cursor) pagination of the read API and the list screens (config/pagination.py).

Every row exactly once and in order, forwards and back, with and without filters; a fixed
number of queries per page whatever its size; deep screen pages by cursor; an invalid
cursor is a 400 naming ``cursor`` (the screens show the first page), never a 500.
"""
from __future__ import annotations

import base64
import datetime as dt
import html as html_lib
import json
import re
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from allocation.choices import AllocationState, LineStatus
from allocation.models import (
    Allocation,
    Customer,
    InventoryPosition,
    Item,
    Location,
    Order,
    OrderLine,
    Supply,
)
from config.pagination import InvalidCursor, encode_cursor, keyset_columns, keyset_page
from integrations.models import Event, Source

UTC = dt.UTC
ORDERS = 230  # 5 pages of 50: the last one short


@pytest.fixture
def book(db):
    """230 orders over 7 requested dates (many ties), 2 channels, one line each, half of them fully allocated."""
    east = Location.objects.create(code="DC-E", name="East", region="east", kind="warehouse")
    item = Item.objects.create(sku="SKU-1", description="widget", item_class="widgets")
    customer = Customer.objects.create(code="C-1", name="Customer", tier=1, segment="retail", region="east")
    Order.objects.bulk_create(
        Order(number=f"SO-{(n * 37) % ORDERS:04d}", customer=customer, channel="edi" if n % 3 else "ecommerce",
              created_at=dt.datetime(2026, 5, 1, tzinfo=UTC), requested_date=dt.date(2026, 6, 1 + n % 7),
              promised_date=None if n % 4 == 0 else dt.date(2026, 6, 1 + n % 5))
        for n in range(ORDERS)
    )
    orders = list(Order.objects.order_by("pk"))
    OrderLine.objects.bulk_create(OrderLine(order=o, line=1, item=item, quantity=10) for o in orders)
    lines = list(OrderLine.objects.order_by("pk"))
    Allocation.objects.bulk_create(
        Allocation(line=line, item=item, location=east, quantity=10, confirmed_date=dt.date(2026, 6, 1),
                   state=AllocationState.RESERVED)
        for line in lines[::2]
    )
    return orders


def expected_numbers(**filters) -> list[str]:
    rows = Order.objects.filter(**filters).values_list("requested_date", "number")
    return [number for _date, number in sorted(rows)]


def relative(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def walk(client, url: str) -> tuple[list[list[str]], str | None]:
    """Follow ``next`` links from ``url``: the numbers of each page and the last page's URL."""
    pages, last = [], None
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"next", "previous", "results"}
        pages.append([row["number"] for row in body["results"]])
        last, url = url, relative(body["next"])
    return pages, last


@pytest.fixture
def api(api_client_for, planner):
    return api_client_for(planner)


# --- API: every row once, in order -------------------------------------------------------------


def test_cursor_walk_returns_every_order_once_in_order(api, book):
    pages, last = walk(api, "/api/v1/orders")

    assert [len(page) for page in pages] == [50, 50, 50, 50, 30]
    assert sum(pages, []) == expected_numbers()
    first = api.get("/api/v1/orders").json()
    assert first["previous"] is None and "cursor=" in first["next"]


def test_cursor_walk_backwards_gives_the_same_pages(api, book):
    forward, last = walk(api, "/api/v1/orders")
    backward, url = [], last
    body = api.get(url).json()
    while body["previous"]:
        body = api.get(relative(body["previous"])).json()
        backward.append([row["number"] for row in body["results"]])

    assert backward == list(reversed(forward[:-1]))


@pytest.mark.parametrize(
    ("query", "filters"),
    [
        ("channel=ecommerce", {"channel": "ecommerce"}),
        ("requested_from=2026-06-03&requested_to=2026-06-05",
         {"requested_date__gte": dt.date(2026, 6, 3), "requested_date__lte": dt.date(2026, 6, 5)}),
        ("q=SO-01", {"number__icontains": "SO-01"}),
    ],
)
def test_cursor_walk_keeps_the_filters(api, book, query, filters):
    pages, _last = walk(api, f"/api/v1/orders?{query}&page_size=20")

    assert sum(pages, []) == expected_numbers(**filters)
    assert len(pages) > 1


def test_has_shortage_filter_walks_with_the_cursor(api, book):
    pages, _last = walk(api, "/api/v1/orders?has_shortage=true&page_size=25")
    short = set(OrderLine.objects.filter(allocations__isnull=True).values_list("order__number", flat=True))

    assert sum(pages, []) == [n for n in expected_numbers() if n in short]


def test_inventory_ordered_across_joins_walks_once(api, db):
    locations = Location.objects.bulk_create(
        Location(code=f"L-{n:02d}", name="x", region="east", kind="warehouse") for n in range(6)
    )
    items = Item.objects.bulk_create(Item(sku=f"I-{(n * 7) % 40:03d}", description="x") for n in range(40))
    InventoryPosition.objects.bulk_create(
        InventoryPosition(item=item, location=location, on_hand=1, as_of=dt.datetime(2026, 5, 1, tzinfo=UTC))
        for item in items for location in locations
    )
    seen, url = [], "/api/v1/inventory?page_size=35"
    while url:
        body = api.get(url).json()
        seen += [(row["sku"], row["location"]) for row in body["results"]]
        url = relative(body["next"])

    assert seen == sorted((i.sku, loc.code) for i in items for loc in locations)


def test_events_walk_newest_first_with_and_without_a_filter(api_client_for, integration):
    source, _ = Source.objects.get_or_create(code="erp", defaults={"name": "ERP", "secret": "s"})
    Event.objects.bulk_create(
        Event(source=source, event_id=f"e-{n:03d}", type="location.upserted" if n % 2 else "item.upserted",
              occurred_at=dt.datetime(2026, 5, 1, tzinfo=UTC), data={}, body_hash="h", entity_key=f"k{n}",
              status="applied")
        for n in range(130)
    )
    client = api_client_for(integration)

    def ids(url):
        found = []
        while url:
            body = client.get(url).json()
            found += [row["id"] for row in body["results"]]
            url = relative(body["next"])
        return found

    newest_first = list(Event.objects.order_by("-id").values_list("event_id", flat=True))
    assert ids("/api/v1/events") == newest_first
    assert ids("/api/v1/events?type=item.upserted&page_size=9") == [
        e for e in newest_first if int(e[2:]) % 2 == 0
    ]


# --- the keyset itself: nullable columns, descending, ties --------------------------------------


@pytest.mark.parametrize("ordering", [["promised_date"], ["-promised_date"], ["-promised_date", "number"],
                                      ["channel", "-requested_date"]])
def test_keyset_over_nullable_and_descending_columns_is_total(book, ordering):
    queryset = Order.objects.all()
    seen, cursor = [], None
    while True:
        page = keyset_page(queryset, cursor, 17, ordering)
        seen += [order.pk for order in page]
        cursor = page.next_cursor
        if cursor is None:
            break
    # The order the database gives with NULL as the greatest value and pk breaking ties.
    expected = list(queryset.order_by(*(c.order() for c in keyset_columns(queryset, ordering))).values_list("pk", flat=True))

    assert seen == expected
    assert sorted(seen) == sorted(o.pk for o in book)


# --- a fixed number of queries per page ---------------------------------------------------------


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize(
    "path", ["/api/v1/orders", "/api/v1/inventory", "/api/v1/supply", "/api/v1/allocations", "/api/v1/customers",
             "/api/v1/items"],
)
def test_query_count_per_page_does_not_grow_with_the_page_size(api, book, path, django_assert_max_num_queries):
    Supply.objects.bulk_create(
        Supply(ref=f"PO-{n}", kind="purchase_order", item=Item.objects.get(), location=Location.objects.get(),
               quantity=5, eta=dt.date(2026, 6, 1 + n % 9))
        for n in range(120)
    )
    small = count_queries(api, f"{path}?page_size=5")
    large = count_queries(api, f"{path}?page_size=200")
    body = api.get(f"{path}?page_size=5").json()
    deep = count_queries(api, relative(body["next"])) if body["next"] else small

    assert small == large == deep
    with django_assert_max_num_queries(7):
        api.get(f"{path}?page_size=200")


# --- screens: deep pages by cursor ------------------------------------------------------------


@pytest.fixture
def reader(client, planner):
    client.force_login(planner)
    return client


def screen_keys(response) -> list[str]:
    return re.findall(r'<tr data-key="([^"]+)"', response.content.decode())


def link(response, rel: str) -> str | None:
    match = re.search(rf'<a href="([^"]*)"[^>]*rel="{rel}"', response.content.decode())
    return html_lib.unescape(match.group(1)) if match else None


def test_order_screen_walks_to_the_last_page_and_back(reader, book, django_assert_max_num_queries):
    url = reverse("allocation:order_list")
    first = reader.get(url, {"channel": "edi"})
    pages, response = [screen_keys(first)], first
    while link(response, "next"):
        with django_assert_max_num_queries(8):
            response = reader.get(url + link(response, "next"))
        pages.append(screen_keys(response))
    previous = reader.get(url + link(response, "prev"), HTTP_HX_REQUEST="true")

    assert sum(pages, []) == expected_numbers(channel="edi")
    assert len(pages) == 4
    assert link(first, "prev") is None and link(first, "first") is None
    assert link(response, "first") == "?channel=edi"
    assert screen_keys(previous) == pages[-2]
    assert "<html" not in previous.content.decode()  # the HTMX partial


def test_screen_with_a_bad_cursor_shows_the_first_page(reader, book):
    response = reader.get(reverse("allocation:order_list"), {"cursor": "nonsense"})

    assert response.status_code == 200
    assert screen_keys(response) == expected_numbers()[:50]


def test_screen_empty_states_stay(reader, db):
    assert "No orders yet." in reader.get(reverse("allocation:order_list")).content.decode()
    assert "No supply yet." in reader.get(reverse("allocation:supply_list")).content.decode() or \
        "No supply" in reader.get(reverse("allocation:supply_list")).content.decode()


# --- invalid cursors and page sizes are 400s naming the parameter --------------------------------


def forged(values: list, fingerprint: str | None = None) -> str:
    columns = keyset_columns(Order.objects.all().order_by("requested_date", "number"))
    genuine = json.loads(base64.urlsafe_b64decode(encode_cursor(columns, Order(requested_date=dt.date(2026, 6, 1),
                                                                            number="x"), "n") + "=="))
    payload = {"o": fingerprint or genuine["o"], "d": "n", "v": values}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "nonsense", "%%%", "eyJ9", base64.urlsafe_b64encode(b"[1, 2]").decode(),
        "FORGED-date", "FORGED-nul", "FORGED-surrogate", "FORGED-length", "FORGED-sort", "FORGED-type",
        "FORGED-year0",
    ],
)
def test_invalid_cursor_is_400_naming_the_cursor(api, book, cursor):
    cursor = {
        "FORGED-date": forged(["2026-13-45", "SO-1"]),
        "FORGED-nul": forged(["2026-06-01", "SO-\x001"]),
        "FORGED-surrogate": forged(["2026-06-01", "SO-\ud800"]),
        "FORGED-length": forged(["2026-06-01"]),
        "FORGED-sort": forged(["2026-06-01", "SO-1"], fingerprint="00000000"),
        "FORGED-type": forged([["2026-06-01"], {"a": 1}]),
        "FORGED-year0": forged(["0000-01-01", "SO-1"]),
    }.get(cursor, cursor)
    response = api.get("/api/v1/orders", {"cursor": cursor})

    assert response.status_code == 400
    assert list(response.json()) == ["cursor"]


def test_cursor_of_another_sort_is_400_on_the_exceptions_list(api, book):
    by_age = keyset_columns(Order.objects.order_by("-promised_date"))
    cursor = encode_cursor(by_age, Order.objects.first(), "n")

    assert api.get("/api/v1/exceptions", {"sort": "age", "cursor": cursor}).status_code == 400
    assert api.get("/api/v1/allocations", {"cursor": cursor}).status_code == 400
    assert api.get("/api/v1/approvals", {"cursor": cursor}).status_code == 400


def test_huge_integer_in_a_cursor_is_400(api_client_for, integration):
    columns = keyset_columns(Event.objects.order_by("-id"))
    payload = json.loads(base64.urlsafe_b64decode(encode_cursor(columns, Event(id=5), "n") + "=="))
    payload["v"] = [10**30]
    cursor = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()

    assert api_client_for(integration).get("/api/v1/events", {"cursor": cursor}).status_code == 400
    with pytest.raises(InvalidCursor):
        keyset_page(Event.objects.order_by("-id"), cursor, 10)


@pytest.mark.parametrize("size", ["0", "201", "ten", "-3"])
def test_bad_page_size_is_400_naming_it(api, book, size):
    response = api.get("/api/v1/orders", {"page_size": size})

    assert response.status_code == 400
    assert list(response.json()) == ["page_size"]


# --- the schema documents the cursor ------------------------------------------------------------


def test_schema_documents_cursor_and_links(db):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/orders"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    response = operation["responses"]["200"]["content"]["application/json"]["schema"]
    paginated = schema["components"]["schemas"][response["$ref"].rsplit("/", 1)[1]]

    assert {"cursor", "page_size", "status", "has_shortage"} <= names
    assert "page" not in names
    assert set(paginated["properties"]) == {"next", "previous", "results"}


def test_order_figures_are_unchanged_by_the_subquery_rewrite(api, book):
    order = Order.objects.order_by("requested_date", "number").first()
    OrderLine.objects.create(order=order, line=2, item=Item.objects.get(), quantity=Decimal("3"),
                             status=LineStatus.CANCELLED)
    row = api.get("/api/v1/orders?page_size=1").json()["results"][0]

    assert row["number"] == order.number
    allocated = "10.000" if Allocation.objects.filter(line__order=order).exists() else "0.000"
    assert (row["line_count"], row["ordered_quantity"], row["open_quantity"], row["allocated_quantity"]) == (
        1, "10.000", "10.000", allocated,
    )
