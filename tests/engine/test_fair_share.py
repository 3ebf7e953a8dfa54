"""Fair share within a class (allocation.md "Depth settings"): the 10-line hand-worked
scenario of ``tests/data/engine/depth/README.md`` in rank, pro_rata and equal mode, with the
exact caps and the price of fairness."""

from __future__ import annotations

import pytest

from allocation.engine import Item, allocate
from tests.engine.builders import D, decision_of, engine_input, line, oh, settings

QUANTITIES = (10, 2, 8, 4, 6, 10, 2, 8, 4, 6)
# Score = 0.508333… + 0.005 × (11 − n) for SO-n (value weight 0, late penalty 100 × (11 − n)).
EXPECTED = {
    "rank": (10, 2, 8, 4, 6, 0, 0, 0, 0, 0),
    "pro_rata": (5, 1, 4, 2, 3, 5, 1, 4, 2, 3),
    "equal": (5, 2, 3, 3, 3, 3, 2, 3, 3, 3),
}


def scenario(mode: str, pack=None):
    policy = settings(share_mode=mode, weights=(("value", 0.0),))
    lines = [line(f"SO-{n:02d}", quantity=str(q), settings_=policy, late_penalty_per_day=D(100 * (11 - n)))
             for n, q in enumerate(QUANTITIES, start=1)]
    items = (Item("A", "widgets", (), D(pack)),) if pack else None
    return lines, engine_input(lines, items=items, on_hand=[oh("A", "L1", 30)])


def weighted_fill(lines, result, covered):
    scores = {d.line_key: d.score for d in result.lines}
    return (sum(scores[ln.key] * c for ln, c in zip(lines, covered))
            / sum(scores[ln.key] * float(ln.quantity) for ln in lines))


@pytest.mark.parametrize("mode", ["rank", "pro_rata", "equal"])
def test_ten_lines_share_30_in_each_mode(mode):
    lines, inp = scenario(mode)
    result = allocate(inp)
    got = tuple(int(sum((a.quantity for a in decision_of(result, ln).allocations), D(0))) for ln in lines)
    assert got == EXPECTED[mode]
    if mode == "rank":
        assert result.fairness == ()
        return
    [price] = result.fairness
    assert (price.strategy, price.priority_class, price.share_mode, price.lines) == ("redistribute", 5, mode, 10)
    rank_fill = weighted_fill(lines, result, EXPECTED["rank"])
    fill = weighted_fill(lines, result, EXPECTED[mode])
    assert price.rank_fill == pytest.approx(rank_fill, abs=1e-6)
    assert price.fill == pytest.approx(fill, abs=1e-6)
    assert price.price == pytest.approx(rank_fill - fill, abs=1e-6)
    # The hand-worked figures (README): rank fill 16.48 / 32.21, pro_rata 0.5, equal 16.11 / 32.21.
    assert price.rank_fill == pytest.approx(16.48 / 32.21, abs=5e-6)
    assert price.fill == pytest.approx({"pro_rata": 0.5, "equal": 16.11 / 32.21}[mode], abs=5e-6)


def test_pro_rata_caps_round_down_to_packs_then_the_rest_goes_in_rank_order():
    lines, inp = scenario("pro_rata", pack=2)
    result = allocate(inp)
    got = tuple(int(sum((a.quantity for a in decision_of(result, ln).allocations), D(0))) for ln in lines)
    # Caps q/2 rounded down to packs of 2: 4, 0, 4, 2, 2, 4, 0, 4, 2, 2 = 24; the 6 left go in
    # rank order: SO-01 +6 (its open 10 - 4, the last take completing it).
    assert got == (10, 0, 4, 2, 2, 4, 0, 4, 2, 2)
    short = decision_of(result, lines[1])
    assert [(r.code, r.quantity) for r in short.shortfall_reasons] == [("taken_by_higher_rank", 2)]


def test_the_first_line_is_short_by_what_the_others_took_as_their_share():
    lines, inp = scenario("pro_rata")
    first = decision_of(allocate(inp), lines[0])
    [reason] = first.shortfall_reasons
    assert (reason.code, reason.quantity) == ("fair_share", 5)
    assert [(order, q) for _k, order, _n, q, _how in reason.subject][:2] == [("SO-02", 1), ("SO-03", 4)]
    assert reason.text.startswith("5 went to other lines of the same class as their fair share: SO-02/1 1,")


def test_fair_share_is_a_cap_not_a_guarantee_when_supply_covers_the_class():
    lines, _ = scenario("equal")
    result = allocate(engine_input(lines, on_hand=[oh("A", "L1", 60)]))
    assert all(d.shortfall == 0 for d in result.lines)
    [price] = result.fairness
    assert price.price == 0
