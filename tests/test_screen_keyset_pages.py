"""Keyset pages on the screens that still paged by OFFSET and COUNT (issue 8): the runs list,
a run's decisions and exceptions, an exception queue (each sort, with filters), the approvals
inbox and the policy list.

Each screen is walked once by its Next links: every row exactly once, in the screen's order,
a bounded number of queries per page whatever its depth, no ``OFFSET`` and no ``COUNT`` in
the SQL of a deep page; a bad cursor shows the first page, never a 500.
"""
from __future__ import annotations

import datetime as dt
import html as html_lib
import re
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from allocation.models import (
    AllocationRun,
    Customer,
    Item,
    LineDecisionLog,
    Location,
    Order,
    OrderLine,
    RunStatus,
)
from config import roles
from exceptions.models import ApprovalRequest, DecisionException, Queue
from policies.models import PolicyVersion
from tests.fixtures.personas import make_user

UTC = dt.UTC
T0 = dt.datetime(2026, 5, 20, 8, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return response.content.decode()


def next_link(response, rel: str = "next", param: str = "cursor") -> str | None:
    """The querystring of the page's ``rel`` link that moves ``param`` (one section's pager)."""
    for match in re.finditer(rf'<a href="([^"#]*)[^"]*"[^>]*rel="{rel}"', text(response)):
        link = html_lib.unescape(match.group(1))
        if re.search(rf"[?&]{param}=[^&]*$", link):  # the pager puts its own cursor last
            return link
    return None


def walk(client, url: str, keys, *, max_queries: int, django_assert_max_num_queries, param: str = "cursor",
         headers: dict | None = None, **params) -> list[list[str]]:
    """Follow Next links from the first page; the keys of each page. Every page after the
    first is read within ``max_queries`` and its SQL has no OFFSET and no COUNT."""
    response = client.get(url, params)
    assert response.status_code == 200, text(response)[:500]
    pages = [keys(text(response))]
    while (link := next_link(response, param=param)) is not None:
        with django_assert_max_num_queries(max_queries), CaptureQueriesContext(connection) as queries:
            response = client.get(url + link, **(headers or {}))
        assert response.status_code == 200
        sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
        assert " OFFSET " not in sql and "COUNT(" not in sql
        pages.append(keys(text(response)))
    return pages


# --- runs list ---------------------------------------------------------------------------------


def run_keys(page: str) -> list[str]:
    return re.findall(r'<tr id="run-(\d+)"', page)


def test_runs_list_walks_every_run_once_newest_first(as_planner, django_assert_max_num_queries):
    now = dt.datetime.now(UTC)
    AllocationRun.objects.bulk_create(
        AllocationRun(trigger="manual" if n % 3 else "event", scope="full", as_of=dt.date(2026, 6, 1),
                      status=RunStatus.SUCCEEDED, progress=100, phase="done", started_at=now, finished_at=now)
        for n in range(70)
    )
    url = reverse("allocation:run_list")

    pages = walk(as_planner, url, run_keys, max_queries=5, django_assert_max_num_queries=django_assert_max_num_queries)
    manual = walk(as_planner, url, run_keys, max_queries=5, django_assert_max_num_queries=django_assert_max_num_queries,
                  trigger="manual")

    assert [len(p) for p in pages] == [25, 25, 20]
    assert sum(pages, []) == [str(pk) for pk in AllocationRun.objects.order_by("-id").values_list("pk", flat=True)]
    assert sum(manual, []) == [str(pk) for pk in AllocationRun.objects.filter(trigger="manual").order_by("-id").values_list("pk", flat=True)]


def test_runs_list_with_a_bad_cursor_shows_the_first_page(as_planner):
    runs = AllocationRun.objects.bulk_create(
        AllocationRun(trigger="manual", scope="full", as_of=dt.date(2026, 6, 1)) for _ in range(30)
    )
    for cursor in ("nonsense", "eyJvIjoieCJ9", "%00", "\ud800"):
        response = as_planner.get(reverse("allocation:run_list"), {"cursor": cursor.encode("utf-8", "surrogatepass")})
        assert response.status_code == 200
        assert run_keys(text(response)) == [str(r.pk) for r in sorted(runs, key=lambda r: -r.pk)][:25]


# --- a run's decisions and exceptions ------------------------------------------------------------


@pytest.fixture
def big_run(db):
    """A finished run with 130 decisions (ranks with ties) and 120 exceptions (raised at 7 instants)."""
    location = Location.objects.create(code="DC-1", name="One", region="east", kind="warehouse")
    item = Item.objects.create(sku="SKU-1", description="widget", item_class="widgets")
    customer = Customer.objects.create(code="C-1", name="Customer", tier=1, segment="retail", region="east",
                                       home_location=location)
    Order.objects.bulk_create(
        Order(number=f"SO-{n:03d}", customer=customer, channel="edi", created_at=T0, requested_date=dt.date(2026, 6, 3))
        for n in range(130)
    )
    OrderLine.objects.bulk_create(OrderLine(order=o, line=1, item=item, quantity=5) for o in Order.objects.order_by("pk"))
    lines = list(OrderLine.objects.order_by("pk"))
    now = dt.datetime.now(UTC)
    run = AllocationRun.objects.create(trigger="manual", scope="full", as_of=dt.date(2026, 6, 1), status=RunStatus.SUCCEEDED,
                                       progress=100, phase="done", started_at=now, finished_at=now)
    other = AllocationRun.objects.create(trigger="manual", scope="full", as_of=dt.date(2026, 6, 1), status=RunStatus.SUCCEEDED)
    LineDecisionLog.objects.bulk_create(
        LineDecisionLog(line=line, run=run, rank=(n * 7) % 40, score=1.0, strategy="fifo", priority_class=1,
                        fingerprint=f"f{n}", created_at=now)
        for n, line in enumerate(lines)
    )
    LineDecisionLog.objects.bulk_create(
        LineDecisionLog(line=line, run=other, rank=1, score=1.0, strategy="fifo", priority_class=1, fingerprint="o", created_at=now)
        for line in lines[:10]
    )
    DecisionException.objects.bulk_create(
        DecisionException(type="priority_shortage", key=f"k{n}", message=f"short {n}", line=lines[n], run_id=run.pk,
                          raised_at=T0 + dt.timedelta(minutes=n % 7), updated_at=T0)
        for n in range(120)
    )
    DecisionException.objects.bulk_create(
        DecisionException(type="priority_shortage", key=f"o{n}", message="other run", run_id=other.pk, raised_at=T0, updated_at=T0)
        for n in range(5)
    )
    return run


def test_run_decisions_walk_every_decision_once_in_rank_order(as_planner, big_run, django_assert_max_num_queries):
    url = reverse("allocation:run_detail", args=[big_run.pk])

    def decision_keys(page: str) -> list[str]:
        section = page.split('<section id="run-decisions"')[1].split("</section>")[0]
        return re.findall(r'<tr data-line="([^"]+)"', section)

    pages = walk(as_planner, url, decision_keys, max_queries=8, django_assert_max_num_queries=django_assert_max_num_queries,
                 param="decisions_cursor")

    expected = [f"{number}/1" for number in LineDecisionLog.objects.filter(run=big_run).order_by("rank", "id")
                .values_list("line__order__number", flat=True)]
    assert [len(p) for p in pages] == [50, 50, 30]
    assert sum(pages, []) == expected


def test_run_exceptions_walk_every_exception_once_and_keep_the_other_section_in_place(
    as_planner, big_run, django_assert_max_num_queries
):
    url = reverse("allocation:run_detail", args=[big_run.pk])

    def exception_keys(page: str) -> list[str]:
        section = page.split('<section id="run-exceptions"')[1].split("</section>")[0]
        return re.findall(r'<tr data-exception="(\d+)"', section)

    pages = walk(as_planner, url, exception_keys, max_queries=8, django_assert_max_num_queries=django_assert_max_num_queries,
                 param="exceptions_cursor")
    # Paging the decisions keeps the exceptions' cursor, and the HTMX pager answers one section.
    second = as_planner.get(url + next_link(as_planner.get(url), param="exceptions_cursor"))
    decisions_link = next_link(second, param="decisions_cursor")
    partial = as_planner.get(url + decisions_link, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="run-decisions")

    expected = [str(pk) for pk in DecisionException.objects.filter(run_id=big_run.pk).order_by("raised_at", "id").values_list("pk", flat=True)]
    assert [len(p) for p in pages] == [50, 50, 20]
    assert sum(pages, []) == expected
    assert "exceptions_cursor=" in decisions_link and exception_keys(text(second)) == pages[1]
    assert text(partial).lstrip().startswith('<section id="run-decisions"') and "<html" not in text(partial)


def test_run_detail_with_bad_cursors_shows_the_first_pages(as_planner, big_run):
    url = reverse("allocation:run_detail", args=[big_run.pk])
    response = as_planner.get(url, {"exceptions_cursor": "x", "decisions_cursor": "eyJ2IjpbXX0"})
    assert response.status_code == 200
    assert len(re.findall(r'<tr data-exception="', text(response))) == 50
    assert len(re.findall(r'<tr data-line="', text(response))) == 50


# --- an exception queue ----------------------------------------------------------------------------


@pytest.fixture
def busy_queue(db):
    """150 active exceptions in the shortages queue: scores, due times (some none) and values with ties."""
    queue = Queue.objects.get(code="shortages")
    DecisionException.objects.bulk_create(
        DecisionException(
            type="priority_shortage" if n % 4 else "split_limit", key=f"q{n}", message=f"needs a look {n}",
            status="open" if n % 5 else "claimed", queue=queue,
            jeopardy_score=Decimal((n * 13) % 9 * 100), value=Decimal((n * 7) % 5 * 1000),
            jeopardy_band="high" if n % 2 else "low",
            raised_at=T0 + dt.timedelta(minutes=n % 11), updated_at=T0,
            due_at=None if n % 6 == 0 else T0 + dt.timedelta(hours=(n * 5) % 8),
        )
        for n in range(150)
    )
    DecisionException.objects.create(type="priority_shortage", key="resolved", message="done", status="resolved",
                                      queue=queue, raised_at=T0, updated_at=T0)
    return queue


HTMX_ROWS = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "rows"}  # what the queue's pager sends


def queue_keys(page: str) -> list[str]:
    return re.findall(r'<tr tabindex="0" data-key="(\d+)"', page)


def sorted_keys(sort: str, **filters) -> list[str]:
    """The queue's order for ``sort``, computed in Python (NULL due times last)."""
    rows = list(DecisionException.objects.filter(queue__code="shortages", status__in=["open", "claimed", "awaiting_approval"], **filters))
    far = dt.datetime.max.replace(tzinfo=UTC)
    keys = {
        "jeopardy": lambda e: (-e.jeopardy_score, e.due_at or far, e.pk),
        "sla": lambda e: (e.due_at or far, -e.jeopardy_score, e.pk),
        "age": lambda e: (e.raised_at, e.pk),
        "value": lambda e: (-e.value, e.pk),
    }
    return [str(e.pk) for e in sorted(rows, key=keys[sort])]


@pytest.mark.parametrize("sort", ["jeopardy", "sla", "age", "value"])
def test_queue_walks_every_exception_once_in_each_sort(as_planner, busy_queue, sort, django_assert_max_num_queries):
    url = reverse("exceptions:queue_detail", args=["shortages"])

    pages = walk(as_planner, url, queue_keys, max_queries=8, django_assert_max_num_queries=django_assert_max_num_queries,
                 headers=HTMX_ROWS, sort=sort)
    # A deep page opened as a full page (a pushed URL reloaded) shows the same rows, with the counts.
    deep = as_planner.get(url + next_link(as_planner.get(url, {"sort": sort})))

    assert [len(p) for p in pages] == [50, 50, 50]
    assert sum(pages, []) == sorted_keys(sort)
    assert queue_keys(text(deep)) == pages[1] and 'id="counts"' in text(deep)


def test_queue_pages_keep_filters_and_answer_the_pager_with_the_rows(as_planner, busy_queue, django_assert_max_num_queries):
    url = reverse("exceptions:queue_detail", args=["shortages"])

    pages = walk(as_planner, url, queue_keys, max_queries=8, django_assert_max_num_queries=django_assert_max_num_queries,
                 headers=HTMX_ROWS, sort="sla", status="open", type="priority_shortage", q="look")
    first = as_planner.get(url, {"sort": "sla", "status": "open", "type": "priority_shortage"})
    rows = as_planner.get(url + next_link(first), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="rows")

    assert sum(pages, []) == sorted_keys("sla", status="open", type="priority_shortage")
    assert "sort=sla" in next_link(first) and "status=open" in next_link(first)
    assert text(rows).lstrip().startswith('<div id="rows"') and "<html" not in text(rows)
    assert queue_keys(text(rows)) == sorted_keys("sla", status="open", type="priority_shortage")[50:100]


def test_queue_saved_view_and_a_cursor_of_another_sort(as_planner, busy_queue):
    url = reverse("exceptions:queue_detail", args=["shortages"])
    first = as_planner.get(url, {"sort": "value"})
    cursor = next_link(first).split("cursor=")[1]

    saved = as_planner.post(reverse("exceptions:saved_view_create", args=["shortages"]),
                            {"name": "by value", "querystring": "sort=value"})
    other_sort = as_planner.get(url, {"sort": "age", "cursor": cursor})

    assert saved.status_code == 302 and saved["Location"].endswith("?sort=value")
    assert 'value="sort=value"' in text(first)  # the save form never carries a cursor
    assert queue_keys(text(as_planner.get(saved["Location"]))) == sorted_keys("value")[:50]
    assert other_sort.status_code == 200 and queue_keys(text(other_sort)) == sorted_keys("age")[:50]


def test_queue_with_a_bad_cursor_shows_the_first_page(as_planner, busy_queue):
    response = as_planner.get(reverse("exceptions:queue_detail", args=["shortages"]), {"cursor": "!!not-a-cursor"})
    assert response.status_code == 200
    assert queue_keys(text(response)) == sorted_keys("jeopardy")[:50]


# --- the approvals inbox --------------------------------------------------------------------------


def test_inbox_walks_every_pending_request_once_oldest_first(client, approver, planner, django_assert_max_num_queries):
    client.force_login(approver)
    subject_type = ContentType.objects.get_for_model(DecisionException)
    ApprovalRequest.objects.bulk_create(
        ApprovalRequest(kind="exception.override", subject_type=subject_type, subject_id=1000 + n, requested_by=planner)
        for n in range(120)
    )  # one created_at for all: the id breaks the tie
    ApprovalRequest.objects.create(kind="exception.override", subject_type=subject_type, subject_id=5, requested_by=approver)

    def inbox_keys(page: str) -> list[str]:
        return re.findall(r'<tr data-key="(\d+)"', page)

    pages = walk(client, reverse("exceptions:approval_inbox"), inbox_keys, max_queries=9,
                 django_assert_max_num_queries=django_assert_max_num_queries)
    bad = client.get(reverse("exceptions:approval_inbox"), {"cursor": "zzz"})

    expected = [str(pk) for pk in ApprovalRequest.objects.exclude(requested_by=approver).order_by("created_at", "pk").values_list("pk", flat=True)]
    assert [len(p) for p in pages] == [50, 50, 20]
    assert sum(pages, []) == expected
    assert bad.status_code == 200 and inbox_keys(text(bad)) == expected[:50]


# --- the policy list -----------------------------------------------------------------------------


def test_policy_list_walks_every_version_once_newest_first(client, django_assert_max_num_queries):
    client.force_login(make_user("fin", roles.FINANCE))
    start = PolicyVersion.objects.order_by("-number").values_list("number", flat=True).first() or 0
    PolicyVersion.objects.bulk_create(
        PolicyVersion(name=f"v{start + n}", number=start + n, status="retired" if n % 2 else "draft", effective_from=T0)
        for n in range(1, 61)
    )

    def version_keys(page: str) -> list[str]:
        return re.findall(r'<tr data-key="(\d+)"', page)

    pages = walk(client, reverse("policies:policy_list"), version_keys, max_queries=6,
                 django_assert_max_num_queries=django_assert_max_num_queries)
    drafts = walk(client, reverse("policies:policy_list"), version_keys, max_queries=6,
                  django_assert_max_num_queries=django_assert_max_num_queries, status="draft")
    bad = client.get(reverse("policies:policy_list"), {"cursor": "bad"})

    assert sum(pages, []) == [str(n) for n in PolicyVersion.objects.order_by("-number").values_list("number", flat=True)]
    assert len(pages[0]) == 25
    assert sum(drafts, []) == [str(n) for n in PolicyVersion.objects.filter(status="draft").order_by("-number").values_list("number", flat=True)]
    assert bad.status_code == 200 and version_keys(text(bad)) == pages[0]
