"""Schemathesis against the OpenAPI schema the app serves at ``/api/schema/``: every operation,
every role, never a 5xx.

The schema is loaded through the WSGI app (``schemathesis.openapi.from_wsgi``) and each
operation gets its own test: cases drawn from the schema (valid and invalid ones, and valid
ones aimed at records that exist: the valves scenario, ingested and allocated), each sent
with the token of a persona drawn at random (every role, an outsider, and no token), and
checked with ``not_a_server_error``. Write bodies must be described in the schema for this
to reach past the validation layer (``@extend_schema(request=...)`` on APIViews).

CI runs a fixed, derandomized profile of ``ALLOT_SCHEMATHESIS_EXAMPLES`` (default 25) cases
per operation; set it higher locally for a longer, random run. The module prints how many
operations and cases it ran.
"""
from __future__ import annotations

import json
import os
import traceback
from pathlib import Path

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from config import roles
from tests.fixtures.personas import make_user

EXAMPLES = int(os.environ.get("ALLOT_SCHEMATHESIS_EXAMPLES", "0")) or None
PROFILE = settings(
    max_examples=EXAMPLES or 25,
    derandomize=EXAMPLES is None,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
SCENARIOS = Path(__file__).resolve().parent / "data" / "scenarios"
# Every role three times as often as the outsider and the anonymous caller: most cases get past auth.
PERSONAS = [*roles.ALL_ROLES * 3, "outsider", "anonymous"]
COUNTS = {"operations": 0, "cases": 0}


class App:
    """The Django WSGI app as a server runs it, with three test-suite concessions.

    The request signals would close the test's open transaction (Django's own test client
    unhooks ``close_old_connections`` the same way); the Host is one the settings allow; and
    the traceback of any unhandled exception is kept so a failure says where it came from.
    """

    def __init__(self) -> None:
        self.handler = WSGIHandler()
        self.tracebacks: list[str] = []

    def __call__(self, environ, start_response):
        environ["HTTP_HOST"] = "testserver"
        return self.handler(environ, start_response)

    def record(self, sender, request=None, **kwargs) -> None:
        self.tracebacks.append(traceback.format_exc())


APP = App()


def _load_schema():
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        return schemathesis.openapi.from_wsgi("/api/schema/?format=json", APP)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


SCHEMA = _load_schema()
OPERATIONS = {result.ok().label: result.ok() for result in SCHEMA.get_all_operations()}


def _seed() -> dict:
    """Personas with tokens, the valves scenario ingested and allocated, and its policy active."""
    from allocation.models import AllocationRun, Customer, Item, Location, Order, Supply
    from allocation.services import run_full
    from exceptions.models import DecisionException
    from integrations.services import ingest, process_pending
    from policies.models import PolicyVersion
    from policies.services import import_document

    users = {name: make_user(f"st_{name}", name) for name in roles.ALL_ROLES}
    users["outsider"] = make_user("st_outsider")
    tokens = {name: Token.objects.get_or_create(user=user)[0].key for name, user in users.items()}
    import_document(json.loads((SCENARIOS / "valves.policy.json").read_text()), actor=None, activate=True)
    events = [json.loads(line) for line in (SCENARIOS / "valves-1.jsonl").read_text().splitlines() if line.strip()]
    ingest(events, actor=None, via="file")
    process_pending()
    run = run_full(trigger="manual")
    assert run.status == "succeeded", run.error
    order = Order.objects.order_by("pk").first()
    return {
        "tokens": tokens,
        "values": {
            "sku": list(Item.objects.values_list("sku", flat=True)[:5]),
            "code": list(Location.objects.values_list("code", flat=True)[:3]) + list(Customer.objects.values_list("code", flat=True)[:3]),
            "number": list(Order.objects.values_list("number", flat=True)[:5]),
            "order": list(Order.objects.values_list("number", flat=True)[:5]),
            "ref": list(Supply.objects.values_list("ref", flat=True)[:5]),
            "line": list(order.lines.values_list("line", flat=True)[:3]) if order else [1],
            "run_id": list(AllocationRun.objects.values_list("pk", flat=True)[:3]),
            "exception": list(DecisionException.objects.values_list("pk", flat=True)[:5]),
            "policy": list(PolicyVersion.objects.values_list("pk", flat=True)[:3]),
        },
    }


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """Seeded once for the module inside a transaction that is rolled back at its end."""
    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield _seed()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@pytest.fixture
def served(seeded, db, in_process_tasks):
    """The app's request signals unhooked from connection closing, and its exceptions recorded."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    got_request_exception.connect(APP.record)
    APP.tracebacks.clear()
    yield seeded
    got_request_exception.disconnect(APP.record)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def real_path_parameters(operation, values: dict) -> st.SearchStrategy | None:
    """Path parameters naming records that exist, so detail and action endpoints get past 404."""
    names = [p.name for p in operation.path_parameters] if hasattr(operation, "path_parameters") else []
    if not names:
        return None
    path = operation.path
    choices: dict[str, st.SearchStrategy] = {}
    for name in names:
        if name in ("id", "pk"):
            pool = values["exception"] if "/exceptions" in path else values["policy"] if "/policies" in path else values["exception"]
        elif name in values:
            pool = values[name]
        else:
            parameter = next(p for p in operation.path_parameters if p.name == name)
            enum = parameter.definition.get("schema", {}).get("enum")
            if not enum:
                return None
            pool = enum
        if not pool:
            return None
        choices[name] = st.sampled_from(pool)
    return st.fixed_dictionaries(choices)


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_operation_never_answers_5xx(served, label):
    operation = OPERATIONS[label]
    strategies = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
    real = real_path_parameters(operation, served["values"])
    tokens = served["tokens"]
    COUNTS["operations"] += 1

    @PROFILE
    @given(case=st.one_of(*strategies), persona=st.sampled_from(PERSONAS), path=real if real is not None else st.none())
    def run(case, persona, path):
        if path is not None and case.path_parameters is not None and len(case.path_parameters) == len(path):
            case.path_parameters = {**case.path_parameters, **path}
        headers = {} if persona == "anonymous" else {"Authorization": f"Token {tokens[persona]}"}
        APP.tracebacks.clear()
        COUNTS["cases"] += 1
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=[not_a_server_error], headers=headers)
        except Exception:
            detail = APP.tracebacks[-1] if APP.tracebacks else response.text[:2000]
            print(f"\n{label} as {persona}: {response.status_code}\n{detail}")
            raise

    run()


def test_schema_covers_the_api_and_describes_write_bodies():
    """Every write operation has a request body in the schema, so the run reaches past validation."""
    assert len(OPERATIONS) >= 30
    missing = [
        label for label, operation in OPERATIONS.items()
        if operation.method.upper() in ("POST", "PUT", "PATCH") and not operation.definition.raw.get("requestBody")
    ]
    assert missing == []


def teardown_module(module):
    print(f"\nschemathesis: {COUNTS['operations']} operations, {COUNTS['cases']} cases")
