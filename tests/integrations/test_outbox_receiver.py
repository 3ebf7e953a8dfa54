"""Delivering the outbox to a real receiver on a local port: messages signed like inbound webhooks
and verified by the sample receiver (``manage.py outbox_receiver``), retries with backoff when
the receiver refuses, duplicates recognised by the stable message id."""
from __future__ import annotations

import datetime as dt
import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from django.core.management import call_command
from django.utils import timezone

from integrations import relay, signing
from integrations.api.views import webhook_signature
from integrations.models import OutboxMessage
from integrations.receiver import make_server

pytestmark = pytest.mark.django_db
SECRET = "s3cret-shared-with-the-wms"


def message(message_id: str = "order.released:1:DC-EAST:1", **fields) -> OutboxMessage:
    values = {
        "type": "order.released",
        "payload": {"order": "SO-1", "line": 1, "location": "DC-EAST", "quantity": "10", "wave": 7},
        "next_attempt_at": timezone.now() - dt.timedelta(seconds=1),
    }
    values.update(fields)
    return OutboxMessage.objects.create(message_id=message_id, **values)


@pytest.fixture
def receiver():
    """The sample receiver on an ephemeral port, in a thread; ``lines()`` are the JSON lines it printed."""
    out = io.StringIO()
    server = make_server(port=0, secret=SECRET, out=out)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.lines = lambda: [json.loads(line) for line in out.getvalue().splitlines()]  # type: ignore[attr-defined]
    yield server
    server.shutdown()
    server.server_close()


def test_messages_arrive_signed_and_verified(settings, receiver):
    settings.ALLOT_OUTBOX_URL, settings.ALLOT_OUTBOX_SECRET = receiver.url, SECRET
    message()
    message("promise.changed:3", type="promise.changed", payload={"order": "SO-2", "line": 1, "promised_date": "2026-06-09"})

    assert relay.relay_pending() == relay.RelaySummary(sent=2)

    assert receiver.lines() == [
        {"status": "accepted", "id": "order.released:1:DC-EAST:1", "type": "order.released",
         "data": {"order": "SO-1", "line": 1, "location": "DC-EAST", "quantity": "10", "wave": 7}},
        {"status": "accepted", "id": "promise.changed:3", "type": "promise.changed",
         "data": {"order": "SO-2", "line": 1, "promised_date": "2026-06-09"}},
    ]
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}


def test_a_refused_signature_is_retried_with_backoff_until_the_secret_matches(settings, receiver):
    settings.ALLOT_OUTBOX_URL, settings.ALLOT_OUTBOX_SECRET = receiver.url, "the-wrong-secret"
    pending = message()
    now = timezone.now()

    assert relay.relay_pending(now=now) == relay.RelaySummary(failed=1)
    pending.refresh_from_db()
    assert (pending.status, pending.attempts) == ("pending", 1)
    assert pending.last_error == "HTTPError: HTTP Error 401: Unauthorized"
    assert pending.next_attempt_at == now + dt.timedelta(seconds=10)
    assert receiver.lines() == [{"status": "refused", "reason": "missing or invalid signature"}]

    settings.ALLOT_OUTBOX_SECRET = SECRET
    assert relay.relay_pending(now=now + dt.timedelta(seconds=5)) == relay.RelaySummary()  # not due yet
    assert relay.relay_pending(now=now + dt.timedelta(seconds=10)) == relay.RelaySummary(sent=1)
    pending.refresh_from_db()
    assert (pending.status, pending.attempts) == ("sent", 2)
    assert receiver.lines()[-1]["status"] == "accepted"


def test_a_redelivered_message_is_a_duplicate_for_the_receiver(settings, receiver):
    settings.ALLOT_OUTBOX_URL, settings.ALLOT_OUTBOX_SECRET = receiver.url, SECRET
    sent = message()
    relay.relay_pending()
    OutboxMessage.objects.filter(pk=sent.pk).update(status="pending")  # e.g. the 200 was lost on the way back

    assert relay.relay_pending() == relay.RelaySummary(sent=1)
    assert [line["status"] for line in receiver.lines()] == ["accepted", "duplicate"]


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_receiver_refuses_an_old_timestamp_and_the_scheme_is_the_webhooks_one(receiver):
    body = b'{"id":"x","type":"order.released","data":{}}'
    old = str(int(time.time()) - 3600)
    assert signing.signature(SECRET, old, body) == webhook_signature(SECRET, old, body)
    status = _post(receiver.url, body, {"X-Allot-Timestamp": old, "X-Allot-Signature": signing.signature(SECRET, old, body)})
    assert status == 401
    assert receiver.lines() == [{"status": "refused", "reason": "X-Allot-Timestamp is more than 300 seconds off"}]
    assert _post(receiver.url, body, signing.signed_headers(SECRET, body)) == 200


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_management_command_prints_what_it_gets(settings):
    port = _free_port()
    out = io.StringIO()
    command = threading.Thread(
        target=call_command, args=("outbox_receiver",),
        kwargs={"port": port, "secret": SECRET, "count": 1, "stdout": out, "stderr": io.StringIO()}, daemon=True,
    )
    command.start()
    settings.ALLOT_OUTBOX_URL, settings.ALLOT_OUTBOX_SECRET = f"http://127.0.0.1:{port}/messages", SECRET
    message()
    for _ in range(100):  # the command binds its port in its thread
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    assert relay.relay_pending() == relay.RelaySummary(sent=1)
    command.join(timeout=5)

    assert not command.is_alive()
    assert json.loads(out.getvalue().splitlines()[0]) == {
        "status": "accepted", "id": "order.released:1:DC-EAST:1", "type": "order.released",
        "data": {"order": "SO-1", "line": 1, "location": "DC-EAST", "quantity": "10", "wave": 7},
    }
