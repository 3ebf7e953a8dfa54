"""The demo data generator, the ``demo`` command and ``demo_users``."""
import datetime as dt
import io
import json
from collections import Counter, defaultdict

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from allocation.demo import DEMO_PASSWORD, generate_events
from allocation.models import (
    Customer,
    InventoryPosition,
    Item,
    Location,
    Order,
    OrderLine,
    Supply,
    SupplyReceipt,
)

BUSINESS_DATE = dt.date(2026, 6, 1)


@pytest.fixture(scope="module")
def full_size():
    """The default demo (20,000 lines), generated once for the module; never ingested in tests."""
    return list(generate_events(seed=7, lines=20000, business_date=BUSINESS_DATE))


def of_type(events, type_):
    return [event["data"] for event in events if event["type"] == type_]


def demand_and_available(events):
    demand, available = Counter(), Counter()
    for order in of_type(events, "order.upserted"):
        for line in order["lines"]:
            demand[line["sku"]] += int(line["quantity"])
    for position in of_type(events, "inventory.snapshot"):
        available[position["sku"]] += int(position["on_hand"]) - int(position.get("quality_hold", "0"))
    return demand, available


def test_same_seed_gives_the_same_events_and_another_seed_different_ones():
    first = list(generate_events(seed=7, lines=300, business_date=BUSINESS_DATE))
    again = list(generate_events(seed=7, lines=300, business_date=BUSINESS_DATE))
    other = list(generate_events(seed=8, lines=300, business_date=BUSINESS_DATE))

    assert first == again
    assert json.dumps(first) != json.dumps(other)
    assert sum(len(order["lines"]) for order in of_type(other, "order.upserted")) == 300


def test_default_size_counts(full_size):
    counts = Counter(event["type"] for event in full_size)
    orders = of_type(full_size, "order.upserted")
    items = of_type(full_size, "item.upserted")

    assert counts["location.upserted"] == 7
    assert counts["lane.upserted"] == 21  # every location to every region
    assert counts["item.upserted"] == 2000
    assert counts["customer.upserted"] == 600
    assert counts["credit.hold_changed"] == 6
    assert counts["inventory.snapshot"] == 2000 * 7
    assert sum(len(order["lines"]) for order in orders) == 20000
    assert {len(order["lines"]) for order in orders} == set(range(1, 9))
    assert 5000 <= len(orders) <= 8000
    assert len({item["item_class"] for item in items}) == 25
    assert sum(1 for item in items if item.get("substitutes")) == 300
    assert counts["supply.received"] == 1000


def test_locations_regions_and_lanes(full_size):
    locations = of_type(full_size, "location.upserted")
    lanes = of_type(full_size, "lane.upserted")

    assert Counter((row["region"], row["kind"]) for row in locations) == {
        ("east", "warehouse"): 2, ("central", "warehouse"): 2, ("west", "warehouse"): 2, ("west", "hub"): 1,
    }
    by_key = {(lane["location"], lane["region"]): lane for lane in lanes}
    assert set(by_key) == {(row["code"], region) for row in locations for region in ("east", "central", "west")}
    assert (by_key["DC-EAST-1", "east"]["transit_days"], by_key["DC-EAST-1", "west"]["transit_days"]) == (1, 5)


def test_about_30_percent_of_items_are_short(full_size):
    demand, available = demand_and_available(full_size)
    skus = [item["sku"] for item in of_type(full_size, "item.upserted")]

    short = sum(1 for sku in skus if demand[sku] > available[sku])
    assert 0.27 <= short / len(skus) <= 0.33


def test_customers_substitutes_and_holds_are_realistic(full_size):
    customers = of_type(full_size, "customer.upserted")
    items = {item["sku"]: item for item in of_type(full_size, "item.upserted")}
    home_regions = {row["code"]: row["region"] for row in of_type(full_size, "location.upserted")}

    assert {row["tier"] for row in customers} == {1, 2, 3, 4}
    assert {row["segment"] for row in customers} == {"healthcare", "manufacturing", "municipal", "construction", "retail"}
    assert all(home_regions[row["home_location"]] == row["region"] for row in customers)
    for item in items.values():
        for substitute in item.get("substitutes", []):
            assert items[substitute["sku"]]["item_class"] == item["item_class"]
            assert substitute["sku"] != item["sku"]
        assert len(item.get("substitutes", [])) <= 2
    holds = [row for row in of_type(full_size, "inventory.snapshot") if "quality_hold" in row]
    assert holds and all(int(row["quality_hold"]) <= int(row["on_hand"]) for row in holds)


def test_order_dates_channels_and_options(full_size):
    orders = of_type(full_size, "order.upserted")

    requested = [dt.date.fromisoformat(order["requested_date"]) for order in orders]
    created = [dt.datetime.fromisoformat(order["created_at"]).date() for order in orders]
    assert min(requested) == BUSINESS_DATE - dt.timedelta(days=5)
    assert max(requested) == BUSINESS_DATE + dt.timedelta(days=25)
    assert min(created) == BUSINESS_DATE - dt.timedelta(days=40)
    assert max(created) == BUSINESS_DATE - dt.timedelta(days=1)
    assert all(order_created < order_requested for order_created, order_requested in zip(created, requested))
    assert {order["channel"] for order in orders} == {"b2b_contract", "field_sales", "ecommerce", "edi"}
    assert any(order["ship_complete"] for order in orders)
    assert any("promised_date" in order for order in orders)
    assert any(line.get("allow_substitute") for order in orders for line in order["lines"])


def test_inbound_supply_and_receipt_history(full_size):
    supply = of_type(full_size, "supply.upserted")
    open_inbound = [row for row in supply if dt.date.fromisoformat(row["eta"]) > BUSINESS_DATE]
    history = {row["ref"]: row for row in supply if dt.date.fromisoformat(row["eta"]) < BUSINESS_DATE}
    receipts = of_type(full_size, "supply.received")

    assert {row["kind"] for row in open_inbound} == {"purchase_order", "asn", "transfer"}
    assert min(row["confidence"] for row in open_inbound) >= 0.4
    assert max(row["confidence"] for row in open_inbound) <= 1.0
    assert min(row["confidence"] for row in open_inbound) < 0.7  # some inbound is too uncertain to count
    assert max(dt.date.fromisoformat(row["eta"]) for row in open_inbound) <= BUSINESS_DATE + dt.timedelta(days=30)
    assert {row["ref"] for row in receipts} == set(history)
    late = [
        row for row in receipts
        if dt.datetime.fromisoformat(row["received_at"]).date() > dt.date.fromisoformat(history[row["ref"]]["eta"])
    ]
    assert 0 < len(late) < len(receipts)


def test_events_reference_only_what_came_before_and_ids_are_unique(full_size):
    seen: dict[str, set[str]] = defaultdict(set)
    keys = Counter((event["source"], event["id"]) for event in full_size)
    assert max(keys.values()) == 1
    for event in full_size:
        data, type_ = event["data"], event["type"]
        if type_ == "location.upserted":
            seen["location"].add(data["code"])
        elif type_ == "lane.upserted":
            assert data["location"] in seen["location"]
        elif type_ == "item.upserted":
            # Strictly before, not just in the same batch: substitution has no cycles to wait on.
            assert all(sub["sku"] in seen["item"] for sub in data.get("substitutes", []))
            seen["item"].add(data["sku"])
        elif type_ == "customer.upserted":
            assert data["home_location"] in seen["location"]
            seen["customer"].add(data["code"])
        elif type_ == "credit.hold_changed":
            assert data["customer"] in seen["customer"]
        elif type_ in ("inventory.snapshot", "supply.upserted"):
            assert data["sku"] in seen["item"] and data["location"] in seen["location"]
            if type_ == "supply.upserted":
                seen["supply"].add(data["ref"])
        elif type_ == "supply.received":
            assert data["ref"] in seen["supply"]
        elif type_ == "order.upserted":
            assert data["customer"] in seen["customer"]
            assert all(line["sku"] in seen["item"] for line in data["lines"])


def test_every_event_passes_ingestion_validation(full_size):
    validation = pytest.importorskip("integrations.validation")

    failures = [(event["id"], check.errors) for event in full_size if (check := validation.validate_envelope(event)).errors]

    assert failures == []


def test_small_demos_have_fewer_items():
    events = list(generate_events(seed=7, lines=300, business_date=BUSINESS_DATE))

    assert len(of_type(events, "item.upserted")) == 120
    assert len(of_type(events, "customer.upserted")) == 12
    assert len(of_type(events, "inventory.snapshot")) == 120 * 7


def test_demo_out_writes_the_events_as_json_lines(tmp_path):
    target = tmp_path / "demo.jsonl"
    output = io.StringIO()

    call_command("demo", "--lines", "300", "--seed", "3", "--out", str(target), stdout=output)

    written = [json.loads(line) for line in target.read_text().splitlines()]
    assert written == list(generate_events(seed=3, lines=300, business_date=BUSINESS_DATE))
    assert output.getvalue().startswith(f"Wrote {len(written)} events to {target}")


@pytest.mark.django_db(transaction=True)
def test_demo_ingests_end_to_end_and_if_empty_leaves_it_alone():
    services = pytest.importorskip("integrations.services")
    if not hasattr(services, "ingest"):
        pytest.skip("ingestion service not installed")
    events = list(generate_events(seed=7, lines=300, business_date=BUSINESS_DATE))
    orders = of_type(events, "order.upserted")

    output = io.StringIO()
    call_command("demo", "--lines", "300", stdout=output)

    assert Location.objects.count() == 7
    assert Item.objects.count() == 120
    assert Customer.objects.count() == 12
    assert Customer.objects.filter(credit_hold=True).count() == 1
    assert Order.objects.count() == len(orders)
    assert OrderLine.objects.count() == 300
    assert InventoryPosition.objects.count() == 120 * 7
    assert Supply.objects.count() == len(of_type(events, "supply.upserted"))
    assert SupplyReceipt.objects.count() == len(of_type(events, "supply.received"))
    report = output.getvalue()
    assert f"Ingested {len(events)} events in " in report
    assert f"(accepted {len(events)}; applied {len(events)}, stale 0, parked 0, failed 0)" in report

    again = io.StringIO()
    call_command("demo", "--lines", "300", "--if-empty", stdout=again)

    assert again.getvalue() == "Orders already exist: demo data not loaded (--if-empty).\n"
    assert Order.objects.count() == len(orders)


def test_demo_users_are_idempotent_with_known_logins(db):
    first = io.StringIO()
    call_command("demo_users", stdout=first)
    token = Token.objects.get(user__username="integration").key
    call_command("demo_users", stdout=io.StringIO())

    assert sorted(User.objects.values_list("username", flat=True)) == [
        "admin", "approver", "approver2", "customer_service", "finance", "integration", "planner", "policy_admin",
    ]
    assert {user.username: sorted(user.groups.values_list("name", flat=True)) for user in User.objects.all()} == {
        "admin": [], "approver": ["approver"], "approver2": ["approver"], "customer_service": ["customer_service"],
        "finance": ["finance"], "integration": ["integration"], "planner": ["planner"],
        "policy_admin": ["policy_admin"],
    }
    assert User.objects.get(username="admin").is_superuser
    assert not User.objects.filter(is_superuser=True).exclude(username="admin").exists()
    assert authenticate(username="approver2", password=DEMO_PASSWORD) is not None
    assert Token.objects.get(user__username="integration").key == token
    lines = first.getvalue().splitlines()
    assert lines[0].split() == ["username", "password", "role"]
    assert lines[1].split() == ["planner", DEMO_PASSWORD, "planner"]
    assert lines[-1] == f"API token for integration: {token}"
