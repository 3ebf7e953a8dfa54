"""Expedite recommendations (issue 13 item 4): late inbound that holds back valuable lines.

An open inbound supply whose allocations are confirmed after their lines' due dates (the lines
ship late because of it) becomes an ``expedite_recommended`` case (key ``expedite:<ref>``) when
the value of those lines is at least ``ALLOT_TRANSFER_MIN_VALUE``: the lines, the value at stake,
the date it would be needed by (the earliest due date) and, when the reliability model knows the
supplier, its on-time probability and p90 days late. A planner asks for it
(``transfers.request``), another approver decides (four-eyes); approved, the outbound message
``purchase.expedite_requested`` (id ``purchase.expedite_requested:<case>``) asks the ERP to
chase the supplier. Nothing else changes until the ERP sends the new ETA (``supply.upserted``).
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F

from allocation.choices import SupplyStatus
from allocation.insights import cases, transfers
from allocation.models import Allocation, SupplyEstimate
from exceptions import approvals
from exceptions.choices import ExceptionStatus, ExceptionType, Severity
from exceptions.models import DecisionException
from integrations.choices import OutboxType
from integrations.models import OutboxMessage
from integrations.outbox import quantity_text

APPROVAL_KIND = "expedite.recommendation"


def recommend(as_of: dt.date) -> list[dict[str, Any]]:
    """One query for the late allocations on open inbound, one for the model's estimates."""
    rows = (
        Allocation.objects.filter(supply__status=SupplyStatus.OPEN, supply__quantity__gt=F("supply__received_quantity"))
        .values_list(
            "supply_id", "supply__ref", "supply__supplier", "supply__item__sku", "supply__location__code", "supply__eta",
            "supply__location_id", "supply__item_id", "line__order__number", "line__line", "quantity", "line__unit_price",
            "line__order__promised_date", "line__order__requested_date", "confirmed_date",
        )
        .order_by("supply__ref", "line__order__number", "line__line")
    )
    by_supply: dict[int, dict[str, Any]] = {}
    lines: dict[int, list] = defaultdict(list)
    for pk, ref, supplier, sku, code, eta, location_id, item_id, order, line, quantity, price, promised, requested, confirmed in rows:
        due = promised or requested
        if confirmed <= due:
            continue
        by_supply.setdefault(pk, {"ref": ref, "supplier": supplier, "sku": sku, "location": code, "eta": eta,
                                  "location_id": location_id, "item_id": item_id})
        lines[pk].append({"order": order, "line": line, "quantity": quantity_text(quantity), "due": due.isoformat(),
                          "value": str(round(quantity * price, 2)), "_value": quantity * price, "_due": due})
    minimum = Decimal(str(getattr(settings, "ALLOT_TRANSFER_MIN_VALUE", 0)))
    estimates = {
        pk: (p, p90) for pk, p, p90 in SupplyEstimate.objects.filter(supply_id__in=list(by_supply))
        .exclude(on_time_probability=None).values_list("supply_id", "on_time_probability", "p90_days_late")
    }
    result = []
    for pk, supply in by_supply.items():
        value = sum((x["_value"] for x in lines[pk]), Decimal(0))
        if value < minimum:
            continue
        needed_by = min(x["_due"] for x in lines[pk])
        probability, p90 = estimates.get(pk, (None, None))
        result.append({
            **supply, "value_at_stake": round(value, 2), "needed_by": max(needed_by, as_of),
            "on_time_probability": probability, "p90_days_late": p90,
            "lines": [{k: v for k, v in x.items() if not k.startswith("_")} for x in lines[pk]],
        })
    return result


def refresh(as_of: dt.date) -> dict[str, Any]:
    found = {f"expedite:{r['ref']}": r for r in recommend(as_of)}
    workable = cases.active_keys(ExceptionType.EXPEDITE_RECOMMENDED, (ExceptionStatus.OPEN, ExceptionStatus.CLAIMED))
    awaiting = cases.active_keys(ExceptionType.EXPEDITE_RECOMMENDED, (ExceptionStatus.AWAITING_APPROVAL,))
    new = []
    for key, r in found.items():
        if key in workable or key in awaiting:
            continue
        model = (
            f"; the supplier is on time {r['on_time_probability']:.0%} of the time, p90 {r['p90_days_late']:g} days late"
            if r["on_time_probability"] is not None else ""
        )
        new.append(cases.NewCase(
            type=ExceptionType.EXPEDITE_RECOMMENDED,
            key=key,
            message=(
                f"Expedite {r['ref']} ({r['sku']} at {r['location']}, {r['supplier'] or 'no supplier'}): due {r['eta'].isoformat()}, "
                f"needed by {r['needed_by'].isoformat()} for {len(r['lines'])} line{'s' if len(r['lines']) != 1 else ''}, "
                f"{r['value_at_stake']:,.2f} at stake{model}"
            ),
            details={
                "recommendation": "expedite", "ref": r["ref"], "supplier": r["supplier"], "sku": r["sku"],
                "location": r["location"], "eta": r["eta"].isoformat(), "needed_by": r["needed_by"].isoformat(),
                "on_time_probability": r["on_time_probability"], "p90_days_late": r["p90_days_late"],
                "lines": r["lines"], "value_at_stake": str(r["value_at_stake"]), "as_of": as_of.isoformat(),
            },
            severity=Severity.HIGH if r["value_at_stake"] >= 10000 else Severity.MEDIUM,
            item_id=r["item_id"],
            location_id=r["location_id"],
            value=r["value_at_stake"],
        ))
    gone = {key: "no longer recommended: no line waits late for this supply" for key in workable - set(found)}
    with transaction.atomic():
        cases.open_cases(new, what="expedite")
        cases.resolve_cases(gone, what="expedite")
    return {"recommended": len(found), "raised": sorted(c.key for c in new), "resolved": sorted(gone)}


def _on_approved(approval: Any, case: DecisionException) -> None:
    case = cases.locked_awaiting(case)
    details = approval.payload
    OutboxMessage.objects.create(
        message_id=f"{OutboxType.PURCHASE_EXPEDITE_REQUESTED}:{case.pk}",
        type=OutboxType.PURCHASE_EXPEDITE_REQUESTED,
        payload={
            "ref": details["ref"], "supplier": details["supplier"], "sku": details["sku"], "location": details["location"],
            "eta": details["eta"], "needed_by": details["needed_by"],
            "lines": [{"order": x["order"], "line": x["line"]} for x in details.get("lines", [])],
            "requested_by": approval.requested_by.get_username(), "approved_by": approval.decided_by.get_username(),
        },
    )
    cases.resolve_approved(
        case, change_reason="expedite approved",
        reason=(f"expedite of {details['ref']} requested by {approval.requested_by.get_username()}, "
                f"approved by {approval.decided_by.get_username()}"),
    )


transfers.APPROVAL_KINDS[ExceptionType.EXPEDITE_RECOMMENDED] = APPROVAL_KIND
approvals.register(APPROVAL_KIND, on_approved=_on_approved, on_rejected=transfers._on_rejected)
