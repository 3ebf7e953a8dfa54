"""Release waves: rank order within capacity, time zones and cutoffs, ship-complete, approval
above the value, released never taken back, a wave that finds nothing, the schedule."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from allocation import releases
from allocation.choices import AllocationState, HoldReason, WaveTrigger
from allocation.models import Allocation, LineRelease, Wave, WaveLine
from integrations.models import OutboxMessage

from .conftest import event, order

UTC = dt.UTC


def released_lines(location_code: str) -> list[str]:
    return sorted(
        f"{o}/{n}" for o, n in Allocation.objects.filter(location__code=location_code, state=AllocationState.RELEASED)
        .values_list("line__order__number", "line__line").distinct()
    )


def outcomes(wave: Wave) -> dict[str, tuple[str, str]]:
    return {f"{x.order_number}/{x.line_number}": (x.outcome, x.reason) for x in WaveLine.objects.filter(wave=wave)}


def release_messages() -> list[dict]:
    return sorted(
        (m.payload for m in OutboxMessage.objects.filter(type="order.released")), key=lambda p: (p["order"], p["line"])
    )


def test_a_wave_releases_in_rank_order_within_the_days_capacity(world, planner):
    wave = releases.run_wave(world["DC-EAST"], planner)

    assert wave.status == "succeeded", wave.error
    assert (wave.considered_count, wave.released_count, wave.held_count, wave.capacity) == (5, 3, 2, 3)
    assert wave.started_by == planner and wave.trigger == WaveTrigger.PLANNER
    # Tier 1 first, then tier 2; the tier-4 lines wait for tomorrow's capacity.
    assert released_lines("DC-EAST") == ["E1/1", "E2/1", "E3/1"]
    assert outcomes(wave) == {
        "E1/1": ("released", ""), "E2/1": ("released", ""), "E3/1": ("released", ""),
        "E4/1": ("held", HoldReason.CAPACITY), "E5/1": ("held", HoldReason.CAPACITY),
    }
    ranks = dict(WaveLine.objects.filter(wave=wave).values_list("order_number", "rank"))
    assert ranks["E1"] < ranks["E2"] < ranks["E4"]
    assert release_messages() == [
        {"order": "E1", "line": 1, "location": "DC-EAST", "quantity": "10", "wave": wave.pk},
        {"order": "E2", "line": 1, "location": "DC-EAST", "quantity": "10", "wave": wave.pk},
        {"order": "E3", "line": 1, "location": "DC-EAST", "quantity": "10", "wave": wave.pk},
    ]
    assert LineRelease.objects.filter(wave=wave, business_date=dt.date(2026, 6, 1)).count() == 3

    # The same day again: the three lines released today use the capacity up.
    again = releases.run_wave(world["DC-EAST"], planner)
    assert (again.used_before, again.considered_count, again.released_count) == (3, 2, 0)
    assert set(outcomes(again).values()) == {("held", HoldReason.CAPACITY)}


def test_a_wave_that_finds_nothing_is_recorded_and_releases_nothing(world, planner):
    plan = releases.run_wave(world["DC-EMPTY"], planner, preview=True)
    assert plan.lines == [] and plan.capacity.remaining == 5

    wave = releases.run_wave(world["DC-EMPTY"], planner)

    assert wave.status == "succeeded"
    assert (wave.considered_count, wave.released_count, wave.held_count) == (0, 0, 0)
    assert not WaveLine.objects.filter(wave=wave).exists()
    assert not OutboxMessage.objects.filter(type="order.released").exists()


def test_a_preview_changes_nothing(world, planner):
    before = sorted(Allocation.objects.values_list("id", "state"))
    plan = releases.run_wave(world["DC-EAST"], planner, preview=True)
    assert [f"{x.order_number}/{x.line_number}" for x in plan.released] == ["E1/1", "E2/1", "E3/1"]
    assert sorted(Allocation.objects.values_list("id", "state")) == before
    assert not Wave.objects.exists() and not OutboxMessage.objects.filter(type="order.released").exists()


def test_capacity_counts_the_lines_released_on_the_locations_own_day(world, planner, settings):
    """Unpinned business date: each location's day is the date in its own time zone."""
    settings.ALLOT_BUSINESS_DATE = None
    west = world["DC-WEST"]
    # 03:00 UTC on June 2 is 20:00 on June 1 in Los Angeles (and 05:00 on June 2 in Berlin).
    evening = dt.datetime(2026, 6, 2, 3, 0, tzinfo=UTC)
    assert releases.location_business_date(west, evening) == dt.date(2026, 6, 1)
    assert releases.location_business_date(world["DC-EMPTY"], evening) == dt.date(2026, 6, 2)

    first = releases.run_wave(west, planner, now=evening)
    assert (first.business_date, first.released_count, first.held_count) == (dt.date(2026, 6, 1), 2, 1)
    assert released_lines("DC-WEST") == ["W1/1", "W2/1"]

    # Still June 1 in Los Angeles at 06:00 UTC: the two lines released count, nothing is left.
    later = releases.run_wave(west, planner, now=dt.datetime(2026, 6, 2, 6, 0, tzinfo=UTC))
    assert (later.business_date, later.used_before, later.released_count) == (dt.date(2026, 6, 1), 2, 0)
    assert outcomes(later) == {"W3/1": ("held", HoldReason.CAPACITY)}

    # 08:00 UTC is 01:00 on June 2 in Los Angeles: a new day with its own capacity.
    next_day = releases.run_wave(west, planner, now=dt.datetime(2026, 6, 2, 8, 0, tzinfo=UTC))
    assert (next_day.business_date, next_day.used_before, next_day.released_count) == (dt.date(2026, 6, 2), 0, 1)
    assert released_lines("DC-WEST") == ["W1/1", "W2/1", "W3/1"]


def test_scheduled_waves_start_before_each_cutoff_in_the_locations_own_zone(world, settings):
    # 19:40 UTC = 15:40 in New York (cutoff 16:00) = 12:40 in Los Angeles (cutoff 15:00) = 21:40 in Berlin (12:00).
    at = dt.datetime(2026, 6, 1, 19, 40, tzinfo=UTC)
    assert [loc.code for loc in releases.due_locations(at, 30)] == ["DC-EAST"]
    waves = releases.start_scheduled_waves(at, lead_minutes=30)
    assert [(w.location.code, w.trigger, w.started_by_id, w.status) for w in waves] == [
        ("DC-EAST", WaveTrigger.SCHEDULE, None, "succeeded")
    ]
    assert waves[0].cutoff_at == dt.datetime(2026, 6, 1, 20, 0, tzinfo=UTC)
    # Five minutes later DC-EAST had its scheduled wave today: not again.
    assert releases.due_locations(at + dt.timedelta(minutes=5), 30) == []
    # 21:45 UTC = 14:45 in Los Angeles: DC-WEST's turn; New York is past its cutoff.
    west_time = dt.datetime(2026, 6, 1, 21, 45, tzinfo=UTC)
    assert [loc.code for loc in releases.due_locations(west_time, 30)] == ["DC-WEST"]
    assert [loc.code for loc in releases.due_locations(west_time, 10)] == []  # lead time is configurable
    # The beat task uses ALLOT_RELEASE_LEAD_MINUTES.
    settings.ALLOT_RELEASE_LEAD_MINUTES = 30
    assert [w.location.code for w in releases.start_scheduled_waves(west_time)] == ["DC-WEST"]
    assert released_lines("DC-WEST") == ["W1/1", "W2/1"]


def test_a_ship_complete_order_is_released_whole_or_not_at_all(world, planner, ingest, full_run):
    ingest([
        # SC1 (tier 1): two lines, both on-hand. SC2: its GEAR line is covered only by inbound.
        order("SC1", "CUST-A", [(1, "BOLT", 5, "2.00", "DC-EAST"), (2, "NUT", 5, "2.00", "DC-EAST")],
              ship_complete=True, created="2026-05-20T10:00:00Z"),
        order("SC2", "CUST-A", [(1, "BOLT", 5, "2.00", "DC-EAST"), (2, "GEAR", 5, "2.00", "DC-EAST")],
              ship_complete=True, created="2026-05-21T10:00:00Z"),
    ])
    full_run()
    assert Allocation.objects.filter(line__order__number="SC2", line__line=2, supply__ref="PO-GEAR").exists()

    wave = releases.run_wave(world["DC-EAST"], planner)

    result = outcomes(wave)
    assert result["SC2/1"] == ("held", HoldReason.SHIP_COMPLETE_INCOMPLETE)
    # SC1 and E1 rank first (tier 1) and use 3 slots: both SC1 lines together, nothing of SC2.
    assert released_lines("DC-EAST") == ["E1/1", "SC1/1", "SC1/2"]
    assert result["E2/1"] == ("held", HoldReason.CAPACITY)


def test_a_ship_complete_order_that_does_not_fit_waits_and_smaller_lines_fill_the_rest(world, planner, ingest, full_run):
    ingest([order("SC3", "CUST-A", [(1, "BOLT", 5, "2.00", "DC-EAST"), (2, "NUT", 5, "2.00", "DC-EAST")],
                  ship_complete=True, created="2026-05-30T10:00:00Z")])
    full_run()
    releases.record_line_releases(  # a line released there earlier today: 2 of the 3 slots left
        [(Allocation.objects.filter(line__order__number="W1").first().line_id, world["DC-EAST"].pk, Decimal(1))],
        location=world["DC-EAST"], wave=None, actor=None,
    )

    wave = releases.run_wave(world["DC-EAST"], planner)

    result = outcomes(wave)
    # E1 (tier 1, older) takes a slot; SC3 (tier 1) needs two of the one left; E2 (tier 2) fits.
    assert result["SC3/1"] == result["SC3/2"] == ("held", HoldReason.SHIP_COMPLETE_CAPACITY)
    assert [line for line, (outcome, _) in result.items() if outcome == "released"] == ["E1/1", "E2/1"]
    assert released_lines("DC-EAST") == ["E1/1", "E2/1"]
    assert (wave.used_before, wave.released_count) == (1, 2)


def test_a_release_above_auto_release_max_value_waits_for_a_second_person(
    world, planner, approver, activate_policy, full_run, ingest
):
    from exceptions import approvals
    from exceptions.errors import SelfApprovalRefused
    from exceptions.models import ApprovalRequest

    activate_policy({"scope": {"customer": "CUST-A"}, "settings": {"auto_release_max_value": 15}})
    full_run()

    wave = releases.run_wave(world["DC-EAST"], planner)

    assert outcomes(wave)["E1/1"] == ("approval", HoldReason.APPROVAL_REQUIRED)  # worth 20 > 15
    assert released_lines("DC-EAST") == ["E2/1", "E3/1", "E4/1"]  # the capacity goes to the next lines
    request = ApprovalRequest.objects.get(kind="line.release")
    assert (request.status, request.requested_by, request.payload["wave"]) == ("pending", planner, wave.pk)
    assert WaveLine.objects.get(wave=wave, order_number="E1").approval == request
    assert wave.approval_count == 1

    # A second wave does not ask again while the request waits.
    again = releases.run_wave(world["DC-EAST"], planner)
    assert outcomes(again)["E1/1"] == ("held", HoldReason.AWAITING_APPROVAL)
    assert ApprovalRequest.objects.filter(kind="line.release").count() == 1

    with pytest.raises(SelfApprovalRefused):
        approvals.approve(request.pk, actor=planner)
    assert released_lines("DC-EAST") == ["E2/1", "E3/1", "E4/1"]

    approvals.approve(request.pk, actor=approver, reason="key account")

    assert released_lines("DC-EAST") == ["E1/1", "E2/1", "E3/1", "E4/1"]
    message = OutboxMessage.objects.get(type="order.released", payload__order="E1")
    assert message.payload == {"order": "E1", "line": 1, "location": "DC-EAST", "quantity": "10", "wave": wave.pk}
    assert LineRelease.objects.get(line__order__number="E1").actor == approver


def test_a_scheduled_wave_asks_for_approval_as_the_schedule_account(world, activate_policy, full_run, approver):
    from exceptions import approvals
    from exceptions.models import ApprovalRequest

    activate_policy({"scope": {}, "settings": {"auto_release_max_value": 5}})
    full_run()
    releases.run_wave(world["DC-WEST"], None, trigger=WaveTrigger.SCHEDULE)
    requests = list(ApprovalRequest.objects.filter(kind="line.release"))
    assert len(requests) == 3 and {r.requested_by.username for r in requests} == {releases.SCHEDULE_USERNAME}
    assert not requests[0].requested_by.is_active
    approvals.reject(requests[0].pk, actor=approver, reason="not today")
    # Rejected today: the next wave holds it back without asking again.
    wave = releases.run_wave(world["DC-WEST"], None, trigger=WaveTrigger.SCHEDULE)
    rejected = WaveLine.objects.get(wave=wave, line_id=requests[0].subject_id)
    assert (rejected.outcome, rejected.reason) == ("held", HoldReason.APPROVAL_REJECTED)


def test_credit_held_orders_are_not_released(world, planner, ingest):
    ingest([event("credit.hold_changed", {"order": "E1", "on_hold": True, "reason": "overdue"},
                  at="2026-06-01T08:00:00Z")])
    # A credit-held line keeps what it holds (it is treated as fill), but nothing goes to the warehouse.
    assert Allocation.objects.filter(line__order__number="E1", state=AllocationState.RESERVED).exists()
    wave = releases.run_wave(world["DC-EAST"], planner)
    assert outcomes(wave)["E1/1"] == ("held", HoldReason.CREDIT_HOLD)
    assert released_lines("DC-EAST") == ["E2/1", "E3/1", "E4/1"]


def test_released_allocations_are_never_taken_back_by_a_following_run(world, planner, ingest, full_run, activate_policy):
    wave = releases.run_wave(world["DC-EAST"], planner)
    released = sorted(
        Allocation.objects.filter(state=AllocationState.RELEASED).values_list("id", "line_id", "quantity", "location_id")
    )
    assert len(released) == 3
    # A healthcare customer's win line now wants every BOLT at DC-EAST; the stock also shrinks.
    activate_policy({"scope": {"customer_segment": "healthcare"}, "settings": {"strategy": "win", "priority_class": 1}})
    ingest([
        order("H1", "HOSP", [(1, "BOLT", 100, "5.00", "DC-EAST")], at="2026-06-01T09:00:00Z"),
        event("inventory.snapshot", {"location": "DC-EAST", "sku": "BOLT", "on_hand": "60",
                                     "as_of": "2026-06-01T09:00:00Z"}, source="wms", at="2026-06-01T09:00:00Z"),
    ])
    full_run()
    full_run()

    assert sorted(
        Allocation.objects.filter(state=AllocationState.RELEASED).values_list("id", "line_id", "quantity", "location_id")
    ) == released
    # H1 took what was not released (60 on hand - 20 released BOLT), never the released 20.
    assert sum(Allocation.objects.filter(line__order__number="H1").values_list("quantity", flat=True)) == Decimal(40)
    assert wave.released_count == 3


def test_a_second_wave_at_the_same_location_while_one_runs_is_told(world, planner):
    from allocation.errors import WaveAlreadyRunning

    running = releases.start_wave(world["DC-EAST"], actor=planner)
    with pytest.raises(WaveAlreadyRunning) as told:
        releases.run_wave(world["DC-EAST"], planner)
    assert told.value.wave_id == running.pk and f"wave #{running.pk}" in told.value.message
    assert not Allocation.objects.filter(state=AllocationState.RELEASED).exists()
    # Another location is not blocked.
    assert releases.run_wave(world["DC-WEST"], planner).released_count == 2
    releases.execute_wave(running, actor=planner)
    assert releases.run_wave(world["DC-EAST"], planner).status == "succeeded"


def test_a_wave_lost_by_a_dead_process_stops_blocking_after_a_while(world, planner, settings):
    from django.utils import timezone

    stuck = releases.start_wave(world["DC-EAST"], actor=planner)
    Wave.objects.filter(pk=stuck.pk).update(started_at=timezone.now() - dt.timedelta(hours=1))
    settings.ALLOT_WAVE_LOST_SECONDS = 900
    wave = releases.run_wave(world["DC-EAST"], planner)
    assert wave.status == "succeeded"
    stuck.refresh_from_db()
    assert stuck.status == "failed" and "lost" in stuck.error


def test_a_planners_release_of_one_line_counts_against_the_capacity(world, planner):
    from allocation import overrides
    from allocation.models import OrderLine

    overrides.release_line(OrderLine.objects.get(order__number="E5"))
    wave = releases.run_wave(world["DC-EAST"], planner)
    assert wave.used_before == 1 and wave.released_count == 2
    assert released_lines("DC-EAST") == ["E1/1", "E2/1", "E5/1"]


def test_a_wave_is_set_based(world, planner, django_assert_max_num_queries, ingest, full_run):
    ingest([order(f"BULK{n}", "CUST-B", [(1, "NUT", 1, "1.00", "DC-EAST")]) for n in range(40)])
    full_run()
    Location = world["DC-EAST"].__class__
    Location.objects.filter(code="DC-EAST").update(release_capacity_per_day=None)
    location = Location.objects.get(code="DC-EAST")
    with django_assert_max_num_queries(40):
        wave = releases.run_wave(location, planner)
    assert wave.released_count == 45



def test_a_ship_complete_order_above_the_value_is_one_request_released_whole(
    world, planner, approver, activate_policy, ingest, full_run
):
    from exceptions import approvals
    from exceptions.errors import ApprovalNotAllowed
    from exceptions.models import ApprovalRequest

    activate_policy({"scope": {"customer": "CUST-A"}, "settings": {"auto_release_max_value": 15}})
    ingest([
        order("SC4", "CUST-A", [(1, "BOLT", 10, "2.00", "DC-EAST"), (2, "NUT", 10, "2.00", "DC-EAST")],
              ship_complete=True, created="2026-05-20T10:00:00Z", at="2026-06-01T07:00:00Z"),
        order("SC5", "CUST-A", [(1, "BOLT", 10, "2.00", "DC-EAST"), (2, "NUT", 10, "2.00", "DC-EAST")],
              ship_complete=True, created="2026-05-21T10:00:00Z", at="2026-06-01T07:00:00Z"),
    ])
    full_run()
    wave = releases.run_wave(world["DC-EAST"], planner)
    result = outcomes(wave)
    assert result["SC4/1"] == result["SC4/2"] == ("approval", HoldReason.APPROVAL_REQUIRED)
    requests = {r.payload["line_ids"][0]: r for r in ApprovalRequest.objects.filter(kind="line.release")}
    sc4 = requests[Allocation.objects.filter(line__order__number="SC4", line__line=1).first().line_id]
    assert len(sc4.payload["line_ids"]) == 2 and len(sc4.payload["why_approval"]) == 2

    approvals.approve(sc4.pk, actor=approver)
    assert {"SC4/1", "SC4/2"} <= set(released_lines("DC-EAST"))

    # SC5 loses its NUT stock before the approver decides: approving would split it.
    ingest([event("inventory.snapshot", {"location": "DC-EAST", "sku": "NUT", "on_hand": "10",
                                         "as_of": "2026-06-01T09:00:00Z"}, source="wms", at="2026-06-01T09:00:00Z")])
    full_run()
    sc5 = next(r for r in requests.values() if r.pk != sc4.pk and r.subject_id != sc4.subject_id)
    with pytest.raises(ApprovalNotAllowed, match="no longer fully covered"):
        approvals.approve(sc5.pk, actor=approver)
    assert not {"SC5/1", "SC5/2"} & set(released_lines("DC-EAST"))
