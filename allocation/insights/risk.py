"""Late-order risk per open line (issue 13 item 2), the input of the score's ``risk`` factor.

Rule (pure, no Django): a line ships on time when every part of it does. A part allocated from
on-hand (or from supply already received) with a confirmed date within the line's due date plus
``promise_risk_tolerance_days`` is on time for sure; a part from open inbound is on time with that
supply's confidence (the reliability model's on-time probability when it is active, else the
sent confidence: the same number ATP uses); a part confirmed after the due date plus tolerance,
or quantity not allocated at all, is late for sure. Parts are treated as independent, so
``risk = 1 - Π p(part on time)``.

``allocation.loading`` calls :func:`apply` only for lines whose policy weights ``risk`` above 0
(the default weight is 0, so by default nothing is computed and nothing changes).
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any


def line_risk(
    *, quantity: Decimal, due: dt.date, tolerance_days: int, parts: Iterable[tuple[str | None, Decimal, dt.date]],
    confidence: Mapping[str, float],
) -> float:
    """``parts``: (supply ref or None for on-hand, quantity, confirmed date) of the line's allocations."""
    latest = due + dt.timedelta(days=max(tolerance_days, 0))
    covered = Decimal(0)
    on_time = 1.0
    for ref, part_quantity, confirmed in parts:
        covered += part_quantity
        if confirmed > latest:
            return 1.0
        if ref is not None and ref in confidence:
            on_time *= max(min(float(confidence[ref]), 1.0), 0.0)
    if covered < quantity:
        return 1.0
    return round(1.0 - on_time, 4)


def risk_weight(line: Any) -> float:
    return dict(line.settings.weights).get("risk", 0.0)


def apply(lines: Sequence[Any], existing: Sequence[Any], inbound: Sequence[Any]) -> list:
    """The lines with ``risk`` set where their policy weights it (others unchanged)."""
    weighted = [index for index, line in enumerate(lines) if risk_weight(line) > 0]
    if not weighted:
        return list(lines)
    confidence = {entry.ref: entry.confidence for entry in inbound}
    parts: dict[int, list] = defaultdict(list)
    for allocation in existing:
        parts[allocation.line_key].append((allocation.supply_ref, allocation.quantity, allocation.confirmed_date))
    result = list(lines)
    for index in weighted:
        line = lines[index]
        due = line.promised_date or line.requested_date
        result[index] = replace(
            line,
            risk=line_risk(
                quantity=line.quantity, due=due, tolerance_days=line.settings.promise_risk_tolerance_days,
                parts=parts.get(line.key, ()), confidence=confidence,
            ),
        )
    return result


MODEL_NAME = "late_order_risk"
NO_BACKTEST = (
    "no backtest: shipped dates are not stored against the risk predicted when the line was decided, "
    "so the rule (1 - product of the parts' on-time probabilities) stands, unscored; its weight defaults to 0"
)


def record_version(*, as_of: dt.date, actor: str = "") -> Any:
    """The governance record of the late-order risk (Models screen, ``manage.py models``).

    It cannot be backtested on this data (see ``NO_BACKTEST``), so it is recorded as falling
    back to its rule and says why; a new version is written only when that changes."""
    from django.utils import timezone

    from allocation.models import ModelStatus, ModelVersion

    latest = ModelVersion.objects.filter(name=MODEL_NAME).order_by("-version").first()
    if latest is not None and latest.status == ModelStatus.FALLBACK and latest.reason == NO_BACKTEST[:300]:
        return latest
    return ModelVersion.objects.create(
        name=MODEL_NAME, version=(latest.version + 1) if latest else 1,
        inputs=["allocations of the line (supply ref, quantity, confirmed date)",
                "on-time probability of each inbound (supplier_reliability when active, else the sent confidence)",
                "due date and promise_risk_tolerance_days"],
        params={"independence": "parts on time independently"}, trained_at=timezone.now(), as_of=as_of,
        status=ModelStatus.FALLBACK, reason=NO_BACKTEST[:300], trained_by=actor,
    )
