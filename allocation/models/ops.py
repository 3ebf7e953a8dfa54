"""Operational signs of life that readiness reads (``config.health``)."""
from __future__ import annotations

from django.db import models


class ProcessTick(models.Model):
    """The last time a named process showed it works: one row per name, overwritten in place.

    ``beat``: celery beat started or published a scheduled task (written from the beat process,
    ``config.health.record_tick``). Readiness reports its age; nothing else reads it.
    """

    name = models.CharField(max_length=32, primary_key=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at.isoformat()}"
