"""Safe actions (issue 9, item 5): a take-over asks for confirmation and a reason, release to
warehouse asks for confirmation on a tier-1 customer's line or above auto_release_max_value,
and a refused form keeps what was typed."""
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from allocation import overrides
from allocation.models import Allocation
from exceptions import safety, services
from exceptions.errors import InvalidAction
from exceptions.models import DecisionException, ExceptionComment

pytestmark = pytest.mark.django_db


def states(line):
    return sorted(Allocation.objects.filter(line=line).values_list("state", flat=True))


@pytest.fixture
def tier1(world):
    world.stock(world.east, 40)
    line = world.line(world.hospital, 20, unit_price="10")  # tier 1, value 200
    world.allocate(line, world.east, 10)
    return line, world.exception(line)


@pytest.fixture
def retail(world):
    world.stock(world.west, 40)
    line = world.line(world.shop, 30, unit_price="10")  # tier 3, value 300
    world.allocate(line, world.west, 30)
    return line, world.exception(line)


def threshold(monkeypatch, value):
    monkeypatch.setattr(
        overrides, "line_settings",
        lambda lines: {line.pk: overrides.ApprovalSettings(auto_release_max_value=Decimal(value)) for line in lines},
    )


def test_tier1_release_asks_for_confirmation(tier1, planner):
    line, case = tier1
    assert safety.release_confirmation(line) == "Hospital is a tier-1 customer"
    with pytest.raises(InvalidAction) as caught:
        services.release_to_warehouse(case.pk, actor=planner, expected_version=1, confirmed=False)
    assert caught.value.data["field"] == "confirm" and "tier-1" in caught.value.message
    assert states(line) == ["reserved"]
    services.release_to_warehouse(case.pk, actor=planner, expected_version=1, confirmed=True)
    assert states(line) == ["released"]


def test_release_below_the_threshold_of_a_small_customer_does_not_ask(retail, planner, monkeypatch):
    threshold(monkeypatch, "1000")
    line, case = retail
    assert safety.release_confirmation(line) == ""
    services.release_to_warehouse(case.pk, actor=planner, expected_version=1, confirmed=False)
    assert states(line) == ["released"]


def test_release_above_auto_release_max_value_asks_then_waits_for_approval(retail, planner, monkeypatch):
    threshold(monkeypatch, "100")
    line, case = retail
    assert "above the 100.00 released without approval" in safety.release_confirmation(line)
    with pytest.raises(InvalidAction):
        services.release_to_warehouse(case.pk, actor=planner, expected_version=1, confirmed=False)
    result = services.release_to_warehouse(case.pk, actor=planner, expected_version=1, confirmed=True)
    assert result.exception.status == "awaiting_approval" and states(line) == ["reserved"]


def test_release_screen_asks_and_keeps_the_case_until_confirmed(tier1, planner):
    line, case = tier1
    client = Client()
    client.force_login(planner)
    page = client.get(f"/exceptions/{case.pk}/").content.decode()
    form = page.split('id="form-release-to-warehouse"')[1].split("</form>")[0]
    assert 'name="confirm" value="1" required' in form and "although Hospital is a tier-1 customer" in form
    url = reverse("exceptions:exception_action", args=[case.pk, "release_to_warehouse"])
    refused = client.post(url, {"version": 1})
    assert refused.status_code == 400 and "Confirm the release to the warehouse" in refused.content.decode()
    assert states(line) == ["reserved"]
    assert client.post(url, {"version": 1, "confirm": "1"}).status_code == 302
    assert states(line) == ["released"]


def test_release_screen_of_a_small_line_has_no_confirmation(retail, planner, monkeypatch):
    threshold(monkeypatch, "1000")
    _line, case = retail
    client = Client()
    client.force_login(planner)
    form = client.get(f"/exceptions/{case.pk}/").content.decode().split('id="form-release-to-warehouse"')[1].split("</form>")[0]
    assert 'name="confirm"' not in form


@pytest.fixture
def claimed(world, planner):
    case = world.exception(world.line(world.hospital, 5))
    services.claim(case.pk, actor=planner, expected_version=1)
    return case


def test_take_over_screen_asks_for_confirmation_and_reason(claimed, planner, customer_service):
    client = Client()
    client.force_login(customer_service)
    page = client.get(f"/exceptions/{claimed.pk}/").content.decode()
    form = page.split('id="form-take-over"')[1].split("</form>")[0]
    assert 'name="reason"' in form and "required" in form and 'name="take_over" value="1" required' in form
    url = reverse("exceptions:exception_action", args=[claimed.pk, "claim"])
    # No reason: refused, nothing changed.
    refused = client.post(url, {"version": 2, "take_over": "1", "reason": ""})
    assert refused.status_code == 400 and "Say why you take this claim over" in refused.content.decode()
    # A reason but no confirmation: refused, and the reason typed is kept.
    unconfirmed = client.post(url, {"version": 2, "reason": "customer on the phone"}).content.decode()
    assert 'value="customer on the phone"' in unconfirmed and '<details id="take-over" class="take-over" open>' in unconfirmed
    assert DecisionException.objects.get(pk=claimed.pk).assignee == planner
    assert client.post(url, {"version": 2, "take_over": "1", "reason": "customer on the phone"}).status_code == 302
    case = DecisionException.objects.get(pk=claimed.pk)
    assert case.assignee == customer_service
    assert case.history.first().history_change_reason == "taken over by casey_cs from pat_planner: customer on the phone"
    assert ExceptionComment.objects.get(exception=case).body == "Took over the claim from pat_planner: customer on the phone"


@pytest.mark.parametrize(
    ("action", "posted", "kept"),
    [
        ("defer", {"promised_date": "2020-01-01", "reason": "supplier slipped"}, ['value="supplier slipped"', 'value="2020-01-01"']),
        ("dismiss", {"reason": "x" * 301}, ['value="' + "x" * 301 + '"']),
        ("split", {"part-0-location": "DC-EAST", "part-0-quantity": "3", "note": "two docks", "reason_code": "expedite"},
         ['value="DC-EAST"', 'value="two docks"', '<option value="expedite" selected>']),
        ("override", {"option": "VALVE-10|DC-EAST|", "quantity": "-1", "note": "rush", "reason_code": "expedite"},
         ['value="rush"']),
        ("comment", {"body": ""}, []),
    ],
)
def test_a_refused_form_keeps_what_was_typed(world, planner, action, posted, kept):
    world.stock(world.east, 40)
    case = world.exception(world.line(world.shop, 5))
    client = Client()
    client.force_login(planner)
    response = client.post(reverse("exceptions:exception_action", args=[case.pk, action]), {"version": 1, **posted})
    assert response.status_code == 400
    html = response.content.decode()
    for text in kept:
        assert text in html, text
    assert DecisionException.objects.get(pk=case.pk).version == 1


def test_split_parts_pick_locations_and_inbound_from_the_data(world, planner):
    import datetime as dt

    world.stock(world.east, 40)
    world.inbound("PO-77", world.west, 10, dt.date(2026, 6, 9))
    case = world.exception(world.line(world.shop, 5))
    client = Client()
    client.force_login(planner)
    html = client.get(f"/exceptions/{case.pk}/").content.decode()
    assert 'name="part-0-location" aria-label="Part 0 location" size="10" list="location-choices"' in html
    assert '<datalist id="location-choices"><option value="DC-EAST"></option><option value="DC-WEST"></option></datalist>' in html
    supply = html.split('<datalist id="supply-choices">')[1].split("</datalist>")[0]
    assert '<option value="PO-77">DC-WEST · arriving 2026-06-09' in supply
