"""Execution mode per scope (policy setting ``execution_mode``: ``auto`` or ``recommend``).

In an ``auto`` scope a run reserves and publishes (``reservation.changed``) as it always did.
In a ``recommend`` scope a run *proposes*: what it decides for a line is stored as
``recommended`` allocations (they consume supply, so the next run is stable and nobody else
takes them) and nothing is published; a planner accepts them, singly or in bulk
(:func:`accept_recommendations`), which turns them into reservations and publishes them.

The engine knows nothing of this. The boundary is here, around the engine:

- :func:`for_engine` (after loading): a ``recommended`` allocation is given to the engine as
  ``reserved`` (ranking stability: the line keeps it like a reservation), and a ``reserved``
  allocation of a line in a ``recommend`` scope as ``pinned``: what was accepted (or reserved
  before the scope switched) has been published, so only a planner changes it; runs recommend
  what the line still lacks.
- :func:`as_stored` (before persisting): the engine's decisions mapped back. For a
  ``recommend`` line new ``reserved`` decisions become ``recommended`` and the fingerprint is
  salted with the mode, so a line whose scope switches mode gets a new decision entry (and,
  back in ``auto``, its ``reservation.changed``). Kept rows show their stored state again.
- :func:`state_updates` (while persisting): kept rows whose stored state no longer matches
  (a ``recommended`` row of a line whose scope is ``auto`` again) are updated in one statement;
  :func:`published` keeps a ``recommend`` line out of the messages a run writes unless what it
  holds as reserved, released or pinned changed since its previous decision (a planner accepted,
  overrode or approved a substitute: published by the run that follows, as in ``auto``).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from allocation.choices import AllocationState
from allocation.engine import types as et
from allocation.loading import LoadedInput

AUTO = "auto"
RECOMMEND = "recommend"
RESERVED = AllocationState.RESERVED.value
PINNED = AllocationState.PINNED.value
RECOMMENDED = AllocationState.RECOMMENDED.value
PUBLISHED_STATES = (AllocationState.RESERVED, AllocationState.RELEASED, AllocationState.PINNED)
FIXED_PATH = -1  # allocation.engine.explain.FIXED: a fixed allocation's path entry
MAX_ACCEPT_LINES = 5000


@dataclass
class ModeMappedInput(LoadedInput):
    """A loaded input whose existing allocations were mapped for the engine.

    ``stored_states``: allocation id -> its state in the database, for each one given to the
    engine under another state. ``recommend_lines``: keys of the lines in a ``recommend`` scope.
    """

    stored_states: dict[int, str] = field(default_factory=dict)
    recommend_lines: frozenset[int] = frozenset()


def _mode(line: et.Line) -> str:
    return getattr(line.settings, "execution_mode", AUTO) or AUTO


def for_engine(loaded: LoadedInput) -> LoadedInput:
    """The input the engine sees: ``recommended`` as ``reserved``, and a ``recommend`` line's
    ``reserved`` as ``pinned`` (fixed). Returns ``loaded`` itself when nothing needs mapping."""
    source = loaded.engine_input
    recommend = frozenset(line.key for line in source.lines if _mode(line) == RECOMMEND)
    stored: dict[int, str] = {}
    existing: list[et.ExistingAllocation] = []
    for allocation in source.existing:
        if allocation.state == RECOMMENDED:
            stored[allocation.id] = RECOMMENDED
            existing.append(dataclasses.replace(allocation, state=RESERVED))
        elif allocation.state == RESERVED and allocation.line_key in recommend:
            stored[allocation.id] = RESERVED
            existing.append(dataclasses.replace(allocation, state=PINNED))
        else:
            existing.append(allocation)
    if not stored and not recommend:
        return loaded
    values = {f.name: getattr(loaded, f.name) for f in dataclasses.fields(LoadedInput)}
    values["engine_input"] = dataclasses.replace(source, existing=tuple(existing))
    return ModeMappedInput(**values, stored_states=stored, recommend_lines=recommend)


def salted_fingerprint(fingerprint: str) -> str:
    """A ``recommend`` line's fingerprint: the engine's, salted with the mode (64 hex characters)."""
    return hashlib.sha256(f"{fingerprint}|{RECOMMEND}".encode()).hexdigest()


def _stored_line(decision: et.LineDecision, stored: dict[int, str], recommend: bool) -> et.LineDecision:
    allocations = []
    fixed_from_reserved: Counter = Counter()
    for allocation in decision.allocations:
        state = allocation.state
        if allocation.existing_id is not None and allocation.existing_id in stored:
            state = stored[allocation.existing_id]
            if recommend and state == RESERVED:
                fixed_from_reserved[(allocation.location, allocation.item, allocation.quantity)] += 1
            elif not recommend and state == RECOMMENDED:
                state = RESERVED  # its scope is auto again: reserved (and published) now
        elif allocation.existing_id is None and recommend and state == RESERVED:
            state = RECOMMENDED
        allocations.append(allocation if state == allocation.state else allocation._replace(state=state))
    path = decision.path_facts
    if fixed_from_reserved:
        restored = []
        for step in path:
            key = (step[2], step[3], step[4]) if len(step) == 5 and step[0] == FIXED_PATH and step[1] == PINNED else None
            if key is not None and fixed_from_reserved[key] > 0:
                fixed_from_reserved[key] -= 1
                step = (step[0], RESERVED, *step[2:])
            restored.append(step)
        path = tuple(restored)
    return decision._replace(
        allocations=tuple(allocations),
        path_facts=path,
        fingerprint=salted_fingerprint(decision.fingerprint) if recommend else decision.fingerprint,
    )


def as_stored(loaded: LoadedInput, result: et.EngineResult) -> et.EngineResult:
    """The engine's result with the states the database keeps (see the module docstring)."""
    if not isinstance(loaded, ModeMappedInput):
        return result
    stored, recommend = loaded.stored_states, loaded.recommend_lines
    lines = tuple(
        _stored_line(decision, stored, decision.line_key in recommend)
        if decision.line_key in recommend or any(a.existing_id in stored for a in decision.allocations)
        else decision
        for decision in result.lines
    )
    return dataclasses.replace(result, lines=lines)


def state_updates(loaded: LoadedInput, stored_result: et.EngineResult) -> int:
    """Kept rows whose stored state changes (``recommended`` -> ``reserved`` when a line's scope
    is ``auto`` again): updated in one statement. Returns how many."""
    if not isinstance(loaded, ModeMappedInput) or not loaded.stored_states:
        return 0
    from allocation.models import Allocation

    by_state: dict[str, list[int]] = defaultdict(list)
    for decision in stored_result.lines:
        for allocation in decision.allocations:
            was = loaded.stored_states.get(allocation.existing_id) if allocation.existing_id is not None else None
            if was is not None and was != allocation.state:
                by_state[allocation.state].append(allocation.existing_id)
    changed = 0
    for state, ids in by_state.items():
        changed += Allocation.objects.filter(id__in=ids, state__in=[RECOMMENDED, RESERVED]).update(state=state)
    return changed


def _published_part(allocations: Iterable[Any]) -> list[tuple]:
    """What the systems of record hold for a line: its reserved, released and pinned allocations."""
    def text(value: Any) -> str:
        return format(Decimal(str(value)).normalize(), "f")

    rows = []
    for a in allocations:
        if isinstance(a, dict):
            if a.get("state") in PUBLISHED_STATES:
                rows.append((a["location"], a["item"], a.get("supply_ref") or "", text(a["quantity"]), str(a["confirmed_date"])))
        elif a.state in PUBLISHED_STATES:
            rows.append((a.location, a.item, a.supply_ref or "", text(a.quantity), a.confirmed_date.isoformat()))
    return sorted(rows)


def published(loaded: LoadedInput, changed: Iterable[et.LineDecision], *, run_id: int | None = None) -> list[et.LineDecision]:
    """The changed lines a run publishes. ``auto`` lines: all. ``recommend`` lines: only those
    whose reserved, released and pinned allocations differ from their previous decision's, so a
    recommendation is never published, and a planner's change there (an accepted recommendation,
    an override, an approved substitute) is published by the run that follows it, as in ``auto``.
    Two queries for the previous decisions of the recommend lines that changed."""
    changed = list(changed)
    recommend = loaded.recommend_lines if isinstance(loaded, ModeMappedInput) else frozenset()
    keys = [d.line_key for d in changed if d.line_key in recommend]
    if not keys:
        return changed
    from django.db.models import Max

    from allocation.models import LineDecisionLog

    previous_ids: list[int] = []
    for start in range(0, len(keys), 5000):
        logs = LineDecisionLog.objects.filter(line_id__in=keys[start : start + 5000])
        if run_id is not None:
            logs = logs.exclude(run_id=run_id)
        previous_ids += [m for m in logs.values("line_id").annotate(m=Max("id")).values_list("m", flat=True) if m]
    before: dict[int, list[tuple]] = {}
    for start in range(0, len(previous_ids), 5000):
        for line_id, allocations in LineDecisionLog.objects.filter(id__in=previous_ids[start : start + 5000]).values_list(
            "line_id", "allocations"
        ):
            before[line_id] = _published_part(allocations or [])
    return [
        d for d in changed
        if d.line_key not in recommend or _published_part(d.allocations) != before.get(d.line_key, [])
    ]


# --------------------------------------------------------------------------- accepting


class RecommendationError(ValueError):
    """A request to accept recommendations that cannot be carried out; ``field`` names the input."""

    def __init__(self, message: str, *, field: str = "lines"):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class AcceptResult:
    lines: int
    allocations: int
    skipped: tuple[int, ...] = ()
    run: Any = None  # the run that publishes them (queued where runs execute in the background)


def recommended_lines(*, location_code: str | None = None):
    """Open lines holding ``recommended`` allocations (optionally at one location), for the queue."""
    from allocation.models import OrderLine

    condition = Q(allocations__state=AllocationState.RECOMMENDED)
    if location_code:
        condition &= Q(allocations__location__code=location_code)
    return OrderLine.objects.filter(condition).distinct()


def accept_recommendations(line_ids: Iterable[int], *, actor: Any, note: str = "") -> AcceptResult:
    """Accept what runs recommended for ``line_ids``: their ``recommended`` allocations become
    ``reserved`` (one transaction), then the run of their item groups publishes each line's
    ``reservation.changed`` (:func:`published`), as after any planner action.

    Set-based: a handful of queries whatever the number of lines. The run locks of the items
    concerned are taken first (``allocation.locks``), so a run never rewrites a recommendation
    while it is being accepted. Lines without a recommendation are skipped (``skipped``); none
    at all is an error. Each accepted line gets an :class:`AcceptedRecommendation` (the audit,
    with the actor and what was accepted).
    """
    from allocation.locks import lock_run_scope
    from allocation.models import AcceptedRecommendation, Allocation
    from allocation.persistence import decimal_text

    wanted = sorted({int(pk) for pk in line_ids})
    if not wanted:
        raise RecommendationError("Choose at least one line.")
    if len(wanted) > MAX_ACCEPT_LINES:
        raise RecommendationError(f"At most {MAX_ACCEPT_LINES} lines at a time.")
    if not getattr(actor, "is_authenticated", False):
        raise RecommendationError("Accepting needs a signed-in planner.", field="actor")
    now = timezone.now()
    with transaction.atomic():
        skus = set(
            Allocation.objects.filter(line_id__in=wanted, state=AllocationState.RECOMMENDED).values_list("item__sku", flat=True)
        )
        if not skus:
            raise RecommendationError("None of these lines has a recommendation to accept (a run may have changed it).")
        lock_run_scope(skus)
        rows = list(
            Allocation.objects.select_for_update(of=("self",))
            .filter(line_id__in=wanted, state=AllocationState.RECOMMENDED)
            .values_list("id", "line_id", "run_id", "item__sku", "location__code", "quantity", "confirmed_date", "supply__ref")
        )
        if not rows:
            raise RecommendationError("None of these lines has a recommendation to accept (a run may have changed it).")
        Allocation.objects.filter(id__in=[row[0] for row in rows]).update(state=AllocationState.RESERVED)
        accepted: dict[int, list[tuple]] = defaultdict(list)
        for row in rows:
            accepted[row[1]].append(row)
        AcceptedRecommendation.objects.bulk_create(
            [
                AcceptedRecommendation(
                    line_id=line_id,
                    run_id=max((row[2] or 0) for row in line_rows) or None,
                    allocations=[
                        {
                            "item": sku, "location": code, "quantity": decimal_text(Decimal(quantity)),
                            "confirmed_date": confirmed.isoformat() if isinstance(confirmed, dt.date) else str(confirmed),
                            "supply_ref": ref,
                        }
                        for _pk, _line, _run, sku, code, quantity, confirmed, ref in line_rows
                    ],
                    actor=actor,
                    note=note[:300],
                    accepted_at=now,
                )
                for line_id, line_rows in sorted(accepted.items())
            ],
            batch_size=1000,
        )
    # Like every planner action: the run of the items' groups follows and publishes the
    # reservations (reservation.changed), in its own transaction (allocation.overrides).
    from allocation import overrides

    run = overrides.trigger_incremental_run(skus, actor=actor, trigger="override")
    return AcceptResult(
        lines=len(accepted),
        allocations=len(rows),
        skipped=tuple(pk for pk in wanted if pk not in accepted),
        run=run,
    )
