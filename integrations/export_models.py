"""The record of every export: who downloaded which list, with which filters, when, how many rows.

Imported by ``integrations.models`` so the app registers it. Written only through
``integrations.export_log``: one insert when the export starts and one completion when its
last row is written (or it is cut off); nothing changes a record after that and nothing
deletes one (the admin shows them read-only), so the table is append-only in use.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "XLSX"


class ExportVia(models.TextChoices):
    SCREEN = "screen", "Screen"
    API = "api", "API"


class ExportStatus(models.TextChoices):
    STARTED = "started", "Started"
    COMPLETED = "completed", "Completed"
    INTERRUPTED = "interrupted", "Interrupted"


class ExportRecord(models.Model):
    """One export of a list: the user (and their name, kept if the user is deleted), the
    screen, its path and filters, the format and channel, when it started and finished, the
    rows written and whether it reached its end (``interrupted``: the download was cut off
    or failed after ``row_count`` rows)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150)
    screen = models.CharField(max_length=64)
    path = models.CharField(max_length=500)
    filters = models.JSONField(default=dict, blank=True)
    format = models.CharField(max_length=8, choices=ExportFormat.choices)
    via = models.CharField(max_length=8, choices=ExportVia.choices)
    status = models.CharField(max_length=16, choices=ExportStatus.choices, default=ExportStatus.STARTED)
    row_count = models.PositiveBigIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "integrations"
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["-started_at", "-id"], name="export_recent"),
            models.Index(fields=["username", "-started_at"], name="export_by_user"),
        ]

    def __str__(self) -> str:
        return f"{self.username} exported {self.screen} ({self.format}) at {self.started_at:%Y-%m-%d %H:%M}"
