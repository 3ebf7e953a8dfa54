"""Routing to queues, SLA due times and escalation, on a controlled clock."""
import datetime as dt
from decimal import Decimal

import pytest

from exceptions import routing
from exceptions.choices import ExceptionStatus, ExceptionType
from exceptions.models import DecisionException, Queue, RoutingRule
from exceptions.tasks import escalate_overdue_task

from .conftest import NOW

pytestmark = pytest.mark.django_db


def test_default_queues_and_rules_exist_after_migrate():
    codes = list(Queue.objects.values_list("code", "group", "sla_minutes", "escalation_queue__code"))
    assert codes == [
        ("shortages", "planner", 240, "escalations"),
        ("promises-at-risk", "customer_service", 480, "escalations"),
        ("substitutions", "planner", 240, "escalations"),
        ("data-quality", "planner", 1440, "escalations"),
        ("escalations", "planner", 120, None),
    ]
    assert Queue.objects.get(is_default=True).code == "data-quality"
    assert RoutingRule.objects.count() == 15


def test_route_by_type_and_sla_due_from_raised_at(world):
    line = world.line(world.hospital, 10)
    shortage = world.exception(line, ExceptionType.PRIORITY_SHORTAGE)
    promise = world.exception(line, ExceptionType.PROMISE_AT_RISK)
    assert shortage.queue.code == "shortages"
    assert shortage.due_at == NOW + dt.timedelta(minutes=240)
    assert promise.queue.code == "promises-at-risk"
    assert promise.due_at == NOW + dt.timedelta(minutes=480)
    history = shortage.history.first()
    assert history.history_change_reason == "routed to Shortages"


def test_first_matching_rule_wins_on_region_tier_segment_and_value_band(world):
    vip = Queue.objects.create(code="vip", name="VIP", group="planner", sla_minutes=30)
    west = Queue.objects.create(code="west", name="West retail", group="customer_service", sla_minutes=60)
    RoutingRule.objects.create(position=1, queue=vip, exception_type="priority_shortage", customer_tier=1, value_band="high")
    RoutingRule.objects.create(position=2, queue=west, region="west", customer_segment="retail")
    big_hospital = world.line(world.hospital, 2000, unit_price="10")  # value 20,000: high
    small_hospital = world.line(world.hospital, 10, unit_price="10")  # value 100: low
    shop = world.line(world.shop, 10)
    exceptions = [
        world.exception(big_hospital, route=False),
        world.exception(small_hospital, route=False),
        world.exception(shop, route=False),
        world.exception(None, ExceptionType.STALE_FEED, route=False),
    ]
    assert routing.route(exceptions, now=NOW) == 4
    queues = [DecisionException.objects.get(pk=e.pk).queue.code for e in exceptions]
    assert queues == ["vip", "shortages", "west", "data-quality"]


def test_unknown_type_goes_to_default_queue_and_route_unrouted_picks_up_only_unrouted(world):
    RoutingRule.objects.filter(exception_type="negative_stock").delete()
    routed = world.exception(world.line(world.shop, 1), route=True)
    loose = world.exception(None, ExceptionType.NEGATIVE_STOCK, route=False)
    resolved = world.exception(None, ExceptionType.NEGATIVE_STOCK, route=False, status=ExceptionStatus.RESOLVED, suffix="x")
    assert routing.route_unrouted(now=NOW) == 1
    loose.refresh_from_db()
    resolved.refresh_from_db()
    assert loose.queue.code == "data-quality"
    assert resolved.queue is None
    assert routed.queue.code == "shortages"


def test_value_bands():
    assert [routing.value_band(v) for v in (0, Decimal("999.99"), 1000, 9999, 10000)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
    ]


def test_sla_status_and_age():
    due = NOW + dt.timedelta(minutes=90)
    assert routing.sla_status(due, NOW) == "on_time"
    assert routing.sla_status(due, NOW + dt.timedelta(minutes=30)) == "due_soon"
    assert routing.sla_status(due, NOW + dt.timedelta(minutes=90)) == "overdue"
    assert routing.sla_status(None, NOW) == "none"
    assert routing.age(NOW, NOW + dt.timedelta(hours=5)) == dt.timedelta(hours=5)


def test_escalate_overdue_moves_only_overdue_open_or_claimed(world, planner):
    line = world.line(world.hospital, 10)
    overdue = world.exception(line, raised_at=NOW - dt.timedelta(minutes=241))
    on_time = world.exception(line, ExceptionType.SPLIT_LIMIT, raised_at=NOW - dt.timedelta(minutes=200))
    waiting = world.exception(
        line, ExceptionType.ALLOCATION_REVERSED, raised_at=NOW - dt.timedelta(days=1), status=ExceptionStatus.AWAITING_APPROVAL
    )
    DecisionException.objects.filter(pk=overdue.pk).update(status=ExceptionStatus.CLAIMED, assignee=planner)

    assert routing.escalate_overdue(NOW) == 1

    overdue.refresh_from_db()
    assert (overdue.queue.code, overdue.escalation_level, overdue.escalated_at, overdue.status, overdue.assignee) == (
        "escalations",
        1,
        NOW,
        "open",
        None,
    )
    assert overdue.due_at == NOW + dt.timedelta(minutes=120)
    assert overdue.version == 2
    on_time.refresh_from_db()
    waiting.refresh_from_db()
    assert (on_time.queue.code, on_time.escalation_level) == ("shortages", 0)
    assert (waiting.queue.code, waiting.escalation_level) == ("shortages", 0)
    # The escalation queue has none above it: running again later escalates nothing more.
    assert routing.escalate_overdue(NOW + dt.timedelta(days=2)) == 1  # on_time is now overdue
    overdue.refresh_from_db()
    assert overdue.escalation_level == 1


def test_escalate_task_takes_the_clock(world):
    exception = world.exception(world.line(world.shop, 1), raised_at=NOW)
    assert escalate_overdue_task.apply(kwargs={"now": (NOW + dt.timedelta(minutes=239)).isoformat()}).get() == 0
    assert escalate_overdue_task.apply(kwargs={"now": (NOW + dt.timedelta(minutes=240)).isoformat()}).get() == 1
    exception.refresh_from_db()
    assert exception.queue.code == "escalations"


def test_beat_schedule_runs_escalation_every_minute(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["escalate-overdue-exceptions"]
    assert entry == {"task": "exceptions.tasks.escalate_overdue_task", "schedule": 60.0}
