"""Celery tasks of the allocation app: thin callers of allocation.services.

``schedule_incremental_runs`` is the hook ingestion calls after applying item-touching events.
With a broker it coalesces bursts: the SKUs go into a Redis set and one
``incremental_run_task`` is enqueued with a short countdown unless one is already waiting
(``SET NX``), so a thousand events on one item within a second make a few runs, not a thousand.
The countdown applies only while an incremental run is already going (``RUNNING_KEY``): an
event that finds the worker idle is run at once, with no fixed delay.
Without a broker (embedded default) it runs the incremental run in-process after commit;
ingestion calls it once per processed batch, which coalesces naturally.

Full runs may fan out by item group: with a broker, ``full_run_task`` splits every SKU's item
group into chunks and runs them as a Celery ``group`` of ``run_items_task``; each chunk is an
incremental run of whole groups, and groups are independent, so the result equals one full run.

Publishing goes through ``config.broker``: when the broker cannot be reached the wake-up is
dropped with a warning and the durable record (queued run, pending events) is picked up by
``sweep_task`` (beat, and once when a worker starts). Where the work cannot wait for a sweep (a
fan-out or the incremental runs asked for by processed events) it runs in-process instead.
Tasks enqueued by requests ignore their results, so publishing never touches the result store.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from celery import group, shared_task
from django.db import transaction

from config import broker
from config.broker import broker_configured, redis_client  # noqa: F401  (the names callers use)

logger = logging.getLogger(__name__)

PENDING_SKUS_KEY = "allot:allocation:pending-skus"
SCHEDULED_KEY = "allot:allocation:incremental-scheduled"
RUNNING_KEY = "allot:allocation:incremental-running"
RUNNING_FLAG_TTL_SECONDS = 300  # a worker that dies mid-run stops delaying others after this
COALESCE_SECONDS = 0.5
SCHEDULED_FLAG_TTL_SECONDS = 60  # a lost task never blocks scheduling for longer than this
FULL_RUN_CHUNKS = 4
_paused = threading.local()


@contextmanager
def incremental_runs_paused() -> Iterator[set[str]]:
    """Collect, instead of running, the incremental runs asked for inside the block (bulk loads).

    Yields the set of SKUs that were asked for, so the caller can run once at the end (a
    full run after a bulk load gives the same result as every incremental run would have).
    """
    previous = getattr(_paused, "skus", None)
    _paused.skus = set()
    try:
        yield _paused.skus
    finally:
        _paused.skus = previous


@shared_task(name="allocation.tasks.run_task", ignore_result=True)
def run_task(run_id: int) -> str:
    """Execute a queued run (created by ``services.start_run``)."""
    from allocation.models import AllocationRun, RunStatus
    from allocation.services import execute_run

    run = AllocationRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).first()
    if run is None:
        return "not queued"
    return execute_run(run).status


@shared_task(name="allocation.tasks.incremental_run_task", ignore_result=True)
def incremental_run_task(skus: list[str] | None = None, trigger: str = "event") -> int | None:
    """Run the item groups of ``skus`` plus every SKU waiting in the coalescing set."""
    from allocation.services import run_incremental

    wanted = set(skus or ())
    if not broker_configured():
        return run_incremental(sorted(wanted), trigger=trigger).pk if wanted else None
    # Say a run is going before reopening scheduling, so what arrives from now on waits the
    # countdown to be merged instead of starting runs of its own beside this one.
    _set_running(True)
    try:
        client = broker.redis_client()
        # Clear the flag before draining: SKUs added after this point schedule a new task.
        broker.clear_flag(SCHEDULED_KEY)
        pipe = client.pipeline(transaction=True)
        pipe.smembers(PENDING_SKUS_KEY)
        pipe.delete(PENDING_SKUS_KEY)
        members, _ = pipe.execute()
        wanted |= {member.decode() for member in members}
        return run_incremental(sorted(wanted), trigger=trigger).pk if wanted else None
    finally:
        _set_running(False)


def _set_running(running: bool) -> None:
    """Say (in Redis) whether an incremental run is going: requests arriving meanwhile wait
    ``COALESCE_SECONDS`` to be merged; others start at once. A Redis failure is logged only."""
    try:
        client = broker.redis_client()
        if running:
            client.set(RUNNING_KEY, "1", ex=RUNNING_FLAG_TTL_SECONDS)
        else:
            client.delete(RUNNING_KEY)
    except broker.PUBLISH_ERRORS as error:
        logger.warning("could not mark the incremental run %s: %s", "started" if running else "ended", error)


@shared_task(name="allocation.tasks.run_items_task", ignore_result=True)
def run_items_task(skus: list[str], trigger: str = "scheduled") -> int:
    """One chunk of a partitioned full run: an incremental run of whole item groups."""
    from allocation.services import run_incremental

    return run_incremental(skus, trigger=trigger).pk


@shared_task(name="allocation.tasks.full_run_task")
def full_run_task(trigger: str = "scheduled") -> int | None:
    """The scheduled full run: in-process without a broker, fanned out by item group with one."""
    from allocation.services import run_full

    if not broker_configured():
        return run_full(trigger=trigger).pk
    chunks = partition_item_groups(FULL_RUN_CHUNKS)
    try:
        group(run_items_task.s(chunk, trigger) for chunk in chunks).apply_async()
    except broker.PUBLISH_ERRORS as error:  # the same result, in this worker
        logger.warning("broker unavailable, full run not fanned out, running in-process: %s", error)
        return run_full(trigger=trigger).pk
    return None


@shared_task(name="allocation.tasks.sweep_task", ignore_result=True)
def sweep_task(startup: bool = False) -> dict[str, object]:
    """Pick up what publishing missed and fail runs whose worker died (beat; worker start)."""
    from allocation.recovery import sweep

    return sweep(startup=startup).as_dict()


@shared_task(name="allocation.tasks.simulate_task", ignore_result=True)
def simulate_task(run_id: int, version_id: int) -> str:
    """Execute a queued simulation of policy version ``version_id``."""
    from allocation.models import AllocationRun, RunStatus
    from allocation.services import execute_simulation
    from policies.models import PolicyVersion

    run = AllocationRun.objects.filter(pk=run_id, status=RunStatus.QUEUED, is_simulation=True).first()
    version = PolicyVersion.objects.filter(pk=version_id).first()
    if run is None or version is None:
        return "not queued"
    return execute_simulation(run, version).status


def partition_item_groups(chunks: int) -> list[list[str]]:
    """Every SKU, grouped into whole item groups, spread over at most ``chunks`` lists (by size)."""
    from allocation.loading import item_group_partition
    from allocation.policy_bridge import active_context

    groups = item_group_partition(active_context())
    buckets: list[list[str]] = [[] for _ in range(max(1, min(chunks, len(groups))))]
    for members in sorted(groups, key=lambda g: (-len(g), min(g))):
        smallest = min(range(len(buckets)), key=lambda i: len(buckets[i]))
        buckets[smallest].extend(sorted(members))
    return [sorted(bucket) for bucket in buckets if bucket]


def _enqueue_coalesced(skus: list[str]) -> bool:
    """Record ``skus`` as pending; enqueue one delayed task unless one is waiting. True if enqueued.

    When Redis cannot take the SKUs the run happens here and now instead (this is the worker
    that applied the events), so no applied event is left without its allocation run.
    """
    try:
        broker.redis_client().sadd(PENDING_SKUS_KEY, *skus)
    except broker.PUBLISH_ERRORS as error:
        logger.warning("broker unavailable, incremental run for %s in-process: %s", ",".join(skus), error)
        _run_in_process(skus)
        return False
    countdown = COALESCE_SECONDS if broker.flag_set(RUNNING_KEY) else None
    return broker.publish_once(
        incremental_run_task, flag=SCHEDULED_KEY, ttl=SCHEDULED_FLAG_TTL_SECONDS, countdown=countdown
    )


def schedule_incremental_runs(skus: list[str] | set[str]) -> None:
    """Ask for an incremental allocation run of the item groups of ``skus`` (after commit).

    With a broker the request is coalesced (see the module docstring); without one the run
    happens in-process once the surrounding transaction commits.
    """
    if not isinstance(skus, (list, set, tuple, frozenset)):
        raise TypeError("skus must be a collection of SKU codes")
    wanted = sorted({str(sku) for sku in skus if sku})
    if not wanted:
        return
    collecting = getattr(_paused, "skus", None)
    if collecting is not None:
        collecting.update(wanted)
        return
    if broker_configured():
        transaction.on_commit(lambda: _enqueue_coalesced(wanted))
    else:
        transaction.on_commit(lambda: _run_in_process(wanted))


def _run_in_process(skus: Iterable[str]) -> None:
    from allocation.services import request_incremental_run, run_incremental
    from config import inprocess

    if inprocess.enabled() and not broker_configured():
        # The serving process's background thread runs it (coalesced with any queued event run).
        request_incremental_run(list(skus), trigger="event")
        return
    run = run_incremental(list(skus))
    if run.status != "succeeded":
        logger.warning("incremental run #%s for %s failed: %s", run.pk, ",".join(skus), run.error)


@shared_task(name="allocation.tasks.release_waves_task", ignore_result=True)
def release_waves_task() -> int:
    """Beat: run the release wave of every location whose cutoff is near (allocation.releases)."""
    from allocation.releases import start_scheduled_waves

    return len(start_scheduled_waves())


@shared_task(name="allocation.tasks.expire_quotes_task", ignore_result=True)
def expire_quotes_task() -> int:
    """Beat: cancel the lines of quotes past their expiry and re-allocate their supply (allocation.quotes)."""
    from allocation.quotes import expire_quotes

    return len(expire_quotes().orders)


@shared_task(name="allocation.tasks.kpi_snapshot_task", ignore_result=True)
def kpi_snapshot_task() -> int:
    """Beat (hourly) and the dashboard's "refresh": store today's KPI figures (allocation.kpis)."""
    from allocation.kpis import snapshot

    return snapshot()
