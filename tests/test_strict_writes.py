"""Every write endpoint of the API, walked from the OpenAPI schema (issue 8, strict input).

The operations come from drf-spectacular's schema at collection time, so a new write endpoint
is walked without touching this file; a cross-check against the URL conf makes sure no DRF
view with a write method is missing from the schema. Each operation is called, as a user of
a role allowed to call it, with an otherwise valid body plus

- an unknown field: 400, and the answer names the field;
- every value replaced by a string holding NUL, or an unpaired surrogate: a 4xx;

and the business data (every row of the allocation, policies, exceptions and integrations
apps, history included) must be unchanged afterwards. Event ingestion answers per event
(202 with the rejected ones named, valid ones beside them kept, issue 8 deliverable 1), so
there only "no 5xx" applies here; its own strictness is tested in tests/integrations.
"""
from __future__ import annotations

import copy
import json
import re
import warnings

import pytest
from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from config import roles
from tests.policies.conftest import SPEC_DOCUMENT

pytestmark = pytest.mark.django_db

UNKNOWN = "zz_unknown_field"
HOSTILE_TEXT = {"nul": "bad\x00value", "surrogate": "bad\ud800value"}
WRITE_METHODS = ("post", "put", "patch", "delete")
# Answers per event rather than per request (see the module docstring).
PER_EVENT_ENDPOINTS = {("post", "/api/v1/events")}
# The apps whose rows must not change when a write is refused.
DOMAIN_APPS = ("allocation", "policies", "exceptions", "integrations")
# Who calls an operation: the first of these roles the endpoint allows.
ROLE_PREFERENCE = (roles.PLANNER, roles.POLICY_ADMIN, roles.APPROVER, roles.CUSTOMER_SERVICE, roles.INTEGRATION, roles.FINANCE)

EXCEPTION_ACTION_BODIES = {
    "claim": {},
    "release": {},
    "assign": {"assignee": "pat_planner"},
    "accept": {},
    "override": {"location": "DC-EAST", "quantity": "5", "reason_code": "expedite", "note": "n"},
    "split": {"parts": [{"location": "DC-EAST", "quantity": "3"}], "reason_code": "expedite", "note": "n"},
    "defer": {"promised_date": "2026-06-20", "reason": "late PO"},
    "hold": {"note": "n"},
    "release_to_warehouse": {"note": "n"},
    "escalate": {"note": "n"},
    "dismiss": {"reason": "noise"},
    "comment": {"body": "hello"},
}


def write_operations() -> list[tuple[str, str, dict[str, str]]]:
    """(method, path template, path parameters) of every write in the schema, with parameters
    given as an enum or an alternation pattern (``^claim|assign$``) expanded to one per value."""
    from drf_spectacular.generators import SchemaGenerator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for template, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in WRITE_METHODS:
                continue
            choices: list[dict[str, str]] = [{}]
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "path":
                    continue
                described = parameter.get("schema") or {}
                pattern = described.get("pattern", "")
                if described.get("enum"):
                    alternatives = list(described["enum"])
                elif "|" in pattern:
                    alternatives = pattern.strip("^$").split("|")
                else:
                    alternatives = [None]
                choices = [{**chosen, parameter["name"]: value} for chosen in choices for value in alternatives]
            operations.extend((method, template, chosen) for chosen in choices)
    return sorted(operations, key=lambda op: (op[1], op[0], sorted((k, v or "") for k, v in op[2].items())))


OPERATIONS = write_operations()


def operation_id(operation) -> str:
    method, template, chosen = operation
    return f"{method.upper()} {template}" + "".join(f"[{v}]" for v in chosen.values() if v)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Seven personas per test: the default hasher would dominate the walk's time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def scene(personas):
    """Something for every path parameter: an exception, an approval, policy versions."""
    from exceptions import approvals
    from policies import services as policy_services
    from tests.exceptions.conftest import World

    world = World()
    world.stock(world.east, 40)
    line = world.line(world.shop, 10, unit_price="10")
    world.allocate(line, world.east, 5)
    exception = world.exception(line)
    approval = approvals.request_approval(kind="override", subject=exception, actor=personas[roles.PLANNER], note="please", payload={})
    draft = policy_services.import_document(copy.deepcopy(SPEC_DOCUMENT), actor=personas[roles.POLICY_ADMIN])
    return {"exceptions": exception.pk, "cases": exception.pk, "approvals": approval.pk, "policies": draft.pk,
            "exception_version": exception.version}


def concrete_path(template: str, chosen: dict[str, str], scene: dict) -> str:
    collection = template.removeprefix("/api/v1/").split("/")[0]

    def fill(match: re.Match) -> str:
        name = match.group(1)
        if chosen.get(name):
            return chosen[name]
        return str(scene.get(collection, 1))

    return re.sub(r"\{(\w+)\}", fill, template)


def base_body(template: str, chosen: dict[str, str], scene: dict) -> dict:
    """An otherwise valid body for the operation ({} for one this table does not know yet)."""
    version = scene["exception_version"]
    if template == "/api/v1/runs":
        return {"items": ["VALVE-10"]}
    if template in ("/api/v1/exceptions/{id}/{action}", "/api/v1/cases/{id}/{action}"):
        return {"version": version, **EXCEPTION_ACTION_BODIES[chosen["action"]]}
    if template in ("/api/v1/exceptions/bulk/{action}", "/api/v1/cases/bulk/{action}"):
        return {"items": [{"id": scene["exceptions"], "version": version}], "reason": "noise", "assignee": "pat_planner"}
    if template.startswith("/api/v1/approvals/") or template.endswith(("/approve", "/reject")):
        return {"reason": "fine"}
    if template.endswith(("/submit", "/rollback")):
        return {"note": "n"}
    if template == "/api/v1/policies/import":
        return copy.deepcopy(SPEC_DOCUMENT)
    if template == "/api/v1/events":
        return {"events": [{"id": "walk-1", "type": "location.upserted", "source": "erp", "occurred_at": "2026-06-01T08:00:00Z",
                            "data": {"code": "DC-X", "name": "X", "region": "east", "kind": "warehouse"}}]}
    return {}


def replace_leaves(value, text: str):
    """The body with every string and number replaced by ``text`` (keys kept)."""
    if isinstance(value, dict):
        return {key: replace_leaves(item, text) for key, item in value.items()}
    if isinstance(value, list):
        return [replace_leaves(item, text) for item in value]
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return text
    return value


def domain_rows() -> dict[str, list]:
    """Every row of the domain apps' models (history included), for a before/after comparison."""
    rows = {}
    for model in apps.get_models():
        if model._meta.app_label in DOMAIN_APPS and not model._meta.proxy:
            rows[model._meta.label] = list(model.objects.order_by("pk").values_list())
    return rows


def caller_for(path: str, method: str, personas: dict):
    view = resolve(path).func
    allowed = getattr(view.cls, "required_roles", {}).get(method.upper(), set())
    role = next((r for r in ROLE_PREFERENCE if r in allowed), None)
    assert role is not None, f"{method.upper()} {path}: no persona has one of {sorted(allowed)}"
    return personas[role]


def call(client, method: str, path: str, body) -> object:
    return getattr(client, method)(path, data=json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("variant", ["unknown_field", *HOSTILE_TEXT])
@pytest.mark.parametrize("operation", OPERATIONS, ids=[operation_id(op) for op in OPERATIONS])
def test_every_write_refuses_hostile_bodies_with_a_4xx_and_changes_nothing(
    scene, personas, api_client_for, operation, variant
):
    method, template, chosen = operation
    path = concrete_path(template, chosen, scene)
    client = api_client_for(caller_for(path, method, personas))
    body = base_body(template, chosen, scene)
    if variant == "unknown_field":
        body = {**body, UNKNOWN: 1}
    else:
        body = replace_leaves(body, HOSTILE_TEXT[variant]) or {UNKNOWN: HOSTILE_TEXT[variant]}
    before = domain_rows()
    response = call(client, method, path, body)
    if (method, template) in PER_EVENT_ENDPOINTS:
        assert response.status_code < 500, response.content[:500]
        return
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:500])
    if variant == "unknown_field":
        assert response.status_code == 400
        assert UNKNOWN in response.content.decode(), response.content[:500]
    assert domain_rows() == before


def test_the_walk_covers_every_drf_write_view_in_the_url_conf():
    """No DRF view with a write method hides from the schema (and so from the walk above)."""
    walked = {resolve(concrete_path(t, c, {})).func.cls for _, t, c in OPERATIONS}
    writers = set()

    def visit(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                visit(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                view_class = getattr(pattern.callback, "cls", None)
                route = prefix + str(pattern.pattern)
                if view_class is not None and "api/v1/" in route and any(hasattr(view_class, m) for m in WRITE_METHODS):
                    writers.add(view_class)

    visit(get_resolver().url_patterns)
    assert writers, "no DRF write views found"
    assert writers <= walked, sorted(v.__name__ for v in writers - walked)
    # The known writes, so an accidentally empty schema cannot pass the walk.
    names = {v.__name__ for v in walked}
    assert {"RunList", "ExceptionActionView", "BulkActionView", "ApprovalDecision", "PolicyImportView",
            "PolicySubmitView", "PolicyApproveView", "PolicyRejectView", "PolicyRollbackView"} <= names
