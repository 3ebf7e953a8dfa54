"""Policy test helpers: the sample documents and a draft built through the services."""
import copy
import json
from pathlib import Path

import pytest

from policies import services

VALVES_PATH = Path(__file__).resolve().parent.parent / "data" / "scenarios" / "valves.policy.json"
SPEC_DOCUMENT = {
    "name": "default",
    "effective_from": "2026-06-01T00:00:00Z",
    "rules": [
        {"scope": {}, "settings": {"strategy": "redistribute", "priority_class": 5}},
        {"scope": {"customer_segment": "healthcare"}, "settings": {"strategy": "win", "priority_class": 1}},
        {"scope": {"channel": "ecommerce"}, "settings": {"strategy": "fill"}},
        {"scope": {"channel": "ecommerce", "region": "west"}, "settings": {"max_split_locations": 1}},
    ],
    "protections": [{"sku": "VALVE-10", "location": "DC-EAST", "quantity": 40, "for": {"customer_segment": "healthcare"}}],
    "quotas": [{"item_class": "valves", "for": {"channel": "ecommerce"}, "period": "week", "quantity": 500}],
}


@pytest.fixture
def valves_document():
    return json.loads(VALVES_PATH.read_text())


@pytest.fixture
def spec_document():
    return copy.deepcopy(SPEC_DOCUMENT)


@pytest.fixture
def draft(policy_admin, spec_document):
    """A draft of the spec's example document, imported by the policy admin."""
    return services.import_document(spec_document, actor=policy_admin)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Personas are created per test; the default hasher makes that the slowest part of the suite."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
