"""Planner changes to allocations: override (pinned), split, accept a substitution, defer a
promise, hold and release to the warehouse.

These functions change allocations on a planner's behalf; the exceptions services call them
inside their own transaction (after checking roles, versions and approvals), so they take
the locked line and write in bulk. ``plan_override`` computes, before anything is committed,
what an override would take and from whom (the consequence shown to the planner), and
whether it takes supply from a ``win`` line. ``trigger_incremental_run`` asks for the run of
the touched item groups after the change is committed.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from allocation.choices import AllocationState, LineStatus, SupplyStatus
from allocation.dates import business_today
from allocation.models import (
    Allocation,
    InventoryPosition,
    Item,
    ItemSubstitute,
    Location,
    OrderLine,
    Supply,
)

logger = logging.getLogger(__name__)

FIXED_STATES = (AllocationState.RELEASED, AllocationState.PINNED)
ZERO = Decimal("0")
DEFAULT_OVERRIDE_APPROVAL_MIN_VALUE = Decimal("10000")


class OverrideError(ValueError):
    """An override part that cannot be applied; ``field`` names the input at fault."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.message = message
        self.field = field


# --------------------------------------------------------------------------- policy settings


@dataclass(frozen=True)
class ApprovalSettings:
    """The effective settings of one line that decide approvals and what a line may lose."""

    strategy: str = "redistribute"
    override_approval_min_value: Decimal | None = DEFAULT_OVERRIDE_APPROVAL_MIN_VALUE
    auto_release_max_value: Decimal | None = None


def _decimal_or_none(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def line_settings(lines: Iterable[OrderLine]) -> dict[int, ApprovalSettings]:
    """Effective strategy and approval thresholds of each line under the active policy.

    Lines must have ``order__customer__home_location``, ``item`` and ``ship_from`` loaded.
    Without an active policy (or before the policies app is installed) the documented
    defaults apply: redistribute, override approval from 10,000, no release threshold.
    """
    lines = list(lines)
    try:
        from policies.errors import NoActivePolicy
        from policies.selectors import active_compiled_policy, dimensions_for_line
    except ImportError:
        return {line.pk: ApprovalSettings() for line in lines}
    try:
        _version, compiled = active_compiled_policy()
    except NoActivePolicy:
        return {line.pk: ApprovalSettings() for line in lines}
    result = {}
    for line in lines:
        resolved = compiled.resolve(dimensions_for_line(line)).as_settings()
        result[line.pk] = ApprovalSettings(
            strategy=resolved.strategy,
            override_approval_min_value=_decimal_or_none(resolved.override_approval_min_value),
            auto_release_max_value=_decimal_or_none(resolved.auto_release_max_value),
        )
    return result


def _lines_with_context(line_ids: Iterable[int]) -> list[OrderLine]:
    return list(
        OrderLine.objects.select_related("order__customer__home_location", "item", "ship_from").filter(pk__in=set(line_ids))
    )


# --------------------------------------------------------------------------- supply and holders


@dataclass(frozen=True)
class Holder:
    """A line that holds an allocation at a supply element (who would lose it)."""

    line_id: int
    order_number: str
    line_number: int
    customer: str
    state: str
    quantity: Decimal
    strategy: str

    @property
    def label(self) -> str:
        return f"{self.order_number}/{self.line_number}"


@dataclass
class SupplyOption:
    """One supply element a line could take from: on-hand at a location, or an inbound supply.

    ``available`` is what the element holds; ``held_fixed`` what other lines hold there as
    released or pinned (cannot be taken); ``held_other`` what other lines hold there and would
    lose; ``free`` what nobody holds.
    """

    item_sku: str
    location_code: str
    supply_ref: str | None
    eta: dt.date | None
    available: Decimal
    held_fixed: Decimal = ZERO
    held_other: Decimal = ZERO
    held_own: Decimal = ZERO
    is_substitute: bool = False
    holders: list[Holder] = field(default_factory=list)

    @property
    def free(self) -> Decimal:
        return max(self.available - self.held_fixed - self.held_other - self.held_own, ZERO)

    @property
    def takeable(self) -> Decimal:
        """The most an override of this line may take here (its own holdings are given back)."""
        return max(self.available - self.held_fixed, ZERO)

    @property
    def key(self) -> str:
        return f"{self.item_sku}|{self.location_code}|{self.supply_ref or ''}"


def supply_options(line: OrderLine, *, as_of: dt.date | None = None) -> list[SupplyOption]:
    """Every supply element ``line`` could be given: the item's (and, when the line allows
    substitutes, its substitutes') on-hand at every location and open inbound, each with who
    holds it now. Four queries whatever the number of elements."""
    item_ids = [line.item_id]
    substitute_ids: list[int] = []
    if line.allow_substitute:
        substitute_ids = list(
            ItemSubstitute.objects.filter(item_id=line.item_id).order_by("priority").values_list("substitute_id", flat=True)
        )
        item_ids += substitute_ids
    skus = dict(Item.objects.filter(pk__in=item_ids).values_list("pk", "sku"))
    options: dict[tuple[int, int, int | None], SupplyOption] = {}
    for position in InventoryPosition.objects.filter(item_id__in=item_ids).select_related("location"):
        options[(position.item_id, position.location_id, None)] = SupplyOption(
            item_sku=skus[position.item_id],
            location_code=position.location.code,
            supply_ref=None,
            eta=None,
            available=position.available,
            is_substitute=position.item_id != line.item_id,
        )
    for supply in Supply.objects.filter(item_id__in=item_ids, status=SupplyStatus.OPEN).select_related("location"):
        options[(supply.item_id, supply.location_id, supply.pk)] = SupplyOption(
            item_sku=skus[supply.item_id],
            location_code=supply.location.code,
            supply_ref=supply.ref,
            eta=supply.eta,
            available=supply.open_quantity,
            is_substitute=supply.item_id != line.item_id,
        )
    allocations = list(
        Allocation.objects.filter(item_id__in=item_ids)
        .select_related("line__order__customer", "line__item", "line__ship_from", "line__order__customer__home_location")
    )
    settings = line_settings({a.line for a in allocations if a.line_id != line.pk})
    for allocation in allocations:
        option = options.get((allocation.item_id, allocation.location_id, allocation.supply_id))
        if option is None:
            continue
        if allocation.line_id == line.pk:
            if allocation.state == AllocationState.RELEASED:
                option.held_fixed += allocation.quantity
            else:
                option.held_own += allocation.quantity
            continue
        if allocation.state in FIXED_STATES:
            option.held_fixed += allocation.quantity
        else:
            option.held_other += allocation.quantity
        other = allocation.line
        option.holders.append(
            Holder(
                line_id=other.pk,
                order_number=other.order.number,
                line_number=other.line,
                customer=other.order.customer.code,
                state=allocation.state,
                quantity=allocation.quantity,
                strategy=settings.get(other.pk, ApprovalSettings()).strategy,
            )
        )
    ordered = sorted(
        options.values(),
        key=lambda o: (o.is_substitute, o.supply_ref is not None, o.eta or dt.date.min, o.location_code, o.supply_ref or ""),
    )
    return [o for o in ordered if o.available > 0 or o.holders or o.held_own > 0]


# --------------------------------------------------------------------------- override planning


@dataclass(frozen=True)
class PartRequest:
    """What a planner asks for: ``quantity`` of ``item_sku`` (the line's item when blank) at
    ``location_code``, from inbound ``supply_ref`` or from on-hand when blank."""

    location_code: str
    quantity: Decimal
    supply_ref: str = ""
    item_sku: str = ""

    def as_payload(self) -> dict[str, str]:
        return {
            "location": self.location_code,
            "quantity": str(self.quantity),
            "supply": self.supply_ref,
            "item": self.item_sku,
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> PartRequest:
        return cls(
            location_code=data["location"],
            quantity=Decimal(data["quantity"]),
            supply_ref=data.get("supply", "") or "",
            item_sku=data.get("item", "") or "",
        )


@dataclass
class PlannedPart:
    request: PartRequest
    item: Item
    location: Location
    supply: Supply | None
    option: SupplyOption
    taken_from_others: Decimal
    losers: list[Holder]


@dataclass
class OverridePlan:
    """What an override would do: its parts, whom it takes from, and whether it needs approval."""

    line: OrderLine
    parts: list[PlannedPart]
    approval_reasons: list[str]

    @property
    def needs_approval(self) -> bool:
        return bool(self.approval_reasons)

    @property
    def total(self) -> Decimal:
        return sum((p.request.quantity for p in self.parts), ZERO)

    @property
    def losers(self) -> list[Holder]:
        return [h for p in self.parts for h in p.losers]


def plan_override(line: OrderLine, parts: list[PartRequest]) -> OverridePlan:
    """Validate an override (one part) or a split (several parts) of ``line`` and work out
    its consequence, changing nothing. Raises ``OverrideError`` naming the field at fault.

    A part may take what nobody holds plus what other lines hold unfixed there (they lose
    it; the next run reallocates them); never what is released or pinned for other lines.
    Approval is needed when the line is worth at least its ``override_approval_min_value``,
    or when a part takes supply a ``win`` line holds.
    """
    if line.status != LineStatus.OPEN:
        raise OverrideError("The line is not open.", field="line")
    if not parts:
        raise OverrideError("Give at least one location and quantity.", field="parts")
    options = {o.key: o for o in supply_options(line)}
    released_own = Allocation.objects.filter(line=line, state=AllocationState.RELEASED).aggregate(q=Sum("quantity"))["q"] or ZERO
    room = line.open_quantity - released_own
    planned: list[PlannedPart] = []
    seen: set[str] = set()
    for index, request in enumerate(parts):
        prefix = f"parts[{index}]." if len(parts) > 1 else ""
        if request.quantity is None or request.quantity <= 0:
            raise OverrideError("The quantity must be greater than zero.", field=f"{prefix}quantity")
        sku = request.item_sku or line.item.sku
        key = f"{sku}|{request.location_code}|{request.supply_ref or ''}"
        option = options.get(key)
        if option is None:
            if request.supply_ref:
                raise OverrideError(
                    f"Supply {request.supply_ref} is not open supply of {sku} at {request.location_code}.",
                    field=f"{prefix}supply",
                )
            if sku != line.item.sku and not any(o.item_sku == sku for o in options.values()):
                raise OverrideError(f"{sku} is not a substitute this line may use.", field=f"{prefix}item")
            raise OverrideError(f"There is no stock of {sku} at {request.location_code}.", field=f"{prefix}location")
        if key in seen:
            raise OverrideError("The same supply is given twice.", field=f"{prefix}supply")
        seen.add(key)
        if request.quantity > option.takeable:
            raise OverrideError(
                f"Only {option.takeable.normalize():f} can be taken at {request.location_code}"
                + (f" from {request.supply_ref}" if request.supply_ref else "")
                + " (the rest is released or pinned for other lines).",
                field=f"{prefix}quantity",
            )
        from_others = max(request.quantity - (option.available - option.held_fixed - option.held_other), ZERO)
        losers: list[Holder] = []
        if from_others > 0:
            remaining = from_others
            # Show the smallest set that covers the shortfall, lowest-ranked strategy first.
            order = {"lose": 0, "fill": 1, "redistribute": 2, "gain": 3, "win": 4}
            for holder in sorted(
                (h for h in option.holders if h.state not in FIXED_STATES), key=lambda h: (order.get(h.strategy, 2), h.label)
            ):
                if remaining <= 0:
                    break
                losers.append(holder)
                remaining -= holder.quantity
        planned.append(
            PlannedPart(
                request=request, item=None, location=None, supply=None,  # type: ignore[arg-type]
                option=option, taken_from_others=from_others, losers=losers,
            )
        )
    total = sum((p.request.quantity for p in planned), ZERO)
    if total > room:
        raise OverrideError(
            f"The parts add up to {total.normalize():f}, more than the line's {room.normalize():f} still to allocate.",
            field="quantity" if len(parts) == 1 else "parts",
        )
    _resolve_objects(planned)
    reasons = []
    settings = line_settings(_lines_with_context([line.pk])).get(line.pk, ApprovalSettings())
    threshold = settings.override_approval_min_value
    if threshold is not None and line.value >= threshold:
        reasons.append(f"the line is worth {line.value:.2f}, at least the {threshold:.2f} that needs an approver")
    win_losers = sorted({h.label for p in planned for h in p.losers if h.strategy == "win"})
    if win_losers:
        reasons.append("it takes supply held by win line(s) " + ", ".join(win_losers))
    return OverridePlan(line=line, parts=planned, approval_reasons=reasons)


def _resolve_objects(planned: list[PlannedPart]) -> None:
    skus = {p.option.item_sku for p in planned}
    codes = {p.option.location_code for p in planned}
    refs = {p.option.supply_ref for p in planned if p.option.supply_ref}
    items = {i.sku: i for i in Item.objects.filter(sku__in=skus)}
    locations = {loc.code: loc for loc in Location.objects.filter(code__in=codes)}
    supplies = {s.ref: s for s in Supply.objects.filter(ref__in=refs)}
    for part in planned:
        part.item = items[part.option.item_sku]
        part.location = locations[part.option.location_code]
        part.supply = supplies.get(part.option.supply_ref) if part.option.supply_ref else None


def apply_override(plan: OverridePlan, *, run_id: int | None = None) -> list[Allocation]:
    """Replace the line's unreleased allocations with pinned ones as planned, and take what the
    parts need from the lines that lose (their unfixed allocations there shrink or go; the
    next run reallocates them). The caller holds the transaction and the line's lock."""
    line = plan.line
    today = business_today()
    Allocation.objects.filter(line=line).exclude(state=AllocationState.RELEASED).delete()
    for part in plan.parts:
        if part.taken_from_others <= 0:
            continue
        _shrink_others(line, part, part.taken_from_others)
    created = Allocation.objects.bulk_create(
        Allocation(
            line=line,
            item=part.item,
            location=part.location,
            supply=part.supply,
            quantity=part.request.quantity,
            confirmed_date=max(line.order.requested_date, part.supply.eta if part.supply else today),
            state=AllocationState.PINNED,
            run_id=run_id,
        )
        for part in plan.parts
    )
    return created


def _shrink_others(line: OrderLine, part: PlannedPart, needed: Decimal) -> None:
    """Take ``needed`` from other lines' unfixed allocations at the part's supply element,
    lowest strategy first as planned (``part.losers``)."""
    loser_order = [h.line_id for h in part.losers]
    allocations = list(
        Allocation.objects.select_for_update()
        .filter(item=part.item, location=part.location, supply=part.supply, line_id__in=loser_order)
        .exclude(state__in=FIXED_STATES)
    )
    allocations.sort(key=lambda a: (loser_order.index(a.line_id), a.pk))
    to_delete, to_update = [], []
    for allocation in allocations:
        if needed <= 0:
            break
        if allocation.quantity <= needed:
            needed -= allocation.quantity
            to_delete.append(allocation.pk)
        else:
            allocation.quantity -= needed
            needed = ZERO
            to_update.append(allocation)
    Allocation.objects.filter(pk__in=to_delete).delete()
    if to_update:
        Allocation.objects.bulk_update(to_update, ["quantity"])


# --------------------------------------------------------------------------- other changes


def accept_substitution(line: OrderLine) -> int:
    """Approve a proposed substitution: the line's proposed allocations become reserved.
    Returns how many allocations changed; the caller holds the transaction."""
    return Allocation.objects.filter(line=line, state=AllocationState.PROPOSED).update(state=AllocationState.RESERVED)


def hold_line(line: OrderLine) -> int:
    """Hold what the line has: its reserved allocations become pinned, so no run takes them."""
    return Allocation.objects.filter(line=line, state=AllocationState.RESERVED).update(state=AllocationState.PINNED)


def release_line(line: OrderLine, *, wave: str | None = None) -> int:
    """Release the line's reserved and pinned allocations to the warehouse; never taken back.
    Writes the outbound ``order.released`` (one per location) in the same transaction."""
    from integrations import outbox

    releasable = list(
        Allocation.objects.select_for_update(of=("self",))
        .filter(line=line, state__in=[AllocationState.RESERVED, AllocationState.PINNED])
        .values_list("id", "location__code", "quantity")
    )
    if not releasable:
        return 0
    changed = Allocation.objects.filter(id__in=[row[0] for row in releasable]).update(state=AllocationState.RELEASED)
    outbox.record_release(line_id=line.pk, order=line.order.number, line=line.line, released=releasable, wave=wave)
    from allocation import releases  # the location's daily release capacity counts this line

    releases.record_released_rows(line.pk, releasable)
    return changed


def releasable_quantity(line: OrderLine) -> Decimal:
    return (
        Allocation.objects.filter(line=line, state__in=[AllocationState.RESERVED, AllocationState.PINNED]).aggregate(
            q=Sum("quantity")
        )["q"]
        or ZERO
    )


def release_needs_approval(line: OrderLine) -> str:
    """Why releasing ``line`` needs an approver ('' when it does not): its value is above the
    effective ``auto_release_max_value``."""
    settings = line_settings(_lines_with_context([line.pk])).get(line.pk, ApprovalSettings())
    threshold = settings.auto_release_max_value
    if threshold is not None and line.value > threshold:
        return f"the line is worth {line.value:.2f}, above the {threshold:.2f} released without approval"
    return ""


def defer_promise(line: OrderLine, new_date: dt.date, *, actor: Any, reason: str, exception: Any = None):
    """Record a deferred promise for ``line`` (the outbound ``promise.changed``) and move the
    order's promised date to it when that is later. Returns the ``PromiseChange``."""
    from exceptions.models import PromiseChange

    order = line.order
    previous = order.promised_date
    change = PromiseChange.objects.create(
        line=line, exception=exception, previous_promised_date=previous, promised_date=new_date, reason=reason, actor=actor
    )
    from allocation.models import LineDecisionCurrent
    from integrations import outbox

    # When open inbound would cover the line's shortfall (its current decision; null when covered).
    projected = LineDecisionCurrent.objects.filter(line=line).values_list("log__projected_date", flat=True).first()
    outbox.record_promise_change(
        change_id=change.pk, order=order.number, line=line.line, promised_date=new_date,
        previous_promised_date=previous, reason=reason, projected_date=projected,
    )
    if previous is None or new_date > previous:
        order.promised_date = new_date
        order._change_reason = f"promise deferred to {new_date.isoformat()}: {reason}"[:100]
        order.save(update_fields=["promised_date"])
    return change


def line_allocations(line_ids: Iterable[int]) -> dict[int, list[Allocation]]:
    """Allocations of each line, with location and supply loaded (one query)."""
    grouped: dict[int, list[Allocation]] = defaultdict(list)
    for allocation in Allocation.objects.filter(line_id__in=set(line_ids)).select_related("location", "supply", "item"):
        grouped[allocation.line_id].append(allocation)
    return grouped


def skus_touched(line: OrderLine, plan: OverridePlan | None = None) -> set[str]:
    skus = {line.item.sku}
    if plan is not None:
        skus |= {p.option.item_sku for p in plan.parts}
    return skus


def trigger_incremental_run(
    skus: Iterable[str], *, actor: Any, trigger: str = "override", in_transaction: bool = False
) -> Any:
    """Ask for the run of the item groups of ``skus`` after the change commits; returns the run
    (None when allocation runs are not installed, or when it will run once the caller's
    transaction commits without a background to run it on).

    Where runs execute apart from the caller (a worker, or the serving process's background
    thread) the run is queued and the caller answers at once: the returned run says ``queued``
    and the screens follow it. Otherwise (tests, commands: tasks run eagerly) the run happens
    here, synchronously, after the change (``in_transaction``: when the caller's transaction
    commits). A failing run leaves the change in place (pinned allocations are never changed
    by runs) and is logged; the run records its error.
    """
    try:
        from allocation import services as allocation_services
    except ImportError:  # allocation runs not installed
        return None
    wanted = sorted(set(skus))
    if allocation_services.runs_in_background():
        return allocation_services.request_incremental_run(wanted, trigger=trigger, actor=actor)

    def run_now() -> Any:
        try:
            return allocation_services.run_incremental(wanted, trigger=trigger, actor=actor)
        except Exception:  # the planner's change stands; the run row shows what failed
            logger.exception("incremental run after %s failed for %s", trigger, wanted)
            return None

    if in_transaction:
        from django.db import transaction

        transaction.on_commit(run_now)
        return None
    return run_now()
