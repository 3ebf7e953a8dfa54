"""Execution mode per scope: in a ``recommend`` scope runs propose, nothing is reserved or
published until a planner accepts (singly or in bulk); ``auto`` scopes behave as before."""
from __future__ import annotations

import pytest

from allocation import execution_modes, releases
from allocation.models import AcceptedRecommendation, Allocation, LineDecisionLog, OrderLine
from integrations.models import OutboxMessage

from .conftest import order, world_events

# The West customer (its lines ship from DC-WEST) is rolled out in recommend mode.
RECOMMEND_WEST = {"scope": {"customer": "CUST-W"}, "settings": {"execution_mode": "recommend"}}


def states(prefix: str) -> dict[str, str]:
    return {
        f"{o}/{n}": state
        for o, n, state in Allocation.objects.filter(line__order__number__startswith=prefix).values_list(
            "line__order__number", "line__line", "state"
        )
    }


def reservation_messages(prefix: str) -> list[dict]:
    return sorted(
        (m.payload for m in OutboxMessage.objects.filter(type="reservation.changed", payload__order__startswith=prefix)),
        key=lambda p: (p["order"], p["run"]),
    )


def line(number: str) -> OrderLine:
    return OrderLine.objects.get(order__number=number, line=1)


@pytest.fixture
def recommend_world(db, activate_policy, ingest, full_run):
    activate_policy(RECOMMEND_WEST)
    ingest(world_events())
    return full_run()


def test_a_recommend_scope_reserves_and_publishes_nothing_until_a_planner_accepts(recommend_world, full_run, planner):
    assert states("W") == {"W1/1": "recommended", "W2/1": "recommended", "W3/1": "recommended"}
    assert set(states("E").values()) == {"reserved"}  # DC-EAST is in auto: as before
    assert reservation_messages("W") == []
    assert len(reservation_messages("E")) == 5
    # Recommendations are not releasable.
    west = line("W1").ship_from
    assert releases.plan_wave(west).lines == []

    # The next run keeps the recommendations (stable, like reservations) and still publishes nothing.
    before = sorted(Allocation.objects.filter(line__order__number__startswith="W").values_list("id", "state", "quantity"))
    logs = LineDecisionLog.objects.count()
    second = full_run()
    assert sorted(Allocation.objects.filter(line__order__number__startswith="W").values_list("id", "state", "quantity")) == before
    assert LineDecisionLog.objects.count() == logs and second.changed_line_count == 0
    assert reservation_messages("W") == []

    # Accept one line: it is reserved and published.
    result = execution_modes.accept_recommendations([line("W1").pk], actor=planner, note="checked")
    assert (result.lines, result.allocations) == (1, 1)
    assert result.run.status == "succeeded" and result.run.trigger == "override"  # the run that publishes
    assert states("W") == {"W1/1": "reserved", "W2/1": "recommended", "W3/1": "recommended"}
    assert [(m["order"], m["allocations"]) for m in reservation_messages("W")] == [
        ("W1", [{"location": "DC-WEST", "quantity": "5", "confirmed_date": "2026-06-01", "supply_ref": None}])
    ]
    audit = AcceptedRecommendation.objects.get()
    assert (audit.line, audit.actor, audit.note, audit.allocations[0]["quantity"]) == (line("W1"), planner, "checked", "5")

    # Accept the rest in bulk (W1 has nothing left to accept: skipped).
    bulk = execution_modes.accept_recommendations([line(n).pk for n in ("W1", "W2", "W3")], actor=planner)
    assert (bulk.lines, bulk.skipped) == (2, (line("W1").pk,))
    assert set(states("W").values()) == {"reserved"}
    assert [m["order"] for m in reservation_messages("W")] == ["W1", "W2", "W3"]

    # Accepted reservations in a recommend scope are not changed by runs, nor published again.
    kept = sorted(Allocation.objects.filter(line__order__number__startswith="W").values_list("id", "state"))
    full_run()
    assert sorted(Allocation.objects.filter(line__order__number__startswith="W").values_list("id", "state")) == kept
    assert len(reservation_messages("W")) == 3
    # ... and now the wave releases them.
    assert releases.run_wave(west, planner).released_count == 2


def test_accepting_without_a_recommendation_is_refused(recommend_world, planner):
    execution_modes.accept_recommendations([line("W1").pk], actor=planner)
    with pytest.raises(execution_modes.RecommendationError):
        execution_modes.accept_recommendations([line("W1").pk, line("E1").pk], actor=planner)
    with pytest.raises(execution_modes.RecommendationError):
        execution_modes.accept_recommendations([], actor=planner)


def test_a_higher_ranked_line_takes_from_a_recommendation_like_from_a_reservation(recommend_world, ingest, full_run):
    # Only 100 BOLT at DC-WEST: a bigger, older order of the same customer tier ranks first.
    ingest([order("W0", "CUST-W", [(1, "BOLT", 95, "2.00", "DC-WEST")], created="2026-05-01T10:00:00Z",
                  at="2026-06-01T08:00:00Z")])
    full_run()
    assert states("W0") == {"W0/1": "recommended"}
    held = dict(Allocation.objects.filter(line__order__number__startswith="W").values_list("line__order__number", "quantity"))
    assert held["W0"] == 95 and sum(held.values()) == 100  # never more than the stock
    assert reservation_messages("W") == []


def test_back_in_auto_the_next_run_reserves_and_publishes_the_recommendations(recommend_world, activate_policy, full_run):
    ids = sorted(Allocation.objects.filter(line__order__number__startswith="W").values_list("id", flat=True))
    activate_policy(name="auto-again")
    full_run()
    assert set(states("W").values()) == {"reserved"}
    assert sorted(Allocation.objects.filter(line__order__number__startswith="W").values_list("id", flat=True)) == ids
    assert [m["order"] for m in reservation_messages("W")] == ["W1", "W2", "W3"]


def test_switching_a_scope_to_recommend_keeps_what_was_published(world, activate_policy, ingest, full_run):
    published = reservation_messages("W")
    activate_policy(RECOMMEND_WEST)
    ingest([order("W4", "CUST-W", [(1, "BOLT", 5, "2.00", "DC-WEST")], at="2026-06-01T08:00:00Z")])
    full_run()
    assert states("W") == {"W1/1": "reserved", "W2/1": "reserved", "W3/1": "reserved", "W4/1": "recommended"}
    assert reservation_messages("W") == published  # nothing new for the recommend scope


def test_a_warehouse_rolled_out_in_recommend_mode(db, activate_policy, ingest, full_run, planner):
    """The phased roll-out by warehouse: scope ``location`` (the line's ship_from, else home)."""
    activate_policy({"scope": {"location": "DC-WEST"}, "settings": {"execution_mode": "recommend"}})
    ingest(world_events())
    full_run()
    assert set(states("W").values()) == {"recommended"}
    assert set(states("E").values()) == {"reserved"}
    assert reservation_messages("W") == []
    execution_modes.accept_recommendations(
        OrderLine.objects.filter(order__number__startswith="W").values_list("pk", flat=True), actor=planner
    )
    assert set(states("W").values()) == {"reserved"} and len(reservation_messages("W")) == 3


def test_a_planners_override_in_a_recommend_scope_is_published_by_the_run_that_follows(recommend_world, planner):
    from decimal import Decimal

    from django.db import transaction

    from allocation import overrides

    target = OrderLine.objects.select_related("order__customer__home_location", "item", "ship_from").get(
        order__number="W2", line=1
    )
    plan = overrides.plan_override(target, [overrides.PartRequest(location_code="DC-WEST", quantity=Decimal(4))])
    with transaction.atomic():
        overrides.apply_override(plan)
    run = overrides.trigger_incremental_run({"BOLT"}, actor=planner)

    assert run.status == "succeeded"
    # The pinned 4 are the planner's; the run recommends the line's last unit (not published).
    assert sorted(Allocation.objects.filter(line=target).values_list("state", "quantity")) == [
        ("pinned", 4), ("recommended", 1)
    ]
    assert [(m["order"], m["allocations"], m["run"]) for m in reservation_messages("W")] == [
        ("W2", [{"location": "DC-WEST", "quantity": "4", "confirmed_date": "2026-06-01", "supply_ref": None}], run.pk)
    ]
