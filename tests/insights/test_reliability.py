"""Supplier reliability: known answers on made-up histories, computed backtest, fallback, ATP use."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from allocation.insights import reliability
from allocation.insights.reliability import Receipt

DAY = dt.date(2026, 6, 1)


def receipts(supplier, lates, *, location="WH", kind="purchase_order", start=dt.date(2026, 1, 1), sent=1.0):
    return [Receipt(supplier, location, kind, start + dt.timedelta(days=i), late, sent) for i, late in enumerate(lates)]


def test_a_supplier_late_on_8_of_10_receipts_gets_a_low_on_time_probability():
    table = reliability.fit(receipts("LATE", [3, 0, 5, 2, 7, 1, -1, 4, 2, 6]))
    found = reliability.estimate(table, supplier="LATE", location="WH", kind="purchase_order", minimum=5)
    assert found.level == "supplier+location+kind"
    assert found.receipts == 10
    assert found.probability == pytest.approx(3 / 12)  # (2 on time + 1) / (10 + 2)
    assert found.mean_days_late == pytest.approx(30 / 10)
    assert found.p90_days_late == 6  # nearest rank 9 of [0,0,1,2,2,3,4,5,6,7]


def test_with_two_receipts_there_is_no_estimate():
    table = reliability.fit(receipts("NEW", [0, 0]))
    assert reliability.estimate(table, supplier="NEW", location="WH", kind="purchase_order", minimum=5) is None


def test_backs_off_to_the_supplier_then_to_the_kind():
    history = receipts("S", [0] * 6, location="OTHER") + receipts("T", [4] * 6, kind="asn")
    table = reliability.fit(history)
    by_supplier = reliability.estimate(table, supplier="S", location="WH", kind="purchase_order", minimum=5)
    assert (by_supplier.level, by_supplier.receipts) == ("supplier", 6)
    assert by_supplier.probability == pytest.approx(7 / 8)
    by_kind = reliability.estimate(table, supplier="UNKNOWN", location="WH", kind="asn", minimum=5)
    assert (by_kind.level, by_kind.probability) == ("kind", pytest.approx(1 / 8))


def test_backtest_scores_the_held_out_receipts():
    # 20 receipts, the last 6 held out: the supplier is late on every one, the sent confidence says 1.
    history = receipts("LATE", [2] * 20, sent=1.0)
    quality = reliability.backtest(history, minimum=5)
    assert (quality["train_rows"], quality["holdout_rows"], quality["covered"]) == (14, 6, 6)
    p = 1 / 16  # (0 + 1) / (14 + 2)
    assert quality["brier"] == pytest.approx(round(p**2, 4))
    assert quality["baseline_brier"] == 1.0
    assert quality["mae_days"] == 0.0
    assert quality["calibration"][0] == {"bin": "0.0-0.2", "count": 6, "mean_predicted": round(p, 3), "observed": 0.0}
    active, reason = reliability.judge(quality, rows=20)
    assert active and "Brier" in reason


def test_judge_falls_back_without_data_or_when_worse_than_the_rule():
    assert reliability.judge(reliability.backtest([], minimum=5), rows=0)[0] is False
    # Late all through training, on time on every held-out receipt: far above the maximum Brier.
    quality = reliability.backtest(receipts("TURNED", [5] * 14 + [0] * 6, sent=0.5), minimum=5)
    active, reason = reliability.judge(quality, rows=20)
    assert not active and quality["brier"] == pytest.approx(round((1 - 1 / 16) ** 2, 4)) and "above the maximum" in reason
    # Mostly on time, and the sent confidence (1) was right on every held-out receipt: the model loses to the rule.
    quality = reliability.backtest(receipts("FINE", [0] * 12 + [3] * 2 + [0] * 6, sent=1.0), minimum=5)
    active, reason = reliability.judge(quality, rows=20)
    assert quality["baseline_brier"] == 0.0 and quality["brier"] == pytest.approx(round((3 / 16) ** 2, 4))
    assert not active and "worse than the sent confidence" in reason


@pytest.mark.django_db
def test_train_with_two_receipts_falls_back_and_says_so(make_receipts):
    from allocation.models import Supply

    make_receipts("NEW", "WH", "purchase_order", [0, 9])
    open_supply = Supply.objects.create(
        ref="PO-OPEN", kind="purchase_order", item_id=Supply.objects.first().item_id, location_id=Supply.objects.first().location_id,
        quantity=5, eta=DAY, supplier="NEW", confidence=Decimal("0.900"),
    )
    version = reliability.train(as_of=DAY)
    assert version.status == "fallback"
    assert "only 2 receipts" in version.reason
    estimate = open_supply.estimate
    assert (estimate.confidence_source, estimate.confidence_used, estimate.on_time_probability) == ("sent", 0.9, None)


@pytest.mark.django_db
def test_an_active_model_sets_the_confidence_runs_count_inbound_with(make_receipts, settings):
    from allocation.loading import load_input
    from allocation.models import Supply
    from allocation.policy_bridge import active_context

    make_receipts("LATE", "WH", "purchase_order", [3, 0, 5, 2, 7, 1, -1, 4, 2, 6] * 3)
    make_receipts("GOOD", "WH", "purchase_order", [0, -1, 0, 0, 0, 0, 1, 0, 0, 0] * 3)
    first = Supply.objects.first()
    late = Supply.objects.create(ref="PO-LATE", kind="purchase_order", item_id=first.item_id, location_id=first.location_id,
                                 quantity=5, eta=DAY, supplier="LATE", confidence=1)
    good = Supply.objects.create(ref="PO-GOOD", kind="purchase_order", item_id=first.item_id, location_id=first.location_id,
                                 quantity=5, eta=DAY, supplier="GOOD", confidence=Decimal("0.5"))
    version = reliability.train(as_of=DAY)
    assert version.status == "active", version.reason
    assert version.quality["brier"] < version.quality["baseline_brier"]
    late.refresh_from_db()
    assert late.estimate.confidence_source == "model"
    assert late.estimate.confidence_used == pytest.approx(7 / 32, abs=1e-3)  # (6 + 1) / (30 + 2)
    assert good.estimate.confidence_used == pytest.approx(28 / 32, abs=1e-3)

    inbound = {i.ref: i.confidence for i in load_input(as_of=DAY, context=active_context()).engine_input.inbound}
    assert inbound == {"PO-LATE": pytest.approx(0.219), "PO-GOOD": pytest.approx(0.875)}
    settings.ALLOT_RELIABILITY_CONFIDENCE = False
    inbound = {i.ref: i.confidence for i in load_input(as_of=DAY, context=active_context()).engine_input.inbound}
    assert inbound == {"PO-LATE": 1.0, "PO-GOOD": 0.5}


@pytest.mark.django_db
def test_models_command_prints_json(make_receipts, capsys):
    import json

    from django.core.management import call_command

    make_receipts("LATE", "WH", "purchase_order", [3, 0, 5, 2, 7, 1, -1, 4, 2, 6] * 3)
    call_command("models", "--json")
    report = json.loads(capsys.readouterr().out)
    model = report["models"][0]
    assert (model["name"], model["version"], model["training_rows"], model["holdout_rows"]) == ("supplier_reliability", 1, 30, 9)
    assert model["quality"]["brier"] is not None and model["status"] in ("active", "fallback")
    call_command("models", "--json", "--no-train")
    assert json.loads(capsys.readouterr().out)["models"][0]["version"] == 1


@pytest.mark.django_db
def test_the_supply_list_and_models_screen_say_which_confidence_counted(make_receipts, as_planner):
    from allocation.models import Supply

    make_receipts("LATE", "WH", "purchase_order", [3, 0, 5, 2, 7, 1, -1, 4, 2, 6] * 3)
    first = Supply.objects.first()
    Supply.objects.create(ref="PO-LATE", kind="purchase_order", item_id=first.item_id, location_id=first.location_id,
                          quantity=5, eta=DAY, supplier="LATE", confidence=1)
    Supply.objects.create(ref="PO-NOBODY", kind="asn", item_id=first.item_id, location_id=first.location_id,
                          quantity=5, eta=DAY, supplier="NOBODY", confidence=Decimal("0.7"))
    version = reliability.train(as_of=DAY)
    assert version.status == "active", version.reason
    html = as_planner.get("/supply/?status=open").content.decode()
    late_row = html.split('data-key="PO-LATE"')[1].split("</tr>")[0]
    assert "model 0.22" in late_row
    nobody_row = html.split('data-key="PO-NOBODY"')[1].split("</tr>")[0]
    assert "0.70" in nobody_row and "sent" in nobody_row
    screen = as_planner.get("/insights/models/").content.decode()
    assert 'data-status="active"' in screen and str(version.quality["brier"]) in screen and "PO-LATE" in screen


@pytest.mark.django_db
def test_the_models_api_gives_the_latest_version_to_planners_only(make_receipts, api_client_for, planner, finance):
    make_receipts("LATE", "WH", "purchase_order", [3, 0, 5, 2, 7, 1, -1, 4, 2, 6] * 3)
    reliability.train(as_of=DAY)
    second = reliability.train(as_of=DAY)
    assert api_client_for(finance).get("/api/v1/models").status_code == 403
    body = api_client_for(planner).get("/api/v1/models").json()
    (model,) = body["models"]
    assert (model["name"], model["version"], model["status"]) == ("supplier_reliability", second.version, second.status)
    assert model["quality"]["brier"] == second.quality["brier"] and model["estimates"] == 0
