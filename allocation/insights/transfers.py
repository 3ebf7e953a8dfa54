"""Transfer recommendations (issue 13 item 4), routed as cases and executed only after approval.

``recommend`` finds, per item, lines short at one location (their ``ship_from`` or customer's home
location) while stock sits idle at another (available on hand minus what is allocated there),
and proposes moving ``min(idle, short)`` over the fastest lane from the source to the
destination's region (then the cheapest; 3 days and no cost without a lane), when the value
it helps is at least ``ALLOT_TRANSFER_MIN_VALUE`` and more than the lane's cost. Each becomes a
``transfer_recommended`` case (key ``transfer:<sku>:<from>><to>``) naming the lines it would help,
earliest due first, and the value at stake (their short quantity times unit price).

A planner asks for it (``request``): the case awaits an approval of kind
``transfer.recommendation``. Another person with ``approver`` decides (four-eyes). Approved, in the
same transaction: the outbound message ``transfer.requested`` (id ``transfer.requested:<case>``),
the expected supply (a ``Supply`` of kind ``transfer`` at the destination, ref ``TRF-<case>``,
ETA = business date + transit days, confidence 1) and the run of the item, which uses it.
Rejected, the case is open again. Nothing is executed without an approval.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from allocation.choices import SupplyKind, SupplyStatus
from allocation.insights import cases, demand
from allocation.models import Item, Lane, Location, Supply
from config import roles
from exceptions import approvals
from exceptions.choices import ExceptionStatus, ExceptionType, Severity
from exceptions.models import DecisionException
from integrations.choices import OutboxType
from integrations.models import OutboxMessage
from integrations.outbox import quantity_text

APPROVAL_KIND = "transfer.recommendation"
DEFAULT_TRANSIT_DAYS = 3


class TransferError(Exception):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


@dataclass
class Recommendation:
    sku: str
    source: str
    destination: str
    quantity: Decimal
    transit_days: int
    cost_per_unit: Decimal
    lines: list[dict[str, Any]]
    value_at_stake: Decimal

    @property
    def key(self) -> str:
        return f"transfer:{self.sku}:{self.source}>{self.destination}"


def _lanes() -> dict[tuple[str, str], tuple[int, Decimal]]:
    return {
        (code, region): (days, cost)
        for code, region, days, cost in Lane.objects.values_list("location__code", "region", "transit_days", "cost_per_unit")
    }


def recommend(as_of: dt.date, pic: demand.Picture | None = None) -> list[Recommendation]:
    pic = pic or demand.picture(as_of)
    regions = dict(Location.objects.values_list("code", "region"))
    lanes = _lanes()
    idle = {
        key: pic.available[key] - pic.allocated_on_hand.get(key, demand.ZERO)
        for key in pic.available
        if pic.available[key] - pic.allocated_on_hand.get(key, demand.ZERO) > 0
    }
    idle_at: dict[str, list[str]] = {}
    for sku, source in idle:
        idle_at.setdefault(sku, []).append(source)
    minimum = Decimal(str(getattr(settings, "ALLOT_TRANSFER_MIN_VALUE", 0)))
    result = []
    for (sku, destination), shorts in sorted(pic.short_lines.items()):
        need = sum((s.short for s in shorts), demand.ZERO)
        candidates = []
        for source in idle_at.get(sku, ()):
            if source == destination or idle[(sku, source)] <= 0:
                continue
            days, cost = lanes.get((source, regions.get(destination, "")), (DEFAULT_TRANSIT_DAYS, Decimal(0)))
            candidates.append((days, cost, source))
        for days, cost, source in sorted(candidates):
            if need <= 0:
                break
            quantity = min(idle[(sku, source)], need)
            idle[(sku, source)] -= quantity
            need -= quantity
            helped, left, value = [], quantity, demand.ZERO
            for short in shorts:
                if left <= 0:
                    break
                part = min(short.short, left)
                left -= part
                value += part * short.unit_price
                helped.append({
                    "line_id": short.line_id, "order": short.order, "line": short.line, "quantity": quantity_text(part),
                    "due": short.due.isoformat(), "value": str(round(part * short.unit_price, 2)),
                })
            shorts = shorts[len(helped):]
            # Worth it only when the value helped reaches the minimum and exceeds the lane's cost.
            if value >= minimum and value > cost * quantity:
                result.append(Recommendation(sku, source, destination, quantity, days, cost, helped, round(value, 2)))
    return result


def refresh(as_of: dt.date) -> dict[str, Any]:
    """Raise a case for each new recommendation; resolve open ones no longer recommended (beat).
    One awaiting approval is left alone: its approver decides it."""
    found = {r.key: r for r in recommend(as_of)}
    workable = cases.active_keys(ExceptionType.TRANSFER_RECOMMENDED, (ExceptionStatus.OPEN, ExceptionStatus.CLAIMED))
    awaiting = cases.active_keys(ExceptionType.TRANSFER_RECOMMENDED, (ExceptionStatus.AWAITING_APPROVAL,))
    items = dict(Item.objects.filter(sku__in={r.sku for r in found.values()}).values_list("sku", "pk"))
    locations = dict(Location.objects.values_list("code", "pk"))
    new = [
        cases.NewCase(
            type=ExceptionType.TRANSFER_RECOMMENDED,
            key=key,
            message=(
                f"Transfer {quantity_text(r.quantity)} of {r.sku} from {r.source} to {r.destination} "
                f"({r.transit_days} days, {r.cost_per_unit:.2f}/unit): helps {len(r.lines)} short line"
                f"{'s' if len(r.lines) != 1 else ''}, {r.value_at_stake:,.2f} at stake"
            ),
            details={
                "recommendation": "transfer", "sku": r.sku, "from": r.source, "to": r.destination,
                "quantity": quantity_text(r.quantity), "transit_days": r.transit_days,
                "cost_per_unit": str(r.cost_per_unit), "cost": str(round(r.cost_per_unit * r.quantity, 2)),
                "lines": r.lines, "value_at_stake": str(r.value_at_stake), "as_of": as_of.isoformat(),
            },
            severity=Severity.HIGH if r.value_at_stake >= 10000 else Severity.MEDIUM,
            item_id=items.get(r.sku),
            location_id=locations.get(r.destination),
            value=r.value_at_stake,  # the case's value: queues sort and band by it
        )
        for key, r in found.items()
        if key not in workable and key not in awaiting
    ]
    gone = {key: "no longer recommended: the shortage or the idle stock went" for key in workable - set(found)}
    with transaction.atomic():
        cases.open_cases(new, what="transfer")
        cases.resolve_cases(gone, what="transfer")
    return {"recommended": len(found), "raised": sorted(c.key for c in new), "resolved": sorted(gone)}


# Recommendation case type -> the approval kind that executes it (allocation.insights.expedite adds its own).
APPROVAL_KINDS: dict[str, str] = {ExceptionType.TRANSFER_RECOMMENDED: APPROVAL_KIND}


def request(case_id: int, *, actor: Any, note: str = "") -> Any:
    """A planner asks to execute a recommendation (transfer or expedite): it waits for another approver."""
    if not roles.has_role(actor, {roles.PLANNER}):
        raise TransferError("Only a planner can ask for a recommendation to be executed.")
    with transaction.atomic():
        case = DecisionException.objects.select_for_update().filter(pk=case_id, type__in=list(APPROVAL_KINDS)).first()
        if case is None:
            raise TransferError("No such recommendation.")
        if case.status not in (ExceptionStatus.OPEN, ExceptionStatus.CLAIMED):
            raise TransferError(f"This recommendation is {case.get_status_display().lower()}.")
        approval = approvals.request_approval(
            kind=APPROVAL_KINDS[case.type], subject=case, actor=actor, note=note or case.message[:200], payload=case.details
        )
        case.status = ExceptionStatus.AWAITING_APPROVAL
        case.updated_at = timezone.now()
        case.version += 1
        case._change_reason = f"{case.details.get('recommendation', 'recommendation')} requested by {actor.get_username()}"[:100]
        case.save()
    return approval


def _business_date() -> dt.date:
    from allocation.dates import business_today

    return business_today()


def _on_approved(approval: Any, case: DecisionException) -> None:
    case = cases.locked_awaiting(case)
    details = approval.payload
    item = Item.objects.get(sku=details["sku"])
    destination = Location.objects.get(code=details["to"])
    eta = _business_date() + dt.timedelta(days=int(details["transit_days"]))
    ref = f"TRF-{case.pk}"
    supply = Supply(
        ref=ref, kind=SupplyKind.TRANSFER, item=item, location=destination, quantity=Decimal(details["quantity"]),
        eta=eta, supplier=f"transfer from {details['from']}", confidence=1, status=SupplyStatus.OPEN,
    )
    supply._change_reason = f"transfer approved (request #{approval.pk})"
    supply.save()
    OutboxMessage.objects.create(
        message_id=f"{OutboxType.TRANSFER_REQUESTED}:{case.pk}",
        type=OutboxType.TRANSFER_REQUESTED,
        payload={
            "ref": ref, "sku": item.sku, "from": details["from"], "to": destination.code, "quantity": details["quantity"],
            "eta": eta.isoformat(), "lines": [{"order": x["order"], "line": x["line"]} for x in details.get("lines", [])],
            "requested_by": approval.requested_by.get_username(), "approved_by": approval.decided_by.get_username(),
        },
    )
    cases.resolve_approved(
        case, change_reason="transfer approved",
        reason=f"transfer {ref} requested by {approval.requested_by.get_username()}, approved by {approval.decided_by.get_username()}",
    )
    from allocation import overrides

    approval.run = overrides.trigger_incremental_run([item.sku], actor=approval.decided_by, trigger="approval", in_transaction=True)


def _on_rejected(approval: Any, case: DecisionException) -> None:
    case = DecisionException.objects.select_for_update().get(pk=case.pk)
    if case.status == ExceptionStatus.AWAITING_APPROVAL:
        case.status = ExceptionStatus.OPEN
        case.updated_at = timezone.now()
        case.version += 1
        case._change_reason = f"transfer {approval.status}"
        case.save()


approvals.register(APPROVAL_KIND, on_approved=_on_approved, on_rejected=_on_rejected)

