"""Celery tasks of the integrations app: thin callers of integrations.services.

``process_events_task`` is published coalesced (``config.broker.publish_once`` on
``PROCESSING_SCHEDULED_KEY``) with a short countdown: while one waits, ingested batches publish
nothing; the task clears the flag before it looks for pending events and drains them all, so a
burst makes about one task per ``PROCESSING_COALESCE_SECONDS`` however many batches it holds,
and no wake-up is lost.
"""
from __future__ import annotations

from typing import Any

from celery import shared_task

from config import broker
from integrations import services

PROCESSING_SCHEDULED_KEY = "allot:integrations:processing-scheduled"
PROCESSING_FLAG_TTL_SECONDS = 60  # a lost task blocks publishing for at most this long
PROCESSING_COALESCE_SECONDS = 0.5  # the task waits this long, gathering the batches behind it


@shared_task(name="integrations.tasks.process_events_task", ignore_result=True)
def process_events_task() -> dict[str, int]:
    """Apply every pending event (published, coalesced, on commit of ingested batches)."""
    if broker.broker_configured():
        # Before reading the queue: a batch committed after this point publishes a new task.
        broker.clear_flag(PROCESSING_SCHEDULED_KEY)
    summary = services.process_pending()
    return {"applied": summary.applied, "stale": summary.stale, "parked": summary.parked, "failed": summary.failed}


@shared_task(name="integrations.tasks.relay_outbox_task")
def relay_outbox_task() -> dict[str, Any]:
    """Deliver due outbound messages (celery beat, every 10 seconds)."""
    from integrations import relay

    summary = relay.relay_until_drained()
    return {"sent": summary.sent, "failed": summary.failed, "dead": summary.dead, "skipped": summary.skipped}


@shared_task(name="integrations.tasks.check_feed_freshness_task", ignore_result=True)
def check_feed_freshness_task() -> dict[str, Any]:
    """Raise or resolve ``stale_feed`` cases and re-publish stalled uploads (celery beat, every
    ALLOT_FEED_CHECK_SECONDS)."""
    from integrations import freshness, uploads

    result = freshness.check_freshness()
    requeued = uploads.requeue_stalled()  # uploads whose wake-up was lost
    return {"stale": result.stale, "raised": result.raised, "resolved": result.resolved, "uploads_requeued": requeued}


@shared_task(name="integrations.tasks.process_upload_task", ignore_result=True)
def process_upload_task(upload_id: int) -> dict[str, Any]:
    """Process one stored upload (published after the upload's commit)."""
    from integrations import uploads

    upload = uploads.process_upload(upload_id)
    return {"status": upload.status, "accepted": upload.accepted, "rejected_rows": upload.rejected_rows}
