"""Delivering the outbox: HTTP POST of each due message to ``settings.ALLOT_OUTBOX_URL``, signed
with ``ALLOT_OUTBOX_SECRET`` by the webhooks' HMAC scheme (``integrations.signing``).

- Picks due ``pending`` messages oldest first (``select_for_update(skip_locked=True)`` on
  PostgreSQL, so several relays never send the same message at once).
- A failure (exception, non-2xx status, timeout) counts an attempt and schedules the next one
  with exponential backoff: ``BASE_DELAY * 2**(attempts-1)`` capped at ``MAX_DELAY``. After
  ``MAX_ATTEMPTS`` the message is ``dead`` (a dead letter), visible on the Outbox screen;
  :func:`replay` puts it back to ``pending``.
- Circuit breaker per destination: after ``BREAKER_THRESHOLD`` consecutive failures the relay
  stops trying for ``BREAKER_COOLDOWN``; messages stay pending meanwhile. A success closes it.
- No destination configured: nothing is sent and messages stay pending.

The message id never changes across retries; receivers de-duplicate on it.
"""
from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from integrations import signing
from integrations.choices import OutboxStatus
from integrations.models import OutboxCircuit, OutboxMessage

TIMEOUT_SECONDS = 5
MAX_ATTEMPTS = 8
BASE_DELAY = dt.timedelta(seconds=10)
MAX_DELAY = dt.timedelta(hours=1)
BREAKER_THRESHOLD = 5
BREAKER_COOLDOWN = dt.timedelta(minutes=2)
ERROR_LIMIT = 2000
DRAIN_BUDGET = dt.timedelta(seconds=8)  # below the 10 s beat interval

Sender = Callable[[str, dict[str, Any]], None]


class MessageNotReplayable(Exception):
    """Only a dead letter can be replayed."""

    def __init__(self, message: str, *, field: str = "message_id"):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class RelaySummary:
    """What one relay pass did. ``skipped`` names why nothing was tried ('' when it tried)."""

    sent: int = 0
    failed: int = 0
    dead: int = 0
    skipped: str = ""


def destination() -> str:
    """The configured endpoint ('' when none)."""
    return (getattr(settings, "ALLOT_OUTBOX_URL", "") or "").strip()


def secret() -> str:
    """The destination's shared secret ('' when none: messages go unsigned)."""
    return getattr(settings, "ALLOT_OUTBOX_SECRET", "") or ""


def http_send(url: str, envelope: dict[str, Any]) -> None:
    """POST ``envelope`` as JSON to ``url`` (``ALLOT_OUTBOX_TIMEOUT_SECONDS``, 5 s by default);
    raises unless the answer is 2xx. With ``ALLOT_OUTBOX_SECRET`` the body is signed like an
    inbound webhook: ``X-Allot-Timestamp`` (unix seconds) and ``X-Allot-Signature: sha256=<hex
    HMAC-SHA256(secret, timestamp + "." + body)>`` (``integrations.signing``)."""
    body = json.dumps(envelope, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": envelope["id"]}
    shared = secret()
    if shared:
        headers.update(signing.signed_headers(shared, body))
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    timeout = getattr(settings, "ALLOT_OUTBOX_TIMEOUT_SECONDS", TIMEOUT_SECONDS)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        status = response.status
    if not 200 <= status < 300:
        raise OSError(f"HTTP {status}")


def backoff(attempts: int) -> dt.timedelta:
    """Delay before the next attempt after ``attempts`` failed ones (10 s, 20 s, 40 s ... 1 h)."""
    return min(BASE_DELAY * (2 ** max(attempts - 1, 0)), MAX_DELAY)


def circuit_for(url: str) -> OutboxCircuit:
    circuit, _ = OutboxCircuit.objects.get_or_create(destination=url[:500])
    return circuit


def _pick(now: dt.datetime, batch: int) -> list[OutboxMessage]:
    due = OutboxMessage.objects.filter(status=OutboxStatus.PENDING, next_attempt_at__lte=now).order_by("next_attempt_at", "id")
    if connection.vendor == "postgresql":
        due = due.select_for_update(skip_locked=True)
    return list(due[:batch])


def relay_pending(*, now: dt.datetime | None = None, send: Sender | None = None, batch: int = 100) -> RelaySummary:
    """Send up to ``batch`` due pending messages; returns counts (see the module docstring).

    ``send(url, envelope)`` defaults to :func:`http_send`; it must raise on failure.
    """
    url = destination()
    if not url:
        return RelaySummary(skipped="no destination configured")
    now = now or timezone.now()
    send = send or http_send
    sent = failed = dead = 0
    with transaction.atomic():
        circuit_id = circuit_for(url).pk
        circuit = OutboxCircuit.objects.select_for_update(skip_locked=True).filter(pk=circuit_id).first()
        if circuit is None:  # another relay pass holds this destination
            return RelaySummary(skipped="another relay is sending")
        if circuit.is_open(now):
            return RelaySummary(skipped=f"circuit open until {circuit.open_until.isoformat()}")
        for message in _pick(now, batch):
            try:
                send(url, message.envelope)
            except Exception as error:  # noqa: BLE001 — any failure of the destination counts as an attempt
                message.attempts += 1
                message.last_error = f"{type(error).__name__}: {error}"[:ERROR_LIMIT]
                if message.attempts >= MAX_ATTEMPTS:
                    message.status = OutboxStatus.DEAD
                    dead += 1
                else:
                    message.next_attempt_at = now + backoff(message.attempts)
                    failed += 1
                message.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])
                circuit.consecutive_failures += 1
                if circuit.consecutive_failures >= BREAKER_THRESHOLD:
                    circuit.open_until = now + BREAKER_COOLDOWN
                    break
                continue
            message.attempts += 1
            message.status = OutboxStatus.SENT
            message.sent_at = now
            message.last_error = ""
            message.save(update_fields=["attempts", "status", "sent_at", "last_error"])
            circuit.consecutive_failures = 0
            circuit.open_until = None
            sent += 1
        circuit.updated_at = now
        circuit.save(update_fields=["consecutive_failures", "open_until", "updated_at"])
    return RelaySummary(sent=sent, failed=failed, dead=dead)


def relay_until_drained(
    *, send: Sender | None = None, batch: int = 100, budget: dt.timedelta = DRAIN_BUDGET
) -> RelaySummary:
    """Relay pass after pass (each its own transaction) while whole batches go out, for at most
    ``budget``: a burst (a full run changes many lines) drains between two beat ticks."""
    deadline = time.monotonic() + budget.total_seconds()
    sent = failed = dead = 0
    while True:
        summary = relay_pending(send=send, batch=batch)
        sent, failed, dead = sent + summary.sent, failed + summary.failed, dead + summary.dead
        if summary.skipped or summary.sent < batch or time.monotonic() >= deadline:
            return RelaySummary(sent=sent, failed=failed, dead=dead, skipped=summary.skipped)


def replay(message_id: str, *, actor: Any) -> OutboxMessage:
    """Put a dead letter back to ``pending`` (due now, attempts reset); its id stays the same."""
    if not getattr(actor, "is_authenticated", False):
        raise PermissionError("An authenticated actor is required.")
    now = timezone.now()
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update().filter(message_id=message_id).first()
        if message is None:
            raise MessageNotReplayable(f"No outbound message {message_id}.")
        if message.status != OutboxStatus.DEAD:
            raise MessageNotReplayable(f"Message {message_id} is {message.status}; only dead letters are replayed.", field="status")
        message.status = OutboxStatus.PENDING
        message.attempts = 0
        message.next_attempt_at = now
        message.replayed_by = actor
        message.replayed_at = now
        message.save(update_fields=["status", "attempts", "next_attempt_at", "replayed_by", "replayed_at"])
    return message
