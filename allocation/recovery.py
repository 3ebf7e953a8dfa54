"""Healing after broker and worker faults: the sweeper and the reaper.

Requests store first (event batches, queued runs) and publish a wake-up after commit; a wake-up
the broker refused is only logged (``config.broker``). ``sweep`` — run by celery beat every
``ALLOT_SWEEP_SECONDS`` and once whenever a worker starts — finds what was stored but never
picked up and publishes it again:

- pending events with no processing task waiting (``integrations.recovery``);
- SKUs waiting in the incremental-run set with no run task waiting;
- runs still ``queued`` after ``ALLOT_RUN_REQUEUE_SECONDS`` (any age when a worker starts); a
  run enqueued twice executes once (``services.execute_run`` claims the row).

And the reaper (PostgreSQL, where heartbeats are written): a ``running`` run whose heartbeat (``allocation.heartbeat``) is older than
``ALLOT_RUN_LOST_SECONDS`` lost its worker. It is marked ``failed`` with the reason, and on
PostgreSQL the database session of its transaction is ended if it is somehow still there, so
its run locks (advisory, transaction-scoped) are released and the next run proceeds. A dead
run's transaction never committed, so allocations are as before it; the reaper queues a new run
of the same scope and trigger (simulations excepted), which decides what the lost one would have.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models.functions import Coalesce
from django.utils import timezone

from allocation.models import AllocationRun, RunStatus
from config import broker

logger = logging.getLogger(__name__)


@dataclass
class SweepSummary:
    reaped: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)
    processing_published: bool = False
    incremental_published: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "reaped": self.reaped, "requeued": self.requeued,
            "processing_published": self.processing_published, "incremental_published": self.incremental_published,
        }


def sweep(*, startup: bool = False, now: dt.datetime | None = None) -> SweepSummary:
    """Reap lost runs, then publish what publishing missed. ``startup``: a worker just started."""
    from integrations.recovery import wake_pending_processing

    now = now or timezone.now()
    summary = SweepSummary()
    summary.reaped = reap_lost_runs(now=now)
    summary.requeued = requeue_stuck_runs(older_than=0 if startup else settings.ALLOT_RUN_REQUEUE_SECONDS, now=now)
    summary.processing_published = wake_pending_processing()
    summary.incremental_published = wake_pending_incremental_runs()
    if summary.reaped or summary.requeued or summary.processing_published or summary.incremental_published:
        logger.warning("sweep: %s", summary.as_dict())
    return summary


def reap_lost_runs(*, now: dt.datetime | None = None) -> list[int]:
    """Fail every running run whose heartbeat stopped ``ALLOT_RUN_LOST_SECONDS`` ago; their ids.

    PostgreSQL only: heartbeats are written there (on SQLite a second connection cannot write
    while a run holds the database, so a long run would look dead while it works).
    """
    if connection.vendor != "postgresql":
        return []
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.ALLOT_RUN_LOST_SECONDS)
    lost = (
        AllocationRun.objects.filter(status=RunStatus.RUNNING)
        .annotate(last_sign=Coalesce("heartbeat_at", "started_at", "created_at"))
        .filter(last_sign__lt=cutoff)
        .only("pk", "heartbeat_at", "started_at", "created_at", "worker", "db_pid", "scope", "scope_items", "trigger", "is_simulation")
    )
    reaped: list[int] = []
    for run in lost:
        since = run.last_sign
        where = f" ({run.worker})" if run.worker else ""
        error = f"worker lost{where}: no heartbeat since {since.isoformat(timespec='seconds')}"
        # Conditional on the heartbeat read: a run that beat meanwhile is alive after all.
        done = AllocationRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING, heartbeat_at=run.heartbeat_at).update(
            status=RunStatus.FAILED, phase="failed", error=error, finished_at=now
        )
        if not done:
            continue
        logger.warning("run #%s reaped: %s", run.pk, error)
        reaped.append(run.pk)
        _end_session(run)
        _rerequest(run, error)
    return reaped


def _rerequest(run: AllocationRun, error: str) -> None:
    """Ask again for what a lost run was doing, so its item groups are not left stale until the
    next event or the nightly run. Simulations are not repeated: whoever asked sees the failure."""
    from allocation.models import RunScope
    from allocation.services import start_run

    if run.is_simulation:
        return
    skus = run.scope_items if run.scope == RunScope.ITEMS and run.scope_items else None
    replacement = start_run(scope_skus=skus, trigger=run.trigger, actor=None)
    AllocationRun.objects.filter(pk=run.pk).update(error=f"{error}; re-requested as run #{replacement.pk}")


def _end_session(run: AllocationRun) -> bool:
    """End the dead run's database session (PostgreSQL), releasing its locks; True if one was ended.

    Only the very backend the run recorded: one started no later than the run (a process id
    reused by a newer session is left alone).
    """
    if connection.vendor != "postgresql" or not run.db_pid or run.started_at is None:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid = %s AND pid <> pg_backend_pid() AND datname = current_database() AND backend_start <= %s",
            [run.db_pid, run.started_at],
        )
        row = cursor.fetchone()
    ended = bool(row and row[0])
    if ended:
        logger.warning("run #%s: ended its database session (pid %s)", run.pk, run.db_pid)
    return ended


def requeue_stuck_runs(*, older_than: float, now: dt.datetime | None = None) -> list[int]:
    """Publish again every run queued more than ``older_than`` seconds ago; the ids published."""
    from allocation.tasks import run_task, simulate_task

    now = now or timezone.now()
    stuck = AllocationRun.objects.filter(
        status=RunStatus.QUEUED, created_at__lte=now - dt.timedelta(seconds=older_than)
    ).order_by("id").values_list("pk", "is_simulation", "policy_version_id")
    published: list[int] = []
    for pk, is_simulation, version_id in stuck:
        if is_simulation:
            if version_id is None:
                continue
            sent = broker.publish(simulate_task, args=(pk, version_id))
        else:
            sent = broker.publish(run_task, args=(pk,))
        if not sent:
            break  # the broker is away: the next sweep tries again
        published.append(pk)
    return published


def wake_pending_incremental_runs() -> bool:
    """Publish the coalesced incremental run if SKUs wait for it and no task is waiting."""
    from allocation.tasks import (
        COALESCE_SECONDS,
        PENDING_SKUS_KEY,
        SCHEDULED_FLAG_TTL_SECONDS,
        SCHEDULED_KEY,
        incremental_run_task,
    )

    if not broker.broker_configured():
        return False
    try:
        waiting = broker.redis_client().scard(PENDING_SKUS_KEY)
    except broker.PUBLISH_ERRORS:
        return False
    if not waiting:
        return False
    return broker.publish_once(
        incremental_run_task, flag=SCHEDULED_KEY, ttl=SCHEDULED_FLAG_TTL_SECONDS, countdown=COALESCE_SECONDS
    )
