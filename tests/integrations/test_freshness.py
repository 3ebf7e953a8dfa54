"""Feed freshness with a clock the test controls: a silent source raises one stale_feed case,
the engine discounts the on-hand it feeds and the run says it ran degraded, and the case
resolves when events resume (integrations.freshness)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone

from allocation import loading
from allocation.models import Allocation
from allocation.services import run_full
from exceptions.choices import ExceptionStatus, ExceptionType
from exceptions.models import DecisionException
from integrations import freshness
from integrations.models import Source, SourceActivity
from tests.integrations.conftest import envelope, ingest_and_apply, line, order_event

pytestmark = pytest.mark.django_db


def snapshot(event_id: str, on_hand: str, as_of: str) -> dict:
    return envelope(
        event_id, "inventory.snapshot", {"location": "DC-EAST", "sku": "VALVE-10", "on_hand": on_hand, "as_of": as_of},
        source="wms", occurred_at=as_of,
    )


@pytest.fixture
def fed(master):
    """100 VALVE-10 at DC-EAST from the wms feed (own cadence 30 min), an order for 100 from erp."""
    ingest_and_apply([snapshot("s-1", "100", "2026-05-31T18:00:00Z"), order_event("o-1", "SO-1", [line(1, quantity="100")])])
    Source.objects.filter(code="wms").update(stale_feed_minutes=30)
    Source.objects.filter(code="erp").update(stale_feed_minutes=60 * 24 * 30)  # erp is not under test
    return Source.objects.get(code="wms")


def stale_cases():
    return DecisionException.objects.filter(type=ExceptionType.STALE_FEED)


def test_silent_source_raises_one_case_discounts_its_stock_and_resolves_when_events_resume(fed, monkeypatch):
    walk_through_a_silent_feed(monkeypatch)


def walk_through_a_silent_feed(monkeypatch):
    """The wms feed falls silent past its cadence and resumes; returns the run made while stale."""
    start = timezone.now() - dt.timedelta(hours=2)
    Source.objects.filter(code="wms").update(last_event_at=start)  # the wms feed last spoke at `start`
    clock = [start + dt.timedelta(minutes=29)]
    monkeypatch.setattr(loading, "timezone", SimpleNamespace(now=lambda: clock[0]))  # the run's clock

    # Within the cadence: fresh, no case, full on-hand allocated, the run is not degraded.
    assert freshness.check_freshness(now=clock[0]).raised == []
    run = run_full()
    assert run.status == "succeeded" and run.degraded_feeds == [] and not run.ran_degraded
    assert sum(a.quantity for a in Allocation.objects.filter(line__order__number="SO-1")) == Decimal(100)

    # 31 minutes of silence: one case, naming the source and the location it feeds.
    clock[0] = start + dt.timedelta(minutes=31)
    check = freshness.check_freshness(now=clock[0])
    assert check.stale == ["wms"] and check.raised == ["wms"]
    case = stale_cases().get()
    assert case.status == ExceptionStatus.OPEN
    assert case.key == "stale_feed:wms" and case.source == "wms"
    assert case.details["locations"] == ["DC-EAST"] and case.details["cadence_minutes"] == 30
    assert case.details["silent_minutes"] == 31
    assert "Source wms has sent nothing for 31 min (expected every 30 min)" in case.message

    # Checked again later: still one case, not a second.
    clock[0] = start + dt.timedelta(minutes=45)
    assert freshness.check_freshness(now=clock[0]).raised == []
    assert stale_cases().count() == 1

    # The run discounts the stale on-hand by the default 10 % buffer and records it ran degraded.
    run = run_full()
    assert run.status == "succeeded"
    assert run.degraded_feeds == [{"source": "wms", "locations": ["DC-EAST"]}] and run.ran_degraded
    assert sum(a.quantity for a in Allocation.objects.filter(line__order__number="SO-1")) == Decimal(90)
    degraded_run = run

    # Events resume (at the real now, two hours after `start`): the case resolves on ingestion.
    clock[0] = timezone.now()
    ingest_and_apply([snapshot("s-2", "100", "2026-06-01T08:00:00Z")])
    case.refresh_from_db()
    assert case.status == ExceptionStatus.RESOLVED and case.resolution_reason == "feed resumed"
    assert freshness.check_freshness(now=clock[0] + dt.timedelta(minutes=1)).raised == []
    assert stale_cases().count() == 1
    run = run_full()
    assert run.degraded_feeds == []
    assert sum(a.quantity for a in Allocation.objects.filter(line__order__number="SO-1")) == Decimal(100)
    return degraded_run


def test_the_check_resolves_the_case_of_a_source_heard_from_again(fed):
    start = timezone.now()
    assert freshness.check_freshness(now=start + dt.timedelta(minutes=40)).raised == ["wms"]
    Source.objects.filter(code="wms").update(last_event_at=start + dt.timedelta(minutes=50))

    check = freshness.check_freshness(now=start + dt.timedelta(minutes=55))

    assert check.resolved == ["wms"] and check.raised == []
    assert stale_cases().get().status == ExceptionStatus.RESOLVED


def test_without_its_own_cadence_a_source_uses_the_policy_stale_feed_minutes(fed):
    Source.objects.filter(code="wms").update(stale_feed_minutes=None)
    start = Source.objects.get(code="wms").last_event_at

    assert freshness.check_freshness(now=start + dt.timedelta(minutes=59)).stale == []
    assert freshness.check_freshness(now=start + dt.timedelta(minutes=61)).stale == ["wms"]


def test_accepted_events_are_counted_per_source_and_hour_for_the_sparkline(fed):
    ingest_and_apply([snapshot("s-3", "90", "2026-06-01T09:00:00Z"), snapshot("s-4", "80", "2026-06-01T09:05:00Z")])

    rows = {row.source.code: row for row in freshness.source_freshness()}

    assert rows["wms"].hourly[-1] == SourceActivity.objects.get(source__code="wms").events == 3
    assert rows["wms"].status == "fresh" and rows["wms"].cadence_minutes == 30 and rows["wms"].cadence_is_own
    svg = str(rows["wms"].sparkline)
    assert svg.startswith('<svg class="sparkline" role="img"') and svg.count("<rect") == 24
    assert "<title>3 events, this hour</title>" in svg


def test_integrations_screen_shows_freshness_and_links_the_case(fed, planner):
    from django.test import Client

    freshness.check_freshness(now=Source.objects.get(code="wms").last_event_at + dt.timedelta(minutes=31))
    case = stale_cases().get()
    client = Client()
    client.force_login(planner)

    html = client.get("/integrations/").content.decode()

    row = html[html.index('<tr data-key="wms"') :].split("</tr>")[0]
    assert 'data-status="fresh"' in row  # by the real clock the feed spoke seconds ago
    assert "30 min" in row and "own" in row and row.count("<rect") == 24
    fragment = client.get("/integrations/", HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<section class="card" id="feeds"') and "<h1>" not in fragment
    Source.objects.filter(code="wms").update(last_event_at=timezone.now() - dt.timedelta(hours=1))
    row = client.get("/integrations/").content.decode().split('<tr data-key="wms"')[1].split("</tr>")[0]
    assert 'data-status="stale"' in row and f'href="/exceptions/{case.pk}/"' in row
    assert "Set</button>" not in row  # planners read; only integration users set a cadence


def test_every_position_at_a_stale_source_location_is_discounted(fed):
    from allocation.policy_bridge import active_context

    # PUMP-2 at DC-EAST came from erp, but DC-EAST's stock feed is wms: it is stale with it.
    ingest_and_apply([envelope("e-1", "inventory.snapshot", {"location": "DC-EAST", "sku": "PUMP-2", "on_hand": "5",
                                                              "as_of": "2026-05-31T18:00:00Z"}, occurred_at="2026-05-31T18:00:00Z")])
    later = Source.objects.get(code="wms").last_event_at + dt.timedelta(minutes=31)

    loaded = loading.load_input(as_of=dt.date(2026, 6, 1), context=active_context(), now=later)

    assert {(row.item, row.location, row.stale) for row in loaded.engine_input.on_hand} == {
        ("VALVE-10", "DC-EAST", True), ("PUMP-2", "DC-EAST", True),
    }
    assert loaded.degraded_feeds == [{"source": "wms", "locations": ["DC-EAST"]}]


def test_the_run_page_says_the_run_ran_degraded(fed, monkeypatch, planner):
    from django.test import Client

    degraded = walk_through_a_silent_feed(monkeypatch)
    client = Client()
    client.force_login(planner)

    detail = client.get(f"/runs/{degraded.pk}/").content.decode()
    listing = client.get("/runs/").content.decode()

    assert '<span class="badge warn">ran degraded</span>' in detail and "<li><strong>wms</strong> at DC-EAST</li>" in detail
    assert listing.count('title="stale feeds: wms">degraded</span>') == 1
