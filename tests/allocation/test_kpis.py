"""Every KPI on one small hand-made book, with the exact value worked out by hand
(allocation.kpis). The book, as of 2026-06-01:

| line | customer (tier, segment) | item | qty | price | holds | due |
| --- | --- | --- | --- | --- | --- | --- |
| L1 | HOSP (1, healthcare), home E | A | 10 | 10 | 10 at E today, pinned by a planner | 06-01 |
| L2 | SHOP (3, retail), home W | A | 10 | 5 | 4 at E + 3 at W today | 06-01 |
| L3 | SHOP | B | 5 | 2 | 5 of substitute A at W on 06-04 | 06-01 |
| L4 | HELD (2, retail), credit hold | A | 2 | 100 | nothing | 06-01 |
"""
import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from allocation import kpis
from allocation.choices import AllocationState
from allocation.models import (
    Allocation,
    AllocationRun,
    Customer,
    Item,
    LineDecisionCurrent,
    LineDecisionLog,
    Location,
    Order,
    OrderLine,
)
from exceptions.models import ApprovalRequest, DecisionException, PromiseChange, Queue
from integrations.models import Event, EventBatch, Source
from policies.services import import_document
from tests.fixtures.personas import make_user

AS_OF = dt.date(2026, 6, 1)
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def book(db):
    east = Location.objects.create(code="E", name="East", region="east", kind="warehouse")
    west = Location.objects.create(code="W", name="West", region="west", kind="warehouse")
    a = Item.objects.create(sku="A", item_class="valves", unit_cost=Decimal("1"))
    b = Item.objects.create(sku="B", item_class="pumps", unit_cost=Decimal("1"))
    hosp = Customer.objects.create(code="HOSP", name="Hospital", tier=1, segment="healthcare", region="east",
                                   home_location=east)
    shop = Customer.objects.create(code="SHOP", name="Shop", tier=3, segment="retail", region="west",
                                   home_location=west)
    held = Customer.objects.create(code="HELD", name="Held", tier=2, segment="retail", region="west",
                                   home_location=west, credit_hold=True)

    def line(number, customer, item, quantity, price):
        order = Order.objects.create(number=number, customer=customer, channel="b2b", created_at=NOW,
                                     requested_date=AS_OF)
        return OrderLine.objects.create(order=order, line=1, item=item, quantity=Decimal(quantity),
                                        unit_price=Decimal(price), unit_cost=Decimal("1"))

    l1, l2, l3, l4 = line("O1", hosp, a, 10, 10), line("O2", shop, a, 10, 5), line("O3", shop, b, 5, 2), line(
        "O4", held, a, 2, 100)

    def alloc(ln, location, quantity, confirmed=AS_OF, item=a, state=AllocationState.RESERVED):
        Allocation.objects.create(line=ln, item=item, location=location, quantity=Decimal(quantity),
                                  confirmed_date=confirmed, state=state)

    alloc(l1, east, 10, state=AllocationState.PINNED)
    alloc(l2, east, 4)
    alloc(l2, west, 3)
    alloc(l3, west, 5, confirmed=AS_OF + dt.timedelta(days=3))
    run = AllocationRun.objects.create(as_of=AS_OF, status="succeeded", started_at=NOW - dt.timedelta(seconds=5),
                                       finished_at=NOW - dt.timedelta(seconds=58 * 60))
    reasons = {l2.pk: [{"code": "taken_by_higher_rank", "quantity": "3"}], l4.pk: [{"code": "no_supply", "quantity": "2"}]}
    shortfalls = {l1.pk: 0, l2.pk: 3, l3.pk: 0, l4.pk: 2}
    for ln in (l1, l2, l3, l4):
        log = LineDecisionLog.objects.create(line=ln, run=run, rank=1, score=0.5, strategy="redistribute", priority_class=5,
                                             shortfall=Decimal(shortfalls[ln.pk]), shortfall_reasons=reasons.get(ln.pk, []),
                                             fingerprint="x", created_at=NOW)
        LineDecisionCurrent.objects.create(line=ln, log=log, fingerprint="x")
    return {"lines": (l1, l2, l3, l4), "run": run}


def value(code, ctx=None, segment=""):
    points = kpis.BY_CODE[code].points(ctx or kpis.Context(now=NOW, as_of=AS_OF))
    return {p.segment: p for p in points}[segment]


def test_fill_rate_counts_lines_covered_in_full_by_their_due_date(book):
    assert value("fill_rate_segment").value == 25.0  # only L1 of four
    assert value("fill_rate_segment", segment="healthcare").value == 100.0
    assert value("fill_rate_segment", segment="retail").value == 0.0
    assert value("fill_rate_channel", segment="b2b").value == 25.0
    assert value("fill_rate_tier", segment="1").value == 100.0
    assert value("fill_rate_tier", segment="3").value == 0.0
    assert value("fill_rate_location", segment="E").value == 100.0  # L1's home is E
    assert value("fill_rate_location", segment="W").value == 0.0


def test_backorders_are_lines_not_covered_in_full_and_their_missing_value(book):
    assert value("backorder_lines").value == 2.0  # L2 short 3, L4 short 2 (L3 is late, not short)
    assert value("backorder_value").value == 215.0  # 3 x 5 + 2 x 100


def test_split_shipments_and_substitution_rate(book):
    assert value("split_shipments").value == 33.33  # L2 of the three allocated lines
    assert value("substitution_rate").value == 33.33  # L3 holds A for B


def test_credit_held_value(book):
    point = value("credit_held_value")
    assert (point.value, point.extra["lines"]) == (200.0, 1)


def test_touchless_rate_and_touches_per_order(book):
    l1, l2, *_ = book["lines"]
    assert value("touchless_rate").value == 75.0  # L1 was pinned by a planner
    PromiseChange.objects.create(line=l2, promised_date=AS_OF + dt.timedelta(days=7), reason="customer agreed",
                                 actor=make_user("pat", "planner"))
    assert value("touchless_rate").value == 50.0
    assert value("touches_per_order").value == 0.25  # one deferral over four orders


def test_short_by_cause_sums_the_decision_logs_shortfall_reasons(book):
    assert value("short_by_cause").value == 2.0
    assert value("short_by_cause", segment="taken_by_higher_rank").value == 3.0
    assert value("short_by_cause", segment="no_supply").value == 2.0


@pytest.fixture
def cases(book):
    queue = Queue.objects.create(code="q1", name="Queue one", group="planner", sla_minutes=60)
    l1, l2, l3, l4 = book["lines"]

    def case(ln, *, raised, due, resolved=None, status="open"):
        return DecisionException.objects.create(
            type="promise_at_risk", key=f"case:{ln.order.number}/1", line=ln, status=status, message="m",
            raised_at=raised, updated_at=raised, due_at=due, resolved_at=resolved, queue=queue, value=Decimal("10"),
        )

    case(l1, raised=NOW - dt.timedelta(hours=5), due=NOW - dt.timedelta(hours=4),
         resolved=NOW - dt.timedelta(hours=4, minutes=30), status="resolved")  # within its SLA
    case(l2, raised=NOW - dt.timedelta(hours=5), due=NOW - dt.timedelta(hours=4),
         resolved=NOW - dt.timedelta(hours=3), status="resolved")  # after it
    open_case = case(l3, raised=NOW - dt.timedelta(hours=2), due=NOW - dt.timedelta(hours=1))  # overdue
    return {"queue": queue, "open": open_case}


def test_sla_adherence_overdue_and_aging(cases):
    assert value("sla_adherence").value == 50.0
    assert value("sla_adherence", segment="q1").extra == {"resolved": 2, "within_sla": 1, "overdue": 1}
    assert value("overdue_cases").value == 1.0
    assert value("overdue_cases", segment="q1").value == 1.0
    assert value("case_aging").value == 1.0
    assert value("case_aging", segment="1–4 h").value == 1.0
    assert value("case_aging", segment="< 1 h").value == 0.0
    assert value("case_volume", segment="work").value == 1.0


def test_approvals_count_time_to_decision_and_value(cases):
    from django.contrib.contenttypes.models import ContentType

    asker, decider = make_user("asker", "planner"), make_user("decider", "approver")
    request = ApprovalRequest.objects.create(
        kind="override", subject_type=ContentType.objects.get_for_model(DecisionException),
        subject_id=cases["open"].pk, requested_by=asker, status="approved", decided_by=decider,
    )
    ApprovalRequest.objects.filter(pk=request.pk).update(created_at=NOW - dt.timedelta(hours=2), decided_at=NOW)
    point = value("approvals")
    assert point.value == 1.0
    assert (point.extra["decided"], point.extra["median_hours_to_decision"], point.extra["value"]) == (1, 2.0, 10.0)
    assert value("override_lines").value == 1.0  # L1's pinned allocation
    assert value("override_lines").extra["value"] == 100.0


def test_integration_success_freshness_and_cycle_time(book):
    source = Source.objects.create(code="erp", name="ERP", secret="s", last_event_at=NOW - dt.timedelta(minutes=30))
    EventBatch.objects.create(via="api", total=5, accepted=4, rejected=1)
    applied_at = NOW - dt.timedelta(hours=1)
    for index, status in enumerate(["applied", "applied", "applied", "parked"]):
        Event.objects.create(source=source, event_id=f"e{index}", type="item.upserted", occurred_at=applied_at,
                             data={}, body_hash="h", entity_key=f"k{index}", status=status,
                             received_at=applied_at - dt.timedelta(seconds=1),
                             applied_at=applied_at if status == "applied" else None)
    assert value("integration_success").value == 60.0  # 3 applied of 4 stored + 1 rejected
    assert value("integration_success", segment="erp").extra == {"applied": 3, "parked": 1}
    assert value("feed_freshness", segment="erp").value == 30.0
    # The run finished 2 minutes after the events were applied, 1 s after they were stored
    assert value("cycle_time_ms").value == 121000.0


def test_quota_use_counts_allocations_of_matching_lines_this_period(book):
    import_document({
        "name": "q", "rules": [{"scope": {}, "settings": {}}],
        "quotas": [{"item_class": "valves", "for": {}, "period": "week", "quantity": 20}],
        "protections": [{"sku": "A", "location": "E", "quantity": 8, "for": {"customer_segment": "healthcare"}}],
    }, actor=None, activate=True)
    points = {p.segment: p for p in kpis.BY_CODE["quota_use"].points(kpis.Context(now=NOW, as_of=AS_OF))}
    quota = points["quota #0 valves / week"]
    assert (quota.value, quota.extra["used"]) == (110.0, 22.0)  # 10 + 7 + 5 of item class valves
    assert quota.extra["by"] == [["SHOP", 12.0], ["HOSP", 10.0]]
    protection = points["protection #0 A @ E"]
    assert (protection.value, protection.extra["used"]) == (100.0, 8.0)  # HOSP's 10 at E uses all 8


def test_snapshots_keep_each_day_and_cards_read_the_trend(book):
    ctx = kpis.Context(now=NOW, as_of=AS_OF)
    kpis.snapshot(AS_OF - dt.timedelta(days=1), ctx=ctx)
    Allocation.objects.filter(line=book["lines"][1], location__code="W").update(quantity=Decimal("6"))
    kpis.snapshot(AS_OF, ctx=ctx)
    [card] = kpis.cards([kpis.BY_CODE["fill_rate_segment"]], today=AS_OF)
    assert (card.previous, card.value, card.change, card.better) == (25.0, 50.0, 25.0, True)
    assert card.trend[-1] == (AS_OF.isoformat(), 50.0) and card.trend[-2] == ((AS_OF - dt.timedelta(days=1)).isoformat(), 25.0)
    assert len(card.trend) == kpis.TREND_DAYS
    assert {p.segment: p.value for p in card.segments} == {"healthcare": 100.0, "retail": 33.33}


def test_every_kpi_has_a_definition_a_unit_and_answers(book):
    ctx = kpis.Context(now=timezone.now(), as_of=AS_OF)
    for kpi in kpis.KPIS:
        assert kpi.definition.endswith(".") and kpi.unit and kpi.roles
        assert any(p.segment == "" for p in kpi.points(ctx)), kpi.code
