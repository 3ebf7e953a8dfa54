"""The engine's side of "only true exceptions reach people" (allocation.md): one test per rule,
each failing when its rule is taken out of ``allocation.engine.run._line_exceptions``."""

from datetime import date

from allocation.engine import allocate
from tests.engine.builders import D, engine_input, exception_types, held, line, oh, po, settings

WIN = settings(strategy="win", priority_class=1)
AS_OF = date(2026, 6, 1)


def test_a_past_due_line_covered_today_is_as_good_as_it_can_be():
    # Given a win line promised for 2026-05-28 (past due on 06-01) and stock today
    late = line("SO-P", quantity="10", settings_=WIN, requested_date=date(2026, 5, 20), promised_date=date(2026, 5, 28))
    result = allocate(engine_input([late], on_hand=[oh("A", "L1", 10)]))
    # Then its due date is the as-of date: covered in full on it, it raises nothing
    assert exception_types(result, late) == []


def test_a_past_due_line_covered_only_later_is_at_risk_and_below_the_win_floor():
    late = line("SO-P", quantity="10", settings_=WIN, requested_date=date(2026, 5, 20), promised_date=date(2026, 5, 28))
    result = allocate(engine_input([late], inbound=[po("PO-1", "A", "L1", 10, date(2026, 6, 5))]))
    assert exception_types(result, late) == ["priority_shortage", "promise_at_risk"]


def test_promise_risk_tolerance_days_allows_a_confirmation_that_many_days_late():
    # Given a line requested for 06-02 covered only by inbound on 06-05 (3 days after its due date)
    def run(tolerance):
        ln = line("SO-T", quantity="10", requested_date=date(2026, 6, 2),
                  settings_=settings(promise_risk_tolerance_days=tolerance))
        return exception_types(allocate(engine_input([ln], inbound=[po("PO-1", "A", "L1", 10, date(2026, 6, 5))])), ln)

    assert run(0) == ["promise_at_risk"]
    assert run(2) == ["promise_at_risk"]
    assert run(3) == []  # 3 days late is within a 3-day tolerance


def test_tolerance_never_excuses_quantity_left_uncovered():
    ln = line("SO-T", quantity="10", settings_=settings(promise_risk_tolerance_days=30))
    result = allocate(engine_input([ln], on_hand=[oh("A", "L1", 4)]))
    assert exception_types(result, ln) == ["promise_at_risk"]


def test_a_credit_held_line_raises_only_credit_hold_and_only_when_short_or_at_risk():
    # Given a tier-1 win line on credit hold that held 4 of 10 (it gains nothing on hold)
    vip = line("SO-H", quantity="10", tier=1, settings_=WIN, credit_hold=True)
    result = allocate(engine_input([vip], on_hand=[oh("A", "L1", 10)], existing=[held(1, vip, "L1", "4")]))
    # Then it raises credit_hold for finance, not priority_shortage or promise_at_risk
    assert exception_types(result, vip) == ["credit_hold"]
    # And a credit-held line that holds all it ordered, on time, raises nothing at all
    covered = line("SO-K", quantity="10", tier=1, settings_=WIN, credit_hold=True)
    result = allocate(engine_input([covered], on_hand=[oh("A", "L1", 10)], existing=[held(2, covered, "L1", "10")]))
    assert exception_types(result, covered) == []


def test_a_credit_held_line_that_loses_stock_raises_no_reversal_either():
    # Given a credit-held fill line that held 6 and a win line above it that needs the stock
    held_line = line("SO-H", quantity="6", credit_hold=True, settings_=settings(strategy="fill"))
    winner = line("SO-W", quantity="10", settings_=WIN)
    result = allocate(engine_input([held_line, winner], on_hand=[oh("A", "L1", 10)],
                                   existing=[held(1, held_line, "L1", "6")]))
    # Then the held line lost stock (a reversal for anyone else) but says only credit_hold
    assert exception_types(result, held_line) == ["credit_hold"]


def test_gain_shortage_details_carry_what_the_line_held():
    # The run sync keeps a gain line's priority_shortage open until the line holds this again.
    gain = line("SO-G", quantity="10", settings_=settings(strategy="gain"))
    result = allocate(engine_input([gain], on_hand=[oh("A", "L1", 3)], existing=[held(1, gain, "L1", "8")]))
    shortage = next(e for e in result.exceptions if e.type == "priority_shortage")
    assert (shortage.details["floor_kind"], shortage.details["held_before"]) == ("gain", "8")
    assert D(shortage.details["covered"]) == 3
