"""Allocation runs: the one write path that loads, runs the engine and persists its decisions.

A run is a user-visible row (:class:`~allocation.models.AllocationRun`). Executing it takes
the run locks, loads the scope's input, calls the pure engine and persists the result in one
transaction, so a run that fails leaves the previous allocations, decision log and exceptions
exactly as they were, and its row says ``failed`` with the error. HTML views, the API, tasks
and commands all call these functions.

Execution starts by claiming the queued row (one conditional UPDATE, so a run enqueued twice
executes once) and ends with a write that succeeds only while the row still says ``running``:
a run the reaper gave up on (``allocation.recovery``) rolls back instead of committing late.
While it executes, :class:`~allocation.heartbeat.RunHeartbeat` shows its phase and keeps its
heartbeat fresh.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, connection, models, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from allocation import depth, engine, execution_modes, plugins
from allocation.dates import business_today
from allocation.engine import types as et
from allocation.heartbeat import RunHeartbeat
from allocation.loading import LoadedInput, expand_item_groups, load_input, with_policy
from allocation.locks import lock_run_scope
from allocation.models import AllocationRun, RunScope, RunStatus, RunTrigger, SimulationResult
from allocation.persistence import RESERVED_STATES, decimal_text, persist_result
from allocation.policy_bridge import PolicyContext, active_context, context_for
from config import logs, metrics

logger = logging.getLogger(__name__)
SIMULATION_LIST_LIMIT = 200
NOTHING = (Decimal(0), Decimal(0))


def _clean_skus(skus: Iterable[str]) -> list[str]:
    if isinstance(skus, str):
        raise TypeError("skus must be a collection of SKU codes, not one string")
    return sorted({str(sku).strip() for sku in skus if str(sku).strip()})


def _create_run(*, trigger: str, actor: Any, as_of: dt.date | None, skus: list[str] | None, status: str,
                is_simulation: bool = False, policy_version: Any = None) -> AllocationRun:
    return AllocationRun.objects.create(
        trigger=trigger,
        scope=RunScope.FULL if skus is None else RunScope.ITEMS,
        scope_items=skus or [],
        as_of=as_of or business_today(),
        status=status,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        is_simulation=is_simulation,
        policy_version=policy_version,
    )


class RunLost(Exception):
    """The run's row no longer says ``running`` (the reaper failed it): roll back, write nothing."""


# scope_items too: a queued run's SKUs may have grown (request_incremental_run) since it was read.
RUN_CLAIM_FIELDS = ["status", "started_at", "heartbeat_at", "progress", "phase", "worker", "db_pid", "scope_items"]


def _claim(run: AllocationRun) -> bool:
    """Move a queued run to ``running`` (once, whoever asks twice); False if it was not queued."""
    now = timezone.now()
    fields: dict[str, Any] = {
        "status": RunStatus.RUNNING, "started_at": now, "heartbeat_at": now, "progress": 5, "phase": "loading",
        "worker": f"{socket.gethostname()} pid {os.getpid()}"[:200],
    }
    if connection.vendor == "postgresql":
        fields["db_pid"] = RawSQL("pg_backend_pid()", [])
    if not AllocationRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(**fields):
        run.refresh_from_db()
        return False
    run.refresh_from_db(fields=RUN_CLAIM_FIELDS)
    return True


def _hold_if_running(run: AllocationRun) -> None:
    """Inside the run's transaction, before its final write: lock the row, still ``running``?"""
    if not AllocationRun.objects.select_for_update().filter(pk=run.pk, status=RunStatus.RUNNING).exists():
        raise RunLost(f"run #{run.pk} was given up while it executed")
    run.heartbeat_at = timezone.now()


def _notify_finished(run: AllocationRun) -> None:
    """Tell the person who asked for the run how it ended (in the run's last transaction)."""
    from exceptions import notifications  # exceptions depends on allocation, not the reverse

    notifications.run_finished(run)


def _fail(run: AllocationRun, error: BaseException, started: float) -> AllocationRun:
    """Record ``error`` on the run, unless the reaper failed it already (its reason stands)."""
    if isinstance(error, RunLost):
        logger.warning("allocation run #%s: %s", run.pk, error)
        run.refresh_from_db()
        return run
    logger.exception("allocation run #%s failed", run.pk, exc_info=error)
    run.status = RunStatus.FAILED
    run.error = f"{type(error).__name__}: {error}"[:5000]
    run.phase = "failed"
    run.finished_at = timezone.now()
    run.timings = {**run.timings, "total": round(time.perf_counter() - started, 4)}
    fields = ["status", "error", "phase", "finished_at", "timings"]
    try:
        with transaction.atomic():
            if AllocationRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
                **{name: getattr(run, name) for name in fields}
            ):
                _notify_finished(run)
            else:
                run.refresh_from_db()
    except DatabaseError:  # the database went away too: the reaper records the run's end
        logger.exception("allocation run #%s: could not record its failure", run.pk)
    return run


@metrics.observe_runs
@logs.with_run_context
def execute_run(run: AllocationRun) -> AllocationRun:
    """Execute a queued run: lock its scope, load, allocate, persist; record counts and timings.

    Everything from the locks to the last write is one transaction. On any error the
    transaction rolls back and the run is marked ``failed`` with the error (not raised). A run
    that is no longer queued (executed or failed already) is returned as it is.
    """
    started = time.perf_counter()
    if not _claim(run):
        return run
    skus = run.scope_items if run.scope == RunScope.ITEMS else None
    timings: dict[str, float] = {}
    try:
        with RunHeartbeat(run.pk) as heartbeat, transaction.atomic():
            context = active_context()
            expanded = expand_item_groups(skus, context) if skus is not None else None
            heartbeat.phase("loading every open line" if expanded is None else f"loading the lines of {len(expanded):,} items", 10)
            lock_run_scope(expanded)
            mark = time.perf_counter()
            loaded = execution_modes.for_engine(load_input(as_of=run.as_of, context=context, expanded=expanded))
            timings["load"] = round(time.perf_counter() - mark, 4)
            lines = len(loaded.line_ids)
            heartbeat.phase(f"ranking and allocating {lines:,} lines", 40)
            mark = time.perf_counter()
            result = engine.allocate(loaded.engine_input)
            timings["engine"] = round(time.perf_counter() - mark, 4)
            heartbeat.phase(f"persisting decisions of {lines:,} lines, {len(result.exceptions):,} exceptions", 70)
            mark = time.perf_counter()
            stats = persist_result(run=run, loaded=loaded, result=result, policy_version_id=context.version_id)
            timings["persist"] = round(time.perf_counter() - mark, 4)
            timings["total"] = round(time.perf_counter() - started, 4)
            _hold_if_running(run)
            run.policy_version_id = context.version_id
            run.scope_expanded_items = sorted(expanded) if expanded is not None else []
            run.status = RunStatus.SUCCEEDED
            run.progress = 100
            run.phase = "done"
            run.line_count = len(loaded.line_ids)
            run.degraded_feeds = loaded.degraded_feeds  # stale sources discounted (integrations.freshness)
            run.warnings = loaded.warnings  # factor plugins skipped (allocation.plugins)
            run.price_of_fairness = depth.price_of_fairness(result)
            plugins.record_problems(loaded.warnings)
            run.allocation_count = stats.allocations
            run.changed_line_count = stats.changed_lines
            run.exceptions_raised = stats.exceptions.created
            run.exceptions_updated = stats.exceptions.updated
            run.exceptions_resolved = stats.exceptions.resolved
            run.timings = timings
            run.finished_at = timezone.now()
            run.save()
            _notify_finished(run)
    except Exception as error:  # recorded on the run row: a failed run is a result, not a crash
        run.timings = timings
        return _fail(run, error, started)
    return run


def run_full(*, trigger: str = RunTrigger.MANUAL, actor: Any = None, as_of: dt.date | None = None) -> AllocationRun:
    """Rank and allocate every open line now (synchronously); returns the finished run.

    ``as_of`` defaults to the business date. A failure leaves the previous state intact and
    returns the run marked ``failed``.
    """
    run = _create_run(trigger=trigger, actor=actor, as_of=as_of, skus=None, status=RunStatus.QUEUED)
    return execute_run(run)


def run_incremental(
    skus: Iterable[str], *, trigger: str = RunTrigger.EVENT, actor: Any = None, as_of: dt.date | None = None
) -> AllocationRun:
    """Re-run the item groups of ``skus`` (synchronously); gives what a full run gives for them."""
    run = _create_run(trigger=trigger, actor=actor, as_of=as_of, skus=_clean_skus(skus), status=RunStatus.QUEUED)
    return execute_run(run)


def start_run(*, scope_skus: Iterable[str] | None = None, trigger: str = RunTrigger.MANUAL, actor: Any) -> AllocationRun:
    """Create a queued run and enqueue its execution once the transaction commits (API, screens).

    The queued row is the durable request: if the broker cannot take the task, that is logged
    and the sweeper enqueues the run later (``allocation.recovery``); the caller is not failed.
    """
    from allocation.tasks import run_task
    from config import broker

    skus = _clean_skus(scope_skus) if scope_skus is not None else None
    with transaction.atomic():
        run = _create_run(trigger=trigger, actor=actor, as_of=None, skus=skus, status=RunStatus.QUEUED)
        run_id = run.pk
        transaction.on_commit(lambda: broker.publish(run_task, args=(run_id,)))
    return run


def runs_in_background() -> bool:
    """Whether a published run executes apart from its caller: on a worker (a broker is
    configured) or on the serving process's background thread (``config.inprocess``)."""
    from config import broker, inprocess

    return broker.broker_configured() or inprocess.enabled()


def request_incremental_run(skus: Iterable[str], *, trigger: str, actor: Any = None) -> AllocationRun:
    """Ask for a run of the item groups of ``skus``, executed after commit, and return it queued.

    Requests coalesce while their run waits: SKUs asked for with the same trigger are merged
    into a run still queued (the run reads its SKUs when it starts), and a queued full run
    covers them all (it reads the data when it starts, so it sees the change that asked).
    Either way the waiting run is published again (executing it twice is impossible: it is
    claimed once), so a request never depends on an earlier publish having reached anybody.
    """
    from allocation.tasks import run_task
    from config import broker

    wanted = _clean_skus(skus)
    with transaction.atomic():
        waiting = (
            AllocationRun.objects.select_for_update()
            .filter(status=RunStatus.QUEUED, is_simulation=False, as_of=business_today())
            .filter(models.Q(scope=RunScope.FULL) | models.Q(scope=RunScope.ITEMS, trigger=trigger))
            .order_by("scope", "id")  # a full run first ("full" < "items")
            .first()
        )
        if waiting is None:
            return start_run(scope_skus=wanted, trigger=trigger, actor=actor)
        if waiting.scope == RunScope.ITEMS and not set(wanted) <= set(waiting.scope_items):
            waiting.scope_items = sorted(set(waiting.scope_items) | set(wanted))
            AllocationRun.objects.filter(pk=waiting.pk, status=RunStatus.QUEUED).update(scope_items=waiting.scope_items)
        run_id = waiting.pk
        transaction.on_commit(lambda: broker.publish(run_task, args=(run_id,)))
    return waiting


def start_policy_run(*, actor: Any = None) -> AllocationRun:
    """The full re-allocation a newly active policy version needs, queued with trigger
    ``policy`` and executed after the activation commits (it reads the active version then)."""
    return start_run(scope_skus=None, trigger=RunTrigger.POLICY, actor=actor)


# --- simulation -----------------------------------------------------------------------------


def _line_totals(loaded: LoadedInput, result: et.EngineResult) -> dict[int, tuple[Decimal, Decimal]]:
    """Per line: reserved quantity (proposals excluded until approved) and the part confirmed by its due date."""
    totals: dict[int, tuple[Decimal, Decimal]] = {}
    for line in result.lines:
        due = loaded.line_facts[line.line_key]["due"]
        reserved = [a for a in line.allocations if a.state in RESERVED_STATES]
        totals[line.line_key] = (
            sum((a.quantity for a in reserved), Decimal(0)),
            sum((a.quantity for a in reserved if a.confirmed_date <= due), Decimal(0)),
        )
    return totals


def _fill_rates(loaded: LoadedInput, totals: dict[int, tuple[Decimal, Decimal]], attribute: str) -> dict[str, float]:
    ordered: dict[str, Decimal] = defaultdict(Decimal)
    allocated: dict[str, Decimal] = defaultdict(Decimal)
    for key, fact in loaded.line_facts.items():
        ordered[fact[attribute]] += fact["quantity"]
        allocated[fact[attribute]] += min(totals.get(key, NOTHING)[0], fact["quantity"])
    return {name: round(float(allocated[name] / ordered[name]), 4) if ordered[name] else 1.0 for name in sorted(ordered)}


def simulation_diff(loaded: LoadedInput, before: et.EngineResult, after: et.EngineResult) -> dict[str, Any]:
    """What changes from ``before`` (active policy) to ``after`` (draft) on the same input.

    A line gains when it ends with more reserved quantity, or the same with more of it
    confirmed by its due date; it loses in the opposite case.
    """
    before_totals, after_totals = _line_totals(loaded, before), _line_totals(loaded, after)
    gaining, losing = [], []
    for key, fact in loaded.line_facts.items():
        was, now = before_totals.get(key, NOTHING), after_totals.get(key, NOTHING)
        if was == now:
            continue
        entry = {
            "order": fact["order"],
            "line": fact["line"],
            "segment": fact["segment"],
            "channel": fact["channel"],
            "before": decimal_text(was[0]),
            "after": decimal_text(now[0]),
            "on_time_before": decimal_text(was[1]),
            "on_time_after": decimal_text(now[1]),
        }
        gains = now[0] > was[0] or (now[0] == was[0] and now[1] > was[1])
        (gaining if gains else losing).append((abs(now[0] - was[0]) + abs(now[1] - was[1]), entry))
    gaining.sort(key=lambda pair: (-pair[0], pair[1]["order"], pair[1]["line"]))
    losing.sort(key=lambda pair: (-pair[0], pair[1]["order"], pair[1]["line"]))

    def exception_entries(keys: set[str], result: et.EngineResult) -> list[dict[str, Any]]:
        found = [e for e in result.exceptions if e.key in keys]
        found.sort(key=lambda e: e.key)
        return [{"key": e.key, "type": e.type, "order": e.order, "message": e.message} for e in found]

    before_keys = {e.key for e in before.exceptions}
    after_keys = {e.key for e in after.exceptions}
    added, removed = after_keys - before_keys, before_keys - after_keys

    def rates(attribute: str) -> dict[str, dict[str, float]]:
        was, now = _fill_rates(loaded, before_totals, attribute), _fill_rates(loaded, after_totals, attribute)
        return {name: {"before": was[name], "after": now[name]} for name in was}

    return {
        "lines": len(loaded.line_facts),
        "gaining_count": len(gaining),
        "losing_count": len(losing),
        "gaining": [entry for _, entry in gaining[:SIMULATION_LIST_LIMIT]],
        "losing": [entry for _, entry in losing[:SIMULATION_LIST_LIMIT]],
        "fill_rate_by_segment": rates("segment"),
        "fill_rate_by_channel": rates("channel"),
        "exceptions_added_count": len(added),
        "exceptions_removed_count": len(removed),
        "exceptions_added": exception_entries(added, after)[:SIMULATION_LIST_LIMIT],
        "exceptions_removed": exception_entries(removed, before)[:SIMULATION_LIST_LIMIT],
    }


@metrics.observe_runs
@logs.with_run_context
def execute_simulation(run: AllocationRun, policy_version: Any) -> AllocationRun:
    """Run the engine under the active policy and under ``policy_version`` on the same data.

    Persists nothing but the run row and its :class:`SimulationResult`; a failure marks the
    run failed.
    """
    started = time.perf_counter()
    if not _claim(run):
        return run
    timings: dict[str, float] = {}
    try:
        with RunHeartbeat(run.pk) as heartbeat:
            mark = time.perf_counter()
            active: PolicyContext = active_context()
            draft = context_for(policy_version)
            loaded = execution_modes.for_engine(load_input(as_of=run.as_of, context=active))
            draft_loaded = with_policy(loaded, draft)
            timings["load"] = round(time.perf_counter() - mark, 4)
            heartbeat.phase("allocating", 40)
            mark = time.perf_counter()
            before = engine.allocate(loaded.engine_input)
            after = engine.allocate(draft_loaded.engine_input)
            timings["engine"] = round(time.perf_counter() - mark, 4)
            heartbeat.phase("comparing", 80)
            payload = simulation_diff(loaded, before, after)
            payload["price_of_fairness"] = {"active": depth.price_of_fairness(before), "draft": depth.price_of_fairness(after)}
        with transaction.atomic():
            _hold_if_running(run)
            SimulationResult.objects.create(run=run, payload=payload)
            timings["total"] = round(time.perf_counter() - started, 4)
            run.status = RunStatus.SUCCEEDED
            run.progress = 100
            run.phase = "done"
            run.line_count = len(loaded.line_ids)
            run.allocation_count = sum(len(line.allocations) for line in after.lines)
            run.changed_line_count = payload["gaining_count"] + payload["losing_count"]
            run.exceptions_raised = payload["exceptions_added_count"]
            run.exceptions_resolved = payload["exceptions_removed_count"]
            run.warnings = depth.unique_warnings(loaded.warnings + draft_loaded.warnings)
            run.price_of_fairness = payload["price_of_fairness"]["draft"]
            run.timings = timings
            run.finished_at = timezone.now()
            run.save()
            _notify_finished(run)
    except Exception as error:  # recorded on the run row, like a failed run
        run.timings = timings
        return _fail(run, error, started)
    return run


def simulate(policy_version: Any, *, actor: Any = None, as_of: dt.date | None = None) -> AllocationRun:
    """Dry-run ``policy_version`` (a draft) against today's data; returns the run with its result.

    The run's ``simulation_result.payload`` lists lines gaining and losing (with quantities),
    fill rate by customer segment and channel before/after, and exceptions added/removed,
    all against the engine's decisions under the active policy on the same input.
    """
    run = _create_run(
        trigger=RunTrigger.SIMULATION, actor=actor, as_of=as_of, skus=None, status=RunStatus.QUEUED,
        is_simulation=True, policy_version=policy_version,
    )
    return execute_simulation(run, policy_version)


def start_simulation(policy_version: Any, *, actor: Any) -> AllocationRun:
    """Create a queued simulation run and enqueue it once the transaction commits (screens).

    Like ``start_run``: a publish the broker refuses is left to the sweeper.
    """
    from allocation.tasks import simulate_task
    from config import broker

    with transaction.atomic():
        run = _create_run(
            trigger=RunTrigger.SIMULATION, actor=actor, as_of=None, skus=None, status=RunStatus.QUEUED,
            is_simulation=True, policy_version=policy_version,
        )
        run_id, version_id = run.pk, policy_version.pk
        transaction.on_commit(lambda: broker.publish(simulate_task, args=(run_id, version_id)))
    return run
