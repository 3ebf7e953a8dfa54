"""Quotes with expiry (allocation.md "Depth settings", Quotes; events-v1 ``order.upserted`` ``kind``).

A quote (``Order.kind == "quote"``) ranks and holds stock like any order (policies may scope it
by ``order_kind``). When its ``expires_at`` passes, :func:`expire_quotes` (beat, every minute:
``allocation.tasks.expire_quotes_task``) cancels its open lines and the quote, with history
("quote expired at ..."), writes one outbound ``quote.expired`` message per quote in the same
transaction, and asks for a re-allocation of the quotes' items through the run request service
(``request_incremental_run``, trigger ``quote_expiry``), which frees what the lines held. Until
the sweep has run, loading already gives an expired quote nothing (``allocation.loading``).

An ``order.upserted`` of the same number with ``kind: "order"`` converts the quote in place
(``integrations.applying``): the same order and line rows, so it keeps what it holds.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from allocation.choices import LineStatus, OrderKind, OrderStatus
from allocation.models import Order, OrderLine, RunTrigger

# Quotes expired per sweep (and per transaction); the next sweep takes the rest.
BATCH = 500


@dataclass
class ExpiryResult:
    """What one sweep did: the quotes and lines it cancelled, the SKUs re-allocated, the run asked for."""

    orders: list[str] = field(default_factory=list)
    lines: int = 0
    skus: list[str] = field(default_factory=list)
    run_id: int | None = None
    messages: int = 0


def _quantity_text(value: Any) -> str:
    return format(value.normalize(), "f")


def message_id(order: Order) -> str:
    """Stable per quote and expiry: a sweep repeated after a crash writes no second message."""
    return f"quote.expired:{order.number}:{order.expires_at.isoformat()}"


def expire_quotes(*, now: dt.datetime | None = None, actor: Any = None, batch: int = BATCH) -> ExpiryResult:
    """Cancel the open lines of every open quote whose ``expires_at`` is at or before ``now``.

    One transaction: the quotes are locked (``skip_locked``, so a concurrent sweep or an event
    applying to the same quote is not waited for), their lines and the quotes are cancelled with
    history (the ``actor``, if any, as the history user), one ``quote.expired`` message per quote
    goes into the outbox, and the items' re-allocation is requested after commit.
    """
    from allocation.services import request_incremental_run
    from integrations.choices import OutboxType
    from integrations.models import OutboxMessage

    now = now or timezone.now()
    result = ExpiryResult()
    with transaction.atomic():
        orders = list(
            Order.objects.select_for_update(skip_locked=True)
            .filter(kind=OrderKind.QUOTE, status=OrderStatus.OPEN, expires_at__lte=now)
            .order_by("expires_at", "id")[:batch]
        )
        if not orders:
            return result
        lines = list(
            OrderLine.objects.filter(order__in=orders, status=LineStatus.OPEN).select_related("item").order_by("order_id", "line")
        )
        user = actor if getattr(actor, "is_authenticated", False) else None
        by_order: dict[int, list[OrderLine]] = {}
        for line in lines:
            line.status = LineStatus.CANCELLED
            by_order.setdefault(line.order_id, []).append(line)
        for order in orders:
            reason = f"quote expired at {order.expires_at.isoformat()}"
            order.status = OrderStatus.CANCELLED
            order.cancel_reason = reason[:300]
            order._change_reason = reason[:100]  # type: ignore[attr-defined]
            for line in by_order.get(order.pk, []):
                line._change_reason = reason[:100]  # type: ignore[attr-defined]
        if lines:
            bulk_update_with_history(lines, OrderLine, ["status"], batch_size=BATCH, default_user=user)
        bulk_update_with_history(orders, Order, ["status", "cancel_reason"], batch_size=BATCH, default_user=user)
        messages = [
            OutboxMessage(
                message_id=message_id(order),
                type=OutboxType.QUOTE_EXPIRED,
                payload={
                    "order": order.number,
                    "expires_at": order.expires_at.isoformat(),
                    "cancelled_at": now.isoformat(),
                    "lines": [
                        {"line": line.line, "sku": line.item.sku, "quantity": _quantity_text(line.quantity - line.shipped_quantity)}
                        for line in by_order.get(order.pk, [])
                    ],
                },
                next_attempt_at=now,
                created_at=now,
            )
            for order in orders
        ]
        OutboxMessage.objects.bulk_create(messages, ignore_conflicts=True)
        result.orders = [order.number for order in orders]
        result.lines = len(lines)
        result.messages = len(messages)
        result.skus = sorted({line.item.sku for line in lines})
        if result.skus:
            result.run_id = request_incremental_run(result.skus, trigger=RunTrigger.QUOTE_EXPIRY, actor=actor).pk
    return result
