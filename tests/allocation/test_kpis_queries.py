"""The rewritten KPI queries (allocation.kpis at 100k lines) keep their meaning on edge cases:
cycle time takes each event's first later run (not a simulation, not a failed one) and leaves
out events no run followed; a fill rate's book figure is the sum of its segments, lines without
a segment value included."""
import datetime as dt

from allocation import kpis
from allocation.models import AllocationRun, Customer, Order, OrderLine
from integrations.models import Event, Source
from tests.allocation.test_kpis import AS_OF, NOW, book, value  # noqa: F401  (the hand-made book fixture)


def test_cycle_time_takes_each_events_first_later_successful_real_run(book):  # noqa: F811
    source = Source.objects.create(code="erp", name="ERP", secret="s", last_event_at=NOW)
    base = NOW - dt.timedelta(hours=3)

    def run(minutes, **fields):
        AllocationRun.objects.create(as_of=AS_OF, status=fields.pop("status", "succeeded"), started_at=base,
                                     finished_at=base + dt.timedelta(minutes=minutes), **fields)

    run(10, is_simulation=True)
    run(11, status="failed")
    run(20)
    run(30)
    # applied at +5 min (stored 1 min before): first run after is the one at +20 (the fixture's run
    # finished 58 min before NOW = +122 min, later still); applied at +25: the run at +30;
    # applied at +200 (after every run): left out.
    for index, applied in enumerate((5, 25, 200)):
        at = base + dt.timedelta(minutes=applied)
        Event.objects.create(source=source, event_id=f"e{index}", type="item.upserted", occurred_at=at, data={},
                             body_hash="h", entity_key=f"k{index}", status="applied",
                             received_at=at - dt.timedelta(minutes=1), applied_at=at)
    ctx_now = base + dt.timedelta(minutes=201)
    point = value("cycle_time_ms", kpis.Context(now=ctx_now, as_of=AS_OF))
    assert point.extra["events"] == 2
    assert sorted([point.value, point.extra["p95"]]) == [6 * 60000.0, 16 * 60000.0]


def test_a_fill_rate_sums_its_segments_into_the_book_figure(book):  # noqa: F811
    nobody = Customer.objects.create(code="NOSEG", name="No segment", tier=2, segment="", region="east")
    order = Order.objects.create(number="O5", customer=nobody, channel="b2b", created_at=NOW, requested_date=AS_OF)
    OrderLine.objects.create(order=order, line=1, item=book["lines"][0].item, quantity=1, unit_price=1, unit_cost=1)
    points = {p.segment: p for p in kpis.BY_CODE["fill_rate_segment"].points(kpis.Context(now=NOW, as_of=AS_OF))}
    assert points[""].extra == {"lines": 5, "otif": 1}
    assert sum(p.extra["lines"] for s, p in points.items() if s) == 5
