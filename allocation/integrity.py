"""``check_integrity``: after a restore (or any time), verify what the application relies on.

Every check is a handful of set-based queries, whatever the size of the database:

- ``allocations_within_supply``: per supply element — on-hand of an item at a location
  (``on_hand − quality_hold − warehouse_hold``) or one inbound supply (its open quantity while
  ``open``, else nothing) — the allocations in every state (proposed, reserved, released, pinned:
  all consume supply, allocation.md) add up to no more than it holds; an allocation against a
  supply carries that supply's item and location; a line holds no more than its open quantity.
  Where fixed allocations (released, pinned) alone exceed the supply it is a *warning*: runs never
  change them, a planner or the warehouse must. Where a run-managed one (reserved, proposed)
  is part of the excess it is a *problem*, which the next run of those items repairs (a snapshot
  taken between a stock change and its run shows one too);
- ``runs_left_open``: no run ``running`` without a heartbeat in the last
  ``ALLOT_RUN_LOST_SECONDS`` and none ``queued`` longer than ``ALLOT_READY_QUEUED_RUN_SECONDS``
  (after a restore no worker is running them: the reaper fails the first, the sweeper
  re-publishes the second);
- ``outbox``: no message both delivered and not (``sent`` without ``sent_at``, ``sent_at`` on a
  pending or dead one), none pending past its last attempt or due later than the longest backoff,
  no delivery without an attempt;
- ``events_stuck``: no event ``pending`` longer than ``ALLOT_READY_PENDING_EVENT_SECONDS``;
- ``decision_references``: decision-log entries point at existing runs and lines, each line's
  current-decision pointer at an entry of that line, allocations at existing runs;
- ``history_tables``: every audited model (django-simple-history) has its history table;
- ``audit_chain``: there is no hash-chained audit log in this version (reported as info).

Statuses: ``ok``, ``info``, ``warning`` (reported, exit 0), ``problem`` (exit 1).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.models import (
    Case,
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    Min,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from allocation.choices import AllocationState, SupplyStatus
from allocation.models import (
    Allocation,
    AllocationRun,
    InventoryPosition,
    LineDecisionCurrent,
    LineDecisionLog,
    OrderLine,
    RunStatus,
)

OK, INFO, WARNING, PROBLEM = "ok", "info", "warning", "problem"
SAMPLE = 20  # examples listed per finding
# Half the smallest quantity step (3 decimals): exact on PostgreSQL, absorbs float sums on SQLite.
TOLERANCE = Decimal("0.0005")
FIXED_STATES = (AllocationState.RELEASED, AllocationState.PINNED)
QTY_FIELD = DecimalField(max_digits=20, decimal_places=3)
ZERO = Value(Decimal("0"), output_field=QTY_FIELD)


@dataclass
class Finding:
    status: str
    message: str
    count: int = 0
    examples: list[Any] = field(default_factory=list)


@dataclass
class CheckResult:
    name: str
    findings: list[Finding] = field(default_factory=list)
    summary: str = ""

    @property
    def status(self) -> str:
        order = [OK, INFO, WARNING, PROBLEM]
        return max((finding.status for finding in self.findings), key=order.index, default=OK)

    def add(self, status: str, message: str, count: int = 0, examples: list[Any] | None = None) -> None:
        self.findings.append(Finding(status, message, count, list(examples or [])[:SAMPLE]))


@dataclass
class IntegrityReport:
    checks: list[CheckResult]

    @property
    def ok(self) -> bool:
        return all(check.status != PROBLEM for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": OK if self.ok else PROBLEM,
            "database": connection.vendor,
            "checks": {
                check.name: {"status": check.status, "summary": check.summary,
                             "findings": [asdict(finding) for finding in check.findings]}
                for check in self.checks
            },
        }

    def text(self) -> str:
        lines = []
        for check in self.checks:
            lines.append(f"[{check.status.upper():7}] {check.name}: {check.summary}")
            for finding in check.findings:
                lines.append(f"    {finding.status}: {finding.message}")
                for example in finding.examples:
                    lines.append(f"      - {example}")
        problems = sum(check.status == PROBLEM for check in self.checks)
        lines.append("integrity: ok" if self.ok else f"integrity: {problems} check(s) found problems")
        return "\n".join(lines)


def _decimal(value: Any) -> str:
    return format(Decimal(value).quantize(Decimal("0.001")).normalize(), "f")


# --- allocations within supply ----------------------------------------------------------------


def _over_allocated(rows: list[dict[str, Any]], label: Callable[[dict[str, Any]], str], result: CheckResult, what: str) -> None:
    managed = [row for row in rows if row["total"] - (row["fixed"] or 0) > 0]
    fixed_only = [row for row in rows if row["total"] - (row["fixed"] or 0) <= 0]

    def example(row: dict[str, Any]) -> str:
        return (f"{label(row)}: allocated {_decimal(row['total'])} (fixed {_decimal(row['fixed'] or 0)}), "
                f"available {_decimal(row['available'])}")

    if managed:
        result.add(PROBLEM, f"{len(managed)} {what} over-allocated (reserved or proposed allocations "
                   "beyond supply; `manage.py allocate --items SKU,...` re-decides them)",
                   len(managed), [example(row) for row in managed])
    if fixed_only:
        result.add(WARNING, f"{len(fixed_only)} {what} where released or pinned allocations alone exceed "
                   "supply (runs never change these: a planner or the warehouse must)",
                   len(fixed_only), [example(row) for row in fixed_only])


def check_allocations_within_supply() -> CheckResult:
    result = CheckResult("allocations_within_supply")
    fixed = Sum("quantity", filter=Q(state__in=FIXED_STATES))
    available_on_hand = (
        InventoryPosition.objects.filter(item=OuterRef("item"), location=OuterRef("location"))
        .annotate(free=Greatest(
            ExpressionWrapper(F("on_hand") - F("quality_hold") - F("warehouse_hold"), output_field=QTY_FIELD), ZERO
        ))
        .values("free")[:1]
    )
    on_hand = list(
        Allocation.objects.filter(supply__isnull=True)
        .values("item", "location", "item__sku", "location__code")
        .annotate(total=Sum("quantity"), fixed=fixed, available=Coalesce(Subquery(available_on_hand, output_field=QTY_FIELD), ZERO))
        .filter(total__gt=F("available") + TOLERANCE)
        .order_by("item__sku", "location__code")
    )
    _over_allocated(on_hand, lambda row: f"on-hand {row['item__sku']} at {row['location__code']}", result,
                    "on-hand positions")

    inbound = list(
        Allocation.objects.filter(supply__isnull=False)
        .values("supply", "supply__ref")
        .annotate(
            total=Sum("quantity"), fixed=fixed,
            available=Case(
                When(supply__status=SupplyStatus.OPEN, then=Greatest(
                    ExpressionWrapper(F("supply__quantity") - F("supply__received_quantity"), output_field=QTY_FIELD), ZERO
                )),
                default=ZERO, output_field=QTY_FIELD,
            ),
        )
        .filter(total__gt=F("available") + TOLERANCE)
        .order_by("supply__ref")
    )
    _over_allocated(inbound, lambda row: f"inbound {row['supply__ref']}", result, "inbound supplies")

    mismatched = Allocation.objects.filter(supply__isnull=False).exclude(item=F("supply__item"), location=F("supply__location"))
    count = mismatched.count()
    if count:
        result.add(PROBLEM, f"{count} allocations name another item or location than their supply", count,
                   [f"allocation {pk}: {sku} at {code} against {ref}" for pk, sku, code, ref in
                    mismatched.order_by("id").values_list("id", "item__sku", "location__code", "supply__ref")[:SAMPLE]])

    lines = list(
        Allocation.objects.values("line", "line__order__number", "line__line")
        .annotate(
            total=Sum("quantity"),
            open_quantity=Greatest(
                ExpressionWrapper(F("line__quantity") - F("line__shipped_quantity"), output_field=QTY_FIELD), ZERO
            ),
        )
        .filter(total__gt=F("open_quantity") + TOLERANCE)
        .order_by("line__order__number", "line__line")
    )
    if lines:
        result.add(PROBLEM, f"{len(lines)} lines hold more than their open quantity", len(lines),
                   [f"{row['line__order__number']}/{row['line__line']}: allocated {_decimal(row['total'])}, "
                    f"open {_decimal(row['open_quantity'])}" for row in lines])

    totals = Allocation.objects.aggregate(count=Count("id"), pools=Count("item", distinct=True))
    result.summary = f"{totals['count']} allocations over {totals['pools']} items"
    return result


# --- runs -------------------------------------------------------------------------------------


def check_runs_left_open(now: dt.datetime) -> CheckResult:
    result = CheckResult("runs_left_open")
    lost_after = settings.ALLOT_RUN_LOST_SECONDS
    cutoff = now - dt.timedelta(seconds=lost_after)
    running = AllocationRun.objects.filter(status=RunStatus.RUNNING).annotate(
        last_sign=Coalesce("heartbeat_at", "started_at", "created_at")
    )
    lost = list(running.filter(last_sign__lt=cutoff).order_by("id").values_list("id", "last_sign"))
    if lost:
        result.add(PROBLEM, f"{len(lost)} runs left running without a heartbeat for {lost_after} s "
                   "(the reaper fails them and re-requests their scope once a worker and beat run)",
                   len(lost), [f"run #{pk}: last sign of life {sign.isoformat(timespec='seconds')}" for pk, sign in lost])
    live = running.filter(last_sign__gte=cutoff).count()
    if live:
        result.add(WARNING, f"{live} runs running with a recent heartbeat (after a restore nobody runs them: "
                   f"the reaper fails them after {lost_after} s)", live)

    queued_limit = settings.ALLOT_READY_QUEUED_RUN_SECONDS
    queued = AllocationRun.objects.filter(status=RunStatus.QUEUED)
    stuck = list(queued.filter(created_at__lt=now - dt.timedelta(seconds=queued_limit)).order_by("id")
                 .values_list("id", "created_at"))
    if stuck:
        result.add(PROBLEM, f"{len(stuck)} runs queued for more than {queued_limit} s (no worker took them; "
                   "the sweeper publishes them again)", len(stuck),
                   [f"run #{pk}: queued since {created.isoformat(timespec='seconds')}" for pk, created in stuck])
    waiting = queued.count() - len(stuck)
    if waiting:
        result.add(INFO, f"{waiting} runs queued recently", waiting)
    by_status = dict(AllocationRun.objects.values_list("status").annotate(n=Count("id")).order_by())
    result.summary = ", ".join(f"{by_status.get(status, 0)} {status}" for status in RunStatus.values)
    return result


# --- the outbox -------------------------------------------------------------------------------


def check_outbox(now: dt.datetime) -> CheckResult:
    from integrations.choices import OutboxStatus
    from integrations.models import OutboxMessage
    from integrations.relay import MAX_ATTEMPTS, MAX_DELAY

    result = CheckResult("outbox")
    latest_due = now + MAX_DELAY + dt.timedelta(minutes=1)
    rules: list[tuple[str, str, Q]] = [
        (PROBLEM, "sent without a delivery time", Q(status=OutboxStatus.SENT, sent_at__isnull=True)),
        (PROBLEM, "delivered (sent_at set) yet pending or dead", ~Q(status=OutboxStatus.SENT) & Q(sent_at__isnull=False)),
        (PROBLEM, "sent without any attempt", Q(status=OutboxStatus.SENT, attempts=0)),
        (PROBLEM, f"pending after {MAX_ATTEMPTS} attempts (should be a dead letter)",
         Q(status=OutboxStatus.PENDING, attempts__gte=MAX_ATTEMPTS)),
        (PROBLEM, "pending but due later than the longest backoff",
         Q(status=OutboxStatus.PENDING, next_attempt_at__gt=latest_due)),
        (WARNING, f"dead letters with fewer than {MAX_ATTEMPTS} attempts",
         Q(status=OutboxStatus.DEAD, attempts__lt=MAX_ATTEMPTS)),
    ]
    counts = OutboxMessage.objects.aggregate(
        **{f"rule{i}": Count("id", filter=q) for i, (_, _, q) in enumerate(rules)},
        pending=Count("id", filter=Q(status=OutboxStatus.PENDING)),
        sent=Count("id", filter=Q(status=OutboxStatus.SENT)),
        dead=Count("id", filter=Q(status=OutboxStatus.DEAD)),
    )
    for i, (status, message, q) in enumerate(rules):
        if counts[f"rule{i}"]:
            examples = list(OutboxMessage.objects.filter(q).order_by("id").values_list("message_id", flat=True)[:SAMPLE])
            result.add(status, f"{counts[f'rule{i}']} messages {message}", counts[f"rule{i}"], examples)
    if counts["dead"]:
        result.add(INFO, f"{counts['dead']} dead letters wait for a replay (Outbox screen)", counts["dead"])
    result.summary = f"{counts['pending']} pending, {counts['sent']} sent, {counts['dead']} dead"
    return result


# --- events -----------------------------------------------------------------------------------


def check_events_stuck(now: dt.datetime) -> CheckResult:
    from integrations.choices import EventStatus
    from integrations.models import Event

    result = CheckResult("events_stuck")
    limit = settings.ALLOT_READY_PENDING_EVENT_SECONDS
    cutoff = now - dt.timedelta(seconds=limit)
    pending = Event.objects.filter(status=EventStatus.PENDING)
    found = pending.aggregate(count=Count("id"), old=Count("id", filter=Q(received_at__lt=cutoff)), oldest=Min("received_at"))
    if found["old"]:
        examples = [f"{source}:{event_id} received {received.isoformat(timespec='seconds')}" for source, event_id, received in
                    pending.filter(received_at__lt=cutoff).order_by("received_at", "id")
                    .values_list("source__code", "event_id", "received_at")[:SAMPLE]]
        result.add(PROBLEM, f"{found['old']} events pending for more than {limit} s (the sweeper publishes "
                   "their processing once a worker and beat run)",
                   found["old"], examples)
    result.summary = f"{found['count']} pending"
    return result


# --- references -------------------------------------------------------------------------------


def check_decision_references() -> CheckResult:
    result = CheckResult("decision_references")
    rules: list[tuple[str, Any, Callable[[Any], str]]] = [
        ("decision-log entries point at a missing run",
         LineDecisionLog.objects.filter(~Exists(AllocationRun.objects.filter(pk=OuterRef("run_id")))),
         lambda row: f"entry {row.pk} -> run #{row.run_id}"),
        ("decision-log entries point at a missing line",
         LineDecisionLog.objects.filter(~Exists(OrderLine.objects.filter(pk=OuterRef("line_id")))),
         lambda row: f"entry {row.pk} -> line {row.line_id}"),
        ("current-decision pointers name a missing entry or another line's",
         LineDecisionCurrent.objects.filter(~Exists(LineDecisionLog.objects.filter(pk=OuterRef("log_id"), line_id=OuterRef("line_id")))),
         lambda row: f"line {row.pk} -> entry {row.log_id}"),
        ("allocations name a run that does not exist",
         Allocation.objects.filter(run_id__isnull=False).filter(~Exists(AllocationRun.objects.filter(pk=OuterRef("run_id")))),
         lambda row: f"allocation {row.pk} -> run #{row.run_id}"),
    ]
    for message, queryset, describe in rules:
        count = queryset.count()
        if count:
            sample = queryset.order_by("pk").only("pk", *[f for f in ("run_id", "line_id", "log_id") if hasattr(queryset.model, f)])
            result.add(PROBLEM, f"{count} {message}", count, [describe(row) for row in sample[:SAMPLE]])
    result.summary = f"{LineDecisionLog.objects.count()} decision-log entries"
    return result


# --- history and the audit chain ----------------------------------------------------------------


def audited_models() -> list[tuple[type, type]]:
    """(model, its history model) for every model django-simple-history records."""
    return sorted(
        ((model.instance_type, model) for model in apps.get_models() if hasattr(model, "instance_type")
         and hasattr(model, "history_id")),
        key=lambda pair: pair[0]._meta.label,
    )


def check_history_tables() -> CheckResult:
    result = CheckResult("history_tables")
    tables = set(connection.introspection.table_names())
    pairs = audited_models()
    missing = [f"{model._meta.label}: {history._meta.db_table}" for model, history in pairs if history._meta.db_table not in tables]
    if missing:
        result.add(PROBLEM, f"{len(missing)} audited models have no history table", len(missing), missing)
    result.summary = f"{len(pairs) - len(missing)} of {len(pairs)} audited models have their history table"
    return result


def check_audit_chain() -> CheckResult:
    result = CheckResult("audit_chain")
    result.add(INFO, "no audit chain: this version keeps history tables and the decision log, "
               "not a hash-chained audit log, so there is nothing to verify")
    result.summary = "no audit chain"
    return result


def check_integrity(*, now: dt.datetime | None = None) -> IntegrityReport:
    """Run every check (read-only) and return the report."""
    now = now or timezone.now()
    return IntegrityReport([
        check_allocations_within_supply(),
        check_runs_left_open(now),
        check_outbox(now),
        check_events_stuck(now),
        check_decision_references(),
        check_history_tables(),
        check_audit_chain(),
    ])
