"""Golden test: the valves scenario of tests/data/scenarios/README.md, stages 1 and 2."""

from datetime import UTC, date, datetime

from allocation.engine import (
    EngineInput,
    ExistingAllocation,
    Inbound,
    Item,
    Lane,
    Line,
    OnHand,
    allocate,
)
from tests.engine.builders import D, allocations_of, exception_types, settings

AS_OF = date(2026, 6, 1)
WIN = settings(strategy="win", priority_class=1)
REDISTRIBUTE = settings(strategy="redistribute", priority_class=5)


def _line(key, order, number, customer, tier, segment, region, channel, hour, requested, item,
          quantity, price, cost, *, promised=None, penalty="0", home=None, substitute=False,
          ship_complete=False, policy=REDISTRIBUTE):
    return Line(
        key=key, order=order, line=number, customer=customer, customer_tier=tier,
        customer_segment=segment, customer_region=region, late_penalty_per_day=D(penalty),
        channel=channel, item=item, item_class="valves" if item.startswith("VALVE") else "pumps",
        quantity=D(quantity), unit_price=D(price), unit_cost=D(cost), requested_date=requested,
        promised_date=promised, order_created_at=datetime(2026, 5, 25, hour, 0, tzinfo=UTC),
        allow_substitute=substitute, ship_from=None, home_location=home, ship_complete=ship_complete,
        credit_hold=False, settings=policy,
    )


SO1 = _line(1, "SO-1", 1, "HOSP-1", 1, "healthcare", "east", "b2b_contract", 10, date(2026, 6, 1),
            "VALVE-10", "60", "100.00", "60.00", promised=date(2026, 6, 2), penalty="500",
            home="DC-EAST", policy=WIN)
SO2 = _line(2, "SO-2", 1, "MFG-1", 2, "manufacturing", "east", "field_sales", 11, date(2026, 6, 1),
            "VALVE-10", "50", "100.00", "70.00", substitute=True)
SO3 = _line(3, "SO-3", 1, "CITY-1", 3, "municipal", "west", "b2b_contract", 12, date(2026, 6, 3),
            "VALVE-10", "40", "100.00", "60.00")
SO4_1 = _line(4, "SO-4", 1, "SHOP", 4, "retail", "west", "ecommerce", 13, date(2026, 6, 1),
              "VALVE-10", "10", "120.00", "80.00", ship_complete=True)
SO4_2 = _line(5, "SO-4", 2, "SHOP", 4, "retail", "west", "ecommerce", 13, date(2026, 6, 1),
              "PUMP-2", "5", "300.00", "200.00", ship_complete=True)
LINES = (SO1, SO2, SO3, SO4_1, SO4_2)

ITEMS = (
    Item("VALVE-10X", "valves", ()),
    Item("VALVE-10", "valves", ("VALVE-10X",)),
    Item("PUMP-2", "pumps", ()),
)
LANES = (
    Lane("DC-EAST", "east", 1, D("0.5")),
    Lane("DC-WEST", "east", 3, D("1.2")),
    Lane("DC-WEST", "west", 1, D("0.5")),
    Lane("DC-EAST", "west", 3, D("1.2")),
)
INBOUND = (
    Inbound("PO-1", "VALVE-10", "DC-EAST", D("200"), date(2026, 6, 10), 0.9),
    Inbound("PO-2", "VALVE-10", "DC-WEST", D("100"), date(2026, 6, 5), 0.5),
)


def _on_hand(dc_east_valve):
    return (
        OnHand("VALVE-10", "DC-EAST", D(dc_east_valve)),
        OnHand("VALVE-10", "DC-WEST", D("30")),
        OnHand("VALVE-10X", "DC-EAST", D("50")),
        OnHand("PUMP-2", "DC-WEST", D("20")),
    )


def _input(dc_east_valve, existing=()):
    return EngineInput(
        as_of=AS_OF, lines=LINES, items=ITEMS, locations=("DC-EAST", "DC-WEST"), lanes=LANES,
        on_hand=_on_hand(dc_east_valve), inbound=INBOUND, existing=tuple(existing),
    )


STAGE_1 = {
    SO1: [("DC-EAST", "VALVE-10", None, "60", "2026-06-01", "reserved")],
    SO2: [("DC-EAST", "VALVE-10", None, "30", "2026-06-01", "reserved"),
          ("DC-WEST", "VALVE-10", None, "20", "2026-06-01", "reserved")],
    SO3: [("DC-WEST", "VALVE-10", None, "10", "2026-06-03", "reserved"),
          ("DC-EAST", "VALVE-10", "PO-1", "30", "2026-06-10", "reserved")],
    SO4_1: [("DC-EAST", "VALVE-10", "PO-1", "10", "2026-06-10", "reserved")],
    SO4_2: [("DC-WEST", "PUMP-2", None, "5", "2026-06-01", "reserved")],
}


def _stage_1_existing():
    existing, next_id = [], 1
    for ln, allocations in STAGE_1.items():
        for location, item, ref, quantity, confirmed, state in allocations:
            existing.append(ExistingAllocation(next_id, ln.key, item, location, ref, D(quantity),
                                               date.fromisoformat(confirmed), state))
            next_id += 1
    return existing


def test_stage_1_scores_match_the_readme():
    result = allocate(_input("90"))
    scores = {d.line_key: round(d.score, 3) for d in result.lines}
    assert scores == {1: 0.766, 2: 0.655, 3: 0.545, 4: 0.472, 5: 0.474}
    assert [d.line_key for d in result.lines] == [1, 2, 3, 5, 4]
    assert [d.rank for d in result.lines] == [1, 2, 3, 4, 5]


def test_stage_1_allocations_and_exceptions():
    result = allocate(_input("90"))
    for ln, expected in STAGE_1.items():
        assert allocations_of(result, ln) == expected, ln.order
    assert {ln.key: exception_types(result, ln) for ln in LINES} == {
        1: [], 2: [], 3: ["promise_at_risk"], 4: ["promise_at_risk"], 5: [],
    }
    assert [e.type for e in result.exceptions if e.line_key is None] == []


def test_stage_1_promise_at_risk_details():
    result = allocate(_input("90"))
    risk = next(e for e in result.exceptions if e.key == "promise_at_risk:SO-3/1")
    assert (risk.line_key, risk.order, risk.item) == (3, "SO-3", "VALVE-10")
    assert {k: risk.details[k] for k in ("ordered", "covered", "shortfall", "confirmed_date",
                                         "promised", "requested")} == {
        "ordered": "40", "covered": "40", "shortfall": "0", "confirmed_date": "2026-06-10",
        "promised": None, "requested": "2026-06-03",
    }


STAGE_2 = {
    SO1: [("DC-EAST", "VALVE-10", None, "50", "2026-06-01", "reserved"),
          ("DC-WEST", "VALVE-10", None, "10", "2026-06-01", "reserved")],
    SO2: [("DC-WEST", "VALVE-10", None, "20", "2026-06-01", "reserved"),
          ("DC-EAST", "VALVE-10X", None, "30", "2026-06-01", "proposed")],
    SO3: [("DC-EAST", "VALVE-10", "PO-1", "40", "2026-06-10", "reserved")],
    SO4_1: [("DC-EAST", "VALVE-10", "PO-1", "10", "2026-06-10", "reserved")],
    SO4_2: [("DC-WEST", "PUMP-2", None, "5", "2026-06-01", "reserved")],
}


def test_stage_2_after_damage_matches_the_readme():
    result = allocate(_input("50", _stage_1_existing()))
    for ln, expected in STAGE_2.items():
        assert allocations_of(result, ln) == expected, ln.order
    assert {ln.key: exception_types(result, ln) for ln in LINES} == {
        1: [],
        2: ["allocation_reversed", "substitution_proposed"],
        3: ["allocation_reversed", "promise_at_risk"],
        4: ["promise_at_risk"],
        5: [],
    }


def test_stage_2_keeps_unchanged_allocations_by_id():
    existing = _stage_1_existing()
    result = allocate(_input("50", existing))
    kept = {(d.line_key, a.existing_id) for d in result.lines for a in d.allocations}
    # SO-2's 20 at DC-WEST, SO-4's two allocations are unchanged; the rest are new.
    assert sorted(k for k in kept if k[1] is not None) == [(2, 3), (4, 6), (5, 7)]


def test_stage_2_reversal_details():
    result = allocate(_input("50", _stage_1_existing()))
    reversed_ = {e.key: e.details for e in result.exceptions if e.type == "allocation_reversed"}
    assert {key: (d["reserved_before"], d["reserved_after"], d["reserved_by_due_before"],
                  d["reserved_by_due_after"]) for key, d in reversed_.items()} == {
        "allocation_reversed:SO-2/1": ("50", "20", "50", "20"),
        "allocation_reversed:SO-3/1": ("40", "40", "10", "0"),
    }


def test_rerunning_stage_2_changes_nothing():
    first = allocate(_input("50", _stage_1_existing()))
    existing = []
    next_id = 100
    for decision in first.lines:
        for a in decision.allocations:
            next_id += 1
            existing.append(ExistingAllocation(next_id, a.line_key, a.item, a.location, a.supply_ref,
                                               a.quantity, a.confirmed_date, a.state))
    second = allocate(_input("50", existing))
    for ln in LINES:
        assert allocations_of(second, ln) == allocations_of(first, ln)
    assert all(a.existing_id is not None for d in second.lines for a in d.allocations)
    assert [d.fingerprint for d in second.lines] == [d.fingerprint for d in first.lines]
