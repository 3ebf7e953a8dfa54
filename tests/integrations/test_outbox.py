"""The transactional outbox: messages written with the decision, relayed with retry, backoff,
circuit breaking and dead letters, and the Outbox screen with replay by role."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.utils import timezone

from allocation.models import Allocation, LineDecisionCurrent
from allocation.services import run_full, run_incremental
from exceptions import services as exception_services
from exceptions.models import DecisionException, PromiseChange
from integrations import relay
from integrations.models import OutboxCircuit, OutboxMessage
from tests.runs import conftest as runs

valves_policy = runs.valves_policy  # the valves scenario fixtures of the run tests
ingest_events = runs.ingest_events
valves_stage1 = runs.valves_stage1
_fast_password_hashing = runs._fast_password_hashing

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 6, 1)
URL = "https://erp.example.com/allot"
LIST_URL = "/integrations/outbox/"
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)

STAGE_1_RESERVATIONS = {
    ("SO-1", 1): [{"location": "DC-EAST", "quantity": "60", "confirmed_date": "2026-06-01", "supply_ref": None}],
    ("SO-2", 1): [
        {"location": "DC-EAST", "quantity": "30", "confirmed_date": "2026-06-01", "supply_ref": None},
        {"location": "DC-WEST", "quantity": "20", "confirmed_date": "2026-06-01", "supply_ref": None},
    ],
    ("SO-3", 1): [
        {"location": "DC-EAST", "quantity": "30", "confirmed_date": "2026-06-10", "supply_ref": "PO-1"},
        {"location": "DC-WEST", "quantity": "10", "confirmed_date": "2026-06-03", "supply_ref": None},
    ],
    ("SO-4", 1): [{"location": "DC-EAST", "quantity": "10", "confirmed_date": "2026-06-10", "supply_ref": "PO-1"}],
    ("SO-4", 2): [{"location": "DC-WEST", "quantity": "5", "confirmed_date": "2026-06-01", "supply_ref": None}],
}


def reservations() -> dict[tuple[str, int], list[dict]]:
    found = {}
    for payload in OutboxMessage.objects.filter(type="reservation.changed").values_list("payload", flat=True):
        found[(payload["order"], payload["line"])] = sorted(payload["allocations"], key=lambda a: (a["location"], a["supply_ref"] or ""))
    return found


def message(message_id: str = "reservation.changed:1:1", **fields) -> OutboxMessage:
    values = {"type": "reservation.changed", "payload": {"order": "SO-1", "line": 1, "allocations": [], "run": 1}, "next_attempt_at": NOW}
    values.update(fields)
    return OutboxMessage.objects.create(message_id=message_id, **values)


class Recorder:
    """A fake ``send``: records (url, envelope), fails while ``failing`` is set."""

    def __init__(self, failing: bool = False):
        self.calls: list[tuple[str, dict]] = []
        self.failing = failing

    def __call__(self, url: str, envelope: dict) -> None:
        self.calls.append((url, envelope))
        if self.failing:
            raise OSError("connection refused")


@pytest.fixture
def destination(settings):
    settings.ALLOT_OUTBOX_URL = URL
    return URL


# ----------------------------------------------------------------------------- writing


def test_a_full_run_writes_one_reservation_changed_per_changed_line(valves_stage1):
    run = valves_stage1
    rows = list(OutboxMessage.objects.order_by("message_id").values_list("message_id", "type", "status", "attempts"))
    line_ids = {
        (order, number): pk
        for pk, order, number in Allocation.objects.values_list("line_id", "line__order__number", "line__line")
    }
    assert rows == sorted(
        (f"reservation.changed:{run.pk}:{line_ids[key]}", "reservation.changed", "pending", 0) for key in STAGE_1_RESERVATIONS
    )
    assert reservations() == STAGE_1_RESERVATIONS
    assert {m.payload["run"] for m in OutboxMessage.objects.all()} == {run.pk}


def test_re_running_unchanged_writes_no_message(valves_stage1):
    again = run_full(as_of=AS_OF)
    assert (again.status, again.changed_line_count) == ("succeeded", 0)
    assert OutboxMessage.objects.count() == 5
    assert OutboxMessage.objects.filter(payload__run=again.pk).count() == 0


def test_a_failed_run_writes_no_message(valves_stage1, monkeypatch):
    from allocation import persistence

    def broken(*args, **kwargs):
        raise ValueError("disk full")

    OutboxMessage.objects.all().delete()
    LineDecisionCurrent.objects.all().delete()  # every line counts as changed on the next run
    with monkeypatch.context() as patched:
        patched.setattr(persistence, "sync_run_exceptions", broken)
        run = run_incremental(["VALVE-10"], as_of=AS_OF)
    assert (run.status, run.error) == ("failed", "ValueError: disk full")
    assert OutboxMessage.objects.count() == 0
    # The same run without the failure writes them: the rollback is what removed them.
    again = run_incremental(["VALVE-10"], as_of=AS_OF)
    assert again.status == "succeeded"
    assert reservations() == STAGE_1_RESERVATIONS  # the item group of VALVE-10 holds all five lines
    assert OutboxMessage.objects.filter(payload__run=again.pk).count() == 5


def test_simulations_write_no_message(valves_stage1):
    from allocation.services import simulate
    from policies.models import PolicyVersion

    before = OutboxMessage.objects.count()
    simulate(PolicyVersion.objects.get(status="active"), actor=None)
    assert OutboxMessage.objects.count() == before


def _so3_exception() -> DecisionException:
    return DecisionException.objects.get(type="promise_at_risk", line__order__number="SO-3", line__line=1, status="open")


def test_deferring_a_promise_writes_promise_changed(valves_stage1, planner):
    exception = _so3_exception()
    previous = exception.line.order.promised_date
    exception_services.defer_promise(
        exception.pk, actor=planner, expected_version=exception.version, promised_date=dt.date(2026, 6, 20), reason="late PO"
    )
    change = PromiseChange.objects.get()
    sent = OutboxMessage.objects.get(type="promise.changed")
    assert sent.message_id == f"promise.changed:{change.pk}"
    assert sent.payload == {
        "order": "SO-3",
        "line": 1,
        "promised_date": "2026-06-20",
        "previous_promised_date": previous.isoformat() if previous else None,
        "reason": "late PO",
        # The line's current decision: when open inbound would cover its shortfall (null when covered).
        "projected_date": LineDecisionCurrent.objects.get(line=exception.line).log.projected_date,
    }


def test_releasing_to_the_warehouse_writes_order_released_per_location(valves_stage1, planner, monkeypatch):
    from allocation import overrides

    monkeypatch.setattr(overrides, "line_settings", lambda lines: {})  # no approval threshold
    exception = _so3_exception()
    exception_services.release_to_warehouse(exception.pk, actor=planner, expected_version=exception.version)
    released = list(
        OutboxMessage.objects.filter(type="order.released").order_by("message_id").values_list("message_id", "payload")
    )
    ids = dict(Allocation.objects.filter(line=exception.line).values_list("location__code", "id"))
    assert released == [
        (f"order.released:{exception.line_id}:DC-EAST:{ids['DC-EAST']}",
         {"order": "SO-3", "line": 1, "location": "DC-EAST", "quantity": "30", "wave": None}),
        (f"order.released:{exception.line_id}:DC-WEST:{ids['DC-WEST']}",
         {"order": "SO-3", "line": 1, "location": "DC-WEST", "quantity": "10", "wave": None}),
    ]
    assert set(Allocation.objects.filter(line=exception.line).values_list("state", flat=True)) == {"released"}


# ----------------------------------------------------------------------------- relay


def test_without_destination_messages_stay_pending(settings):
    settings.ALLOT_OUTBOX_URL = ""
    message()
    send = Recorder()
    assert relay.relay_pending(now=NOW, send=send) == relay.RelaySummary(skipped="no destination configured")
    assert send.calls == []
    assert OutboxMessage.objects.get().status == "pending"


def test_relay_sends_due_messages_with_their_stable_id(destination):
    first = message("reservation.changed:1:1")
    message("reservation.changed:1:2", next_attempt_at=NOW + dt.timedelta(seconds=1))  # not due yet
    send = Recorder()
    assert relay.relay_pending(now=NOW, send=send) == relay.RelaySummary(sent=1)
    assert send.calls == [(URL, {
        "id": "reservation.changed:1:1", "type": "reservation.changed", "created_at": first.created_at.isoformat(),
        "data": {"order": "SO-1", "line": 1, "allocations": [], "run": 1},
    })]
    first.refresh_from_db()
    assert (first.status, first.attempts, first.sent_at, first.last_error) == ("sent", 1, NOW, "")
    assert relay.relay_pending(now=NOW, send=send) == relay.RelaySummary()  # nothing due: sent ones are not resent


def test_a_failure_backs_off_exponentially_with_the_same_id(destination):
    sent = message()
    send = Recorder(failing=True)
    now = NOW
    delays = []
    for _ in range(3):
        assert relay.relay_pending(now=now, send=send) == relay.RelaySummary(failed=1)
        sent.refresh_from_db()
        delays.append(sent.next_attempt_at - now)
        assert relay.relay_pending(now=sent.next_attempt_at - dt.timedelta(seconds=1), send=send) == relay.RelaySummary()
        now = sent.next_attempt_at
    assert delays == [dt.timedelta(seconds=10), dt.timedelta(seconds=20), dt.timedelta(seconds=40)]
    assert (sent.status, sent.attempts, sent.last_error) == ("pending", 3, "OSError: connection refused")
    assert {envelope["id"] for _url, envelope in send.calls} == {"reservation.changed:1:1"}
    assert len(send.calls) == 3
    send.failing = False
    assert relay.relay_pending(now=now, send=send) == relay.RelaySummary(sent=1)
    sent.refresh_from_db()
    assert (sent.status, sent.attempts, sent.message_id) == ("sent", 4, "reservation.changed:1:1")


def test_dead_letter_after_max_attempts_then_replay(destination, integration):
    dead = message(attempts=relay.MAX_ATTEMPTS - 1)
    assert relay.relay_pending(now=NOW, send=Recorder(failing=True)) == relay.RelaySummary(dead=1)
    dead.refresh_from_db()
    assert (dead.status, dead.attempts) == ("dead", relay.MAX_ATTEMPTS)
    assert relay.relay_pending(now=NOW + dt.timedelta(days=1), send=Recorder()) == relay.RelaySummary()  # dead stays dead

    relay.replay(dead.message_id, actor=integration)
    dead.refresh_from_db()
    assert (dead.status, dead.attempts, dead.replayed_by, dead.message_id) == ("pending", 0, integration, "reservation.changed:1:1")
    send = Recorder()
    assert relay.relay_pending(now=timezone.now() + dt.timedelta(seconds=1), send=send) == relay.RelaySummary(sent=1)
    assert [envelope["id"] for _url, envelope in send.calls] == ["reservation.changed:1:1"]


def test_only_dead_letters_are_replayed(destination, integration):
    pending = message()
    with pytest.raises(relay.MessageNotReplayable) as caught:
        relay.replay(pending.message_id, actor=integration)
    assert caught.value.field == "status"
    with pytest.raises(relay.MessageNotReplayable) as caught:
        relay.replay("nope", actor=integration)
    assert caught.value.field == "message_id"


def test_circuit_opens_after_consecutive_failures_and_closes_on_success(destination):
    for index in range(relay.BREAKER_THRESHOLD + 2):
        message(f"reservation.changed:1:{index}")
    send = Recorder(failing=True)
    summary = relay.relay_pending(now=NOW, send=send)
    assert summary == relay.RelaySummary(failed=relay.BREAKER_THRESHOLD)
    assert len(send.calls) == relay.BREAKER_THRESHOLD  # stopped at the threshold, the rest untouched
    circuit = OutboxCircuit.objects.get(destination=URL)
    assert (circuit.consecutive_failures, circuit.open_until) == (relay.BREAKER_THRESHOLD, NOW + relay.BREAKER_COOLDOWN)

    later = NOW + dt.timedelta(minutes=1)  # every message is due again, but the circuit is open
    summary = relay.relay_pending(now=later, send=send)
    assert summary.skipped == f"circuit open until {(NOW + relay.BREAKER_COOLDOWN).isoformat()}"
    assert len(send.calls) == relay.BREAKER_THRESHOLD

    send.failing = False
    after = NOW + relay.BREAKER_COOLDOWN + dt.timedelta(minutes=10)
    assert relay.relay_pending(now=after, send=send) == relay.RelaySummary(sent=relay.BREAKER_THRESHOLD + 2)
    circuit.refresh_from_db()
    assert (circuit.consecutive_failures, circuit.open_until) == (0, None)


def test_the_beat_task_relays(destination, monkeypatch):
    from integrations.tasks import relay_outbox_task

    message(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    send = Recorder()
    monkeypatch.setattr(relay, "http_send", send)
    assert relay_outbox_task() == {"sent": 1, "failed": 0, "dead": 0, "skipped": ""}
    assert [envelope["id"] for _url, envelope in send.calls] == ["reservation.changed:1:1"]


def test_the_task_drains_a_burst_in_whole_batches(destination, monkeypatch):
    from integrations.tasks import relay_outbox_task

    for index in range(250):
        message(f"reservation.changed:1:{index}", next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    send = Recorder()
    monkeypatch.setattr(relay, "http_send", send)
    assert relay_outbox_task() == {"sent": 250, "failed": 0, "dead": 0, "skipped": ""}
    assert len({envelope["id"] for _url, envelope in send.calls}) == 250
    assert OutboxMessage.objects.filter(status="sent").count() == 250


@pytest.fixture
def receiver():
    """A real HTTP endpoint on localhost: records each POST body, answers with ``status``."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    state = {"bodies": [], "status": 202}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            state["bodies"].append((self.headers["Content-Type"], json.loads(self.rfile.read(length))))
            self.send_response(state["status"])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/messages"
    yield state
    server.shutdown()
    server.server_close()


def test_relay_posts_to_a_real_endpoint_and_counts_a_500_as_a_failure(settings, receiver):
    settings.ALLOT_OUTBOX_URL = receiver["url"]
    sent = message(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    receiver["status"] = 500
    assert relay.relay_pending() == relay.RelaySummary(failed=1)
    sent.refresh_from_db()
    assert (sent.status, sent.attempts, sent.last_error) == ("pending", 1, "HTTPError: HTTP Error 500: Internal Server Error")
    receiver["status"] = 202
    assert relay.relay_pending(now=sent.next_attempt_at) == relay.RelaySummary(sent=1)
    assert [(kind, body["id"], body["data"]["order"]) for kind, body in receiver["bodies"]] == [
        ("application/json", "reservation.changed:1:1", "SO-1"),
        ("application/json", "reservation.changed:1:1", "SO-1"),
    ]


def test_http_send_posts_json_with_a_timeout(monkeypatch):
    captured = {}

    class Response:
        status = 202

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def fake_urlopen(request, timeout):
        captured.update(url=request.full_url, method=request.get_method(), body=request.data,
                        type=request.get_header("Content-type"), timeout=timeout)
        return Response()

    monkeypatch.setattr(relay.urllib.request, "urlopen", fake_urlopen)
    relay.http_send(URL, {"id": "x", "type": "order.released", "data": {}})
    assert captured == {"url": URL, "method": "POST", "body": b'{"id":"x","type":"order.released","data":{}}',
                        "type": "application/json", "timeout": 5}


# ----------------------------------------------------------------------------- screen


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_outbox_screen_shows_messages_and_replay_for_dead_letters(destination, integration):
    message("reservation.changed:1:1")
    dead = message("promise.changed:7", type="promise.changed", status="dead", attempts=8, last_error="OSError: refused",
                   payload={"order": "SO-3", "line": 1, "promised_date": "2026-06-20", "previous_promised_date": None, "reason": "r"})
    response = logged_in(integration).get(LIST_URL)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Outbox</h1>" in html
    assert html.count("<tr data-key=") == 2
    assert f'action="/integrations/outbox/{dead.pk}/replay/"' in html
    assert html.count('/replay/"') == 1
    assert "OSError: refused" in html
    assert "&quot;promised_date&quot;: &quot;2026-06-20&quot;" in html
    assert f"<code>{URL}</code>" in html


def test_outbox_screen_filters_and_htmx_partial(destination, finance):
    message("reservation.changed:1:1")
    message("promise.changed:7", type="promise.changed", status="dead")
    response = logged_in(finance).get(LIST_URL, {"status": "dead"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="outbox-rows">')
    assert "<h1>" not in html
    assert '<tr data-key="promise.changed:7">' in html
    assert html.count("<tr data-key=") == 1
    assert "/replay/" not in html  # finance reads, never replays


def test_outbox_screen_says_when_no_destination_is_configured(settings, planner):
    settings.ALLOT_OUTBOX_URL = ""
    html = logged_in(planner).get(LIST_URL).content.decode()
    assert "no destination configured" in html


def test_a_bad_filter_names_the_field(planner):
    response = logged_in(planner).get(LIST_URL, {"status": "lost"})
    assert response.status_code == 400
    assert "Status: Select a valid choice" in response.content.decode()


def test_outbox_paginates(planner):
    for index in range(51):
        message(f"reservation.changed:1:{index}")
    client = logged_in(planner)
    first = client.get(LIST_URL).content.decode()
    after = re.search(r'<a href="([^"]*)"[^>]*rel="next"', first).group(1).replace("&amp;", "&")
    html = client.get(LIST_URL + after).content.decode()
    assert first.count("<tr data-key=") == 50
    assert html.count("<tr data-key=") == 1
    assert 'rel="next"' not in html and 'rel="prev"' in html


@pytest.mark.parametrize(
    ("persona", "read", "replay"),
    [
        ("integration", 200, 302),
        ("planner", 200, 403),
        ("finance", 200, 403),
        ("customer_service", 403, 403),
        ("policy_admin", 403, 403),
        ("approver", 403, 403),
        ("outsider", 403, 403),
    ],
)
def test_persona_matrix_for_the_outbox(personas, persona, read, replay):
    dead = message(status="dead", attempts=8)
    client = logged_in(personas[persona])
    assert client.get(LIST_URL).status_code == read
    assert client.post(f"/integrations/outbox/{dead.pk}/replay/").status_code == replay
    dead.refresh_from_db()
    assert dead.status == ("pending" if replay == 302 else "dead")


def test_replay_by_anonymous_redirects_to_login_and_changes_nothing(client):
    dead = message(status="dead", attempts=8)
    response = client.post(f"/integrations/outbox/{dead.pk}/replay/")
    assert (response.status_code, response.url.startswith("/accounts/login/") or "login" in response.url) == (302, True)
    dead.refresh_from_db()
    assert dead.status == "dead"


def test_replay_of_a_missing_message_is_404_and_a_pending_one_is_refused(integration):
    pending = message()
    client = logged_in(integration)
    assert client.post("/integrations/outbox/999999/replay/").status_code == 404
    assert client.get(f"/integrations/outbox/{pending.pk}/replay/").status_code == 405
    response = client.post(f"/integrations/outbox/{pending.pk}/replay/", follow=True)
    assert "only dead letters are replayed" in response.content.decode()
    pending.refresh_from_db()
    assert pending.status == "pending"
