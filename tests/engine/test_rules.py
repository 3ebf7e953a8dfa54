"""One test per allocation rule: each fails if its rule is removed from the engine."""

import math
from datetime import UTC, date, datetime

from allocation.engine import Item, Lane, Protection, Quota, allocate
from tests.engine.builders import (
    D,
    allocations_of,
    decision_of,
    engine_input,
    exception_types,
    held,
    line,
    oh,
    po,
    settings,
)

WIN = settings(strategy="win", priority_class=1)
GAIN = settings(strategy="gain", priority_class=5)
FILL = settings(strategy="fill", priority_class=5)
LOSE = settings(strategy="lose", priority_class=5)
TODAY = "2026-06-01"


def onhand(location, quantity, item="A", state="reserved", confirmed=TODAY):
    return (location, item, None, quantity, confirmed, state)


# -- strategies and the run's phases -----------------------------------------------------------


def test_credit_hold_keeps_what_nobody_above_needs_and_gets_nothing_new():
    held_line = line("SO-CH", quantity="10", credit_hold=True)
    result = allocate(engine_input([held_line], on_hand=[oh("A", "L1", 20), oh("A", "L2", 20)],
                                   existing=[held(1, held_line, "L1", 4)]))
    assert allocations_of(result, held_line) == [onhand("L1", "4")]
    assert decision_of(result, held_line).allocations[0].existing_id == 1
    assert decision_of(result, held_line).strategy == "fill"
    assert exception_types(result, held_line) == ["credit_hold"]
    assert "credit hold: no new allocation" in decision_of(result, held_line).constraints


def test_credit_hold_does_not_move_to_other_supply_when_outranked():
    above = line("SO-UP", quantity="18", tier=1)
    held_line = line("SO-CH", quantity="10", credit_hold=True)
    result = allocate(engine_input([above, held_line], on_hand=[oh("A", "L1", 20), oh("A", "L2", 20)],
                                   existing=[held(1, held_line, "L1", 4)],
                                   locations=("L1", "L2")))
    assert allocations_of(result, above) == [onhand("L1", "18")]
    assert allocations_of(result, held_line) == [onhand("L1", "2")]


def test_fixed_allocations_are_consumed_first_and_never_changed():
    winner = line("SO-W", quantity="10", settings_=WIN)
    pinned_line = line("SO-P", quantity="8")
    result = allocate(engine_input(
        [winner, pinned_line], on_hand=[oh("A", "L1", 10), oh("A", "L2", 5)],
        existing=[held(7, pinned_line, "L1", 8, state="pinned")],
    ))
    assert allocations_of(result, winner) == [onhand("L1", "2"), onhand("L2", "5")]
    assert allocations_of(result, pinned_line) == [onhand("L1", "8", state="pinned")]
    assert decision_of(result, pinned_line).allocations[0].existing_id == 7
    assert exception_types(result, winner) == ["priority_shortage", "promise_at_risk"]


def test_released_allocation_counts_toward_the_line_quantity():
    ln = line("SO-R", quantity="10")
    result = allocate(engine_input([ln], on_hand=[oh("A", "L1", 30)],
                                   existing=[held(3, ln, "L1", 6, state="released")]))
    assert allocations_of(result, ln) == [onhand("L1", "6", state="released"), onhand("L1", "4")]


def test_gain_line_keeps_what_it_held_against_a_win_line():
    winner = line("SO-W", quantity="10", settings_=WIN)
    gainer = line("SO-G", quantity="6", settings_=GAIN)
    result = allocate(engine_input([winner, gainer], on_hand=[oh("A", "L1", 10)],
                                   existing=[held(1, gainer, "L1", 6)]))
    assert allocations_of(result, winner) == [onhand("L1", "4")]
    assert allocations_of(result, gainer) == [onhand("L1", "6")]
    assert exception_types(result, winner) == ["priority_shortage", "promise_at_risk"]


def test_win_line_takes_from_redistribute_fill_and_lose_lines():
    winner = line("SO-W", quantity="10", settings_=WIN)
    others = [line("SO-R", quantity="6"), line("SO-F", quantity="6", settings_=FILL),
              line("SO-L", quantity="6", settings_=LOSE)]
    existing = [held(index + 1, other, "L1", 3) for index, other in enumerate(others)]
    result = allocate(engine_input([winner, *others], on_hand=[oh("A", "L1", 10)], existing=existing))
    assert allocations_of(result, winner) == [onhand("L1", "10")]
    assert [allocations_of(result, other) for other in others] == [[], [], []]
    assert [exception_types(result, other) for other in others] == [
        ["allocation_reversed", "promise_at_risk"]] * 3


def test_gain_line_below_what_it_held_raises_priority_shortage():
    gainer = line("SO-G", quantity="6", settings_=GAIN)
    result = allocate(engine_input([gainer], on_hand=[oh("A", "L1", 4)],
                                   existing=[held(1, gainer, "L1", 6)]))
    assert allocations_of(result, gainer) == [onhand("L1", "4")]
    shortage = next(e for e in result.exceptions if e.type == "priority_shortage")
    assert shortage.details["floor"] == "gain floor: held 6 before the run, 4 now"
    assert (shortage.details["ordered"], shortage.details["covered"], shortage.details["shortfall"]) == (
        "6", "4", "2")


def test_gain_line_keeps_then_takes_free_supply_in_candidate_order():
    gainer = line("SO-G", quantity="9", settings_=GAIN)
    result = allocate(engine_input([gainer], on_hand=[oh("A", "L1", 5), oh("A", "L2", 20)],
                                   existing=[held(1, gainer, "L2", 3)]))
    assert allocations_of(result, gainer) == [onhand("L2", "4"), onhand("L1", "5")]
    assert decision_of(result, gainer).path == (
        "kept on-hand L2 A 3", "on-hand L1 A 5", "on-hand L2 A 1")


def test_fill_line_never_ends_above_what_it_held():
    filler = line("SO-F", quantity="10", settings_=FILL)
    newcomer = line("SO-N", quantity="10", settings_=FILL)
    result = allocate(engine_input([filler, newcomer], on_hand=[oh("A", "L1", 50)],
                                   existing=[held(1, filler, "L1", 3)]))
    assert allocations_of(result, filler) == [onhand("L1", "3")]
    assert allocations_of(result, newcomer) == []
    assert "strategy fill: ceiling 3 (held before the run)" in decision_of(result, filler).constraints


def test_lose_line_releases_but_keeps_pinned():
    loser = line("SO-L", quantity="10", settings_=LOSE)
    result = allocate(engine_input([loser], on_hand=[oh("A", "L1", 50)],
                                   existing=[held(1, loser, "L1", 5), held(2, loser, "L1", 2, state="pinned")]))
    assert allocations_of(result, loser) == [onhand("L1", "2", state="pinned")]
    assert exception_types(result, loser) == ["allocation_reversed", "promise_at_risk"]


def test_win_line_short_by_its_promised_date_raises_priority_shortage():
    winner = line("SO-W", quantity="10", settings_=WIN, requested_date=date(2026, 6, 2))
    result = allocate(engine_input([winner], on_hand=[oh("A", "L1", 4)],
                                   inbound=[po("PO-1", "A", "L1", 20, date(2026, 6, 9))]))
    assert allocations_of(result, winner) == [
        onhand("L1", "4", confirmed="2026-06-02"), ("L1", "A", "PO-1", "6", "2026-06-09", "reserved")]
    assert exception_types(result, winner) == ["priority_shortage", "promise_at_risk"]


def test_tier_one_line_not_fully_covered_raises_priority_shortage():
    vip = line("SO-V", quantity="10", tier=1)
    result = allocate(engine_input([vip], on_hand=[oh("A", "L1", 4)]))
    assert exception_types(result, vip) == ["priority_shortage", "promise_at_risk"]
    ordinary = line("SO-O", quantity="10", tier=2)
    result = allocate(engine_input([ordinary], on_hand=[oh("A", "L1", 4)]))
    assert exception_types(result, ordinary) == ["promise_at_risk"]


# -- sourcing --------------------------------------------------------------------------------


LANES = (Lane("L3", "east", 1, D("2")), Lane("L2", "east", 1, D("1")), Lane("L1", "east", 2, D("0.5")),
         Lane("L4", "east", 1, D("1")))
FIVE_EACH = [oh("A", location, 5) for location in ("L1", "L2", "L3", "L4")]
FOUR_LOCATIONS = ("L1", "L2", "L3", "L4")


def test_candidates_follow_lanes_by_transit_cost_then_code():
    ln = line("SO-1", quantity="12", settings_=settings(max_split_locations=4))
    result = allocate(engine_input([ln], on_hand=FIVE_EACH, lanes=LANES, locations=FOUR_LOCATIONS))
    assert allocations_of(result, ln) == [onhand("L2", "5"), onhand("L4", "5"), onhand("L3", "2")]


def test_home_location_comes_first():
    ln = line("SO-1", quantity="7", home_location="L1")
    result = allocate(engine_input([ln], on_hand=FIVE_EACH, lanes=LANES, locations=FOUR_LOCATIONS))
    assert allocations_of(result, ln) == [onhand("L1", "5"), onhand("L2", "2")]


def test_ship_from_is_the_only_candidate():
    ln = line("SO-1", quantity="7", ship_from="L3")
    result = allocate(engine_input([ln], on_hand=FIVE_EACH, lanes=LANES, locations=FOUR_LOCATIONS))
    assert allocations_of(result, ln) == [onhand("L3", "5")]


def test_without_a_lane_every_location_home_first_then_code():
    ln = line("SO-1", quantity="12", customer_region="north", home_location="L3",
              settings_=settings(max_split_locations=3))
    result = allocate(engine_input([ln], on_hand=FIVE_EACH, lanes=LANES, locations=FOUR_LOCATIONS))
    assert allocations_of(result, ln) == [onhand("L3", "5"), onhand("L1", "5"), onhand("L2", "2")]


def test_on_hand_then_on_time_inbound_then_late_inbound():
    ln = line("SO-1", quantity="12", requested_date=date(2026, 6, 5),
              settings_=settings(max_split_locations=3))
    result = allocate(engine_input(
        [ln], on_hand=[oh("A", "L3", 5)],
        inbound=[po("PO-LATE", "A", "L1", 10, date(2026, 6, 10)),
                 po("PO-EARLY", "A", "L2", 5, date(2026, 6, 4))],
    ))
    assert allocations_of(result, ln) == [
        ("L3", "A", None, "5", "2026-06-05", "reserved"),
        ("L2", "A", "PO-EARLY", "5", "2026-06-05", "reserved"),
        ("L1", "A", "PO-LATE", "2", "2026-06-10", "reserved"),
    ]
    assert exception_types(result, ln) == ["promise_at_risk"]


def test_substitutes_come_before_the_items_late_inbound():
    items = (Item("A", "widgets", ("B",)), Item("B", "widgets", ()))
    supply = dict(on_hand=[oh("B", "L1", 5)], inbound=[po("PO-1", "A", "L1", 20, date(2026, 6, 20))],
                  items=items)
    ln = line("SO-1", quantity="8", allow_substitute=True)
    result = allocate(engine_input([ln], **supply))
    assert allocations_of(result, ln) == [
        ("L1", "B", None, "5", TODAY, "proposed"), ("L1", "A", "PO-1", "3", "2026-06-20", "reserved")]
    assert exception_types(result, ln) == ["promise_at_risk", "substitution_proposed"]
    not_allowed = line("SO-2", quantity="8", allow_substitute=False)
    result = allocate(engine_input([not_allowed], **supply))
    assert allocations_of(result, not_allowed) == [("L1", "A", "PO-1", "8", "2026-06-20", "reserved")]
    policy_forbids = line("SO-3", quantity="8", allow_substitute=True,
                          settings_=settings(allow_substitutes=False))
    result = allocate(engine_input([policy_forbids], **supply))
    assert allocations_of(result, policy_forbids) == [("L1", "A", "PO-1", "8", "2026-06-20", "reserved")]


def test_substitute_is_reserved_when_no_approval_is_needed():
    items = (Item("A", "widgets", ("B",)), Item("B", "widgets", ()))
    ln = line("SO-1", quantity="4", allow_substitute=True,
              settings_=settings(substitute_needs_approval=False))
    result = allocate(engine_input([ln], on_hand=[oh("B", "L1", 5)], items=items))
    assert allocations_of(result, ln) == [("L1", "B", None, "4", TODAY, "reserved")]
    assert exception_types(result, ln) == []


def test_an_approved_substitute_reservation_stays_reserved_when_kept():
    items = (Item("A", "widgets", ("B",)), Item("B", "widgets", ()))
    ln = line("SO-1", quantity="6", allow_substitute=True)
    result = allocate(engine_input([ln], on_hand=[oh("B", "L1", 10)], items=items,
                                   existing=[held(4, ln, "L1", 4, item="B")]))
    assert allocations_of(result, ln) == [("L1", "B", None, "4", TODAY, "reserved"),
                                          ("L1", "B", None, "2", TODAY, "proposed")]
    assert decision_of(result, ln).allocations[0].existing_id == 4


def test_split_limit_skips_further_locations_and_raises():
    ln = line("SO-1", quantity="8", settings_=settings(max_split_locations=1))
    result = allocate(engine_input([ln], on_hand=[oh("A", "L1", 5), oh("A", "L2", 5)]))
    assert allocations_of(result, ln) == [onhand("L1", "5")]
    assert exception_types(result, ln) == ["promise_at_risk", "split_limit"]
    assert "max_split_locations=1 reached" in decision_of(result, ln).constraints


def test_split_limit_counts_substitute_locations():
    items = (Item("A", "widgets", ("B",)), Item("B", "widgets", ()))
    ln = line("SO-1", quantity="8", allow_substitute=True, settings_=settings(max_split_locations=2))
    result = allocate(engine_input([ln], items=items,
                                   on_hand=[oh("A", "L1", 3), oh("B", "L2", 3), oh("B", "L3", 5)]))
    assert allocations_of(result, ln) == [onhand("L1", "3"), ("L2", "B", None, "3", TODAY, "proposed")]


def test_partial_false_takes_all_or_nothing_and_leaves_the_rest_to_others():
    whole = line("SO-1", quantity="8", tier=2, settings_=settings(allow_partial=False))
    after = line("SO-2", quantity="8", tier=4)
    result = allocate(engine_input([whole, after], on_hand=[oh("A", "L1", 5)]))
    assert allocations_of(result, whole) == []
    assert allocations_of(result, after) == [onhand("L1", "5")]
    partial = line("SO-1", quantity="8", tier=2)
    result = allocate(engine_input([partial, after], on_hand=[oh("A", "L1", 5)]))
    assert allocations_of(result, partial) == [onhand("L1", "5")]


def test_ship_complete_order_is_all_or_nothing():
    first = line("SO-SC", 1, item="A", quantity="4", ship_complete=True)
    second = line("SO-SC", 2, item="B", quantity="6", ship_complete=True)
    other = line("SO-X", item="A", quantity="10", tier=4)
    result = allocate(engine_input([first, second, other], on_hand=[oh("A", "L1", 10), oh("B", "L1", 5)]))
    assert allocations_of(result, first) == []
    assert allocations_of(result, second) == []
    assert allocations_of(result, other) == [onhand("L1", "10")]
    blocked = [e for e in result.exceptions if e.type == "ship_complete_blocked"]
    assert [(e.key, e.line_key, e.order, e.details["short_lines"]) for e in blocked] == [
        ("ship_complete_blocked:SO-SC", None, "SO-SC", [2])]


def test_ship_complete_order_is_decided_at_its_highest_ranked_line():
    top = line("SO-SC", 1, item="A", quantity="1", tier=1, ship_complete=True)
    low = line("SO-SC", 2, item="B", quantity="5", tier=1, ship_complete=True,
               unit_price=D("1"), unit_cost=D("1"))
    middle = line("SO-M", item="B", quantity="5", tier=1, unit_price=D("50"))
    inp = engine_input([top, low, middle], on_hand=[oh("A", "L1", 1), oh("B", "L1", 5)])
    result = allocate(inp)
    ranks = {d.line_key: d.rank for d in result.lines}
    assert decision_of(result, middle).rank_key < decision_of(result, low).rank_key
    assert (ranks[top.key], ranks[low.key], ranks[middle.key]) == (1, 2, 3)
    assert allocations_of(result, low) == [("L1", "B", None, "5", TODAY, "reserved")]
    assert allocations_of(result, middle) == []


# -- protections, quotas, supply discounts ---------------------------------------------------------


HEALTHCARE_PROTECTION = Protection(0, "A", "L1", D("4"), (("customer_segment", "healthcare"),))


def test_protected_stock_is_held_for_matching_lines():
    other = line("SO-O", quantity="10", tier=1, settings_=WIN)
    hospital = line("SO-H", quantity="10", customer_segment="healthcare", tier=4)
    result = allocate(engine_input([other, hospital], on_hand=[oh("A", "L1", 10)],
                                   protections=(HEALTHCARE_PROTECTION,), locations=("L1",)))
    assert allocations_of(result, other) == [onhand("L1", "6")]
    assert allocations_of(result, hospital) == [onhand("L1", "4")]
    assert ("protection #0 at L1 reserves 4 for customer_segment=healthcare (A)"
            in decision_of(result, other).constraints)


def test_matching_lines_consume_protected_stock_first():
    hospital = line("SO-H", quantity="3", customer_segment="healthcare", tier=1)
    other = line("SO-O", quantity="10", tier=4)
    result = allocate(engine_input([hospital, other], on_hand=[oh("A", "L1", 10)],
                                   protections=(HEALTHCARE_PROTECTION,), locations=("L1",)))
    assert allocations_of(result, hospital) == [onhand("L1", "3")]
    assert allocations_of(result, other) == [onhand("L1", "6")]


def test_quota_caps_matching_lines_per_iso_week_counting_fixed():
    quota = Quota(1, None, "widgets", (("channel", "ecommerce"),), "week", D("10"))
    pinned = line("SO-P", quantity="6", channel="ecommerce", tier=1, requested_date=date(2026, 6, 3))
    first = line("SO-1", quantity="8", channel="ecommerce", tier=2, requested_date=date(2026, 6, 2))
    next_week = line("SO-2", quantity="8", channel="ecommerce", tier=3, requested_date=date(2026, 6, 8))
    b2b = line("SO-3", quantity="8", channel="b2b", tier=4)
    result = allocate(engine_input(
        [pinned, first, next_week, b2b], on_hand=[oh("A", "L1", 100)], quotas=(quota,),
        existing=[held(1, pinned, "L1", 6, state="pinned", confirmed=date(2026, 6, 3))]))
    assert allocations_of(result, first) == [onhand("L1", "4", confirmed="2026-06-02")]
    assert allocations_of(result, next_week) == [onhand("L1", "8", confirmed="2026-06-08")]
    assert allocations_of(result, b2b) == [onhand("L1", "8")]
    assert "quota #1 week 2026-W23 exhausted" in decision_of(result, first).constraints


def test_quota_periods_day_and_month():
    from allocation.engine import period_key

    assert period_key("day", date(2026, 6, 3)) == "2026-06-03"
    assert period_key("week", date(2026, 1, 1)) == "2026-W01"
    assert period_key("week", date(2027, 1, 1)) == "2026-W53"
    assert period_key("month", date(2026, 6, 3)) == "2026-06"
    quota = Quota(0, "A", None, (), "day", D("5"))
    same_day = [line(f"SO-{n}", quantity="4", tier=n) for n in (1, 2)]
    result = allocate(engine_input(same_day, on_hand=[oh("A", "L1", 100)], quotas=(quota,)))
    assert [allocations_of(result, ln) for ln in same_day] == [[onhand("L1", "4")], [onhand("L1", "1")]]


def test_stale_feed_discounts_on_hand():
    ln = line("SO-1", quantity="100")
    result = allocate(engine_input([ln], on_hand=[oh("A", "L1", 100, stale=True)], locations=("L1",)))
    assert allocations_of(result, ln) == [onhand("L1", "90")]
    result = allocate(engine_input([ln], on_hand=[oh("A", "L1", 100, stale=True)], locations=("L1",),
                                   stale_feed_buffer_pct=25.0))
    assert allocations_of(result, ln) == [onhand("L1", "75")]
    result = allocate(engine_input([ln], on_hand=[oh("A", "L1", 100)], locations=("L1",)))
    assert allocations_of(result, ln) == [onhand("L1", "100")]


def test_inbound_counts_only_at_the_lines_confidence():
    strict = line("SO-1", quantity="5")
    lenient = line("SO-2", quantity="5", settings_=settings(inbound_min_confidence=0.5))
    inbound = [po("PO-9", "A", "L1", 20, date(2026, 6, 8), confidence=0.6)]
    result = allocate(engine_input([strict, lenient], inbound=inbound))
    assert allocations_of(result, strict) == []
    assert allocations_of(result, lenient) == [("L1", "A", "PO-9", "5", "2026-06-08", "reserved")]
    assert "inbound PO-9 confidence 0.6 below 0.7" in decision_of(result, strict).constraints


# -- stability and exceptions ----------------------------------------------------------------------


def test_supply_the_line_holds_comes_first():
    ln = line("SO-1", quantity="5")
    result = allocate(engine_input([ln], on_hand=[oh("A", "L1", 5), oh("A", "L2", 5)],
                                   existing=[held(9, ln, "L2", 5)]))
    assert allocations_of(result, ln) == [onhand("L2", "5")]
    assert decision_of(result, ln).allocations[0].existing_id == 9
    fresh = allocate(engine_input([ln], on_hand=[oh("A", "L1", 5), oh("A", "L2", 5)]))
    assert allocations_of(fresh, ln) == [onhand("L1", "5")]
    # Beyond what it holds, the line goes back to candidate order.
    grown = line("SO-2", quantity="8")
    result = allocate(engine_input([grown], on_hand=[oh("A", "L1", 5), oh("A", "L2", 5)],
                                   existing=[held(9, grown, "L2", 4)]))
    assert allocations_of(result, grown) == [onhand("L2", "4"), onhand("L1", "4")]


def test_allocation_reversed_when_reserved_quantity_or_date_falls():
    shrunk = line("SO-1", quantity="5")
    result = allocate(engine_input([shrunk], on_hand=[oh("A", "L1", 3)], existing=[held(1, shrunk, "L1", 5)]))
    reversal = next(e for e in result.exceptions if e.type == "allocation_reversed")
    assert (reversal.key, reversal.details["reserved_before"], reversal.details["reserved_after"]) == (
        "allocation_reversed:SO-1/1", "5", "3")
    later = line("SO-2", quantity="5")
    result = allocate(engine_input([later], inbound=[po("PO-1", "A", "L1", 5, date(2026, 6, 9))],
                                   existing=[held(1, later, "L1", 5)]))
    assert exception_types(result, later) == ["allocation_reversed", "promise_at_risk"]
    same = line("SO-3", quantity="5")
    result = allocate(engine_input([same], on_hand=[oh("A", "L1", 5)], existing=[held(1, same, "L1", 5)]))
    assert exception_types(result, same) == []


def test_margin_below_floor():
    thin = line("SO-1", quantity="1", unit_price=D("100"), unit_cost=D("70"),
                settings_=settings(margin_floor_pct=35.0))
    result = allocate(engine_input([thin], on_hand=[oh("A", "L1", 5)]))
    exception = next(e for e in result.exceptions if e.line_key == thin.key)
    assert (exception.type, exception.details["margin_pct"], exception.details["margin_floor_pct"]) == (
        "margin_below_floor", 30.0, 35.0)
    fine = line("SO-2", quantity="1", unit_price=D("100"), unit_cost=D("60"),
                settings_=settings(margin_floor_pct=35.0))
    assert exception_types(allocate(engine_input([fine], on_hand=[oh("A", "L1", 5)])), fine) == []


def test_unit_at_risk_date_uses_promised_date():
    promised = line("SO-1", quantity="5", requested_date=date(2026, 6, 2), promised_date=date(2026, 6, 9))
    result = allocate(engine_input([promised], inbound=[po("PO-1", "A", "L1", 5, date(2026, 6, 9))]))
    assert exception_types(result, promised) == []


def test_decisions_are_deterministic_and_fingerprints_follow_allocations():
    lines = [line(f"SO-{n}", quantity="4", tier=(n % 4) + 1,
                  order_created_at=datetime(2026, 5, n, tzinfo=UTC)) for n in range(1, 9)]
    inp = engine_input(lines, on_hand=[oh("A", "L1", 10), oh("A", "L2", 7)])
    first, second = allocate(inp), allocate(inp)
    assert first == second
    by_allocations = {}
    for decision in first.lines:
        shape = tuple((a.item, a.location, a.supply_ref, a.quantity, a.confirmed_date, a.state)
                      for a in decision.allocations)
        by_allocations.setdefault(shape, set()).add(decision.fingerprint)
    # L1 4 (two lines) | L1 2 + L2 2 | L2 4 | L2 1 | nothing (three lines)
    assert len(by_allocations) == 5
    assert all(len(fingerprints) == 1 for fingerprints in by_allocations.values())
    assert len(set().union(*by_allocations.values())) == 5


def test_all_or_nothing_line_uses_a_location_that_can_cover_it_whole():
    whole = line("SO-1", quantity="4", settings_=settings(allow_partial=False, max_split_locations=1))
    result = allocate(engine_input([whole], on_hand=[oh("A", "L1", 1), oh("A", "L2", 7)]))
    assert allocations_of(result, whole) == [onhand("L2", "4")]
    greedy = line("SO-2", quantity="4", settings_=settings(max_split_locations=1))
    result = allocate(engine_input([greedy], on_hand=[oh("A", "L1", 1), oh("A", "L2", 7)]))
    assert allocations_of(result, greedy) == [onhand("L1", "1")]


# -- ranking ---------------------------------------------------------------------------------------


def test_score_factors_follow_the_formula():
    from allocation.engine import score

    ln = line("SO-1", quantity="50", tier=2, unit_price=D("100"), unit_cost=D("70"),
              requested_date=date(2026, 6, 8), late_penalty_per_day=D("250"), risk=0.4,
              order_created_at=datetime(2026, 5, 17, 23, 0, tzinfo=UTC))
    total, factors = score(ln, date(2026, 6, 1))
    values = {f.name: round(f.value, 6) for f in factors}
    value = round(math.log10(1 + 5000) / math.log10(1 + 100000), 6)
    assert value == 0.739811
    assert values == {"tier": 0.75, "urgency": 0.5, "margin": 0.3, "value": value, "age": 0.5,
                      "penalty": 0.25, "risk": 0.4}
    assert [f.weight for f in factors] == [0.35, 0.25, 0.15, 0.10, 0.10, 0.05, 0.0]
    assert round(total, 6) == round(0.2625 + 0.125 + 0.045 + 0.0739811 + 0.05 + 0.0125, 6)
    custom = line("SO-2", settings_=settings(weights=(("tier", 1.0), ("urgency", 0.0), ("margin", 0.0),
                                                      ("value", 0.0), ("age", 0.0), ("penalty", 0.0),
                                                      ("risk", 0.0))), tier=1)
    assert score(custom, date(2026, 6, 1))[0] == 1.0


def test_rank_key_orders_strategy_class_score_then_dates_and_numbers():
    from allocation.engine import rank_key

    as_of = date(2026, 6, 1)
    base = dict(order_created_at=datetime(2026, 5, 20, tzinfo=UTC))
    lines = [
        line("SO-9", settings_=settings(strategy="lose", priority_class=1), **base),
        line("SO-8", settings_=settings(strategy="win", priority_class=2), **base),
        line("SO-7", settings_=settings(strategy="win", priority_class=1), tier=4, **base),
        line("SO-6", settings_=settings(strategy="win", priority_class=1), tier=1, **base),
        line("SO-5", settings_=settings(strategy="gain", priority_class=1), credit_hold=True, **base),
        line("SO-4", 2, **base),
        line("SO-4", 1, **base),
    ]
    ordered = sorted(lines, key=lambda ln: rank_key(ln, as_of))
    assert [(ln.order, ln.line) for ln in ordered] == [
        ("SO-6", 1), ("SO-7", 1), ("SO-8", 1), ("SO-4", 1), ("SO-4", 2), ("SO-5", 1), ("SO-9", 1)]
    key = rank_key(lines[3], as_of)
    assert key[:2] == (0, 1) and key[3:] == (as_of, base["order_created_at"], "SO-6", 1)
    assert rank_key(lines[4], as_of)[0] == 3  # credit hold ranks as fill


def test_item_groups_link_substitutes_ship_complete_orders_and_class_quotas():
    from allocation.engine import item_groups

    items = (Item("A", "valves", ("B",)), Item("B", "valves", ()), Item("C", "pumps", ()),
             Item("D", "pumps", ()), Item("E", "pipes", ()), Item("F", "pipes", ()))
    lines = (line("SO-1", 1, item="C", ship_complete=True), line("SO-1", 2, item="E", ship_complete=True),
             line("SO-2", 1, item="D"), line("SO-2", 2, item="F"))
    assert item_groups(items, lines, ()) == [frozenset({"A", "B"}), frozenset({"C", "E"}),
                                             frozenset({"D"}), frozenset({"F"})]
    quotas = (Quota(0, None, "pumps", (), "week", D("5")), Quota(1, "F", None, (), "week", D("5")))
    assert item_groups(items, lines, quotas) == [frozenset({"A", "B"}), frozenset({"C", "D", "E"}),
                                                 frozenset({"F"})]
