"""Depth settings (issue 15, allocation.md "Depth settings"): one hand-worked scenario per
setting, each failing when the engine ignores the setting. The expected allocations are the
tables of ``tests/data/engine/depth/README.md``."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from allocation.engine import Item, Protection, Quota, allocate
from tests.engine.builders import (
    AS_OF,
    D,
    allocations_of,
    as_existing,
    decision_of,
    engine_input,
    exception_types,
    held,
    line,
    oh,
    po,
    settings,
)


def reasons(result, ln):
    return [(r.code, format(r.quantity.normalize(), "f")) for r in decision_of(result, ln).shortfall_reasons]


def total_of(result, ln):
    return sum((a.quantity for a in decision_of(result, ln).allocations), D(0))


# -- horizon ---------------------------------------------------------------------------------


def test_horizon_a_line_due_beyond_it_takes_and_keeps_nothing_and_raises_nothing():
    far = line("SO-1", settings_=settings(strategy="win", allocation_horizon_days=7),
               requested_date=AS_OF + timedelta(days=19))
    near = line("SO-2")
    inp = engine_input(
        [far, near], on_hand=[oh("A", "L1", 12)],
        existing=[held(1, far, "L1", 2, state="pinned"), held(2, far, "L1", 4)],
    )
    result = allocate(inp)
    assert allocations_of(result, far) == [("L1", "A", None, "2", "2026-06-01", "pinned")]
    assert allocations_of(result, near) == [("L1", "A", None, "10", "2026-06-01", "reserved")]
    assert exception_types(result, far) == []
    assert reasons(result, far) == [("beyond_horizon", "8")]
    assert not decision_of(result, far).actionable
    assert "beyond the allocation horizon of 7 days" in decision_of(result, far).constraints[0]
    # It takes supply once it comes within the horizon.
    later = allocate(replace(inp, as_of=AS_OF + timedelta(days=12)))
    assert total_of(later, far) == D(10)


# -- freeze window ---------------------------------------------------------------------------


def test_freeze_a_reservation_confirmed_within_the_window_is_fixed():
    frozen_line = line("SO-1", settings_=settings(freeze_days=2))
    win = line("SO-2", settings_=settings(strategy="win"))
    inp = engine_input([frozen_line, win], on_hand=[oh("A", "L1", 10)],
                       existing=[held(1, frozen_line, "L1", 6, confirmed=AS_OF)])
    result = allocate(inp)
    assert allocations_of(result, frozen_line) == [("L1", "A", None, "6", "2026-06-01", "reserved")]
    assert decision_of(result, frozen_line).allocations[0].existing_id == 1
    assert decision_of(result, frozen_line).path == ("frozen reserved L1 A 6 (freeze window)",)
    assert allocations_of(result, win) == [("L1", "A", None, "4", "2026-06-01", "reserved")]
    assert reasons(result, win) == [("taken_by_higher_rank", "6")]
    assert decision_of(result, win).shortfall_reasons[0].subject[0][4] == "fixed"
    assert not decision_of(result, win).actionable  # all the rest is frozen: information only
    # Outside the window (confirmed two days ahead with freeze_days=2) it is not frozen.
    outside = allocate(replace(inp, existing=(held(1, frozen_line, "L1", 6, confirmed=AS_OF + timedelta(days=2)),)))
    assert total_of(outside, win) == D(10)
    assert total_of(outside, frozen_line) == D(0)


# -- minimum fill ----------------------------------------------------------------------------


def test_min_fill_a_line_coverable_below_it_takes_nothing():
    picky = line("SO-1", settings_=settings(min_fill_pct=50.0))
    other = line("SO-2")
    result = allocate(engine_input([picky, other], on_hand=[oh("A", "L1", 4)]))
    assert allocations_of(result, picky) == []
    assert allocations_of(result, other) == [("L1", "A", None, "4", "2026-06-01", "reserved")]
    assert reasons(result, picky) == [("below_min_fill", "4"), ("no_supply", "6")]
    # At 5 (50 % of 10) it is covered partly.
    enough = allocate(engine_input([picky, other], on_hand=[oh("A", "L1", 5)]))
    assert total_of(enough, picky) == D(5)


def test_min_fill_of_100_is_allow_partial_false():
    a = line("SO-1", settings_=settings(min_fill_pct=100.0))
    b = line("SO-1", settings_=settings(allow_partial=False))
    for ln in (a, b):
        result = allocate(engine_input([ln], on_hand=[oh("A", "L1", 9)]))
        assert allocations_of(result, ln) == []
        assert reasons(result, ln)[0] == ("below_min_fill", "9")


# -- pack size -------------------------------------------------------------------------------


def test_pack_size_whole_packs_from_each_element_except_the_completing_take():
    big = line("SO-1")
    small = line("SO-2", quantity="3")
    items = (Item("A", "widgets", (), D(4)),)
    result = allocate(engine_input([big, small], items=items, on_hand=[oh("A", "L1", 6), oh("A", "L2", 6)]))
    assert allocations_of(result, big) == [("L1", "A", None, "4", "2026-06-01", "reserved"),
                                           ("L2", "A", None, "6", "2026-06-01", "reserved")]
    assert allocations_of(result, small) == []  # 2 left at L1: less than a pack, and not all of its 3
    assert reasons(result, small) == [("taken_by_higher_rank", "3")]
    # A line whose open quantity the remainder completes takes it.
    two = line("SO-2", quantity="2")
    result = allocate(engine_input([big, two], items=items, on_hand=[oh("A", "L1", 6), oh("A", "L2", 6)]))
    assert allocations_of(result, two) == [("L1", "A", None, "2", "2026-06-01", "reserved")]


def test_pack_size_leftover_below_a_pack_is_a_reason():
    ln = line("SO-1")
    items = (Item("A", "widgets", (), D(4)),)
    result = allocate(engine_input([ln], items=items, on_hand=[oh("A", "L1", 7)]))
    assert allocations_of(result, ln) == [("L1", "A", None, "4", "2026-06-01", "reserved")]
    assert reasons(result, ln) == [("pack_size", "3"), ("no_supply", "3")]


# -- custom factors and quotes ---------------------------------------------------------------


def test_plugin_factors_weighted_by_factor_plugins_change_the_rank():
    plugins = settings(factor_plugins=(("credit_score", 0.5),))
    first = line("SO-1", settings_=plugins)
    second = line("SO-2", settings_=plugins, plugin_factors=(("credit_score", 1.0), ("unweighted", 1.0)))
    result = allocate(engine_input([first, second], on_hand=[oh("A", "L1", 10)]))
    assert total_of(result, second) == D(10)
    assert total_of(result, first) == D(0)
    factors = {f.name: f for f in decision_of(result, second).factors}
    assert factors["credit_score"].contribution == 0.5 and "unweighted" not in factors
    assert abs(decision_of(result, second).score - decision_of(result, first).score - 0.5) < 1e-9


def test_quotes_rank_like_orders_and_scope_protections_by_order_kind():
    order = line("SO-1")
    quote = line("SO-2", order_kind="quote")
    protection = Protection(0, "A", "L1", D(10), (("order_kind", "quote"),))
    result = allocate(engine_input([order, quote], on_hand=[oh("A", "L1", 15)], protections=(protection,)))
    assert [d.line_key for d in result.lines] == [order.key, quote.key]  # ranked like an order
    assert total_of(result, order) == D(5)
    assert total_of(result, quote) == D(10)
    assert reasons(result, order) == [("protected_for", "5")]


# -- shortfall reasons, projected dates --------------------------------------------------------


def test_shortfall_reasons_name_lines_protections_and_low_confidence_inbound():
    healthcare = (("customer_segment", "healthcare"),)
    win = line("SO-1", settings_=settings(strategy="win"))
    short = line("SO-2", quantity="20", settings_=settings(max_split_locations=1))
    inp = engine_input(
        [win, short], on_hand=[oh("A", "L1", 8), oh("A", "L2", 5)],
        inbound=[po("PO-9", "A", "L1", 25, AS_OF + timedelta(days=9), confidence=0.5)],
        protections=(Protection(0, "A", "L2", D(3), healthcare),),
    )
    result = allocate(inp)
    assert allocations_of(result, win) == [("L1", "A", None, "8", "2026-06-01", "reserved"),
                                           ("L2", "A", None, "2", "2026-06-01", "reserved")]
    decision = decision_of(result, short)
    assert reasons(result, short) == [("taken_by_higher_rank", "10"), ("protected_for", "3"),
                                      ("inbound_below_confidence", "7")]
    assert sum((r.quantity for r in decision.shortfall_reasons), D(0)) == decision.shortfall
    taken = decision.shortfall_reasons[0]
    assert [(order, number, format(q, "f"), how) for _k, order, number, q, how in taken.subject] == [
        ("SO-1", 1, "10", "ranked")]
    assert decision.shortfall_reasons[2].subject == ("PO-9", 0.5, 0.7)
    assert decision.projected_date == AS_OF + timedelta(days=9)
    assert decision.actionable
    texts = decision.shortfall_texts
    assert texts[0] == "10 went to lines ranked higher: SO-1/1 10"
    assert texts[2] == "7 could come from inbound PO-9, but its confidence 0.5 is below 0.7"
    assert decision.shortfall_reasons[1].as_json()["scope"] == {"customer_segment": "healthcare"}
    assert decision_of(result, win).projected_date is None


def test_shortfall_reasons_split_limit_and_quota():
    split = line("SO-1", quantity="10", settings_=settings(max_split_locations=1))
    result = allocate(engine_input([split], on_hand=[oh("A", "L1", 6), oh("A", "L2", 6)]))
    assert reasons(result, split) == [("split_limit", "4")]
    quota = Quota(0, "A", None, (), "week", D(7))
    capped = line("SO-1")
    result = allocate(engine_input([capped], on_hand=[oh("A", "L1", 20)], quotas=(quota,)))
    assert reasons(result, capped) == [("quota_exhausted", "3")]
    assert decision_of(result, capped).shortfall_reasons[0].subject == (0, "week", "2026-W23")


def test_no_supply_at_all_is_information_only():
    ln = line("SO-1")
    result = allocate(engine_input([ln], on_hand=[oh("A", "L1", 0)]))
    assert reasons(result, ln) == [("no_supply", "10")]
    assert not decision_of(result, ln).actionable
    assert decision_of(result, ln).projected_date is None


def test_strategy_ceiling_explains_fill_and_lose():
    lose = line("SO-1", settings_=settings(strategy="lose"))
    fill = line("SO-2", settings_=settings(strategy="fill"))
    inp = engine_input([lose, fill], on_hand=[oh("A", "L1", 20)], existing=[held(1, fill, "L1", 4)])
    result = allocate(inp)
    assert reasons(result, lose) == [("strategy_ceiling", "10")]
    assert reasons(result, fill) == [("strategy_ceiling", "6")]


def test_rerun_with_every_setting_changes_nothing():
    items = (Item("A", "widgets", (), D(3)),)
    lines = [line(f"SO-{n}", quantity=str(q), settings_=settings(share_mode="pro_rata", min_fill_pct=20.0,
                                                                  freeze_days=1, allocation_horizon_days=30))
             for n, q in enumerate((7, 5, 9, 4), start=1)]
    inp = engine_input(lines, items=items, on_hand=[oh("A", "L1", 10), oh("A", "L2", 6)])
    first = allocate(inp)
    again = allocate(replace(inp, existing=as_existing(first)))
    assert [d.fingerprint for d in again.lines] == [d.fingerprint for d in first.lines]
