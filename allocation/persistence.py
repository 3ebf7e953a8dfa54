"""Write a run's decisions back in bulk, inside the run's one transaction.

- Allocations: the engine's decisions replace the non-fixed allocations in scope. Rows the
  engine keeps unchanged (``existing_id``) stay as they are; the others are deleted by id and
  the new ones inserted (PostgreSQL ``COPY``; ``bulk_create`` elsewhere). Released and pinned
  allocations are never touched.
- Decision log: an entry only for lines whose fingerprint differs from their current one, then
  the current pointers of those lines move to the new entries (one upsert statement).
- Exceptions: ``exceptions.run_sync.sync_run_exceptions`` creates, updates and resolves.

If anything raises, the caller's transaction rolls back and the previous state stays intact.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from allocation import depth, execution_modes
from allocation.choices import AllocationState
from allocation.engine import types as et
from allocation.loading import LoadedInput
from allocation.models import (
    Allocation,
    AllocationRun,
    Item,
    LineDecisionCurrent,
    LineDecisionLog,
    Location,
    Supply,
)
from exceptions.choices import ExceptionType, ReasonStatus
from exceptions.models import CaseReason
from exceptions.run_sync import LineStake, SyncCounts, sync_run_exceptions
from integrations import outbox

FIXED_STATES = frozenset({AllocationState.RELEASED, AllocationState.PINNED})
RESERVED_STATES = frozenset({AllocationState.RESERVED, *FIXED_STATES})
CHUNK = 5000
JSON_COLUMNS = frozenset({"rank_key", "factors", "setting_sources", "allocations", "path", "constraints", "shortfall_reasons"})


@dataclass(frozen=True)
class PersistStats:
    allocations: int
    allocations_written: int
    allocations_deleted: int
    changed_lines: int
    exceptions: SyncCounts
    messages: int = 0


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    return str(value)


def to_json(value: Any) -> str:
    """Compact JSON text of engine values (dates ISO, decimals as strings)."""
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def decimal_text(value: Decimal) -> str:
    """A normalised decimal as text: 60.000 -> "60", 2.500 -> "2.5"."""
    normalized = value.normalize()
    return format(normalized, "f")


def allocation_json(decision: et.AllocationDecision) -> dict[str, Any]:
    return {
        "item": decision.item,
        "location": decision.location,
        "supply_ref": decision.supply_ref,
        "quantity": decimal_text(decision.quantity),
        "confirmed_date": decision.confirmed_date.isoformat(),
        "state": decision.state,
    }


def _chunks(values: list, size: int = CHUNK):
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _copy_rows(table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """PostgreSQL COPY of rows (JSON columns given as text)."""
    names = ", ".join(columns)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg 3 cursor behind Django's wrapper
        with raw.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _write_allocations(run: AllocationRun, decisions: list[et.AllocationDecision]) -> None:
    if not decisions:
        return
    skus = {d.item for d in decisions}
    refs = {d.supply_ref for d in decisions if d.supply_ref}
    item_ids: dict[str, int] = {}
    for chunk in _chunks(sorted(skus)):
        item_ids.update(Item.objects.filter(sku__in=chunk).values_list("sku", "id"))
    supply_ids: dict[str, int] = {}
    for chunk in _chunks(sorted(refs)):
        supply_ids.update(Supply.objects.filter(ref__in=chunk).values_list("ref", "id"))
    location_ids = dict(Location.objects.values_list("code", "id"))
    now = timezone.now()
    if connection.vendor == "postgresql":
        _copy_rows(
            Allocation._meta.db_table,
            ("line_id", "item_id", "location_id", "supply_id", "quantity", "confirmed_date", "state", "run_id",
             "created_at", "updated_at"),
            [
                (d.line_key, item_ids[d.item], location_ids[d.location],
                 supply_ids[d.supply_ref] if d.supply_ref else None, d.quantity, d.confirmed_date, d.state, run.pk,
                 now, now)
                for d in decisions
            ],
        )
        return
    Allocation.objects.bulk_create(
        [
            Allocation(
                line_id=d.line_key,
                item_id=item_ids[d.item],
                location_id=location_ids[d.location],
                supply_id=supply_ids[d.supply_ref] if d.supply_ref else None,
                quantity=d.quantity,
                confirmed_date=d.confirmed_date,
                state=d.state,
                run_id=run.pk,
            )
            for d in decisions
        ],
        batch_size=1000,
    )


def _write_decision_logs(
    run: AllocationRun, loaded: LoadedInput, changed: list[et.LineDecision], policy_version_id: int | None
) -> None:
    if not changed:
        return
    sources = {line.key: line.settings.sources for line in loaded.engine_input.lines}
    now = timezone.now()
    rows = [
        (
            d.line_key,
            run.pk,
            d.rank,
            to_json(list(d.rank_key)),
            d.score,
            to_json([{"name": f.name, "value": f.value, "weight": f.weight, "contribution": f.contribution}
                     for f in d.factors]),
            d.strategy,
            d.priority_class,
            to_json(dict(sources.get(d.line_key, ()))),
            to_json([allocation_json(a) for a in d.allocations]),
            to_json(list(d.path)),
            to_json(list(d.constraints)),
            d.shortfall,
            to_json(depth.shortfall_reasons(d)),
            depth.projected_date(d),
            d.fingerprint,
            policy_version_id,
            now,
        )
        for d in changed
    ]
    columns = (
        "line_id", "run_id", "rank", "rank_key", "score", "factors", "strategy", "priority_class",
        "setting_sources", "allocations", "path", "constraints", "shortfall", "shortfall_reasons", "projected_date",
        "fingerprint", "policy_version_id",
        "created_at",
    )
    table = LineDecisionLog._meta.db_table
    if connection.vendor == "postgresql":
        _copy_rows(table, columns, rows)
    else:
        LineDecisionLog.objects.bulk_create(
            [
                LineDecisionLog(**{
                    name: (json.loads(value) if name in JSON_COLUMNS else value)
                    for name, value in zip(columns, row, strict=True)
                })
                for row in rows
            ],
            batch_size=1000,
        )
    current = LineDecisionCurrent._meta.db_table
    with connection.cursor() as cursor:
        # One log entry per line and run, so this moves each changed line's pointer to its new entry.
        cursor.execute(
            f"INSERT INTO {current} (line_id, log_id, fingerprint) "
            f"SELECT line_id, id, fingerprint FROM {table} WHERE run_id = %s "
            "ON CONFLICT (line_id) DO UPDATE SET log_id = excluded.log_id, fingerprint = excluded.fingerprint",
            [run.pk],
        )


def _write_reservation_messages(run: AllocationRun, loaded: LoadedInput, changed: list[et.LineDecision]) -> int:
    """One outbound ``reservation.changed`` per line whose decision changed (same transaction).

    The message lists what the line now holds (reserved, released, pinned; proposals wait for
    their approval). Simulations never persist, so they never write messages.
    """
    facts = loaded.line_facts
    return outbox.record_reservation_changes(
        run_id=run.pk,
        lines=[
            {
                "line_id": decision.line_key,
                "order": facts[decision.line_key]["order"],
                "line": facts[decision.line_key]["line"],
                "allocations": [
                    outbox.reservation_allocation(
                        location=a.location, quantity=a.quantity, confirmed_date=a.confirmed_date, supply_ref=a.supply_ref
                    )
                    for a in decision.allocations
                    if a.state in RESERVED_STATES
                ],
            }
            for decision in changed
            if decision.line_key in facts
        ],
    )


def _current_fingerprints(loaded: LoadedInput) -> dict[int, str]:
    current = LineDecisionCurrent.objects.all()
    if loaded.is_full:
        # The largest read of a full run: one plain fetch, no per-row ORM work.
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT line_id, fingerprint FROM {LineDecisionCurrent._meta.db_table}")
            return dict(cursor.fetchall())
    found: dict[int, str] = {}
    for chunk in _chunks(sorted(loaded.skus or ())):
        found.update(current.filter(line__item__sku__in=chunk).values_list("line_id", "fingerprint"))
    return found


def _stakes(loaded: LoadedInput, result: et.EngineResult) -> dict[int, LineStake]:
    """What each line with a reason (raised now, or open from before) risks."""
    facts = loaded.line_facts
    wanted = {e.line_key for e in result.exceptions if e.line_key is not None}
    wanted.update(_lines_with_open_sticky_reasons(loaded))
    settings_of = {line.key: line.settings for line in loaded.engine_input.lines if line.key in wanted}
    stakes: dict[int, LineStake] = {}
    for decision in result.lines:
        if decision.line_key not in wanted:
            continue
        fact = facts.get(decision.line_key)
        if fact is None:
            continue
        dates = [a.confirmed_date for a in decision.allocations]
        reserved = [a for a in decision.allocations if a.state in RESERVED_STATES]
        line_settings = settings_of.get(decision.line_key)
        stakes[decision.line_key] = LineStake(
            tier=fact["tier"],
            penalty_per_day=fact["penalty"],
            value=fact["value"],
            due=fact["due"],
            promised=fact["promised"],
            latest_confirmed=max(dates) if dates else None,
            uncovered=decision.shortfall,
            reserved=sum((a.quantity for a in reserved), Decimal(0)),
            reserved_by_due=sum((a.quantity for a in reserved if a.confirmed_date <= fact["due"]), Decimal(0)),
            segment=fact["segment"],
            region=fact["region"],
            covered=sum((a.quantity for a in decision.allocations), Decimal(0)),
            actionable=getattr(decision, "actionable", True),
            min_value=line_settings.exception_min_value if line_settings is not None else Decimal(0),
        )
    return stakes


def _lines_with_open_sticky_reasons(loaded: LoadedInput) -> set[int]:
    """Lines whose open ``allocation_reversed`` or ``priority_shortage`` may wait for them to be
    restored (see exceptions.run_sync)."""
    open_ = CaseReason.objects.filter(
        type__in=[ExceptionType.ALLOCATION_REVERSED, ExceptionType.PRIORITY_SHORTAGE],
        status=ReasonStatus.OPEN, line__isnull=False,
    )
    if not loaded.is_full:
        ids: set[int] = set()
        for chunk in _chunks(sorted(loaded.skus or ())):
            ids.update(open_.filter(line__item__sku__in=chunk).values_list("line_id", flat=True))
        return ids
    return set(open_.values_list("line_id", flat=True))


def persist_result(
    *, run: AllocationRun, loaded: LoadedInput, result: et.EngineResult, policy_version_id: int | None
) -> PersistStats:
    """Replace the scope's non-fixed allocations, log changed decisions and sync exceptions."""
    # Execution mode (allocation.execution_modes): store what a recommend scope decided as
    # recommendations, publish nothing for it; exceptions see the engine's own result.
    engine_result, result = result, execution_modes.as_stored(loaded, result)
    decisions = [a for line in result.lines for a in line.allocations]
    kept_ids = {a.existing_id for a in decisions if a.existing_id is not None}
    replaceable = [e.id for e in loaded.engine_input.existing if e.state not in FIXED_STATES and e.id not in kept_ids]
    for chunk in _chunks(replaceable):
        Allocation.objects.filter(id__in=chunk).exclude(state__in=FIXED_STATES).delete()
    new = [a for a in decisions if a.existing_id is None and a.state not in FIXED_STATES]
    _write_allocations(run, new)
    execution_modes.state_updates(loaded, result)

    current = _current_fingerprints(loaded)
    changed = [line for line in result.lines if current.get(line.line_key) != line.fingerprint]
    _write_decision_logs(run, loaded, changed, policy_version_id)
    messages = _write_reservation_messages(run, loaded, execution_modes.published(loaded, changed, run_id=run.pk))

    counts = sync_run_exceptions(
        list(result.exceptions),
        # Incremental: the scope's items select the lines (any status); no id lists to send.
        scope_line_ids=None if loaded.is_full else [],
        scope_order_numbers=None if loaded.is_full else loaded.order_numbers,
        scope_skus=loaded.skus,
        run=run,
        stakes=_stakes(loaded, engine_result),
    )
    from allocation.audit.chain import seal_run_decisions  # tamper evidence (hash chain), last: its lock is short

    seal_run_decisions(run.pk)
    return PersistStats(
        allocations=len(decisions),
        allocations_written=len(new),
        allocations_deleted=len(replaceable),
        changed_lines=len(changed),
        exceptions=counts,
        messages=messages,
    )

