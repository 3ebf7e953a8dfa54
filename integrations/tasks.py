"""Celery tasks of the integrations app: thin callers of integrations.services."""
from __future__ import annotations

from typing import Any

from celery import shared_task

from integrations import services


@shared_task(name="integrations.tasks.process_events_task")
def process_events_task() -> dict[str, int]:
    """Apply every pending event (scheduled on commit of each ingested batch)."""
    summary = services.process_pending()
    return {"applied": summary.applied, "stale": summary.stale, "parked": summary.parked, "failed": summary.failed}


@shared_task(name="integrations.tasks.relay_outbox_task")
def relay_outbox_task() -> dict[str, Any]:
    """Deliver due outbound messages (celery beat, every 10 seconds)."""
    from integrations import relay

    summary = relay.relay_until_drained()
    return {"sent": summary.sent, "failed": summary.failed, "dead": summary.dead, "skipped": summary.skipped}
