"""The queue a planner works all day (issue 9, item 3), without a browser: column sorts in
both directions walked by keyset pages, grouping by customer / item / reason, the Work and
Information tabs, the side panel and its actions (the next case after one, the same case
while it still waits for you, refusals), saved views of what the list shows, and the
queries each answer costs (pinned, and flat in the number of rows)."""
from __future__ import annotations

import datetime as dt
import html as html_lib
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from allocation.models import Customer, Item, Order, OrderLine
from config import roles
from exceptions import queue_screen
from exceptions.choices import CaseKind, ExceptionType
from exceptions.models import DecisionException, Queue
from tests.fixtures.personas import make_user

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 5, 20, 8, 0, tzinfo=dt.UTC)
URL = "/exceptions/queues/shortages/"
HTMX_ROWS = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "rows"}
HTMX = {"HTTP_HX_REQUEST": "true"}
TYPES = [ExceptionType.PRIORITY_SHORTAGE, ExceptionType.SPLIT_LIMIT, ExceptionType.ALLOCATION_REVERSED,
         ExceptionType.MARGIN_BELOW_FLOOR]


def text(response) -> str:
    return response.content.decode()


def keys(page: str) -> list[int]:
    return [int(k) for k in re.findall(r'<tr tabindex="0" data-key="(\d+)"', page)]


def next_link(page: str) -> str | None:
    match = re.search(r'<a href="([^"]*)"[^>]*rel="next"', page)
    return html_lib.unescape(match.group(1)) if match else None


def walk(client, params: dict) -> list[int]:
    """Every key of the list, page by page through its Next links (HTMX rows answers)."""
    response = client.get(URL, params)
    assert response.status_code == 200, text(response)[:300]
    seen = keys(text(response))
    while (link := next_link(text(response))) is not None:
        response = client.get(URL + link, **HTMX_ROWS)
        assert response.status_code == 200
        seen += keys(text(response))
    return seen


def make_cases(count: int, *, queue_code: str = "shortages", kind: str = CaseKind.WORK, start: int = 0) -> list[DecisionException]:
    """``count`` active cases on lines of five customers and three items, with ties in every
    column, a few without a customer or item (an order-less case), some claimed."""
    queue = Queue.objects.get(code=queue_code)
    customers = list(Customer.objects.order_by("code")) or Customer.objects.bulk_create(
        Customer(code=f"CUST-{c}", name=f"Customer {c}", tier=1 + c % 3, segment="retail", region="east") for c in range(5)
    )
    items = list(Item.objects.order_by("sku")) or Item.objects.bulk_create(Item(sku=f"SKU-{i}", item_class="valves") for i in range(3))
    owner = get_user_model().objects.filter(username="olga_owner").first() or make_user("olga_owner", roles.PLANNER)
    cases = []
    for n in range(start, start + count):
        line = None
        if n % 9 != 8:  # every ninth case has no line (no customer, no item)
            order = Order.objects.create(number=f"SO-{n:04d}", customer=customers[(n * 3) % 5], channel="b2b",
                                         created_at=T0, requested_date=dt.date(2026, 6, 3))
            line = OrderLine.objects.create(order=order, line=1 + n % 2, item=items[n % 3], quantity=Decimal(5),
                                            unit_price=Decimal(10), unit_cost=Decimal(5))
        kind_type = TYPES[n % 4]
        cases.append(DecisionException(
            type=kind_type, reason_types=[kind_type], kind=kind, key=f"case:{queue_code}:{n}", message=f"reason {n}",
            status="open" if n % 5 else "claimed", assignee=owner if n % 5 == 0 else None, queue=queue,
            line=line, order=line.order if line else None, item=line.item if line else None,
            jeopardy_score=Decimal((n * 13) % 7 * 100), value=Decimal((n * 7) % 5 * 1000),
            jeopardy_band="high" if n % 2 else "low", raised_at=T0 + dt.timedelta(minutes=n % 11), updated_at=T0,
            due_at=None if kind == CaseKind.INFORMATION or n % 6 == 0 else T0 + dt.timedelta(hours=(n * 5) % 8),
        ))
    return DecisionException.objects.bulk_create(cases)


FAR = dt.datetime.max.replace(tzinfo=dt.UTC)
RANK = {t: i for i, t in enumerate(queue_screen._RANKED)}


def nulls_last(value):
    return (value is None, value if value is not None else "")


def python_order(sort: str, group: str = "", kind: str = CaseKind.WORK) -> list[int]:
    """The list's order computed in Python (NULL is the greatest value)."""
    rows = list(DecisionException.objects.filter(queue__code="shortages", kind=kind, status__in=["open", "claimed", "awaiting_approval"])
                .select_related("order__customer", "item", "line", "assignee"))
    column = sort.lstrip("-")
    key = {
        "jeopardy": lambda e: (-e.jeopardy_score, e.due_at or FAR, e.pk),
        "sla": lambda e: (e.due_at or FAR, -e.jeopardy_score, e.pk),
        "age": lambda e: (e.raised_at, e.pk),
        "value": lambda e: (-e.value, e.pk),
        "case": lambda e: (e.pk,),
        "reason": lambda e: (RANK[e.type], -e.jeopardy_score, e.pk),
        "order": lambda e: (nulls_last(e.order.number if e.order else None), nulls_last(e.line.line if e.line else None), e.pk),
        "customer": lambda e: (nulls_last(e.order.customer.code if e.order else None), -e.jeopardy_score, e.pk),
        "item": lambda e: (nulls_last(e.item.sku if e.item else None), -e.jeopardy_score, e.pk),
        "status": lambda e: (e.status, -e.jeopardy_score, e.pk),
        "assignee": lambda e: (nulls_last(e.assignee.username if e.assignee else None), -e.jeopardy_score, e.pk),
    }[column]
    ordered = sorted(rows, key=key)
    if sort.startswith("-"):
        ordered.reverse()  # every column flipped: the exact reverse of a total order
    if group:
        lead = {"customer": lambda e: nulls_last(e.order.customer.code if e.order else None),
                "item": lambda e: nulls_last(e.item.sku if e.item else None),
                "reason": lambda e: RANK[e.type]}[group]
        ordered = sorted(ordered, key=lead)  # stable: the sort within each group
    return [e.pk for e in ordered]


@pytest.fixture
def many(db):
    return make_cases(130)


# --------------------------------------------------------------------------- sorting


@pytest.mark.parametrize("sort", ["customer", "-customer", "item", "reason", "-reason", "order", "status", "assignee",
                                  "-value", "-sla", "case", "-age", "jeopardy"])
def test_every_column_sorts_both_ways_and_pages_walk_each_case_once(as_planner, many, sort):
    assert walk(as_planner, {"sort": sort}) == python_order(sort)


@pytest.mark.parametrize(("group", "sort"), [("customer", "value"), ("item", "-jeopardy"), ("reason", "customer")])
def test_grouped_lists_page_in_group_order(as_planner, many, group, sort):
    assert walk(as_planner, {"group": group, "sort": sort}) == python_order(sort, group)


def test_a_header_sorts_by_its_column_and_again_the_other_way(as_planner, many):
    page = text(as_planner.get(URL, {"sort": "value", "type": "split_limit"}))
    value_header = re.search(r'<th class="num" aria-sort="(\w+)"><a href="\?([^"]*)"[^>]*>Value', page)
    customer_header = re.search(r'<a href="\?([^"]*)"[^>]*>Customer', page)
    assert value_header.group(1) == "descending"
    assert html_lib.unescape(value_header.group(2)) == "type=split_limit&sort=-value"  # the same filters, reversed
    assert html_lib.unescape(customer_header.group(1)) == "type=split_limit&sort=customer"
    reversed_page = as_planner.get(URL, {"sort": "-value", "type": "split_limit"})
    assert 'aria-sort="ascending"' in text(reversed_page)


def test_a_bad_sort_or_group_is_a_400_naming_it(as_planner, many):
    for params in ({"sort": "nonsense"}, {"sort": "--value"}, {"group": "colour"}, {"kind": "gossip"}, {"sort": "val\x00ue"}):
        response = as_planner.get(URL, params)
        assert response.status_code == 400, params
        assert f"{next(iter(params))}:" in text(response)


def test_groups_are_headed_with_their_count_and_value_over_the_whole_list(as_planner, many):
    page = text(as_planner.get(URL, {"group": "customer"}))
    headings = re.findall(r'<tr class="group-row"><th[^>]*>([^<]*)<span class="muted">· (\d+) cases? · value ([\d,]+)', page)
    active = DecisionException.objects.filter(queue__code="shortages", status__in=["open", "claimed"])
    first_code = headings[0][0].split()[0]
    in_group = [e for e in active if e.order_id and e.order.customer.code == first_code]
    assert first_code == "CUST-0"
    assert int(headings[0][1]) == len(in_group) > 10  # counted beyond the page's rows of it
    assert headings[0][2] == f"{sum(e.value for e in in_group):,.0f}"
    assert headings[0][0].strip() == "CUST-0 Customer 0 · tier 1 ·".rstrip(" ·")


# --------------------------------------------------------------------------- work and information


def test_the_list_shows_work_and_a_tab_shows_information_without_sla(as_planner, many):
    info = make_cases(3, kind=CaseKind.INFORMATION, start=500)
    work_page = text(as_planner.get(URL))
    info_page = text(as_planner.get(URL, {"kind": "information"}))

    assert not set(keys(work_page)) & {c.pk for c in info}
    assert keys(info_page) == python_order("jeopardy", kind=CaseKind.INFORMATION)
    assert set(keys(info_page)) == {c.pk for c in info}
    assert info_page.count("no SLA") >= 3
    assert "work 130 · information 3" in work_page  # the counts strip
    assert re.search(r'data-kind="information" class="active"', info_page)
    assert 'name="kind" value="information"' in info_page  # the filter form keeps the tab


# --------------------------------------------------------------------------- the next case


def test_next_case_follows_the_list_order_and_goes_round(many):
    view = queue_screen.parse_view({"sort": "customer"})
    base = DecisionException.objects.filter(queue__code="shortages", status__in=["open", "claimed", "awaiting_approval"])
    qs = queue_screen.ordered(base, view)
    order = python_order("customer")

    for position in (0, 17, 64):
        after = queue_screen.for_keyset(order[position])
        assert queue_screen.next_case(qs, view, after).pk == order[position + 1]
    assert queue_screen.next_case(qs, view, queue_screen.for_keyset(order[-1])).pk == order[0]  # round to the top
    # A case the action took out of the list (dismissed) is still a position in it.
    DecisionException.objects.filter(pk=order[30]).update(status="dismissed")
    assert queue_screen.next_case(qs, view, queue_screen.for_keyset(order[30])).pk == order[31]


def test_next_case_in_a_grouped_and_reversed_list(many):
    view = queue_screen.parse_view({"sort": "-value", "group": "item"})
    base = DecisionException.objects.filter(queue__code="shortages", status__in=["open", "claimed", "awaiting_approval"])
    qs = queue_screen.ordered(base, view)
    order = python_order("-value", "item")
    for position in range(0, len(order) - 1, 7):
        assert queue_screen.next_case(qs, view, queue_screen.for_keyset(order[position])).pk == order[position + 1]


def panel_post(client, case, action, data, list_query=""):
    url = reverse("exceptions:panel_action", args=["shortages", case.pk, action])
    return client.post(url, {"version": case.version, "list": list_query, **data}, **HTMX)


def panel_case(page: str) -> int | None:
    match = re.search(r'<div class="panel-body" data-case="(\d*)"', page)
    return int(match.group(1)) if match and match.group(1) else None


def test_an_action_from_the_panel_opens_the_next_case_and_swaps_the_row(as_planner, planner, many):
    order = python_order("value")
    first = DecisionException.objects.get(pk=order[0])
    if first.status == "claimed":  # a colleague's claim: take the first open one
        first = DecisionException.objects.get(pk=next(pk for pk in order if DecisionException.objects.get(pk=pk).status == "open"))
    response = panel_post(as_planner, first, "dismiss", {"reason": "duplicate"}, "sort=value")
    page = text(response)

    first.refresh_from_db()
    assert response.status_code == 200 and first.status == "dismissed"
    assert panel_case(page) == order[order.index(first.pk) + 1]
    assert f"#{first.pk}: Dismissed" in page
    assert re.search(rf'<template>\s*<tr tabindex="0" data-key="{first.pk}"[^>]*class="done" hx-swap-oob="true"', page)
    assert 'id="counts" ' in page and 'hx-swap-oob="true"' in page
    last = first.history.order_by("-history_id").first()
    assert (last.history_user, last.status) == (planner, "dismissed")


def test_claim_and_comment_keep_the_case_in_the_panel(as_planner, many):
    case = DecisionException.objects.filter(status="open").order_by("pk").first()
    claimed = panel_post(as_planner, case, "claim", {})
    case.refresh_from_db()
    commented = panel_post(as_planner, case, "comment", {"body": "asked the warehouse"})

    assert panel_case(text(claimed)) == case.pk and "Claimed." in text(claimed)
    assert panel_case(text(commented)) == case.pk
    assert case.comments.get().body == "asked the warehouse"


def test_refused_panel_actions_keep_the_case_and_what_was_typed(as_planner, customer_service, many):
    case = DecisionException.objects.filter(status="open", line__isnull=False).order_by("pk").first()
    missing = panel_post(as_planner, case, "defer", {"promised_date": "2026-06-20", "reason": ""})
    bad_date = panel_post(as_planner, case, "defer", {"promised_date": "1999-01-01", "reason": "customer asked"})
    from exceptions import services

    services.claim(case.pk, actor=customer_service, expected_version=case.version)
    stale = panel_post(as_planner, case, "dismiss", {"reason": "dup"})

    assert missing.status_code == 400 and panel_case(text(missing)) == case.pk and "reason:" in text(missing)
    assert bad_date.status_code == 400 and 'value="customer asked"' in text(bad_date)
    assert stale.status_code == 409 and "Someone acted first" in text(stale) and "casey_cs" in text(stale)
    case.refresh_from_db()
    assert case.status == "claimed" and case.assignee == customer_service


def test_the_last_case_of_the_list_says_the_list_is_done(as_planner, many):
    case = make_cases(1, start=901)[0]
    DecisionException.objects.filter(pk=case.pk).update(message="the only needle", status="open", assignee=None)
    case.refresh_from_db()
    only = "q=only+needle"
    page = text(panel_post(as_planner, case, "dismiss", {"reason": "fine"}, only))
    assert "Nothing more in this list." in page and panel_case(page) is None


def test_without_javascript_the_panel_posts_and_comes_back_with_the_next_case_open(client, planner, many):
    client.force_login(planner)
    order = python_order("jeopardy")
    case = next(DecisionException.objects.get(pk=pk) for pk in order if DecisionException.objects.get(pk=pk).status == "open")
    url = reverse("exceptions:panel_action", args=["shortages", case.pk, "dismiss"])
    response = client.post(url, {"version": case.version, "reason": "dup", "list": "status=open"})
    following = order[order.index(case.pk) + 1:]
    next_open = next(pk for pk in following if DecisionException.objects.get(pk=pk).status == "open")

    assert response.status_code == 302
    assert response["Location"] == f"{URL}?status=open&open={next_open}"
    page = text(client.get(response["Location"]))
    assert panel_case(page) == next_open and f"#{case.pk}: Dismissed" in page
    # A plain GET of a panel goes to the queue page with that case open.
    plain = client.get(reverse("exceptions:case_panel", args=["shortages", case.pk]), {"sort": "value"})
    assert plain["Location"] == f"{URL}?sort=value&open={case.pk}"


def test_panel_permissions(client, personas, many):
    case = DecisionException.objects.filter(status="open").first()
    panel_url = reverse("exceptions:case_panel", args=["shortages", case.pk])
    for persona, expected in [("finance", 200), ("approver", 200), ("integration", 403), ("outsider", 403)]:
        client.force_login(personas[persona])
        assert client.get(panel_url, **HTMX).status_code == expected, persona
    client.force_login(personas["finance"])
    assert "planners and customer service act on it" in text(client.get(panel_url, **HTMX))
    assert panel_post(client, case, "dismiss", {"reason": "x"}).status_code == 403
    case.refresh_from_db()
    assert case.status == "open"
    other_queue = reverse("exceptions:case_panel", args=["nope", case.pk])
    client.force_login(personas["planner"])
    assert client.get(other_queue, **HTMX).status_code == 404


# --------------------------------------------------------------------------- saved views


def test_the_rows_answer_carries_what_save_view_keeps(as_planner, many):
    rows = text(as_planner.get(URL, {"type": "split_limit", "sort": "-value", "group": "item", "status": "active",
                                     "part": "rows", "cursor": "abc"}, **HTMX_ROWS))
    saved = re.search(r'<input type="hidden" name="querystring" value="([^"]*)" id="saved-view-query" hx-swap-oob="true">', rows)
    state = re.search(r'<span id="filter-state" hx-swap-oob="true"><input type="hidden" name="sort" value="([^"]*)">', rows)
    assert html_lib.unescape(saved.group(1)) == "type=split_limit&sort=-value&group=item"  # no default, no cursor
    assert state.group(1) == "-value"
    full = text(as_planner.get(URL, {"type": "split_limit"}))
    assert 'hx-swap-oob' not in full.split('id="rows"')[0].split("<form")[-1]  # the page itself has no out-of-band copies
    assert 'value="type=split_limit" id="saved-view-query">' in full


def test_export_keeps_working_with_the_new_sorts(as_planner, many):
    response = as_planner.get(URL, {"sort": "customer", "group": "reason", "export": "csv"})
    body = b"".join(response.streaming_content).decode()
    assert response.status_code == 200 and len(body.strip().splitlines()) == 1 + len(python_order("customer"))


# --------------------------------------------------------------------------- queries


def test_queries_of_the_queue_are_pinned_and_flat_in_the_rows(as_planner, django_assert_max_num_queries):
    make_cases(5)
    case = DecisionException.objects.filter(status="open", line__isnull=False).first()
    panel_url = reverse("exceptions:case_panel", args=["shortages", case.pk])

    def measure():
        with django_assert_max_num_queries(9):  # session, user, roles, queue, rows, groups, counts, assignees, views
            assert as_planner.get(URL, {"group": "customer", "sort": "-value"}).status_code == 200
        with django_assert_max_num_queries(25):  # the same with a case's panel (its facts, alternatives, history)
            assert as_planner.get(URL, {"open": case.pk}).status_code == 200
        with django_assert_max_num_queries(7):  # no counts: the pager's rows count nothing
            assert as_planner.get(URL, {"part": "rows", "group": "item"}, **HTMX_ROWS).status_code == 200
        with django_assert_max_num_queries(5):
            assert as_planner.get(URL, {"part": "counts"}, **HTMX).status_code == 200
        with django_assert_max_num_queries(17):
            assert as_planner.get(panel_url, **HTMX).status_code == 200

    measure()
    make_cases(60, start=100)  # twelve times the rows: the same queries
    measure()
    fresh = DecisionException.objects.filter(status="open", line__isnull=False).exclude(pk=case.pk).first()
    with django_assert_max_num_queries(30):  # the action, the next case found and its panel, the row and the counts
        assert panel_post(as_planner, fresh, "dismiss", {"reason": "dup"}, "sort=value").status_code == 200
