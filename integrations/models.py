"""Sources, delivered batches and stored canonical events (events-v1.md).

An ``Event`` is stored once per (source, envelope id): that pair is the idempotency key.
Processing moves it from ``pending`` to ``applied``, ``stale``, ``parked`` (references
unknown; retried when they arrive) or ``failed``. Rejected envelopes are never stored as
events, so a corrected resend with the same id is still accepted; the batch keeps them.
"""
from __future__ import annotations

import datetime as dt
import json

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from integrations.choices import (
    BatchVia,
    EventStatus,
    EventType,
    OutboxStatus,
    OutboxType,
    SourceKind,
)

STALE_FEED_MINUTES = 60
MAX_STALE_FEED_MINUTES = 60 * 24 * 366


class Source(models.Model):
    """A system that sends events (ERP, WMS...): its code, webhook secret, feed freshness and the
    integration users bound to it."""

    code = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=SourceKind.choices, default=SourceKind.OTHER)
    secret = models.CharField(max_length=128, help_text="Shared secret for webhook HMAC signatures.")
    last_event_at = models.DateTimeField(null=True, blank=True, help_text="When an event from this source was last accepted.")
    # The expected cadence: silent longer than this, the source is stale (integrations.freshness).
    # Empty: the global policy's stale_feed_minutes.
    stale_feed_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_STALE_FEED_MINUTES)],
        help_text="Minutes of silence after which this source is stale; empty = the policy's stale_feed_minutes.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    # The integration users whose API tokens may write this source's events (webhooks are bound
    # by the secret instead). A token writes only for its sources and never creates one.
    integration_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="bound_sources",
        help_text="Integration users whose API tokens may post events for this source.",
    )
    history = HistoricalRecords(excluded_fields=["last_event_at"])

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    @property
    def last_heard_at(self) -> dt.datetime:
        """The last event, or the registration when none came yet: silence is counted from it."""
        return self.last_event_at or self.created_at

    def cadence_minutes(self, default: int = STALE_FEED_MINUTES) -> int:
        """The expected cadence: this source's own, else ``default`` (the policy's)."""
        return self.stale_feed_minutes or default

    def is_stale(self, now: dt.datetime | None = None, minutes: int | None = None) -> bool:
        """True when nothing arrived from this source for longer than its cadence (``minutes``
        overrides the default the source's own cadence falls back to)."""
        limit = self.cadence_minutes(minutes or STALE_FEED_MINUTES)
        return (now or timezone.now()) - self.last_heard_at > dt.timedelta(minutes=limit)


class EventBatch(models.Model):
    """One delivery (API call, webhook call or file chunk) with its counts and rejections."""

    received_at = models.DateTimeField(default=timezone.now)
    via = models.CharField(max_length=16, choices=BatchVia.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source_hint = models.CharField(max_length=64, blank=True, default="")
    total = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    rejections = models.JSONField(default=list, blank=True, help_text="[{index, id, errors}] of rejected envelopes.")

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.via})"


class Event(models.Model):
    """A stored canonical event and its processing status.

    ``entity_key`` (``order:SO-1``, ``position:DC-EAST:VALVE-10``) names what the event is
    about so events apply in order per entity; ``parked_references`` lists the unknown codes
    an event waits for; ``errors`` is a list of ``{field, message}``.
    """

    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="events")
    event_id = models.CharField(max_length=200)
    type = models.CharField(max_length=32, choices=EventType.choices)
    occurred_at = models.DateTimeField()
    data = models.JSONField()
    body_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=EventStatus.choices, default=EventStatus.PENDING)
    errors = models.JSONField(default=list, blank=True)
    entity_key = models.CharField(max_length=200)
    parked_references = models.JSONField(default=list, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Unindexed: every index costs each of the many inserts, and these are rarely searched.
    batch = models.ForeignKey(EventBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="events", db_index=False)
    retried_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    retried_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["source", "event_id"], name="event_source_id_unique")]
        indexes = [
            models.Index(fields=["status", "occurred_at", "id"], name="event_pending_work"),
            models.Index(fields=["source", "status", "id"], name="event_source_status"),
            models.Index(fields=["type", "id"], name="event_type"),
            models.Index(fields=["entity_key"], name="event_entity"),
        ]

    def __str__(self) -> str:
        return f"{self.source_id}:{self.event_id}"

    @property
    def pretty_data(self) -> str:
        return json.dumps(self.data, indent=2, ensure_ascii=False)

    @property
    def error_text(self) -> str:
        return "; ".join(f"{e.get('field', '')}: {e.get('message', '')}" for e in self.errors or [])


class ParkedReference(models.Model):
    """A code a parked event waits for (``customer:HOSP-9``); applying that code re-queues it."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="waiting_for")
    key = models.CharField(max_length=200, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "key"], name="parked_reference_unique")]


class DuplicateDelivery(models.Model):
    """A redelivery of a stored event whose body differed: acknowledged, not applied, recorded."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="duplicate_deliveries")
    batch = models.ForeignKey(EventBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    body_hash = models.CharField(max_length=64)
    body = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at", "-id"]

    @property
    def pretty_body(self) -> str:
        return json.dumps(self.body, indent=2, ensure_ascii=False)


class OutboxMessage(models.Model):
    """An outbound message (events-v1.md, "Outbound messages") written in the same transaction
    as the decision it reports, then delivered by ``integrations.relay``.

    ``message_id`` is deterministic per decision (``reservation.changed:<run>:<line>``) and never
    changes across retries, so receivers de-duplicate on it. ``pending`` messages are due when
    ``next_attempt_at`` has passed; after the last allowed attempt a message becomes ``dead``
    (a dead letter) until someone replays it.
    """

    message_id = models.CharField(max_length=200, unique=True)
    type = models.CharField(max_length=32, choices=OutboxType.choices)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    replayed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The relay's pick: pending and due, oldest first.
            models.Index(fields=["status", "next_attempt_at", "id"], name="outbox_due"),
        ]

    def __str__(self) -> str:
        return self.message_id

    @property
    def envelope(self) -> dict:
        """What is POSTed: the stable id, the type and the data."""
        return {"id": self.message_id, "type": self.type, "created_at": self.created_at.isoformat(), "data": self.payload}

    @property
    def pretty_payload(self) -> str:
        return json.dumps(self.payload, indent=2, ensure_ascii=False)


class OutboxCircuit(models.Model):
    """The relay's circuit breaker (one row per destination URL): consecutive failures and,
    once open, until when the relay stops trying."""

    destination = models.CharField(max_length=500, unique=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    open_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def is_open(self, now: dt.datetime) -> bool:
        return self.open_until is not None and now < self.open_until


# The export records (who exported which list, when) live in their own module.
from integrations.export_models import ExportRecord  # noqa: E402,F401

# Feed activity, uploads and replays (integrations.feeds_models).
from integrations.feeds_models import EventUpload, Replay, SourceActivity, UploadRejection  # noqa: E402,F401,I001
