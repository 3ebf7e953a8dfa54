"""Custom factor plugins (allocation.plugins): registration, bulk computation, and plugins that
fail, return nonsense or are slow being skipped with a warning instead of breaking anything."""
from __future__ import annotations

import time

import pytest

from allocation import plugins, plugins_sample
from tests.engine.builders import line
from tests.engine.builders import settings as line_settings

CALLS: list[int] = []


def constant_half(line_) -> float:
    """Half for every line (a test plugin)."""
    CALLS.append(line_.key)
    return 0.5


def raises(line_) -> float:
    raise RuntimeError("the CRM is down")


def too_big(line_) -> float:
    return 1.5


def not_a_number(line_):
    return "high"


def slow(line_) -> float:
    time.sleep(0.03)
    return 0.1


def tier_bulk(line_) -> float:
    return tier_bulk.bulk([line_])[0]


tier_bulk.bulk = lambda lines: {ln.key: (5 - ln.customer_tier) / 4 for ln in lines}  # type: ignore[attr-defined]

HERE = "tests.allocation.test_plugins"


@pytest.fixture
def registered(settings):
    settings.ALLOT_FACTOR_PLUGINS = ",".join(
        f"{name}={HERE}:{name}" for name in ("constant_half", "raises", "too_big", "not_a_number", "slow", "tier_bulk")
    ) + ",broken=tests.allocation.no_such_module:thing"
    plugins.reset()
    CALLS.clear()
    yield
    plugins.reset()


def weighted(*names: str, weight: float = 0.2):
    return line_settings(factor_plugins=tuple((name, weight) for name in names))


def test_the_default_registry_holds_the_samples_with_their_source():
    plugins.reset()
    listed = {entry["name"]: entry for entry in plugins.listing()}

    assert listed["expedite_flag"] == {
        "name": "expedite_flag", "target": "allocation.plugins_sample:expedite_flag", "source": "setting ALLOT_FACTOR_PLUGINS",
        "description": plugins_sample.expedite_flag.__doc__.split("\n\n")[0].replace("\n", " ").strip(), "mode": "per line",
    }
    assert listed["strategic_item"]["mode"] == "bulk"


def test_sample_factors_score_from_the_line(settings):
    settings.ALLOT_STRATEGIC_ITEM_CLASSES = ["valves"]
    assert plugins_sample.expedite_flag(line("SO-1", channel="expedite")) == 1.0
    assert plugins_sample.expedite_flag(line("SO-2", channel="b2b")) == 0.0
    assert plugins_sample.strategic_item(line("SO-3", item_class="valves")) == 1.0
    assert plugins_sample.strategic_item.bulk([line("SO-4"), line("SO-5", item_class="valves")]) == [0.0, 1.0]


def test_a_registration_that_cannot_load_is_reported_not_registered(registered):
    found = plugins.registry()

    assert "broken" not in found.plugins
    assert found.errors == ("broken=tests.allocation.no_such_module:thing: ModuleNotFoundError: No module named 'tests.allocation.no_such_module'",)


def test_only_lines_whose_policy_names_a_plugin_reach_it_once_per_run(registered):
    named = [line("SO-1", settings_=weighted("constant_half")), line("SO-2", settings_=weighted("constant_half"))]
    other = line("SO-3")

    outcome = plugins.compute([named[0], other, named[1]])

    assert CALLS == [named[0].key, named[1].key]
    assert outcome.values == {named[0].key: (("constant_half", 0.5),), named[1].key: (("constant_half", 0.5),)}
    assert outcome.warnings == []


def test_a_bulk_plugin_is_called_once_for_all_its_lines(registered):
    lines = [line("SO-1", tier=1, settings_=weighted("tier_bulk")), line("SO-2", tier=4, settings_=weighted("tier_bulk"))]

    assert plugins.compute(lines).values == {lines[0].key: (("tier_bulk", 1.0),), lines[1].key: (("tier_bulk", 0.25),)}


@pytest.mark.parametrize(
    ("name", "problem", "words"),
    [
        ("raises", "failed", "raised RuntimeError: the CRM is down"),
        ("too_big", "out_of_range", "returned 1.5 for line SO-1/1; a factor is a number in [0, 1]"),
        ("not_a_number", "out_of_range", "returned 'high' for line SO-1/1"),
        ("nowhere", "unregistered", "is named by the policy but not registered"),
    ],
)
def test_a_bad_plugin_is_skipped_whole_with_a_warning_and_the_others_still_count(registered, name, problem, words):
    lines = [line("SO-1", settings_=weighted(name, "constant_half")), line("SO-2", settings_=weighted(name))]

    outcome = plugins.compute(lines)

    assert outcome.values == {lines[0].key: (("constant_half", 0.5),)}
    [warning] = outcome.warnings
    assert (warning["kind"], warning["plugin"], warning["problem"], warning["lines"]) == ("factor_plugin", name, problem, 2)
    assert words in warning["message"]
    assert warning["message"].endswith("skipped for this run (2 lines scored without it).")


def test_a_slow_plugin_stops_at_its_budget(registered):
    lines = [line(f"SO-{n}", settings_=weighted("slow")) for n in range(20)]

    started = time.perf_counter()
    outcome = plugins.compute(lines, budget_seconds=0.05)

    assert time.perf_counter() - started < 0.5  # stopped after about 2 calls, not 20
    assert outcome.values == {}
    assert [(w["plugin"], w["problem"]) for w in outcome.warnings] == [("slow", "slow")]
    assert "took more than its budget of 0.05 s" in outcome.warnings[0]["message"]


def test_unregistered_names_in_a_policy_document_are_errors_naming_the_field(registered):
    document = {"name": "p", "rules": [
        {"scope": {}, "settings": {}},
        {"scope": {"channel": "edi"}, "settings": {"factor_plugins": {"constant_half": 0.1, "crystal_ball": 0.3}}},
    ]}

    assert plugins.document_errors(document) == [{
        "field": "rules[1].settings.factor_plugins.crystal_ball",
        "message": "unknown factor plugin; registered: constant_half, not_a_number, raises, slow, tier_bulk, too_big.",
    }]


@pytest.mark.django_db
def test_importing_a_policy_that_weights_an_unknown_plugin_saves_nothing(registered):
    from policies.errors import PolicyValidationError
    from policies.models import PolicyVersion
    from policies.services import import_document

    before = PolicyVersion.objects.count()
    document = {"name": "p", "rules": [{"scope": {}, "settings": {"factor_plugins": {"crystal_ball": 0.3}}}]}
    with pytest.raises(PolicyValidationError) as refused:
        import_document(document, actor=None)

    assert [e["field"] for e in refused.value.errors] == ["rules[0].settings.factor_plugins.crystal_ball"]
    assert PolicyVersion.objects.count() == before
    document["rules"][0]["settings"]["factor_plugins"] = {"constant_half": 0.3}
    assert import_document(document, actor=None).status == "draft"
