"""The engine's depth outputs persisted and shown (issue 15): shortfall reasons and projected
date on the decision log, the Why, order and run pages and the API; the price of fairness on the
run; factor plugins in a real run (a failing one is a warning and a case, not a failed run).

The engine's own depth work is on another branch: these tests wrap the real engine's result with
the values its interface promises (docs in /allocation/depth.py), so they check everything
downstream of the engine, and keep doing so once the depth engine is merged.
"""
from __future__ import annotations

import datetime as dt
from collections import namedtuple
from decimal import Decimal

import pytest
from django.urls import reverse

from allocation import engine as engine_module
from allocation.engine import types as et
from allocation.models import AllocationRun, LineDecisionCurrent
from allocation.services import run_full
from tests.runs.test_quotes import MASTER, order

pytestmark = pytest.mark.django_db

Reason = namedtuple("Reason", "code quantity subject")
Price = namedtuple("Price", "strategy priority_class share_mode lines rank_fill fill price")
PROJECTED = dt.date(2026, 6, 12)


class Deep:
    """An engine decision with the depth fields the interface adds (delegates the rest)."""

    def __init__(self, decision, **extra):
        self._decision = decision
        self.__dict__.update(extra)

    def __getattr__(self, name):
        return getattr(self._decision, name)


class DeepResult:
    def __init__(self, result, lines, fairness):
        self.lines, self.exceptions, self.fairness = tuple(lines), result.exceptions, fairness


def reason_json(reason):
    return {"code": reason.code, "quantity": format(reason.quantity.normalize(), "f"),
            "text": f"{format(reason.quantity.normalize(), 'f')} went to lines ranked higher: {reason.subject}"}


@pytest.fixture
def deep_engine(monkeypatch):
    """The real engine, its short lines given a shortfall reason and a projected date, and one
    class priced (what the depth engine returns)."""
    real = engine_module.allocate

    def allocate(engine_input):
        result = real(engine_input)
        lines = []
        for decision in result.lines:
            if decision.shortfall > 0:
                reason = Reason("taken_by_higher_rank", decision.shortfall, "Q-1/1")
                reason = type("R", (), {"as_json": lambda self, r=reason: reason_json(r)})()
                lines.append(Deep(decision, shortfall_reasons=(reason,), projected_date=PROJECTED))
            else:
                lines.append(decision)
        return DeepResult(result, lines, (Price("redistribute", 5, "pro_rata", 2, 0.8, 0.7, 0.1),))

    monkeypatch.setattr(engine_module, "allocate", allocate)


@pytest.fixture
def short_book(ingest_events, deep_engine):
    """Quote Q-1 (tier 1) takes 10 of 20 on hand; order SO-1 (tier 4) gets 10 of 15."""
    ingest_events([*MASTER, order("q-1", "Q-1", "BIG", "10", kind="quote"), order("o-1", "SO-1", "SMALL", "15")])
    run = run_full(as_of=dt.date(2026, 6, 1))
    assert run.status == "succeeded", run.error
    return run


def so1_log():
    return LineDecisionCurrent.objects.select_related("log").get(line__order__number="SO-1").log


def test_shortfall_reasons_and_projected_date_are_stored_on_the_decision_log(short_book):
    log = so1_log()
    assert log.shortfall == Decimal(5)
    assert log.shortfall_reasons == [{"code": "taken_by_higher_rank", "quantity": "5", "text": "5 went to lines ranked higher: Q-1/1"}]
    assert log.projected_date == PROJECTED
    covered = LineDecisionCurrent.objects.select_related("log").get(line__order__number="Q-1").log
    assert (covered.shortfall_reasons, covered.projected_date) == ([], None)


def test_the_run_records_the_price_of_fairness(short_book):
    run = AllocationRun.objects.get(pk=short_book.pk)
    assert run.price_of_fairness == {
        "classes": [{"strategy": "redistribute", "priority_class": 5, "share_mode": "pro_rata", "lines": 2,
                     "rank_fill": 0.8, "fill": 0.7, "price": 0.1}],
        "lines": 2, "price": 0.1,
    }


def test_why_order_and_run_pages_show_them(short_book, client, planner):
    client.force_login(planner)

    why = client.get(reverse("allocation:line_why", args=["SO-1", 1])).content.decode()
    assert '<tr data-reason="taken_by_higher_rank"><td>Taken by higher-ranked lines</td><td class="num">5</td><td>5 went to lines ranked higher: Q-1/1</td></tr>' in why
    assert "<strong>2026-06-12</strong>" in why
    assert '<tr data-plugin="expedite_flag"><td><code>expedite_flag</code></td><td><code>allocation.plugins_sample:expedite_flag</code></td><td>setting ALLOT_FACTOR_PLUGINS</td>' in why

    page = client.get(reverse("allocation:order_detail", args=["SO-1"])).content.decode()
    assert '<td data-projected="1">2026-06-12</td>' in page
    quote = client.get(reverse("allocation:order_detail", args=["Q-1"])).content.decode()
    assert '<td data-projected="1">—</td>' in quote
    assert '<dd id="order-kind">Quote · expires' in quote

    run_page = client.get(reverse("allocation:run_detail", args=[short_book.pk])).content.decode()
    assert "Price of fairness" in run_page
    assert 'Run: <strong>10.0%</strong> over 2 lines' in run_page
    assert '<td class="num">80.0%</td><td class="num">70.0%</td><td class="num">10.0%</td>' in run_page


def test_the_api_gives_them(short_book, api_client_for, planner):
    client = api_client_for(planner)

    decision = client.get("/api/v1/lines/SO-1/1/decision").json()["decision"]
    assert decision["shortfall_reasons"][0]["code"] == "taken_by_higher_rank"
    assert decision["projected_date"] == "2026-06-12"
    run = client.get(f"/api/v1/runs/{short_book.pk}").json()
    assert (run["price_of_fairness"]["price"], run["warnings"]) == (0.1, [])
    assert client.get("/api/v1/orders/Q-1").json()["kind"] == "quote"


def test_promise_changed_carries_the_projected_date(short_book, planner):
    from allocation.models import OrderLine
    from allocation.overrides import defer_promise
    from integrations.models import OutboxMessage

    line = OrderLine.objects.get(order__number="SO-1", line=1)
    defer_promise(line, dt.date(2026, 6, 15), actor=planner, reason="late PO")

    assert OutboxMessage.objects.get(type="promise.changed").payload["projected_date"] == "2026-06-12"


# --- factor plugins in a run ---------------------------------------------------------------------


def failing_factor(line) -> float:
    raise ValueError("no score for " + line.order)


@pytest.fixture
def failing_plugin(settings):
    from allocation import plugins

    settings.ALLOT_FACTOR_PLUGINS = "expedite_flag=allocation.plugins_sample:expedite_flag,failing=tests.runs.test_depth_outputs:failing_factor"
    plugins.reset()
    yield
    plugins.reset()


def test_a_failing_plugin_is_a_run_warning_and_one_case_and_the_run_goes_on(ingest_events, failing_plugin, client, planner):
    from exceptions.models import DecisionException
    from policies.services import import_document

    import_document({"name": "with factors", "rules": [
        {"scope": {}, "settings": {"factor_plugins": {"failing": 0.3, "expedite_flag": 0.1}}},
    ]}, actor=None, activate=True)
    ingest_events([*MASTER, order("o-1", "SO-1", "SMALL", "15")])

    first = run_full(as_of=dt.date(2026, 6, 1))
    second = run_full(as_of=dt.date(2026, 6, 1))

    assert (first.status, second.status) == ("succeeded", "succeeded")
    [warning] = AllocationRun.objects.get(pk=second.pk).warnings
    assert (warning["plugin"], warning["problem"], warning["lines"]) == ("failing", "failed", 1)
    assert "raised ValueError: no score for SO-1" in warning["message"]
    case = DecisionException.objects.get(type="factor_plugin_failed")  # one, not one per run
    assert (case.key, case.status, case.details["plugin"]) == ("factor_plugin_failed:failing", "open", "failing")
    client.force_login(planner)
    page = client.get(reverse("allocation:run_detail", args=[second.pk])).content.decode()
    assert '<li data-plugin="failing">Factor plugin failing raised ValueError: no score for SO-1' in page


needs_depth_engine = pytest.mark.skipif(
    "plugin_factors" not in et.Line.__dataclass_fields__, reason="the depth engine (branch depth) is not merged yet"
)


@needs_depth_engine
def test_plugin_values_reach_the_engine_and_the_logged_factors(ingest_events):
    from policies.services import import_document

    import_document({"name": "expedite", "rules": [
        {"scope": {}, "settings": {"factor_plugins": {"expedite_flag": 0.5}}},
    ]}, actor=None, activate=True)
    events = [*MASTER, order("o-1", "SO-1", "SMALL", "15")]
    events[-1]["data"]["channel"] = "expedite"
    ingest_events(events)
    assert run_full(as_of=dt.date(2026, 6, 1)).status == "succeeded"

    factors = {f["name"]: f for f in so1_log().factors}
    assert (factors["expedite_flag"]["value"], factors["expedite_flag"]["weight"]) == (1.0, 0.5)


@needs_depth_engine
def test_loading_passes_pack_size_and_order_kind(ingest_events):
    from allocation.loading import load_input
    from allocation.models import Item
    from allocation.policy_bridge import active_context

    ingest_events([*MASTER, order("q-1", "Q-1", "BIG", "10", kind="quote")])
    Item.objects.filter(sku="WIDGET").update(pack_size=6)

    loaded = load_input(as_of=dt.date(2026, 6, 1), context=active_context())
    assert [item.pack_size for item in loaded.engine_input.items] == [Decimal(6)]
    assert [line.order_kind for line in loaded.engine_input.lines] == ["quote"]


@needs_depth_engine
def test_the_depth_engine_outputs_are_persisted_as_they_come(ingest_events, client, planner):
    """No wrapper: pro_rata fair share between two lines of one class, 20 for 10 + 30."""
    from policies.services import import_document

    import_document({"name": "fair", "rules": [{"scope": {}, "settings": {"share_mode": "pro_rata"}}]}, actor=None, activate=True)
    ingest_events([*MASTER, order("o-1", "SO-1", "SMALL", "30"), order("o-2", "SO-2", "BIG", "10")])
    run = run_full(as_of=dt.date(2026, 6, 1))
    assert run.status == "succeeded", run.error

    run.refresh_from_db()
    [entry] = run.price_of_fairness["classes"]
    assert (entry["strategy"], entry["priority_class"], entry["share_mode"], entry["lines"]) == ("redistribute", 5, "pro_rata", 2)
    assert run.price_of_fairness["price"] == entry["price"] == pytest.approx(entry["rank_fill"] - entry["fill"], abs=1e-6)
    log = so1_log()
    assert sum(Decimal(r["quantity"]) for r in log.shortfall_reasons) == log.shortfall > 0
    assert all(r["text"] for r in log.shortfall_reasons)
    client.force_login(planner)
    why = client.get(reverse("allocation:line_why", args=["SO-1", 1])).content.decode()
    assert all(f'data-reason="{r["code"]}"' in why for r in log.shortfall_reasons)


def test_a_simulation_shows_what_fairness_costs_before_approval(short_book, client, policy_admin):
    from allocation.services import simulate
    from policies.services import import_document

    draft = import_document({"name": "fair", "rules": [{"scope": {}, "settings": {"share_mode": "pro_rata"}}]}, actor=None)
    run = simulate(draft, as_of=dt.date(2026, 6, 1))

    assert run.status == "succeeded", run.error
    payload = run.simulation_result.payload["price_of_fairness"]
    assert payload["draft"]["price"] == payload["active"]["price"] == 0.1  # the wrapped engine prices every run
    client.force_login(policy_admin)
    page = client.get(reverse("allocation:simulation_status", args=[run.pk])).content.decode()
    assert "10.0% now → <strong>10.0%</strong> with this draft" in page
    assert 'data-class="redistribute-5">redistribute class 5 (pro_rata, 2 lines): fill 80.0% in rank mode, 70.0% shared, price 10.0%' in page
