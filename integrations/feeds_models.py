"""Feed activity per hour, uploaded event files and replays of stored events.

Imported by ``integrations.models`` so the app registers them.

- ``SourceActivity``: how many events each source delivered per hour (the Integrations
  screen's sparkline), counted by ``integrations.services.ingest`` with one upsert per source
  and batch, so drawing it never scans the events table.
- ``EventUpload``: a CSV or JSON Lines file an integration user uploaded in the browser,
  stored whole before it is processed in the background (``integrations.uploads``), with its
  progress and counts; ``UploadRejection`` names each rejected row, field and reason.
- ``Replay``: stored events of a source over a time range, planned (a dry run: what would
  change) and then applied as a batch of their own by an integration user
  (``integrations.replays``); its history is the audit trail.
"""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords


class SourceActivity(models.Model):
    """Events accepted from one source in one clock hour (UTC, truncated)."""

    source = models.ForeignKey("integrations.Source", on_delete=models.CASCADE, related_name="activity")
    hour = models.DateTimeField()
    events = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "hour"], name="source_activity_hour_unique")]

    def __str__(self) -> str:
        return f"{self.source_id} {self.hour:%Y-%m-%d %H}:00 {self.events}"


class UploadFormat(models.TextChoices):
    CSV = "csv", "CSV"
    JSONL = "jsonl", "JSON Lines"


class UploadStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class EventUpload(models.Model):
    """One uploaded file of canonical events (CSV of one event type, or JSON Lines).

    ``content`` holds the file as uploaded (bounded by ``ALLOT_UPLOAD_MAX_BYTES``), so the work
    survives the request and a restart; ``total_rows`` and ``processed_rows`` are the progress
    the screen polls; ``error`` is set when the file as a whole is refused (encoding, header),
    in which case nothing of it is stored as events.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source = models.ForeignKey("integrations.Source", on_delete=models.PROTECT, related_name="uploads")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    format = models.CharField(max_length=8, choices=UploadFormat.choices)
    event_type = models.CharField(max_length=32, blank=True, default="", help_text="The event type of a CSV file.")
    filename = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    content = models.BinaryField()
    status = models.CharField(max_length=16, choices=UploadStatus.choices, default=UploadStatus.QUEUED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    events = models.PositiveIntegerField(default=0, help_text="Events the rows made (order lines group into one event).")
    accepted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected_rows = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True, default="")
    batch_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"upload {self.public_id} ({self.filename})"

    @property
    def is_finished(self) -> bool:
        return self.status in (UploadStatus.DONE, UploadStatus.FAILED)

    @property
    def progress(self) -> int:
        """Percent of rows processed (100 once finished)."""
        if self.is_finished:
            return 100
        if not self.total_rows:
            return 0
        return min(99, self.processed_rows * 100 // self.total_rows)


class UploadRejection(models.Model):
    """One rejected row of an upload: its row number in the file, the field and the reason."""

    upload = models.ForeignKey(EventUpload, on_delete=models.CASCADE, related_name="rejections")
    row = models.PositiveIntegerField()
    event_id = models.CharField(max_length=200, blank=True, default="")
    field = models.CharField(max_length=200, blank=True, default="")
    message = models.CharField(max_length=500)

    class Meta:
        ordering = ["upload", "row", "id"]
        indexes = [models.Index(fields=["upload", "row", "id"], name="upload_rejection_row")]


class ReplayStatus(models.TextChoices):
    PLANNED = "planned", "Planned (dry run)"
    APPLIED = "applied", "Applied"
    FAILED = "failed", "Failed"


class Replay(models.Model):
    """Re-applying the stored events of one source that occurred in [``start``, ``end``).

    Planned first: ``preview`` holds the dry run (outcome counts and the field changes it would
    make). Applying it re-applies the same events in ``occurred_at`` order through the ingestion
    applier, under a batch of its own (``batch``, via ``replay``, the acting user), and records
    the outcome counts in ``outcome``.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source = models.ForeignKey("integrations.Source", on_delete=models.PROTECT, related_name="replays")
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(max_length=16, choices=ReplayStatus.choices, default=ReplayStatus.PLANNED)
    event_count = models.PositiveIntegerField(default=0)
    preview = models.JSONField(default=dict, blank=True)
    outcome = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    planned_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    applied_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    batch = models.ForeignKey("integrations.EventBatch", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    applied_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"replay {self.public_id} of {self.source_id}"
