"""The shortage workbench (after SAP's Release for Delivery): every open line competing for
one item at one location, ranked, with what each holds there. The planner sets a new
quantity per line (cutting low-priority lines, giving to higher ones) and commits: each
changed line gets pinned allocations through ``allocation.overrides`` and, above the
thresholds, an approval request (kind ``line.override``) instead.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Sum

from allocation import overrides
from allocation.choices import AllocationState, LineStatus
from allocation.models import Allocation, InventoryPosition, Item, Location, OrderLine
from config import roles
from exceptions import approvals
from exceptions.choices import OverrideReason
from exceptions.errors import ActionNotAllowed, ApprovalNotAllowed, InvalidAction, StaleAction
from exceptions.models import ApprovalRequest

APPROVAL_KIND_LINE_OVERRIDE = "line.override"
ZERO = Decimal("0")


@dataclass
class BoardRow:
    line: OrderLine
    rank: int | None
    strategy: str
    open_quantity: Decimal
    here: Decimal  # allocated at this location (every state)
    fixed_here: Decimal  # released here: cannot be cut
    elsewhere: Decimal
    pending_approval: bool
    pinned_here: Decimal = ZERO

    @property
    def most(self) -> Decimal:
        """The most this line may hold here."""
        return max(self.open_quantity - self.elsewhere, ZERO)


@dataclass
class Board:
    sku: str
    item: Item
    location: Location
    locations: list[tuple[str, Decimal]]
    available: Decimal
    rows: list[BoardRow] = field(default_factory=list)

    @property
    def allocated(self) -> Decimal:
        return sum((r.here for r in self.rows), ZERO)

    @property
    def unassigned(self) -> Decimal:
        return self.available - self.allocated


def load_board(sku: str, location_code: str) -> Board | None:
    """The board of ``sku`` at ``location_code`` (else the location with the most stock), or
    None when there is no such item. A handful of queries whatever the number of lines."""
    item = Item.objects.filter(sku=sku).first()
    if item is None:
        return None
    positions = list(InventoryPosition.objects.filter(item=item).select_related("location").order_by("location__code"))
    locations = [(p.location.code, p.available) for p in positions]
    location = next((p.location for p in positions if p.location.code == location_code), None)
    if location is None:
        location = max(positions, key=lambda p: (p.available, p.location.code)).location if positions else Location.objects.filter(code=location_code).first()
    if location is None:
        location = Location.objects.order_by("code").first()
    available = next((p.available for p in positions if p.location_id == location.pk), ZERO) if location else ZERO
    lines = list(
        OrderLine.objects.filter(item=item, status=LineStatus.OPEN)
        .select_related("order__customer__home_location", "item", "ship_from")
        .order_by("order__requested_date", "order__number", "line")
    )
    ranks: dict[int, tuple[int, str]] = {}
    try:
        from allocation.models.runs import LineDecisionCurrent

        for line_id, rank, strategy in LineDecisionCurrent.objects.filter(line__in=lines).values_list("line_id", "log__rank", "log__strategy"):
            ranks[line_id] = (rank, strategy)
    except ImportError:  # runs not installed: order by requested date
        pass
    settings = overrides.line_settings(lines)
    here: dict[int, Decimal] = defaultdict(lambda: ZERO)
    fixed: dict[int, Decimal] = defaultdict(lambda: ZERO)
    pinned: dict[int, Decimal] = defaultdict(lambda: ZERO)
    elsewhere: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for line_id, location_id, supply_id, state, quantity in Allocation.objects.filter(line__in=lines).values_list(
        "line_id", "location_id", "supply_id", "state", "quantity"
    ):
        if location is not None and location_id == location.pk and supply_id is None:
            here[line_id] += quantity
            if state == AllocationState.RELEASED:
                fixed[line_id] += quantity
            elif state == AllocationState.PINNED:
                pinned[line_id] += quantity
        else:
            elsewhere[line_id] += quantity
    pending = set(
        ApprovalRequest.objects.filter(
            kind=APPROVAL_KIND_LINE_OVERRIDE, status="pending", subject_id__in=[line.pk for line in lines]
        ).values_list("subject_id", flat=True)
    )
    rows = [
        BoardRow(
            line=line,
            rank=ranks.get(line.pk, (None, ""))[0],
            strategy=ranks.get(line.pk, (None, ""))[1] or settings[line.pk].strategy,
            open_quantity=line.open_quantity,
            here=here[line.pk],
            fixed_here=fixed[line.pk],
            elsewhere=elsewhere[line.pk],
            pending_approval=line.pk in pending,
            pinned_here=pinned[line.pk],
        )
        for line in lines
    ]
    rows.sort(key=lambda r: (r.rank is None, r.rank or 0))
    return Board(sku=item.sku, item=item, location=location, locations=locations, available=available, rows=rows)


def parse_targets(data: Any, board: Board) -> tuple[dict[int, Decimal], dict[int, Decimal]]:
    """Read ``line-<id>`` (new quantity here) and ``seen-<id>`` (what the planner saw) for the
    board's lines; a bad number names its field."""
    targets, seen = {}, {}
    for row in board.rows:
        pk = row.line.pk
        raw = (data.get(f"line-{pk}") or "").strip()
        if raw == "":
            continue
        try:
            target = Decimal(raw)
            previous = Decimal((data.get(f"seen-{pk}") or "0").strip())
        except InvalidOperation:
            raise InvalidAction("Enter a number.", field=f"line-{pk}") from None
        if not target.is_finite() or target < 0:
            raise InvalidAction("Enter zero or more.", field=f"line-{pk}")
        targets[pk] = target
        seen[pk] = previous
    return targets, seen


@dataclass
class CommitResult:
    summary: str
    pinned: list[int] = field(default_factory=list)
    cut: list[int] = field(default_factory=list)
    awaiting: list[int] = field(default_factory=list)
    run: Any = None


def _here(line_ids: list[int], item: Item, location: Location) -> dict[int, Decimal]:
    rows = (
        Allocation.objects.filter(line_id__in=line_ids, item=item, location=location, supply__isnull=True)
        .values("line_id")
        .annotate(q=Sum("quantity"))
    )
    result = {pk: ZERO for pk in line_ids}
    result.update({row["line_id"]: row["q"] for row in rows})
    return result


def _parts_keeping_elsewhere(line: OrderLine, item: Item, location: Location, target_here: Decimal) -> list[overrides.PartRequest]:
    parts = [
        overrides.PartRequest(
            location_code=a.location.code, quantity=a.quantity, supply_ref=a.supply.ref if a.supply_id else "", item_sku=a.item.sku
        )
        for a in Allocation.objects.filter(line=line)
        .exclude(state=AllocationState.RELEASED)
        .exclude(item=item, location=location, supply__isnull=True)
        .select_related("location", "supply", "item")
    ]
    released_here = (
        Allocation.objects.filter(line=line, item=item, location=location, supply__isnull=True, state=AllocationState.RELEASED)
        .aggregate(q=Sum("quantity"))["q"]
        or ZERO
    )
    if target_here < released_here:
        raise InvalidAction(
            f"{line.order.number}/{line.line} has {released_here.normalize():f} released to the warehouse here; it cannot go lower.",
            field=f"line-{line.pk}",
        )
    if target_here - released_here > 0:
        parts.append(overrides.PartRequest(location_code=location.code, quantity=target_here - released_here, item_sku=item.sku))
    return parts


def commit(
    *,
    actor: Any,
    sku: str,
    location_code: str,
    targets: dict[int, Decimal],
    seen: dict[int, Decimal],
    reason_code: str,
    note: str,
) -> CommitResult:
    """Apply the planner's new quantities at one location: lines cut first (pinned at their new
    quantity, or their unfixed allocation here removed at zero), then lines given more
    (pinned, taking what is free and what others hold unfixed). Lines are locked in id order;
    a line whose quantity here moved since the planner loaded the board makes the whole
    commit stale (nothing applied). Lines over the approval thresholds get a request instead."""
    if not roles.has_role(actor, {roles.PLANNER, roles.CUSTOMER_SERVICE}):
        raise ActionNotAllowed("Only planners and customer service change allocations.")
    if reason_code not in OverrideReason.values:
        raise InvalidAction("Choose a reason code from the list.", field="reason_code")
    note = (note or "").strip()
    if not note:
        raise InvalidAction("A note is required.", field="note")
    item = Item.objects.filter(sku=sku).first()
    location = Location.objects.filter(code=location_code).first()
    if item is None or location is None:
        raise InvalidAction("Unknown item or location.", field="location")
    result = CommitResult(summary="")
    with transaction.atomic():
        lines = {
            line.pk: line
            for line in OrderLine.objects.select_for_update(of=("self",))
            .select_related("order__customer", "item")
            .filter(pk__in=list(targets), item=item, status=LineStatus.OPEN)
            .order_by("pk")
        }
        if set(lines) != set(targets):
            raise InvalidAction("A line is not open for this item any more.", field="lines")
        current = _here(list(lines), item, location)
        moved = {pk: current[pk] for pk in lines if current[pk] != seen.get(pk)}
        if moved:
            raise StaleAction(
                "Allocations changed since you loaded the board: " + ", ".join(
                    f"{lines[pk].order.number}/{lines[pk].line} now holds {q.normalize():f}" for pk, q in moved.items()
                ) + ".",
                current={"lines": {str(pk): str(q) for pk, q in current.items()}},
                changes=[],
            )
        changed = {pk: t for pk, t in targets.items() if t != current[pk]}
        if not changed:
            raise InvalidAction("Nothing changed: move quantity between lines first.", field="lines")
        position = InventoryPosition.objects.filter(item=item, location=location).first()
        available = position.available if position else ZERO
        others_here = (
            Allocation.objects.filter(item=item, location=location, supply__isnull=True)
            .exclude(line_id__in=list(changed))
            .aggregate(q=Sum("quantity"))["q"]
            or ZERO
        )
        wanted = sum(changed.values(), ZERO) + others_here
        if wanted > available:
            raise InvalidAction(
                f"The lines would hold {wanted.normalize():f} but {location.code} has {available.normalize():f} available.",
                field="lines",
            )
        order = sorted(changed, key=lambda pk: (changed[pk] > current[pk], pk))  # cuts first
        for pk in order:
            line = lines[pk]
            if approvals.pending_for(line, APPROVAL_KIND_LINE_OVERRIDE).exists():
                raise InvalidAction(
                    f"{line.order.number}/{line.line} already waits for an approval.", field=f"line-{pk}"
                )
            parts = _parts_keeping_elsewhere(line, item, location, changed[pk])
            if not parts:
                Allocation.objects.filter(line=line, item=item, location=location, supply__isnull=True).exclude(
                    state=AllocationState.RELEASED
                ).delete()
                result.cut.append(pk)
                continue
            try:
                plan = overrides.plan_override(line, parts)
            except overrides.OverrideError as error:
                raise InvalidAction(f"{line.order.number}/{line.line}: {error.message}", field=f"line-{pk}") from None
            if plan.needs_approval:
                approvals.request_approval(
                    kind=APPROVAL_KIND_LINE_OVERRIDE,
                    subject=line,
                    actor=actor,
                    note=f"workbench {sku} at {location.code} ({OverrideReason(reason_code).label}): {note}",
                    payload={
                        "action": "workbench",
                        "parts": [p.request.as_payload() for p in plan.parts],
                        "reason_code": reason_code,
                        "note": note,
                        "why_approval": plan.approval_reasons,
                        "losers": [h.label for h in plan.losers],
                        "from_quantity": str(current[pk]),
                        "to_quantity": str(changed[pk]),
                    },
                )
                result.awaiting.append(pk)
                continue
            overrides.apply_override(plan)
            result.pinned.append(pk)
    parts_text = [f"{len(result.pinned)} line(s) pinned"]
    if result.cut:
        parts_text.append(f"{len(result.cut)} cut to zero here")
    if result.awaiting:
        parts_text.append(f"{len(result.awaiting)} waiting for an approver")
    result.summary = "Workbench committed: " + ", ".join(parts_text) + "."
    if result.pinned or result.cut:
        result.run = overrides.trigger_incremental_run({sku}, actor=actor)
    return result


def line_subjects(approval_list: list[ApprovalRequest]) -> dict[int, OrderLine]:
    ids = [a.subject_id for a in approval_list if a.kind.startswith("line.")]
    return {line.pk: line for line in OrderLine.objects.filter(pk__in=ids).select_related("order__customer", "item")}


def _on_line_override_approved(approval: ApprovalRequest, subject: OrderLine) -> None:
    line = OrderLine.objects.select_for_update(of=("self",)).select_related("order__customer", "item").get(pk=subject.pk)
    parts = [overrides.PartRequest.from_payload(p) for p in approval.payload.get("parts", [])]
    try:
        plan = overrides.plan_override(line, parts)
    except overrides.OverrideError as error:
        raise ApprovalNotAllowed(f"The change cannot be applied any more: {error.message} Reject it instead.") from None
    overrides.apply_override(plan)
    skus = overrides.skus_touched(line, plan)
    # Queued in this transaction, executed after it commits; the approval screen follows it.
    approval.run = overrides.trigger_incremental_run(
        skus, actor=approval.decided_by, trigger="approval", in_transaction=True
    )


def _on_line_override_rejected(approval: ApprovalRequest, subject: OrderLine) -> None:
    """Nothing was changed while the request waited: nothing to undo."""


approvals.register(APPROVAL_KIND_LINE_OVERRIDE, on_approved=_on_line_override_approved, on_rejected=_on_line_override_rejected)
