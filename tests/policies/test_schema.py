"""Document validation: every bad field is named by its path."""
import copy

import pytest

from policies.schema import validate_document
from tests.policies.conftest import SPEC_DOCUMENT as VALID


def with_change(change):
    doc = copy.deepcopy(VALID)
    change(doc)
    return doc


def test_the_spec_example_is_valid():
    assert validate_document(VALID) == []


def test_every_setting_at_its_bounds_is_valid():
    doc = with_change(lambda d: d["rules"][0]["settings"].update({
        "weights": {"tier": 0, "urgency": 1.5, "margin": 0, "value": 0, "age": 0, "penalty": 0, "risk": 0.3},
        "urgency_horizon_days": 1, "allow_partial": False, "max_split_locations": 1, "inbound_min_confidence": 1,
        "allow_substitutes": False, "substitute_needs_approval": False, "auto_release_max_value": None,
        "override_approval_min_value": 0, "margin_floor_pct": 100, "stale_feed_minutes": 1, "stale_feed_buffer_pct": 0,
        "priority_class": 9,
    }))
    assert validate_document(doc) == []


@pytest.mark.parametrize(
    "change,field,message",
    [
        (lambda d: d["rules"][1]["settings"].update(colour="red"), "rules[1].settings.colour", "unknown setting."),
        (lambda d: d["rules"][1]["settings"].update(strategy="maybe"), "rules[1].settings.strategy",
         "must be one of win, gain, redistribute, fill, lose; got 'maybe'."),
        (lambda d: d["rules"][1]["settings"].update(priority_class=12), "rules[1].settings.priority_class",
         "must be between 1 and 9; got 12."),
        (lambda d: d["rules"][1]["settings"].update(priority_class=True), "rules[1].settings.priority_class",
         "must be a whole number; got True."),
        (lambda d: d["rules"][1]["settings"].update(allow_partial="yes"), "rules[1].settings.allow_partial",
         "must be true or false; got 'yes'."),
        (lambda d: d["rules"][1]["settings"].update(inbound_min_confidence=1.2), "rules[1].settings.inbound_min_confidence",
         "must be between 0 and 1; got 1.2."),
        (lambda d: d["rules"][1]["settings"].update(max_split_locations=0), "rules[1].settings.max_split_locations",
         "must be between 1 and 1000; got 0."),
        (lambda d: d["rules"][1]["settings"].update(auto_release_max_value=-1), "rules[1].settings.auto_release_max_value",
         "must be between 0 and 1e+12; got -1."),
        (lambda d: d["rules"][1]["settings"].update(stale_feed_buffer_pct=101), "rules[1].settings.stale_feed_buffer_pct",
         "must be between 0 and 100; got 101."),
        (lambda d: d["rules"][1]["settings"].update(weights={"luck": 1}), "rules[1].settings.weights.luck",
         "unknown factor; known: tier, urgency, margin, value, age, penalty, risk."),
        (lambda d: d["rules"][1]["settings"].update(weights={"tier": -0.1}), "rules[1].settings.weights.tier",
         "must be a number between 0 and 1000; got -0.1."),
        (lambda d: d["rules"][2]["scope"].update(colour="red"), "rules[2].scope.colour",
         "unknown scope dimension; known: customer, customer_segment, customer_tier, channel, order_kind, item, item_class, location, region."),
        (lambda d: d["rules"][2]["scope"].update(customer_tier=7), "rules[2].scope.customer_tier",
         "must be a customer tier 1 to 4; got 7."),
        (lambda d: d["rules"].pop(0), "rules", "The global rule (scope {}) is required."),
        (lambda d: d.pop("name"), "name", "is required (non-empty text)."),
        (lambda d: d.update(effective_from="tomorrow"), "effective_from",
         "must be an ISO 8601 date-time with a time zone, e.g. 2026-06-01T00:00:00Z."),
        (lambda d: d.update(extra=1), "extra", "unknown field; expected name, effective_from, rules, protections, quotas."),
        (lambda d: d["protections"][0].pop("sku"), "protections[0].sku", "is required (non-empty text)."),
        (lambda d: d["protections"][0].update(quantity=-1), "protections[0].quantity", "must be a number at least 0; got -1."),
        (lambda d: d["protections"][0].pop("for"), "protections[0].for",
         "is required (an object of dimension to value; {} = every line)."),
        (lambda d: d["protections"][0]["for"].update(planet="mars"), "protections[0].for.planet",
         "unknown scope dimension; known: customer, customer_segment, customer_tier, channel, order_kind, item, item_class, location, region."),
        (lambda d: d["quotas"][0].pop("period"), "quotas[0].period", "is required: one of day, week, month."),
        (lambda d: d["quotas"][0].update(period="year"), "quotas[0].period", "must be one of day, week, month; got 'year'."),
        (lambda d: d["quotas"][0].update(sku="VALVE-10"), "quotas[0].sku", "give exactly one of sku or item_class."),
        (lambda d: d["quotas"][0].pop("item_class"), "quotas[0].sku", "give exactly one of sku or item_class."),
        (lambda d: d["quotas"][0].update(quantity="500"), "quotas[0].quantity", "must be a number at least 0; got '500'."),
    ],
)
def test_invalid_documents_name_the_field(change, field, message):
    assert validate_document(with_change(change)) == [{"field": field, "message": message}]


def test_not_an_object():
    assert validate_document([1]) == [{"field": "", "message": "The document must be a JSON object."}]
