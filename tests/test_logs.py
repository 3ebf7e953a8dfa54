"""Logs (config/logs.py): one JSON line per request with its id, user and view; the id in the
response and on every line logged meanwhile; task, run and batch ids; secrets redacted; JSON in
production and readable lines in the embedded default; the demo token printed only there."""
from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.urls import resolve
from rest_framework.authtoken.models import Token

from allocation.models import RunStatus
from allocation.services import start_run
from config import logs
from integrations.models import EventBatch
from tests.integrations.conftest import envelope

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
TOKEN = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def captured():
    """Logging as configured by ``logging_config`` (JSON, request lines on), written to a buffer;
    the returned function gives the lines parsed. The test settings' logging is put back after."""

    def configure(json_lines: bool = True):
        logging.config.dictConfig(logs.logging_config(json_lines=json_lines, level="INFO", request_lines=True))
        logging.getLogger().handlers[0].setStream(buffer)

    buffer = io.StringIO()
    configure()

    def lines(parse: bool = True):
        text = buffer.getvalue().splitlines()
        return [json.loads(line) for line in text if line.startswith("{")] if parse else text

    lines.configure = configure  # type: ignore[attr-defined]
    yield lines
    logging.config.dictConfig(django_settings.LOGGING)


def request_lines(lines) -> list[dict]:
    return [line for line in lines() if line["logger"] == "allot.request"]


def test_a_request_writes_one_json_line_with_its_id_user_view_status_and_duration(client, planner, captured):
    client.force_login(planner)
    response = client.get("/orders/", HTTP_X_REQUEST_ID="lb-7f3a.21_x")

    assert response.status_code == 200
    assert response["X-Request-ID"] == "lb-7f3a.21_x"
    (line,) = request_lines(captured)
    assert line["request_id"] == "lb-7f3a.21_x"
    assert line["user"] == planner.username
    assert line["view"] == resolve("/orders/").view_name == "allocation:order_list"
    assert (line["method"], line["path"], line["status"], line["level"]) == ("GET", "/orders/", 200, "INFO")
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["timestamp"] and line["message"].startswith("GET /orders/ 200 ")


@pytest.mark.parametrize("offered", ["a" * 65, "bad id", "x\ny", "ünïcode", ""])
def test_an_unsafe_request_id_is_replaced_and_lines_logged_meanwhile_carry_it(client, captured, offered):
    response = client.get("/no/such/page/", HTTP_X_REQUEST_ID=offered)

    request_id = response["X-Request-ID"]
    assert request_id != offered and len(request_id) == 32 and request_id.isalnum()
    by_logger = {line["logger"]: line for line in captured()}
    assert by_logger["django.request"]["message"] == "Not Found: /no/such/page/"  # logged inside the request
    assert by_logger["django.request"]["request_id"] == request_id
    assert by_logger["allot.request"]["request_id"] == request_id
    assert by_logger["allot.request"]["view"] == "<unmatched>"
    assert "user" in by_logger["allot.request"] and by_logger["allot.request"]["user"] is None


def test_lines_logged_by_the_work_of_a_request_carry_its_id(integration, api_client_for, captured, monkeypatch, in_process_tasks):
    from config import metrics

    real = metrics.record_ingest

    def record_and_say_so(sources, results):
        logging.getLogger("allot.test").warning("ingested %d", len(results))
        real(sources, results)

    monkeypatch.setattr(metrics, "record_ingest", record_and_say_so)
    event = envelope("e-1", "location.upserted", {"code": "DC-1", "name": "DC-1", "region": "east", "kind": "warehouse"})
    response = api_client_for(integration).post("/api/v1/events", {"events": [event]}, format="json", HTTP_X_REQUEST_ID="req-42")

    (inside,) = [line for line in captured() if line["logger"] == "allot.test"]
    assert response["X-Request-ID"] == "req-42"
    assert (inside["message"], inside["request_id"], inside["batch_id"]) == ("ingested 1", "req-42", EventBatch.objects.get().pk)
    assert inside["view"] == resolve("/api/v1/events").view_name


def test_requests_do_not_share_context(client, captured):
    client.get("/no/such/page/", HTTP_X_REQUEST_ID="first")
    client.get("/no/such/page/", HTTP_X_REQUEST_ID="second")
    logging.getLogger("allot.test").warning("after the requests")

    lines = captured()
    assert [line["request_id"] for line in lines if line["logger"] == "allot.request"] == ["first", "second"]
    assert "request_id" not in lines[-1]


def test_an_ingesting_request_line_carries_the_batch_id(integration, api_client_for, captured, in_process_tasks):
    event = envelope("e-1", "location.upserted", {"code": "DC-1", "name": "DC-1", "region": "east", "kind": "warehouse"})
    response = api_client_for(integration).post("/api/v1/events", {"events": [event]}, format="json")

    assert response.status_code == 202
    (line,) = request_lines(captured)
    assert line["batch_id"] == EventBatch.objects.get().pk
    assert line["user"] == integration.username
    assert line["view"] == resolve("/api/v1/events").view_name


def test_bind_outside_a_request_or_task_leaves_no_trace(captured):
    logs.bind(batch_id=99)
    logging.getLogger("allot.test").warning("later")
    with logs.bound(request_id="r-1"):
        logs.bind(batch_id=100)
        logging.getLogger("allot.test").warning("inside")
    logging.getLogger("allot.test").warning("after")

    later, inside, after = captured()[-3:]
    assert "batch_id" not in later and "batch_id" not in after and "request_id" not in after
    assert (inside["request_id"], inside["batch_id"]) == ("r-1", 100)


def test_a_run_task_logs_with_its_task_id_and_run_id(captured, monkeypatch, in_process_tasks):
    from allocation import engine
    from allocation.tasks import run_task

    monkeypatch.setattr(engine, "allocate", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("engine down")))
    run = start_run(trigger="manual", actor=None)  # executes in-process on commit (none here): run it as a task
    result = run_task.apply(args=(run.pk,))

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    (failure,) = [line for line in captured() if line["message"] == f"allocation run #{run.pk} failed"]
    assert failure["run_id"] == run.pk
    assert failure["task_id"] == result.id
    assert failure["task"] == "allocation.tasks.run_task"
    assert "RuntimeError: engine down" in failure["exc_info"]
    logging.getLogger("allot.test").warning("after the task")
    assert "task_id" not in captured()[-1] and "run_id" not in captured()[-1]


def test_an_incremental_run_logs_with_its_run_id(captured, monkeypatch):
    from allocation import engine
    from allocation.services import run_incremental

    monkeypatch.setattr(engine, "allocate", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("engine down")))
    run = run_incremental(["VLV-0001"], trigger="event")

    (failure,) = [line for line in captured() if line["message"] == f"allocation run #{run.pk} failed"]
    assert failure["run_id"] == run.pk


# --- redaction -------------------------------------------------------------------------------


SECRETS = {
    "header": f"Authorization: Token {TOKEN}",
    "bearer": "sent Bearer abcDEF123456789xyz",
    "password": "login failed password=hunter2!",
    "json password": '{"username": "pat", "password": "s3cr3t-pw"}',
    "dict": "{'secret': 'webhook-secret-value'}",
    "database url": "could not connect to postgres://allot:db-pa55@db:5432/allot",
    "broker url": "redis://:broker-pa55@redis:6379/0 refused",
    "signature": "X-Allot-Signature: sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "bare token": f"the key is {TOKEN}",
    "api key": "api_key=AKIA-not-real",
}
LEAKS = ["hunter2", "s3cr3t-pw", "webhook-secret-value", "db-pa55", "broker-pa55", "9f86d081884c7d65", TOKEN,
         "abcDEF123456789xyz", "AKIA-not-real"]


@pytest.mark.parametrize("json_lines", [True, False], ids=["json", "human"])
def test_secrets_are_redacted_in_messages_arguments_extras_and_tracebacks(captured, json_lines):
    captured.configure(json_lines)
    log = logging.getLogger("allot.test")
    for text in SECRETS.values():
        log.warning(text)
        log.warning("as an argument: %s", text)
    log.warning("extras", extra={"token": TOKEN, "detail": SECRETS["database url"], "headers": {"Authorization": "Token x"}})
    try:
        raise ConnectionError(SECRETS["broker url"])
    except ConnectionError:
        log.exception("broker down")

    output = "\n".join(captured(parse=False))
    for leak in LEAKS:
        assert leak not in output
    assert output.count("[REDACTED]") >= 2 * len(SECRETS)
    assert "postgres://allot:[REDACTED]@db:5432/allot" in output  # what is not secret stays readable
    assert "login failed password=[REDACTED]" in output


def test_redaction_works_on_a_copy_other_handlers_get_the_record_intact(captured, caplog):
    logging.getLogger("allot.test").warning("password=%s", "hunter2")

    assert captured()[-1]["message"] == "password=[REDACTED]"
    assert caplog.records[-1].getMessage() == "password=hunter2"


def test_redact_keeps_ordinary_text():
    text = "GET /orders/SO-1/ 200 3.1ms user=pat_planner run_id=42 sku=VLV-0001"
    assert logs.redact(text) == text


# --- formats ---------------------------------------------------------------------------------


def test_the_embedded_default_logs_readable_lines(client):
    assert django_settings.LOG_FORMAT == "human"
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler.formatter, logs.HumanFormatter)
    record = logging.LogRecord("allot.test", logging.WARNING, __file__, 1, "hello %s", ("there",), None)
    with logs.bound(request_id="r-1", run_id=7):
        for log_filter in handler.filters:
            log_filter.filter(record)
    line = handler.format(record)
    assert line.endswith("WARNING allot.test hello there [request_id=r-1 run_id=7]")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def _log_in_a_fresh_process(**env: str) -> subprocess.CompletedProcess:
    code = (
        "import django, logging; django.setup(); "
        f"logging.getLogger('allot.test').warning('started, password=hunter2 token %s', '{TOKEN}')"
    )
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": "", "REDIS_URL": "",
                   "CELERY_BROKER_URL": "", **env}
    environment.pop("PYTEST_VERSION", None)
    environment.pop("LOG_FORMAT", None) if "LOG_FORMAT" not in env else None
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)


def test_production_logs_json_lines():
    done = _log_in_a_fresh_process(ALLOT_ENV="production", SECRET_KEY="x" * 50)

    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(text) for text in done.stderr.splitlines()]
    assert (line["level"], line["logger"]) == ("WARNING", "allot.test")
    assert line["message"] == "started, password=[REDACTED] token [REDACTED]"


def test_log_format_json_outside_production_and_readable_by_default():
    as_json = _log_in_a_fresh_process(ALLOT_ENV="development", LOG_FORMAT="json")
    readable = _log_in_a_fresh_process(ALLOT_ENV="development")

    assert json.loads(as_json.stderr)["message"] == "started, password=[REDACTED] token [REDACTED]"
    assert readable.stderr.strip().endswith("WARNING allot.test started, password=[REDACTED] token [REDACTED]")
    assert TOKEN not in as_json.stderr + readable.stderr


# --- the demo token --------------------------------------------------------------------------


def test_demo_users_print_the_token_once_marked_in_the_embedded_default(captured):
    out = io.StringIO()
    call_command("demo_users", stdout=out)

    token = Token.objects.get(user__username="integration").key
    text = out.getvalue()
    assert text.count(token) == 1
    lines = text.splitlines()
    assert lines[-2].startswith("=== secret: the integration API token")
    assert lines[-1] == f"API token for integration: {token}"
    assert token not in "\n".join(captured(parse=False))  # never through logging


def test_demo_users_never_print_the_token_in_production(settings):
    settings.PRODUCTION = True
    out = io.StringIO()
    call_command("demo_users", stdout=out)

    token = Token.objects.get(user__username="integration").key
    assert token not in out.getvalue()
    assert out.getvalue().splitlines()[-1].startswith("API token for integration: not printed in production")
