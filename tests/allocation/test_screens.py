"""The read screens: orders, order detail, inventory, supply (full pages, HTMX partials, filters)."""
import datetime as dt
import re

import pytest
from django.urls import reverse

from allocation.models import Customer, InventoryPosition, Item, Location, Order, Supply

ROW = re.compile(r'<tr data-key="([^"]+)">')


def keys(response) -> list[str]:
    return ROW.findall(response.content.decode())


@pytest.fixture
def reader(client, planner):
    client.force_login(planner)
    return client


# --- orders -----------------------------------------------------------------------------------


def test_order_list_full_page_has_layout_filters_and_rows(reader, distributor):
    response = reader.get(reverse("allocation:order_list"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert 'hx-get="/orders/"' in html and 'hx-target="#results"' in html and 'hx-push-url="true"' in html
    assert keys(response) == ["SO-1", "SO-2", "SO-3"]
    assert response["Vary"].count("HX-Request") == 1
    assert '<option value="" selected>Any</option>\n\n  <option value="true">Yes</option>' in html


def test_order_list_htmx_request_gets_only_the_results_partial(reader, distributor):
    response = reader.get(reverse("allocation:order_list"), {"channel": "ecommerce"}, HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="results"')
    assert "<html" not in html and "<form" not in html
    assert keys(response) == ["SO-2"]


def test_order_list_history_restore_gets_the_full_page(reader, distributor):
    response = reader.get(
        reverse("allocation:order_list"), HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )

    assert "<html" in response.content.decode()


def test_order_list_row_shows_quantities_and_shortage(reader, distributor):
    html = reader.get(reverse("allocation:order_list"), {"q": "SO-2"}).content.decode()

    row = html[html.index('<tr data-key="SO-2">'):]
    row = row[: row.index("</tr>")]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    assert [re.sub(r"<[^>]+>", "", cell).split() for cell in cells] == [
        ["SO-2"], ["RET-0001", "Reno", "Web", "Shop", "credit", "hold"], ["4"], ["ecommerce"],
        ["2026-06-10"], ["2026-06-12"], ["1"], ["10"], ["5"], ["Open", "short"],
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "mercy"}, ["SO-1", "SO-3"]),
        ({"q": "so-2"}, ["SO-2"]),
        ({"status": "cancelled"}, ["SO-3"]),
        ({"channel": "edi"}, ["SO-3"]),
        ({"segment": "retail"}, ["SO-2"]),
        ({"tier": "1"}, ["SO-1", "SO-3"]),
        ({"requested_from": "2026-06-05", "requested_to": "2026-06-15"}, ["SO-2"]),
        ({"requested_from": "2026-06-11"}, ["SO-3"]),
        ({"has_shortage": "true"}, ["SO-2"]),
        ({"has_shortage": "false"}, ["SO-1", "SO-3"]),
        ({"tier": "1", "status": "open"}, ["SO-1"]),
    ],
)
def test_order_list_filters(reader, distributor, params, expected):
    response = reader.get(reverse("allocation:order_list"), params)

    assert response.status_code == 200
    assert keys(response) == expected


def test_order_list_bad_filter_is_400_naming_the_field(reader, distributor):
    response = reader.get(reverse("allocation:order_list"), {"requested_from": "June 5th", "tier": "9"})

    html = response.content.decode()
    assert response.status_code == 400
    assert "Requested from: Enter a valid date." in html
    assert "Tier: Select a valid choice. 9 is not one of the available choices." in html
    assert keys(response) == []


def test_order_list_empty_states(reader, distributor):
    filtered = reader.get(reverse("allocation:order_list"), {"q": "nothing-like-this"}).content.decode()
    assert "No orders match these filters." in filtered

    Order.objects.all().delete()
    empty = reader.get(reverse("allocation:order_list")).content.decode()
    assert "No orders yet." in empty


def next_link(response) -> str:
    """The querystring of a list screen's "Next" link (keyset pages: ``?...&cursor=``)."""
    import html as html_lib
    import re

    match = re.search(r'<a href="([^"]*)"[^>]*rel="next"', response.content.decode())
    assert match, "no Next link"
    return html_lib.unescape(match.group(1))


def test_order_list_paginates_50_per_page_keeping_filters(reader, distributor):
    customer = Customer.objects.get(code="HC-0001")
    Order.objects.bulk_create(
        Order(number=f"BULK-{n:03d}", customer=customer, channel="field_sales",
              created_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC), requested_date=dt.date(2026, 6, 2))
        for n in range(120)
    )
    url = reverse("allocation:order_list")

    first = reader.get(url, {"channel": "field_sales"})
    second = reader.get(url + next_link(first))
    third = reader.get(url + next_link(second), HTTP_HX_REQUEST="true")

    assert keys(first) == [f"BULK-{n:03d}" for n in range(50)]
    assert next_link(first).startswith("?channel=field_sales&cursor=")
    assert keys(second) == [f"BULK-{n:03d}" for n in range(50, 100)]
    assert keys(third) == [f"BULK-{n:03d}" for n in range(100, 120)]
    assert 'rel="next"' not in third.content.decode()


def test_order_list_query_count_does_not_grow_with_rows(reader, distributor, django_assert_max_num_queries):
    customer = Customer.objects.get(code="HC-0001")
    Order.objects.bulk_create(
        Order(number=f"BULK-{n:03d}", customer=customer, channel="field_sales",
              created_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC), requested_date=dt.date(2026, 6, 2))
        for n in range(60)
    )
    with django_assert_max_num_queries(7):
        response = reader.get(reverse("allocation:order_list"))
    assert len(keys(response)) == 50


# --- order detail -----------------------------------------------------------------------------


def test_order_detail_shows_facts_lines_allocations_and_credit_hold(reader, distributor, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        response = reader.get(reverse("allocation:order_detail", args=["SO-2"]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Order SO-2" in html
    assert "customer on hold</span> Invoices over 90 days past due" in html
    assert "VLV-0002" in html and "Gate valve 1in bronze" in html
    assert '<span class="badge proposed">Proposed</span>' in html
    assert "2026-06-12" in html


def test_order_detail_allocation_rows(reader, distributor):
    html = reader.get(reverse("allocation:order_detail", args=["SO-1"])).content.decode()

    allocation_rows = re.findall(
        r"<td>(DC-[A-Z0-9-]+)</td>\s*<td>(on hand|PO-\d+)[^<]*(?:<span[^>]*>[^<]*</span>)?</td>\s*<td>([A-Z0-9-]+)",
        html,
    )
    assert allocation_rows == [("DC-EAST-1", "on hand", "VLV-0001"), ("DC-WEST-1", "on hand", "PMP-0001")]
    assert "customer on hold" not in html


def test_order_detail_unknown_number_is_404(reader, distributor):
    assert reader.get(reverse("allocation:order_detail", args=["SO-404"])).status_code == 404


# --- inventory --------------------------------------------------------------------------------


def test_inventory_list_full_page_and_partial(reader, distributor):
    page = reader.get(reverse("allocation:inventory_list"))
    partial = reader.get(reverse("allocation:inventory_list"), HTTP_HX_REQUEST="true")

    assert "<html" in page.content.decode()
    assert keys(page) == ["PMP-0001@DC-WEST-1", "VLV-0001@DC-EAST-1", "VLV-0002@DC-WEST-1"]
    assert "<html" not in partial.content.decode() and "<form" not in partial.content.decode()
    assert keys(partial) == keys(page)


def test_inventory_row_figures(reader, distributor):
    html = reader.get(reverse("allocation:inventory_list"), {"q": "VLV-0001"}).content.decode()

    row = html[html.index('<tr data-key="VLV-0001@DC-EAST-1">'):]
    numbers = re.findall(r'<td class="num">([^<]*)</td>', row[: row.index("</tr>")])
    # on hand, holds, available, allocated, free, item demand
    assert numbers == ["100", "10", "90", "60", "30", "60"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "gate"}, ["VLV-0002@DC-WEST-1"]),
        ({"q": "DC-EAST"}, ["VLV-0001@DC-EAST-1"]),
        ({"item_class": "valves"}, ["VLV-0001@DC-EAST-1", "VLV-0002@DC-WEST-1"]),
        ({"location": "DC-WEST-1"}, ["PMP-0001@DC-WEST-1", "VLV-0002@DC-WEST-1"]),
        ({"region": "east"}, ["VLV-0001@DC-EAST-1"]),
        ({"short_only": "true"}, ["VLV-0002@DC-WEST-1"]),
        ({"short_only": "false"}, ["PMP-0001@DC-WEST-1", "VLV-0001@DC-EAST-1"]),
    ],
)
def test_inventory_filters(reader, distributor, params, expected):
    response = reader.get(reverse("allocation:inventory_list"), params)

    assert response.status_code == 200
    assert keys(response) == expected


def test_inventory_unknown_location_is_400(reader, distributor):
    response = reader.get(reverse("allocation:inventory_list"), {"location": "DC-MOON"})

    assert response.status_code == 400
    assert "Location: Select a valid choice." in response.content.decode()


def test_inventory_query_count_does_not_grow_with_rows(reader, distributor, django_assert_max_num_queries):
    location = Location.objects.get(code="DC-EAST-1")
    items = Item.objects.bulk_create(Item(sku=f"FIT-{n:03d}", item_class="fittings") for n in range(40))
    InventoryPosition.objects.bulk_create(
        InventoryPosition(item=item, location=location, on_hand=5, as_of=dt.datetime(2026, 5, 31, tzinfo=dt.UTC))
        for item in items
    )
    with django_assert_max_num_queries(8):
        response = reader.get(reverse("allocation:inventory_list"))
    assert len(keys(response)) == 43


# --- supply -----------------------------------------------------------------------------------


def test_supply_list_full_page_partial_and_receipt_history(reader, distributor):
    page = reader.get(reverse("allocation:supply_list"))
    partial = reader.get(reverse("allocation:supply_list"), {"status": "received"}, HTTP_HX_REQUEST="true")

    assert keys(page) == ["PO-H1", "ASN-1", "PO-1"]
    html = partial.content.decode()
    assert "<html" not in html and "<form" not in html
    assert keys(partial) == ["PO-H1"]
    assert '<td>2026-05-23</td>\n        <td class="num"><span class="badge warn">3</span></td>' in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "asn"}, ["ASN-1"]),
        ({"q": "VLV-0002"}, ["PO-1"]),
        ({"kind": "purchase_order"}, ["PO-H1", "PO-1"]),
        ({"status": "open"}, ["ASN-1", "PO-1"]),
        ({"location": "DC-EAST-1"}, ["PO-H1", "ASN-1"]),
        ({"eta_from": "2026-06-01", "eta_to": "2026-06-07"}, ["ASN-1"]),
        ({"min_confidence": "0.8"}, ["PO-H1", "PO-1"]),
    ],
)
def test_supply_filters(reader, distributor, params, expected):
    response = reader.get(reverse("allocation:supply_list"), params)

    assert response.status_code == 200
    assert keys(response) == expected


def test_supply_confidence_out_of_range_is_400(reader, distributor):
    response = reader.get(reverse("allocation:supply_list"), {"min_confidence": "1.5"})

    assert response.status_code == 400
    assert "Min. confidence: Ensure this value is less than or equal to 1." in response.content.decode()


def test_supply_query_count_does_not_grow_with_rows(reader, distributor, django_assert_max_num_queries):
    item, location = Item.objects.get(sku="PMP-0001"), Location.objects.get(code="DC-WEST-1")
    Supply.objects.bulk_create(
        Supply(ref=f"PO-B{n:03d}", kind="purchase_order", item=item, location=location, quantity=3,
               eta=dt.date(2026, 6, 20))
        for n in range(40)
    )
    with django_assert_max_num_queries(6):
        response = reader.get(reverse("allocation:supply_list"))
    assert len(keys(response)) == 43


# --- access -----------------------------------------------------------------------------------

SCREENS = [
    ("allocation:order_list", []),
    ("allocation:order_detail", ["SO-1"]),
    ("allocation:inventory_list", []),
    ("allocation:supply_list", []),
]


@pytest.mark.parametrize(("name", "args"), SCREENS)
def test_every_reader_role_opens_the_screens(client, personas, distributor, name, args):
    for role in ("planner", "customer_service", "policy_admin", "approver", "finance"):
        client.force_login(personas[role])
        assert client.get(reverse(name, args=args)).status_code == 200, role


@pytest.mark.parametrize(("name", "args"), SCREENS)
def test_integration_and_outsider_are_forbidden_and_anonymous_sent_to_login(client, personas, distributor, name, args):
    url = reverse(name, args=args)
    for persona in ("integration", "outsider"):
        client.force_login(personas[persona])
        assert client.get(url).status_code == 403, persona
    client.logout()
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


# --- in the browser ---------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_filters_update_the_rows_in_place_and_the_url(page, live_server, planner, distributor):
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", planner.username)
    page.fill("input[name=password]", "pw-" + planner.username)
    page.click("button[type=submit]")
    page.goto(live_server.url + reverse("allocation:order_list"))
    page.evaluate("window.stillTheSamePage = true")

    page.select_option("select[name=channel]", "ecommerce")
    page.wait_for_function("document.querySelectorAll('#results tr[data-key]').length === 1")

    assert page.locator("#results tr[data-key]").get_attribute("data-key") == "SO-2"
    assert page.evaluate("window.stillTheSamePage") is True
    assert "channel=ecommerce" in page.url
    page.select_option("select[name=channel]", "")
    page.wait_for_function("document.querySelectorAll('#results tr[data-key]').length === 3")
    page.locator("input[name=q]").press_sequentially("mercy")  # typing alone refreshes the rows
    page.wait_for_function("document.querySelectorAll('#results tr[data-key]').length === 2")
    assert page.evaluate("window.stillTheSamePage") is True
    assert page.locator("#results tr[data-key]").evaluate_all("rows => rows.map(r => r.dataset.key)") == ["SO-1", "SO-3"]
