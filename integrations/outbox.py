"""Writing outbound messages (events-v1.md, "Outbound messages") into the transactional outbox.

Callers invoke these inside the transaction that makes the decision, so a message exists if and
only if its decision committed; ``integrations.relay`` delivers them afterwards. Every message id
is deterministic, so writing the same decision twice cannot produce a second message.

- ``reservation.changed``: one per line whose allocations a run changed (``allocation.persistence``).
- ``promise.changed``: one per deferred promise (``allocation.overrides.defer_promise``).
- ``order.released``: one per line and location released to the warehouse
  (``allocation.overrides.release_line``).
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from integrations.choices import OutboxStatus, OutboxType
from integrations.models import OutboxMessage

BATCH_SIZE = 1000


def quantity_text(value: Decimal) -> str:
    """A normalised decimal as text: 60.000 -> "60", 2.500 -> "2.5"."""
    return format(Decimal(value).normalize(), "f")


def reservation_allocation(*, location: str, quantity: Decimal, confirmed_date: dt.date, supply_ref: str | None) -> dict[str, Any]:
    """One entry of ``reservation.changed``'s ``allocations`` list (``supply_ref`` null for on-hand)."""
    return {
        "location": location,
        "quantity": quantity_text(quantity),
        "confirmed_date": confirmed_date.isoformat(),
        "supply_ref": supply_ref or None,
    }


def reservation_message_id(run_id: int, line_id: int) -> str:
    return f"{OutboxType.RESERVATION_CHANGED}:{run_id}:{line_id}"


def record_reservation_changes(*, run_id: int, lines: Iterable[Mapping[str, Any]]) -> int:
    """Write one ``reservation.changed`` per entry of ``lines`` (set-based, one bulk insert).

    Each entry carries ``line_id``, ``order`` (number), ``line`` (number) and ``allocations``
    (dicts from :func:`reservation_allocation`). Returns how many messages were written.
    """
    now = timezone.now()
    rows = [
        (
            reservation_message_id(run_id, entry["line_id"]),
            {"order": entry["order"], "line": entry["line"], "allocations": list(entry["allocations"]), "run": run_id},
        )
        for entry in lines
    ]
    if not rows:
        return 0
    if connection.vendor == "postgresql":
        # A full run may change most lines: COPY, like the allocations written beside these.
        columns = "message_id, type, payload, status, attempts, next_attempt_at, last_error, created_at"
        with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {OutboxMessage._meta.db_table} ({columns}) FROM STDIN"
        ) as copy:
            for message_id, payload in rows:
                copy.write_row((
                    message_id, OutboxType.RESERVATION_CHANGED.value, json.dumps(payload, separators=(",", ":")),
                    OutboxStatus.PENDING.value, 0, now, "", now,
                ))
        return len(rows)
    OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(
                message_id=message_id, type=OutboxType.RESERVATION_CHANGED, payload=payload, next_attempt_at=now, created_at=now
            )
            for message_id, payload in rows
        ],
        batch_size=BATCH_SIZE,
    )
    return len(rows)


def record_promise_change(
    *, change_id: int, order: str, line: int, promised_date: dt.date, previous_promised_date: dt.date | None, reason: str,
    projected_date: dt.date | None = None,
) -> OutboxMessage:
    """Write the ``promise.changed`` of one ``PromiseChange`` (id ``promise.changed:<change id>``);
    ``projected_date`` is when open inbound would cover the line's shortfall (null when covered)."""
    return OutboxMessage.objects.create(
        message_id=f"{OutboxType.PROMISE_CHANGED}:{change_id}",
        type=OutboxType.PROMISE_CHANGED,
        payload={
            "order": order,
            "line": line,
            "promised_date": promised_date.isoformat(),
            "previous_promised_date": previous_promised_date.isoformat() if previous_promised_date else None,
            "reason": reason,
            "projected_date": projected_date.isoformat() if projected_date else None,
        },
    )


def record_release(
    *, line_id: int, order: str, line: int, released: Iterable[tuple[int, str, Decimal]], wave: int | str | None = None
) -> list[OutboxMessage]:
    """Write ``order.released`` for allocations just released: one message per location with
    the summed quantity. ``released`` holds ``(allocation id, location code, quantity)``; the
    message id names the line, the location and the first allocation id, which are released
    once only. ``wave`` is null for a release made outside a release wave."""
    return record_releases([{"line_id": line_id, "order": order, "line": line, "released": released}], wave=wave)


def record_releases(entries: Iterable[Mapping[str, Any]], *, wave: int | str | None = None) -> list[OutboxMessage]:
    """``order.released`` for many lines at once (a release wave: one bulk insert). Each entry
    carries ``line_id``, ``order``, ``line`` and ``released`` as for :func:`record_release`."""
    now = timezone.now()
    rows = []
    for entry in entries:
        by_location: dict[str, tuple[int, Decimal]] = {}
        for allocation_id, location, quantity in entry["released"]:
            first, total = by_location.get(location, (allocation_id, Decimal(0)))
            by_location[location] = (min(first, allocation_id), total + Decimal(quantity))
        rows += [
            OutboxMessage(
                message_id=f"{OutboxType.ORDER_RELEASED}:{entry['line_id']}:{location}:{first}",
                type=OutboxType.ORDER_RELEASED,
                payload={
                    "order": entry["order"], "line": entry["line"], "location": location,
                    "quantity": quantity_text(total), "wave": wave,
                },
                next_attempt_at=now,
                created_at=now,
            )
            for location, (first, total) in sorted(by_location.items())
        ]
    return OutboxMessage.objects.bulk_create(rows, batch_size=BATCH_SIZE)
