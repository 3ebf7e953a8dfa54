"""Cases (allocation.md "Only true exceptions reach people"), through real runs on the database:
one active case per line listing its reasons, routed by the most severe; reasons with their
own history; lines below ``exception_min_value`` keep their reasons without a case; a gain
line's shortage stays open until the line holds again what it held."""

import datetime as dt
from decimal import Decimal

import pytest

from allocation.models import InventoryPosition
from allocation.services import run_full
from exceptions.models import CaseReason, DecisionException
from policies.services import import_document
from tests.exceptions.conftest import World

AS_OF = dt.date(2026, 6, 1)
ACTIVE = ["open", "claimed", "awaiting_approval"]


def policy(*rules, min_value=None):
    global_settings = {"strategy": "redistribute", "priority_class": 5}
    if min_value is not None:
        global_settings["exception_min_value"] = min_value
    return import_document(
        {"name": "cases", "rules": [{"scope": {}, "settings": global_settings}, *rules]}, actor=None, activate=True
    )


def active_cases(line=None):
    qs = DecisionException.objects.filter(status__in=ACTIVE)
    return list(qs.filter(line=line) if line is not None else qs)


@pytest.fixture
def world(db):
    return World()


@pytest.mark.django_db
def test_a_line_with_several_reasons_has_one_case_listing_them_routed_by_the_most_severe(world):
    # Given a tier-1 win line with a margin floor, short of stock
    policy({"scope": {"customer_segment": "healthcare"},
            "settings": {"strategy": "win", "priority_class": 1, "margin_floor_pct": 60}})
    world.stock(world.east, "4")
    vip = world.line(world.hospital, "10", unit_price="10")  # margin 50% < 60%
    # When a full run decides it
    run = run_full(as_of=AS_OF)
    assert run.status == "succeeded", run.error
    # Then the line has exactly one case, listing all its reasons, most severe first
    [case] = active_cases(vip)
    assert case.key == f"case:{vip.order.number}/1"
    assert case.type == "priority_shortage"
    assert case.reason_types == ["priority_shortage", "promise_at_risk", "margin_below_floor"]
    assert case.kind == "work" and case.queue is not None and case.due_at is not None
    reasons = CaseReason.objects.filter(line=vip, status="open")
    assert sorted(r.type for r in reasons) == ["margin_below_floor", "priority_shortage", "promise_at_risk"]
    assert {r.case_id for r in reasons} == {case.pk}
    # And each reason has its own history
    assert all(r.history.count() == 1 for r in reasons)


@pytest.mark.django_db
def test_a_reason_that_goes_away_is_resolved_and_the_case_updated_in_place(world):
    policy({"scope": {"customer_segment": "healthcare"},
            "settings": {"strategy": "win", "priority_class": 1, "margin_floor_pct": 60}})
    position = world.stock(world.east, "4")
    vip = world.line(world.hospital, "10", unit_price="10")
    run_full(as_of=AS_OF)
    [case] = active_cases(vip)
    # When stock arrives so the line is covered: only the margin reason is left
    InventoryPosition.objects.filter(pk=position.pk).update(on_hand=Decimal("10"))
    run_full(as_of=AS_OF)
    [again] = active_cases(vip)
    assert again.pk == case.pk and again.version == case.version + 1
    assert (again.type, again.reason_types) == ("margin_below_floor", ["margin_below_floor"])
    resolved = CaseReason.objects.get(line=vip, type="priority_shortage")
    assert resolved.status == "resolved" and "no longer raised" in resolved.resolution_reason
    # And when nothing is left, the case is resolved
    import_document({"name": "no-floor", "rules": [{"scope": {}, "settings": {}}]}, actor=None, activate=True)
    run_full(as_of=AS_OF)
    assert active_cases(vip) == []
    assert DecisionException.objects.get(pk=case.pk).status == "resolved"


@pytest.mark.django_db
def test_lines_below_exception_min_value_keep_their_reasons_but_raise_no_case(world):
    policy(min_value=500)
    world.stock(world.east, "2")
    small = world.line(world.shop, "10", unit_price="10")  # worth 100 < 500
    big = world.line(world.shop, "10", unit_price="100")  # worth 1,000
    run_full(as_of=AS_OF)
    assert active_cases(small) == []
    assert CaseReason.objects.filter(line=small, status="open", case__isnull=True).exists()  # counted, no case
    assert len(active_cases(big)) == 1


@pytest.mark.django_db
def test_a_gain_lines_shortage_stays_open_until_it_holds_again_what_it_held(world):
    # Given a gain line holding 8
    policy({"scope": {"customer_segment": "retail"}, "settings": {"strategy": "gain"}})
    position = world.stock(world.west, "8")
    gainer = world.line(world.shop, "8")
    run_full(as_of=AS_OF)
    assert active_cases(gainer) == []
    # When the stock drops to 3: it holds 3 of the 8 it held, below its floor
    InventoryPosition.objects.filter(pk=position.pk).update(on_hand=Decimal("3"))
    run_full(as_of=AS_OF)
    [case] = active_cases(gainer)
    assert "priority_shortage" in case.reason_types
    # Then the next run ("before" is now 3, so the engine no longer raises it) keeps it open
    run_full(as_of=AS_OF)
    shortage = CaseReason.objects.get(line=gainer, type="priority_shortage")
    assert shortage.status == "open"
    assert [c.pk for c in active_cases(gainer)] == [case.pk]
    # And once it holds 8 again, it is resolved
    InventoryPosition.objects.filter(pk=position.pk).update(on_hand=Decimal("8"))
    run_full(as_of=AS_OF)
    shortage.refresh_from_db()
    assert shortage.status == "resolved"
    assert active_cases(gainer) == []


@pytest.mark.django_db
def test_the_cases_api_lists_open_cases_with_their_reasons(world, client, django_user_model):
    from django.contrib.auth.models import Group

    policy({"scope": {"customer_segment": "healthcare"},
            "settings": {"strategy": "win", "priority_class": 1, "margin_floor_pct": 60}})
    world.stock(world.east, "4")
    vip = world.line(world.hospital, "10", unit_price="10")
    run_full(as_of=AS_OF)
    planner = django_user_model.objects.create_user("pat", password="x")
    planner.groups.add(Group.objects.get_or_create(name="planner")[0])
    client.force_login(planner)
    body = client.get("/api/v1/cases?status=open").json()
    [row] = [r for r in body["results"] if r["line"] == 1 and r["order"] == vip.order.number]
    assert row["reasons"] == ["priority_shortage", "promise_at_risk", "margin_below_floor"]
    assert {"id", "order", "line", "reasons", "queue", "severity", "value_at_stake", "status"} <= set(row)
    assert row["value_at_stake"] == "100.00" and row["status"] == "open"
    detail = client.get(f"/api/v1/cases/{row['id']}").json()
    assert sorted(r["type"] for r in detail["reason_list"]) == ["margin_below_floor", "priority_shortage", "promise_at_risk"]


@pytest.mark.django_db
def test_a_line_short_only_of_fixed_supply_is_an_information_case_without_sla(world):
    from allocation.choices import AllocationState

    policy()
    world.stock(world.west, "10")
    holder = world.line(world.shop, "10")
    world.allocate(holder, world.west, "10", state=AllocationState.PINNED)  # a planner pinned all of it
    waiting = world.line(world.shop, "5")
    run_full(as_of=AS_OF)
    [case] = active_cases(waiting)
    assert case.kind == "information" and case.due_at is None
    assert CaseReason.objects.get(line=waiting, type="promise_at_risk").information is True
    # When stock arrives elsewhere, the line is covered and the information goes away
    world.stock(world.east, "5")
    run_full(as_of=AS_OF)
    assert active_cases(waiting) == []
