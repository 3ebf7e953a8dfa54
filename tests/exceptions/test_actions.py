"""Exception actions through the services: state changes, allocation changes, approvals."""
import datetime as dt
from decimal import Decimal

import pytest

from allocation.choices import AllocationState
from allocation.models import Allocation
from exceptions import approvals, services
from exceptions.choices import ApprovalStatus, ExceptionType
from exceptions.errors import ActionNotAllowed, InvalidAction, SelfApprovalRefused, StaleAction
from exceptions.models import ApprovalRequest, DecisionException, ExceptionComment, PromiseChange

pytestmark = pytest.mark.django_db


def allocations_of(line):
    return sorted(
        (a.location.code, a.supply.ref if a.supply else None, a.item.sku, a.quantity, a.state)
        for a in Allocation.objects.filter(line=line).select_related("location", "supply", "item")
    )


@pytest.fixture
def contested(world):
    """A hospital line short of 10 and a shop line holding 30 of the 40 at DC-EAST."""
    world.stock(world.east, 40)
    world.stock(world.west, 5)
    hospital = world.line(world.hospital, 20, unit_price="10")  # value 200
    shop = world.line(world.shop, 30, unit_price="10")
    world.allocate(hospital, world.east, 10)
    world.allocate(shop, world.east, 30)
    exception = world.exception(hospital)
    return hospital, shop, exception


def test_claim_then_stale_claim_gets_current_state_and_changes(contested, planner, customer_service):
    _hospital, _shop, exception = contested
    result = services.claim(exception.pk, actor=planner, expected_version=exception.version)
    assert (result.exception.status, result.exception.assignee, result.exception.version) == ("claimed", planner, 2)
    with pytest.raises(StaleAction) as caught:
        services.claim(exception.pk, actor=customer_service, expected_version=1)
    assert caught.value.current["status"] == "claimed"
    assert caught.value.current["assignee"] == "pat_planner"
    assert caught.value.current["version"] == 2
    assert [(c["version"], c["what"], c["by"]) for c in caught.value.changes] == [(2, "claimed by pat_planner", "pat_planner")]


def test_release_and_assign(contested, planner, customer_service):
    _h, _s, exception = contested
    services.claim(exception.pk, actor=planner, expected_version=1)
    services.release(exception.pk, actor=planner, expected_version=2)
    exception.refresh_from_db()
    assert (exception.status, exception.assignee) == ("open", None)
    services.assign(exception.pk, actor=planner, expected_version=3, assignee=customer_service)
    exception.refresh_from_db()
    assert (exception.status, exception.assignee, exception.version) == ("claimed", customer_service, 4)


def test_assign_to_a_non_actor_is_refused(contested, planner, finance):
    _h, _s, exception = contested
    with pytest.raises(InvalidAction) as caught:
        services.assign(exception.pk, actor=planner, expected_version=1, assignee=finance)
    assert caught.value.data["field"] == "assignee"
    exception.refresh_from_db()
    assert (exception.status, exception.version) == ("open", 1)


def test_override_pins_and_takes_from_the_lower_line(contested, planner, world):
    hospital, shop, exception = contested
    result = services.override(
        exception.pk, actor=planner, expected_version=1, location="DC-EAST", quantity="20",
        reason_code="customer_commitment", note="hospital first",
    )
    assert result.approval is None
    assert result.exception.status == "resolved"
    assert result.exception.resolution_reason == "override (customer_commitment) by pat_planner: hospital first"
    assert allocations_of(hospital) == [("DC-EAST", None, "VALVE-10", Decimal("20.000"), "pinned")]
    shop_total = sum(a.quantity for a in Allocation.objects.filter(line=shop, location=world.east))
    assert shop_total <= Decimal("20")


def test_override_needs_reason_code_and_note_and_valid_quantity(contested, planner):
    _h, _s, exception = contested
    cases = [
        ({"reason_code": "because", "note": "x", "quantity": "5"}, "reason_code"),
        ({"reason_code": "expedite", "note": " ", "quantity": "5"}, "note"),
        ({"reason_code": "expedite", "note": "x", "quantity": "0"}, "quantity"),
        ({"reason_code": "expedite", "note": "x", "quantity": "abc"}, "quantity"),
        ({"reason_code": "expedite", "note": "x", "quantity": "41"}, "quantity"),
        ({"reason_code": "expedite", "note": "x", "quantity": "5", "location": "NOWHERE"}, "location"),
    ]
    for kwargs, field in cases:
        kwargs.setdefault("location", "DC-EAST")
        with pytest.raises(InvalidAction) as caught:
            services.override(exception.pk, actor=planner, expected_version=1, **kwargs)
        assert caught.value.data["field"] == field, kwargs
    exception.refresh_from_db()
    assert (exception.status, exception.version) == ("open", 1)


def test_high_value_override_waits_for_approval_and_changes_nothing_until_approved(
    world, planner, approver, second_approver
):
    world.stock(world.east, 2000)
    line = world.line(world.hospital, 1500, unit_price="10")  # value 15,000 >= 10,000
    world.allocate(line, world.east, 100)
    exception = world.exception(line)
    before = allocations_of(line)

    result = services.override(
        exception.pk, actor=planner, expected_version=1, location="DC-EAST", quantity="1500",
        reason_code="expedite", note="ward reopening",
    )

    assert result.exception.status == "awaiting_approval"
    assert result.approval.payload["why_approval"] == [
        "the line is worth 15000.00, at least the 10000.00 that needs an approver"
    ]
    assert allocations_of(line) == before
    with pytest.raises(SelfApprovalRefused):
        approvals.approve(result.approval.pk, actor=planner)
    assert allocations_of(line) == before

    approvals.approve(result.approval.pk, actor=approver, reason="ok")

    exception.refresh_from_db()
    assert exception.status == "resolved"
    assert allocations_of(line) == [("DC-EAST", None, "VALVE-10", Decimal("1500.000"), "pinned")]
    assert ApprovalRequest.objects.get().status == ApprovalStatus.APPROVED


def test_rejected_override_goes_back_to_the_requester(world, planner, approver):
    world.stock(world.east, 2000)
    line = world.line(world.hospital, 1500, unit_price="10")
    exception = world.exception(line)
    result = services.override(
        exception.pk, actor=planner, expected_version=1, location="DC-EAST", quantity="1500", reason_code="expedite", note="n"
    )
    approvals.reject(result.approval.pk, actor=approver, reason="too much")
    exception.refresh_from_db()
    assert (exception.status, exception.assignee, exception.version) == ("claimed", planner, 3)
    assert Allocation.objects.filter(line=line).count() == 0
    assert list(ExceptionComment.objects.values_list("body", flat=True)) == ["Rejected: too much"]


def test_override_taking_from_a_win_line_needs_approval(contested, planner, monkeypatch):
    hospital, shop, exception = contested
    from allocation import overrides

    def settings_for(lines):
        return {line.pk: overrides.ApprovalSettings(strategy="win" if line.pk == shop.pk else "redistribute") for line in lines}

    monkeypatch.setattr(overrides, "line_settings", settings_for)
    result = services.override(
        exception.pk, actor=planner, expected_version=1, location="DC-EAST", quantity="20", reason_code="expedite", note="n"
    )
    assert result.approval.payload["why_approval"] == ["it takes supply held by win line(s) SO-2/1"]
    assert result.approval.payload["losers"] == ["SO-2/1"]
    assert Allocation.objects.get(line=shop).quantity == Decimal("30.000")


def test_split_over_two_locations(contested, planner):
    hospital, _s, exception = contested
    services.split(
        exception.pk, actor=planner, expected_version=1,
        parts=[{"location": "DC-EAST", "quantity": "15"}, {"location": "DC-WEST", "quantity": "5"}],
        reason_code="consolidate_shipment", note="two trucks",
    )
    assert allocations_of(hospital) == [
        ("DC-EAST", None, "VALVE-10", Decimal("15.000"), "pinned"),
        ("DC-WEST", None, "VALVE-10", Decimal("5.000"), "pinned"),
    ]


def test_split_needs_two_parts_and_enough_room(contested, planner):
    _h, _s, exception = contested
    with pytest.raises(InvalidAction) as caught:
        services.split(exception.pk, actor=planner, expected_version=1, parts=[{"location": "DC-EAST", "quantity": "1"}], reason_code="expedite", note="n")
    assert caught.value.data["field"] == "parts"
    with pytest.raises(InvalidAction) as caught:
        services.split(
            exception.pk, actor=planner, expected_version=1,
            parts=[{"location": "DC-EAST", "quantity": "18"}, {"location": "DC-WEST", "quantity": "5"}],
            reason_code="expedite", note="n",
        )
    assert caught.value.data["field"] == "parts"


def test_accept_substitution_reserves_the_proposal(world, planner):
    world.stock(world.east, 10, item=world.substitute)
    line = world.line(world.hospital, 10, allow_substitute=True)
    world.allocate(line, world.east, 10, state=AllocationState.PROPOSED, item=world.substitute)
    exception = world.exception(line, ExceptionType.SUBSTITUTION_PROPOSED)
    result = services.accept(exception.pk, actor=planner, expected_version=1)
    assert result.exception.status == "resolved"
    assert allocations_of(line) == [("DC-EAST", None, "VALVE-10B", Decimal("10.000"), "reserved")]


def test_accept_applies_only_to_substitutions(contested, planner):
    _h, _s, exception = contested
    with pytest.raises(InvalidAction) as caught:
        services.accept(exception.pk, actor=planner, expected_version=1)
    assert caught.value.data["field"] == "type"


def test_defer_promise_records_the_change(world, customer_service):
    line = world.line(world.shop, 5, promised=dt.date(2026, 6, 3))
    exception = world.exception(line, ExceptionType.PROMISE_AT_RISK)
    with pytest.raises(InvalidAction) as caught:
        services.defer_promise(exception.pk, actor=customer_service, expected_version=1, promised_date=dt.date(2026, 6, 2), reason="late PO")
    assert caught.value.data["field"] == "promised_date"
    services.defer_promise(exception.pk, actor=customer_service, expected_version=1, promised_date=dt.date(2026, 6, 10), reason="late PO")
    change = PromiseChange.objects.get()
    assert (change.previous_promised_date, change.promised_date, change.reason, change.actor) == (
        dt.date(2026, 6, 3), dt.date(2026, 6, 10), "late PO", customer_service,
    )
    line.order.refresh_from_db()
    assert line.order.promised_date == dt.date(2026, 6, 10)
    exception.refresh_from_db()
    assert exception.status == "resolved"


def test_hold_pins_reserved_and_release_to_warehouse(contested, planner, recorded_runs):
    hospital, _s, exception = contested
    services.hold(exception.pk, actor=planner, expected_version=1)
    assert allocations_of(hospital) == [("DC-EAST", None, "VALVE-10", Decimal("10.000"), "pinned")]
    assert recorded_runs == [{"skus": ["VALVE-10"], "trigger": "override", "actor": planner}]
    exception.refresh_from_db()
    assert (exception.status, exception.assignee) == ("claimed", planner)
    services.release_to_warehouse(exception.pk, actor=planner, expected_version=2)
    assert allocations_of(hospital) == [("DC-EAST", None, "VALVE-10", Decimal("10.000"), "released")]


def test_override_runs_the_item_group_and_the_run_keeps_the_pin(contested, planner, in_process_tasks):
    hospital, _s, exception = contested
    result = services.override(
        exception.pk, actor=planner, expected_version=1, location="DC-WEST", quantity="5", reason_code="expedite", note="n"
    )
    assert (result.run.trigger, result.run.status) == ("override", "succeeded")
    pinned = [a for a in allocations_of(hospital) if a[4] == "pinned"]
    assert pinned == [("DC-WEST", None, "VALVE-10", Decimal("5.000"), "pinned")]


def test_release_above_auto_release_max_value_waits_for_approval(contested, planner, approver, monkeypatch):
    hospital, _s, exception = contested
    from allocation import overrides

    monkeypatch.setattr(
        overrides, "line_settings", lambda lines: {line.pk: overrides.ApprovalSettings(auto_release_max_value=Decimal("100")) for line in lines}
    )
    result = services.release_to_warehouse(exception.pk, actor=planner, expected_version=1)
    assert result.exception.status == "awaiting_approval"
    assert allocations_of(hospital) == [("DC-EAST", None, "VALVE-10", Decimal("10.000"), "reserved")]
    approvals.approve(result.approval.pk, actor=approver)
    assert allocations_of(hospital) == [("DC-EAST", None, "VALVE-10", Decimal("10.000"), "released")]


def test_escalate_dismiss_comment(contested, planner):
    _h, _s, exception = contested
    services.comment(exception.pk, actor=planner, expected_version=1, body="looking")
    services.escalate(exception.pk, actor=planner, expected_version=2, note="need a decision")
    exception.refresh_from_db()
    assert (exception.queue.code, exception.escalation_level, exception.status) == ("escalations", 1, "open")
    with pytest.raises(InvalidAction) as caught:
        services.escalate(exception.pk, actor=planner, expected_version=3)
    assert caught.value.data["field"] == "queue"
    with pytest.raises(InvalidAction) as caught:
        services.dismiss(exception.pk, actor=planner, expected_version=3, reason="")
    assert caught.value.data["field"] == "reason"
    services.dismiss(exception.pk, actor=planner, expected_version=3, reason="duplicate")
    exception.refresh_from_db()
    assert (exception.status, exception.resolution_reason) == ("dismissed", "dismissed: duplicate")
    assert list(ExceptionComment.objects.values_list("body", flat=True)) == ["looking", "Escalated: need a decision"]


def test_actions_on_someone_elses_claim_are_refused(contested, planner, customer_service):
    _h, _s, exception = contested
    services.claim(exception.pk, actor=planner, expected_version=1)
    with pytest.raises(InvalidAction) as caught:
        services.dismiss(exception.pk, actor=customer_service, expected_version=2, reason="no")
    assert caught.value.data["field"] == "assignee"


def test_non_actor_roles_are_refused_by_the_service(contested, approver, finance):
    _h, _s, exception = contested
    for user in (approver, finance):
        with pytest.raises(ActionNotAllowed):
            services.claim(exception.pk, actor=user, expected_version=1)
    exception.refresh_from_db()
    assert exception.version == 1


def test_bulk_claim_dismiss_assign_report_stale_and_skipped(world, planner, customer_service):
    lines = [world.line(world.shop, 1) for _ in range(4)]
    exceptions = [world.exception(line) for line in lines]
    services.claim(exceptions[3].pk, actor=customer_service, expected_version=1)
    result = services.bulk_claim({e.pk: 1 for e in exceptions[:3]} | {exceptions[3].pk: 2}, actor=planner)
    assert (result.done, result.stale, result.skipped) == ([e.pk for e in exceptions[:3]], [], {exceptions[3].pk: "is claimed"})
    result = services.bulk_dismiss({exceptions[0].pk: 1, exceptions[1].pk: 2, exceptions[3].pk: 2}, actor=planner, reason="noise")
    assert (result.done, result.stale, result.skipped) == (
        [exceptions[1].pk], [exceptions[0].pk], {exceptions[3].pk: "claimed by casey_cs"}
    )
    result = services.bulk_assign({exceptions[2].pk: 2}, actor=planner, assignee=customer_service)
    assert result.done == [exceptions[2].pk]
    statuses = list(DecisionException.objects.order_by("pk").values_list("status", "assignee__username", "version"))
    assert statuses == [
        ("claimed", "pat_planner", 2),
        ("dismissed", "pat_planner", 3),
        ("claimed", "casey_cs", 3),
        ("claimed", "casey_cs", 2),
    ]
    assert DecisionException.history.filter(id=exceptions[1].pk).first().history_change_reason == "dismissed: noise"


def test_request_for_an_exception_resolved_meanwhile_can_be_rejected_not_approved(world, planner, approver, recorded_runs):
    world.stock(world.east, 2000)
    line = world.line(world.hospital, 1500, unit_price="10")
    exception = world.exception(line)
    result = services.override(
        exception.pk, actor=planner, expected_version=1, location="DC-EAST", quantity="1500", reason_code="expedite", note="n"
    )
    DecisionException.objects.filter(pk=exception.pk).update(status="resolved", resolution_reason="condition gone")
    from exceptions.errors import ApprovalNotAllowed

    with pytest.raises(ApprovalNotAllowed):
        approvals.approve(result.approval.pk, actor=approver)
    assert Allocation.objects.filter(line=line).count() == 0
    approvals.reject(result.approval.pk, actor=approver, reason="no longer needed")
    assert ApprovalRequest.objects.get().status == ApprovalStatus.REJECTED
    exception.refresh_from_db()
    assert exception.status == "resolved"
