"""Codes with any character the spec allows (events-v1.md: strings of 1–64 characters) work in
every URL: ``/``, spaces, ``%``, ``#``, ``?``, ``&``, ``~``, non-ASCII, ``.``/``..`` and a code
that is just ``/``.

A small world whose item, location, customer, order and supply codes hold those characters
goes in the way production data does (``integrations.services.ingest`` + ``process_pending``),
a full run allocates it, and then every list and detail screen and every API detail route is
fetched as the roles that use them; each link on those pages that names one of the codes is
followed and must answer 200 with the code on the page. A browser-free check walks every URL
pattern that takes a code and round-trips the codes through ``reverse`` and ``resolve``.
"""
from __future__ import annotations

import datetime as dt
import json
from html import escape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.converters import IntConverter, PathConverter, SlugConverter, StringConverter
from django.urls.exceptions import Resolver404

from allocation.models import InventoryPosition, OrderLine
from config.converters import CodeConverter, decode_code, encode_code
from exceptions.models import DecisionException, Queue
from integrations.models import Source

SCENARIOS = Path(__file__).resolve().parent / "data" / "scenarios"

# Items.
FITTING = "FIT-1/2IN"  # a SKU with a slash (the spec's example)
UMLAUT = "ÄØ-ü/1"  # non-ASCII and a slash
PUMP = "A B%20#?"  # space, an already-encoded-looking "%20", a fragment and a query mark
# Locations (also sent in query strings: "&" and "=" must not split them).
EAST = "DC/EAST #1"
WEST = "W&1=2?~"
# Customers.
HOSPITAL = "HOSP/1 ü"
MAKER = "%"
CITY = "#"
SHOP = "?"
# Orders: the spec's example, one that looks like a Why route, dot segments, a bare slash,
# an escape look-alike, and "A" (whose Why page "A/lines/1/why" must not reach).
ORDER_SLASH = "SO-2026/001"
ORDER_WHY_LOOKALIKE = "A/lines/1/why"
ORDER_A = "A"
ORDER_DOTS = ".."
ORDER_DOT = "."
ORDER_BARE_SLASH = "/"
ORDER_TILDE = "~2F"
ORDER_MIXED = "ÄØ-ü/1 #?"
# Supply.
SUPPLY_EAST = "PO/1 ü"
SUPPLY_WEST = "PO 2?%"

ITEMS = (FITTING, UMLAUT, PUMP)
LOCATIONS = (EAST, WEST)
CUSTOMERS = (HOSPITAL, MAKER, CITY, SHOP)
ORDERS = (ORDER_SLASH, ORDER_WHY_LOOKALIKE, ORDER_A, ORDER_DOTS, ORDER_DOT, ORDER_BARE_SLASH, ORDER_TILDE, ORDER_MIXED)
SUPPLIES = (SUPPLY_EAST, SUPPLY_WEST)
CODES = frozenset(ITEMS + LOCATIONS + CUSTOMERS + ORDERS + SUPPLIES)
# For the round trip: every code above plus a few more shapes a converter could get wrong.
ROUND_TRIP_CODES = sorted(CODES | {"~", "~~7E", "a~2Fb", "%2F", "%", "../..", "./x", "x/", "/x", "  ", "+", "日本/語", "a\\b"})


def envelope(event_id: str, type_: str, data: dict, *, source: str = "erp") -> dict:
    return {"id": event_id, "type": type_, "source": source, "occurred_at": "2026-05-31T18:00:00Z", "data": data}


def order(event_id: str, number: str, customer: str, lines: list[tuple[int, str, str]], **extra) -> dict:
    return envelope(event_id, "order.upserted", {
        "number": number, "customer": customer, "channel": "b2b_contract", "created_at": "2026-05-25T10:00:00Z",
        "requested_date": "2026-06-01", **extra,
        "lines": [
            {"line": n, "sku": sku, "quantity": quantity, "unit_price": "100.00", "unit_cost": "60.00"}
            for n, sku, quantity in lines
        ],
    })


def world_events() -> list[dict]:
    """The valves scenario's shape with every code replaced by an awkward one; FIT-1/2IN is short."""
    return [
        envelope("c-01", "location.upserted", {"code": EAST, "name": "East DC", "region": "east", "kind": "warehouse"}),
        envelope("c-02", "location.upserted", {"code": WEST, "name": "West DC", "region": "west", "kind": "warehouse"}),
        envelope("c-03", "lane.upserted", {"location": EAST, "region": "east", "transit_days": 1, "cost_per_unit": 0.5}),
        envelope("c-04", "lane.upserted", {"location": WEST, "region": "east", "transit_days": 3, "cost_per_unit": 1.2}),
        envelope("c-05", "lane.upserted", {"location": WEST, "region": "west", "transit_days": 1, "cost_per_unit": 0.5}),
        envelope("c-06", "lane.upserted", {"location": EAST, "region": "west", "transit_days": 3, "cost_per_unit": 1.2}),
        envelope("c-07", "item.upserted", {"sku": UMLAUT, "description": "Fitting, alternate make", "item_class": "fittings", "uom": "EA", "unit_cost": "62.00"}),
        envelope("c-08", "item.upserted", {"sku": FITTING, "description": "Fitting half inch", "item_class": "fittings", "uom": "EA", "unit_cost": "60.00",
                                           "substitutes": [{"sku": UMLAUT, "priority": 1}]}),
        envelope("c-09", "item.upserted", {"sku": PUMP, "description": "Pump 2kW", "item_class": "pumps", "uom": "EA", "unit_cost": "80.00"}),
        envelope("c-10", "customer.upserted", {"code": HOSPITAL, "name": "Mercy Hospital", "tier": 1, "segment": "healthcare", "region": "east",
                                               "home_location": EAST, "sla_days": 1, "late_penalty_per_day": "500"}),
        envelope("c-11", "customer.upserted", {"code": MAKER, "name": "Acme Fabrication", "tier": 2, "segment": "manufacturing", "region": "east"}),
        envelope("c-12", "customer.upserted", {"code": CITY, "name": "City Water Works", "tier": 3, "segment": "municipal", "region": "west"}),
        envelope("c-13", "customer.upserted", {"code": SHOP, "name": "Web shop customers", "tier": 4, "segment": "retail", "region": "west"}),
        envelope("c-14", "inventory.snapshot", {"location": EAST, "sku": FITTING, "on_hand": "100", "quality_hold": "10", "as_of": "2026-05-31T17:00:00Z"}, source="wms"),
        envelope("c-15", "inventory.snapshot", {"location": WEST, "sku": FITTING, "on_hand": "30", "as_of": "2026-05-31T17:00:00Z"}, source="wms"),
        envelope("c-16", "inventory.snapshot", {"location": EAST, "sku": UMLAUT, "on_hand": "50", "as_of": "2026-05-31T17:00:00Z"}, source="wms"),
        envelope("c-17", "inventory.snapshot", {"location": WEST, "sku": PUMP, "on_hand": "20", "as_of": "2026-05-31T17:00:00Z"}, source="wms"),
        envelope("c-18", "supply.upserted", {"ref": SUPPLY_EAST, "kind": "purchase_order", "sku": FITTING, "location": EAST, "quantity": "200",
                                             "eta": "2026-06-10", "supplier": "FITCO", "confidence": 0.9}),
        envelope("c-19", "supply.upserted", {"ref": SUPPLY_WEST, "kind": "purchase_order", "sku": FITTING, "location": WEST, "quantity": "100",
                                             "eta": "2026-06-05", "supplier": "CHEAPFIT", "confidence": 0.5}),
        order("c-20", ORDER_SLASH, HOSPITAL, [(1, FITTING, "60")], promised_date="2026-06-02"),
        order("c-21", ORDER_WHY_LOOKALIKE, MAKER, [(1, FITTING, "50")]),
        order("c-22", ORDER_A, CITY, [(1, FITTING, "40")]),
        order("c-23", ORDER_MIXED, SHOP, [(1, FITTING, "10"), (2, PUMP, "5")], ship_complete=True),
        order("c-24", ORDER_DOTS, SHOP, [(1, PUMP, "2")]),
        order("c-25", ORDER_DOT, SHOP, [(1, PUMP, "2")]),
        order("c-26", ORDER_BARE_SLASH, CITY, [(1, UMLAUT, "3")]),
        order("c-27", ORDER_TILDE, MAKER, [(1, FITTING, "20"), (2, UMLAUT, "4")]),
    ]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Personas are created per test; a cheap hasher keeps them quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(db, in_process_tasks, django_capture_on_commit_callbacks):
    """The awkward-codes world ingested and applied, under the valves policy, then a full run."""
    from allocation.services import run_full
    from integrations.services import ingest, process_pending
    from policies.services import import_document

    import_document(json.loads((SCENARIOS / "valves.policy.json").read_text()), actor=None, activate=True)
    with django_capture_on_commit_callbacks(execute=True):
        ingest(world_events(), actor=None, via="file")
        summary = process_pending()
    assert summary.applied == len(world_events()), summary
    run = run_full(as_of=dt.date(2026, 6, 1))
    assert run.status == "succeeded", run.error
    return run


class _Links(HTMLParser):
    """Every ``href`` and ``hx-get`` on a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "hx-get") and value and value.startswith("/"):
                self.urls.append(value)


def links(page: str) -> list[str]:
    parser = _Links()
    parser.feed(page)
    return parser.urls


def codes_named_by(url: str) -> set[str]:
    """The world's codes a link names, in its path (as the server will decode it) or its query."""
    parts = urlsplit(url)
    named = {value for _key, value in parse_qsl(parts.query)} & CODES
    try:
        match = resolve(unquote(parts.path))
    except Resolver404:
        return named
    return named | ({str(value) for value in match.kwargs.values()} & CODES)


def shows(page: str, code: str) -> bool:
    return escape(code) in page


def fetch(client, url: str, *, expect: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == expect, (url, response.status_code, response.content[:500])
    return response.content.decode()


def follow_code_links(client, page: str, seen: set[str]) -> set[str]:
    """Follow every link on ``page`` that names one of the codes: 200, and that page shows the code."""
    named_here: set[str] = set()
    for url in links(page):
        target = urlsplit(url)._replace(fragment="").geturl()
        codes = codes_named_by(target)
        if not codes:
            continue
        named_here |= codes
        if target in seen:
            continue
        seen.add(target)
        followed = fetch(client, target)
        for code in codes:
            assert shows(followed, code), (target, code)
    return named_here


def test_every_screen_with_awkward_codes_answers_and_its_links_resolve(client, world, planner, finance):
    client.force_login(planner)
    seen: set[str] = set()
    named: set[str] = set()

    # Lists.
    orders_page = fetch(client, reverse("allocation:order_list"))
    for number in ORDERS:
        assert shows(orders_page, number), number
    named |= follow_code_links(client, orders_page, seen)
    assert set(ORDERS) <= named  # each order's row links to its detail page
    inventory = fetch(client, reverse("allocation:inventory_list"))
    for code in ITEMS + LOCATIONS:
        assert shows(inventory, code), code
    named |= follow_code_links(client, inventory, seen)
    assert set(ITEMS) <= named  # each position links to its item's shortage board
    supply = fetch(client, reverse("allocation:supply_list"))
    for code in SUPPLIES:
        assert shows(supply, code), code
    named |= follow_code_links(client, supply, seen)

    # Runs.
    named |= follow_code_links(client, fetch(client, reverse("allocation:run_list")), seen)
    run_page = fetch(client, reverse("allocation:run_detail", args=[world.pk]))
    named |= follow_code_links(client, run_page, seen)

    # Each order, each line's Why page, each item's shortage board, with the links on them.
    lines = list(OrderLine.objects.select_related("order", "item").order_by("order__number", "line"))
    assert {line.order.number for line in lines} == set(ORDERS)
    for line in lines:
        detail = fetch(client, reverse("allocation:order_detail", args=[line.order.number]))
        assert shows(detail, line.order.number) and shows(detail, line.item.sku)
        named |= follow_code_links(client, detail, seen)
        why = fetch(client, reverse("allocation:line_why", args=[line.order.number, line.line]))
        assert shows(why, line.order.number) and shows(why, line.item.sku)
        named |= follow_code_links(client, why, seen)
    for sku in ITEMS:
        board = fetch(client, reverse("allocation:shortage_board", args=[sku]))
        assert shows(board, sku)
        named |= follow_code_links(client, board, seen)

    # Exceptions: the queues, each exception, the workbench of each item at each location.
    exceptions = list(DecisionException.objects.select_related("queue", "line__order", "line__item"))
    assert any(e.line_id and e.line.item.sku == FITTING for e in exceptions), [(e.type, e.line_id) for e in exceptions]
    named |= follow_code_links(client, fetch(client, reverse("exceptions:queue_list")), seen)
    for queue in Queue.objects.filter(pk__in={e.queue_id for e in exceptions if e.queue_id}):
        queue_page = fetch(client, reverse("exceptions:queue_detail", args=[queue.code]))
        named |= follow_code_links(client, queue_page, seen)
    for exception in exceptions:
        page = fetch(client, reverse("exceptions:exception_detail", args=[exception.pk]))
        if exception.line_id:
            assert shows(page, exception.line.order.number)
            # The detail links the Why page and the item's workbench.
            assert reverse("allocation:line_why", args=[exception.line.order.number, exception.line.line]) in page
            assert escape(reverse("exceptions:shortage_workbench", args=[exception.line.item.sku])) in page
        named |= follow_code_links(client, page, seen)
    positions = set(InventoryPosition.objects.values_list("item__sku", "location__code"))
    assert positions == {(FITTING, EAST), (FITTING, WEST), (UMLAUT, EAST), (PUMP, WEST)}
    for sku, location in positions:
        bench = fetch(client, reverse("exceptions:shortage_workbench", args=[sku]) + "?" + _query(location=location))
        assert shows(bench, sku)
        # The board is at the location asked for, even with "&", "=", "?" in its code.
        assert f'<option value="{escape(location)}" selected>' in bench, (sku, location)

    # Every code of an order, item and location was linked from some page and its link worked.
    assert set(ORDERS) | set(ITEMS) <= named, set(ORDERS) | set(ITEMS) - named

    # The events list (finance reads it too) shows the codes in the entity keys.
    client.force_login(finance)
    events = fetch(client, reverse("integrations:event_list"))
    assert shows(events, ORDER_SLASH) and shows(events, FITTING)


def _query(**values: str) -> str:
    from urllib.parse import urlencode

    return urlencode(values)


def test_an_order_number_that_looks_like_a_why_route_never_reaches_that_why_page(client, world, planner):
    client.force_login(planner)
    lookalike = reverse("allocation:order_detail", args=[ORDER_WHY_LOOKALIKE])
    why_of_a = reverse("allocation:line_why", args=[ORDER_A, 1])
    assert lookalike != why_of_a
    assert resolve(unquote(lookalike)).url_name == "order_detail"
    assert resolve(unquote(lookalike)).kwargs == {"number": ORDER_WHY_LOOKALIKE}
    page = fetch(client, lookalike)
    assert f"<h1>Order {escape(ORDER_WHY_LOOKALIKE)}" in page or shows(page, ORDER_WHY_LOOKALIKE)
    assert "Why this line holds" in page  # the order page's Why link title, not the Why page itself
    why_page = fetch(client, why_of_a)
    assert shows(why_page, ORDER_A) and not shows(why_page, ORDER_WHY_LOOKALIKE)
    # A malformed escape is no code at all.
    assert client.get("/orders/SO~ZZ1/").status_code == 404
    assert client.get("/orders/~/").status_code == 404


def test_the_why_page_links_its_explainer_with_the_order_number_encoded(client, world, policy_admin):
    client.force_login(policy_admin)
    why = fetch(client, reverse("allocation:line_why", args=[ORDER_MIXED, 1]))
    explain = [url for url in links(why) if url.startswith(reverse("policies:explain"))]
    assert explain
    query = dict(parse_qsl(urlsplit(explain[0]).query))
    assert (query["order"], query["line"]) == (ORDER_MIXED, "1")
    page = fetch(client, urlsplit(explain[0])._replace(fragment="").geturl())
    assert shows(page, ORDER_MIXED)


def test_a_workbench_commit_returns_to_the_board_of_that_item_and_location(client, world, planner):
    from exceptions.workbench import load_board

    client.force_login(planner)
    board = load_board(FITTING, EAST)
    assert board is not None and board.location.code == EAST
    row = next(row for row in board.rows if row.here > 0 and not row.pending_approval)
    url = reverse("exceptions:shortage_workbench", args=[FITTING]) + "?" + _query(location=EAST)
    response = client.post(url, {
        "location": EAST, f"line-{row.line.pk}": str(row.here - 1), f"seen-{row.line.pk}": str(row.here),
        "reason_code": "customer_commitment", "note": "cut by one",
    })
    assert response.status_code == 302, response.content[:500]
    target = urlsplit(response["Location"])
    assert resolve(unquote(target.path)).kwargs == {"sku": FITTING}
    assert dict(parse_qsl(target.query)) == {"location": EAST}
    assert f'<option value="{escape(EAST)}" selected>' in fetch(client, response["Location"])


def test_api_detail_routes_take_every_code(world, api_client_for, planner):
    api = api_client_for(planner)
    for route, field, codes in [
        ("api-item-detail", "sku", ITEMS),
        ("api-location-detail", "code", LOCATIONS),
        ("api-customer-detail", "code", CUSTOMERS),
        ("api-order-detail", "number", ORDERS),
        ("api-supply-detail", "ref", SUPPLIES),
    ]:
        for code in codes:
            response = api.get(reverse(route, args=[code]))
            assert response.status_code == 200, (route, code, response.status_code)
            assert response.json()[field] == code
    for line in OrderLine.objects.select_related("order", "item"):
        response = api.get(reverse("api_line_decision", kwargs={"order": line.order.number, "line": line.line}))
        assert response.status_code == 200, (line.order.number, response.status_code)
        body = response.json()
        assert (body["order"], body["line"], body["sku"]) == (line.order.number, line.line, line.item.sku)
    # The Why look-alike order is its own order, and "A"'s line is reached only through "A".
    assert api.get(reverse("api-order-detail", args=[ORDER_WHY_LOOKALIKE])).json()["number"] == ORDER_WHY_LOOKALIKE
    assert api.get(reverse("api-order-detail", args=["~ZZ"])).status_code == 404


@pytest.mark.django_db
def test_the_webhook_route_reaches_a_source_whose_code_has_a_slash(client):
    Source.objects.create(code="erp/eu ü", secret="s3cret")
    canonical = reverse("integrations_webhook", args=["erp/eu ü"])
    assert resolve(unquote(canonical)).kwargs == {"source": "erp/eu ü"}
    # A sender that percent-encodes the slash (the server decodes it) reaches the same route.
    assert resolve(unquote("/api/v1/webhooks/erp%2Feu%20%C3%BC")).kwargs == {"source": "erp/eu ü"}
    # Routed to the webhook view (POST only, so GET is 405), not a 404 for want of a route.
    assert client.get(canonical).status_code == 405
    assert client.get("/api/v1/webhooks/erp%2Feu%20%C3%BC").status_code == 405
    # An unsigned POST is refused by the view (401), which means it found its way there.
    assert client.post(canonical, data=b"{}", content_type="application/json").status_code == 401


def _named_patterns(patterns=None, namespace: str = "", prefix: str = ""):
    """Every named URL pattern as (full name, route, converters by keyword)."""
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _named_patterns(entry.url_patterns, inner, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and entry.name:
            converters = dict(getattr(entry.pattern, "converters", {}))
            yield f"{namespace}{entry.name}", prefix + str(entry.pattern), converters


# Keyword arguments taken by str converters that are not business codes: a policy section name.
NOT_CODES = {("policies:entry_new", "section"), ("policies:entry_edit", "section"), ("policies:entry_delete", "section")}


def test_every_named_pattern_taking_a_code_round_trips_it_through_reverse_and_resolve():
    taking_codes: set[str] = set()
    for name, route, converters in _named_patterns():
        if name.startswith("admin:"):
            continue  # Django's admin: primary keys, escaped by the admin's own quoting
        for keyword, converter in converters.items():
            # A code in a route must use a code converter: str stops at "/", path lets a code
            # swallow the rest of the route; only non-code keywords may use them. (Slugs, such
            # as exception queue codes, are validated slugs: never a "/".)
            if isinstance(converter, (StringConverter, PathConverter)) and not isinstance(converter, (CodeConverter, SlugConverter)):
                assert (name, keyword) in NOT_CODES, f"{name} ({route}): <{keyword}> is a code without the code converter"
        code_keywords = [k for k, c in converters.items() if isinstance(c, CodeConverter)]
        if not code_keywords:
            continue
        taking_codes.add(name)
        for code in ROUND_TRIP_CODES:
            kwargs: dict[str, object] = {}
            for keyword, converter in converters.items():
                if isinstance(converter, CodeConverter):
                    kwargs[keyword] = code
                elif isinstance(converter, IntConverter):
                    kwargs[keyword] = 3
                elif isinstance(converter, SlugConverter):
                    kwargs[keyword] = "shortages"
                else:
                    kwargs[keyword] = "rules"
            url = reverse(name, kwargs=kwargs)
            # Only ASCII, and none of the characters that would end or split the path.
            assert url.isascii() and not set(url) & set(" #?\\"), (name, code, url)
            assert "/../" not in url and "/./" not in url and "%2E" not in url.upper()
            match = resolve(unquote(url))  # the server percent-decodes the path before routing
            assert (match.view_name, match.kwargs) == (name, kwargs), (name, code, url)
    assert {
        "allocation:order_detail", "allocation:line_why", "allocation:shortage_board", "exceptions:shortage_workbench",
        "api_line_decision", "api-item-detail", "api-location-detail", "api-customer-detail", "api-order-detail",
        "api-supply-detail", "integrations_webhook",
    } <= taking_codes


@pytest.mark.parametrize("code", ROUND_TRIP_CODES)
def test_the_code_escape_is_its_own_inverse_and_never_leaves_a_slash_or_a_dot_segment(code):
    segment = encode_code(code)
    assert "/" not in segment and segment not in (".", "..")
    assert decode_code(segment) == code
    lowercase_escapes = segment.replace("~2F", "~2f").replace("~7E", "~7e").replace("~2E", "~2e")
    assert decode_code(lowercase_escapes) == code  # escapes are hex: either case decodes


@pytest.mark.parametrize("segment", ["~", "a~", "~2", "~ZZ", "~2G", "x~41"])
def test_a_malformed_escape_is_refused(segment):
    with pytest.raises(ValueError):
        decode_code(segment)
