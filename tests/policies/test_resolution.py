"""Resolution: most specific wins, per setting; ties by precedence, then position (policies-v1.md)."""
import itertools
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from policies import schema
from policies.resolution import Dimensions, compile_policy

LINE = Dimensions(
    customer="HOSP-1", customer_segment="healthcare", customer_tier=1, channel="ecommerce", order_kind="order",
    item="VALVE-10", item_class="valves", location="DC-EAST", region="east",
)


def policy(*rules, protections=(), quotas=()):
    return compile_policy(
        {"name": "t", "rules": [{"scope": {}, "settings": {}}, *rules], "protections": list(protections), "quotas": list(quotas)}
    )


def rule(scope, **settings):
    return {"scope": scope, "settings": settings}


def test_more_dimensions_wins_whatever_the_position():
    compiled = policy(
        rule({"customer_segment": "healthcare", "region": "east"}, strategy="fill"),
        rule({"customer": "HOSP-1"}, strategy="win"),
    )
    effective = compiled.resolve(LINE)
    assert effective.values["strategy"] == "fill"
    assert effective.sources["strategy"] == 1


@pytest.mark.parametrize("higher,lower", list(itertools.combinations(schema.DIMENSIONS, 2)))
@pytest.mark.parametrize("higher_first", [True, False])
def test_single_dimension_ties_follow_precedence(higher, lower, higher_first):
    high = rule({higher: LINE.as_dict()[higher]}, strategy="win")
    low = rule({lower: LINE.as_dict()[lower]}, strategy="lose")
    compiled = policy(*([high, low] if higher_first else [low, high]))
    effective = compiled.resolve(LINE)
    assert effective.values["strategy"] == "win"
    assert effective.sources["strategy"] == (1 if higher_first else 2)


def test_two_dimension_tie_compares_the_highest_dimension_first():
    compiled = policy(
        rule({"customer_segment": "healthcare", "region": "east"}, strategy="win"),
        rule({"channel": "ecommerce", "item": "VALVE-10"}, strategy="lose"),
    )
    assert compiled.resolve(LINE).values["strategy"] == "win"
    assert compiled.resolve(LINE).sources["strategy"] == 1


def test_two_dimension_tie_with_equal_highest_compares_the_next():
    compiled = policy(
        rule({"customer": "HOSP-1", "channel": "ecommerce"}, strategy="gain"),
        rule({"customer": "HOSP-1", "region": "east"}, strategy="lose"),
    )
    effective = compiled.resolve(LINE)
    assert (effective.values["strategy"], effective.sources["strategy"]) == ("gain", 1)


def test_same_dimensions_tie_later_position_wins():
    compiled = policy(
        rule({"channel": "ecommerce"}, strategy="win"),
        rule({"channel": "ecommerce"}, strategy="fill"),
    )
    effective = compiled.resolve(LINE)
    assert (effective.values["strategy"], effective.sources["strategy"]) == ("fill", 2)


def test_global_rules_tie_later_position_wins():
    compiled = compile_policy(
        {"name": "t", "rules": [rule({}, priority_class=4), rule({}, priority_class=6)]}
    )
    effective = compiled.resolve(LINE)
    assert (effective.values["priority_class"], effective.sources["priority_class"]) == (6, 1)


def test_each_setting_is_resolved_separately():
    compiled = compile_policy(
        {
            "name": "t",
            "rules": [
                rule({}, strategy="redistribute", priority_class=5),
                rule({"customer_segment": "healthcare"}, strategy="win", priority_class=1),
                rule({"customer_segment": "healthcare", "channel": "ecommerce"}, max_split_locations=1),
            ],
        }
    )
    effective = compiled.resolve(LINE)
    assert effective.values["strategy"] == "win"
    assert effective.values["priority_class"] == 1
    assert effective.values["max_split_locations"] == 1
    assert effective.sources["strategy"] == 1
    assert effective.sources["priority_class"] == 1
    assert effective.sources["max_split_locations"] == 2
    assert effective.sources["urgency_horizon_days"] is None
    assert effective.values["urgency_horizon_days"] == 14


def test_unnamed_settings_take_their_defaults_with_no_source():
    effective = compile_policy({"name": "t", "rules": [rule({})]}).resolve(LINE)
    assert effective.values == schema.defaults()
    assert set(effective.sources.values()) == {None}


def test_rule_not_matching_every_dimension_is_ignored():
    compiled = policy(rule({"customer_segment": "healthcare", "channel": "phone"}, strategy="win"))
    assert compiled.resolve(LINE).values["strategy"] == "redistribute"


def test_unknown_dimension_value_matches_no_rule_naming_it():
    compiled = policy(rule({"region": "east"}, strategy="win"))
    assert compiled.resolve(Dimensions(customer="X")).values["strategy"] == "redistribute"


def test_customer_tier_matches_as_number_or_text():
    compiled = policy(rule({"customer_tier": "1"}, strategy="win"), rule({"customer_tier": 2}, strategy="lose"))
    assert compiled.resolve(Dimensions(customer_tier=1)).values["strategy"] == "win"
    assert compiled.resolve(Dimensions(customer_tier="2")).values["strategy"] == "lose"


def test_weights_named_factors_replace_defaults_others_keep_theirs():
    compiled = policy(rule({"channel": "ecommerce"}, weights={"tier": 0.5, "risk": 0.2}))
    settings = compiled.resolve(LINE).as_settings()
    assert settings.weights.as_dict() == {
        "tier": 0.5, "urgency": 0.25, "margin": 0.15, "value": 0.10, "age": 0.10, "penalty": 0.05, "risk": 0.2
    }
    assert settings.source_of("weights") == 1
    assert settings.source_of("strategy") is None


def test_as_settings_is_typed_and_complete():
    compiled = policy(rule({"customer": "HOSP-1"}, auto_release_max_value=5000, margin_floor_pct=12, inbound_min_confidence=1))
    settings = compiled.resolve(LINE).as_settings()
    assert settings.auto_release_max_value == 5000.0
    assert settings.margin_floor_pct == 12.0
    assert settings.inbound_min_confidence == 1.0
    assert settings.priority_class == 5
    assert settings.allow_partial is True
    assert settings.override_approval_min_value == 10000.0
    assert [name for name, _ in settings.sources] == list(schema.SETTING_NAMES)


def test_resolve_many_memoises_each_distinct_combination():
    compiled = policy(rule({"channel": "ecommerce"}, strategy="fill"))
    other = Dimensions(channel="phone")
    result = compiled.resolve_many([LINE, other, LINE, other, LINE])
    assert set(result) == {LINE, other}
    assert result[LINE] is compiled.resolve(LINE)
    assert result[LINE].values["strategy"] == "fill"
    assert result[other].values["strategy"] == "redistribute"


def test_protections_and_quotas_are_typed_with_their_for_scope():
    compiled = policy(
        protections=[{"sku": "VALVE-10", "location": "DC-EAST", "quantity": 40, "for": {"customer_segment": "healthcare"}}],
        quotas=[{"item_class": "valves", "for": {"channel": "ecommerce"}, "period": "week", "quantity": 500.5}],
    )
    (protection,) = compiled.protections
    (quota,) = compiled.quotas
    assert (protection.sku, protection.location, protection.quantity) == ("VALVE-10", "DC-EAST", Decimal("40"))
    assert protection.matches(LINE) is True
    assert protection.matches(Dimensions(customer_segment="retail")) is False
    assert (quota.sku, quota.item_class, quota.period, quota.quantity) == (None, "valves", "week", Decimal("500.5"))
    assert quota.matches(LINE) is True
    assert quota.applies_to_item("VALVE-99", "valves") is True
    assert quota.applies_to_item("PIPE-1", "pipes") is False
    assert compiled.quotas_for(Dimensions(channel="phone")) == ()
    assert compiled.protections_for(LINE) == (protection,)


# ---- properties -------------------------------------------------------------------------

VALUES = {d: ["a", "b"] for d in schema.DIMENSIONS}
VALUES["customer_tier"] = [1, 2]
VALUES["order_kind"] = ["order", "quote"]
KIND_OF = {"a": "order", "b": "quote"}
SETTING_VALUES = {
    "strategy": st.sampled_from(schema.STRATEGIES),
    "priority_class": st.integers(1, 9),
    "max_split_locations": st.integers(1, 4),
    "allow_partial": st.booleans(),
}
scopes = st.dictionaries(st.sampled_from(schema.DIMENSIONS), st.sampled_from(["a", "b"]), max_size=4).map(
    lambda s: {d: (1 if v == "a" else 2) if d == "customer_tier" else KIND_OF[v] if d == "order_kind" else v for d, v in s.items()}
)
settings_maps = st.fixed_dictionaries({}, optional=SETTING_VALUES)
rules_strategy = st.lists(st.fixed_dictionaries({"scope": scopes, "settings": settings_maps}), max_size=25)
dims_strategy = st.builds(Dimensions, **{d: st.sampled_from(v) for d, v in VALUES.items()})


def reference_resolve(rules, dims):
    """Naive scan: the spec's ordering written out plainly."""
    rank = {d: i for i, d in enumerate(schema.DIMENSIONS)}
    matching = [
        (index, r) for index, r in enumerate(rules)
        if all(str(dims.as_dict()[d]) == str(v) for d, v in r["scope"].items())
    ]

    def key(entry):
        index, r = entry
        named = sorted(rank[d] for d in r["scope"])
        return (len(named), [-i for i in named], index)

    result = {}
    for index, r in sorted(matching, key=key, reverse=True):
        for name, value in r["settings"].items():
            result.setdefault(name, (value, index))
    return result


@hypothesis_settings(max_examples=300, deadline=None)
@given(rules=rules_strategy, dims=dims_strategy)
def test_indexed_resolution_equals_the_plain_reading_of_the_spec(rules, dims):
    all_rules = [{"scope": {}, "settings": {}}, *rules]
    effective = compile_policy({"name": "p", "rules": all_rules}).resolve(dims)
    expected = reference_resolve(all_rules, dims)
    for name in SETTING_VALUES:
        if name in expected:
            assert (effective.values[name], effective.sources[name]) == expected[name]
        else:
            assert (effective.values[name], effective.sources[name]) == (schema.SETTINGS[name].default, None)


@hypothesis_settings(max_examples=300, deadline=None)
@given(rules=rules_strategy, dims=dims_strategy, data=st.data())
def test_adding_a_less_specific_matching_rule_never_changes_a_more_specific_setting(rules, dims, data):
    all_rules = [{"scope": {}, "settings": {}}, *rules]
    before = compile_policy({"name": "p", "rules": all_rules}).resolve(dims)
    dims_values = dims.as_dict()
    named = data.draw(st.lists(st.sampled_from(schema.DIMENSIONS), unique=True, max_size=3))
    new_rule = {"scope": {d: dims_values[d] for d in named}, "settings": data.draw(settings_maps)}
    position = data.draw(st.integers(1, len(all_rules)))
    with_new = [*all_rules[:position], new_rule, *all_rules[position:]]
    after = compile_policy({"name": "p", "rules": with_new}).resolve(dims)
    for name, source in before.sources.items():
        if source is None:
            continue
        if len(all_rules[source]["scope"]) > len(named):
            assert after.values[name] == before.values[name]


# ---- order_kind (issue 15) ---------------------------------------------------------------

QUOTE = Dimensions(**{**LINE.as_dict(), "order_kind": "quote"})


def test_order_kind_rule_matches_quotes_only():
    compiled = policy(rule({"order_kind": "quote"}, priority_class=8))

    assert compiled.resolve(QUOTE).values["priority_class"] == 8
    assert compiled.resolve(LINE).values["priority_class"] == 5  # an order: the default


def test_order_kind_ranks_below_channel_and_above_item():
    by_channel = rule({"channel": "ecommerce"}, strategy="win")
    by_kind = rule({"order_kind": "quote"}, strategy="lose", priority_class=7)
    by_item = rule({"item": "VALVE-10"}, priority_class=2)
    # Written in the order that would win on position alone, so only precedence can decide.
    effective = policy(by_channel, by_item, by_kind).resolve(QUOTE)
    assert (effective.values["strategy"], effective.sources["strategy"]) == ("win", 1)
    effective = policy(by_kind, by_item).resolve(QUOTE)
    assert (effective.values["priority_class"], effective.sources["priority_class"]) == (7, 1)


def test_order_kind_in_the_precedence_list_of_the_spec():
    assert schema.DIMENSIONS == (
        "customer", "customer_segment", "customer_tier", "channel", "order_kind", "item", "item_class", "location", "region",
    )


@pytest.mark.parametrize("value", ["estimate", "", 1, None, "Quote"])
def test_order_kind_scope_value_must_be_order_or_quote(value):
    errors = schema.validate_document({"name": "p", "rules": [{"scope": {}, "settings": {}}, rule({"order_kind": value})]})

    assert [e["field"] for e in errors] == ["rules[1].scope.order_kind"]
    assert errors[0]["message"].startswith("must be one of order, quote")
