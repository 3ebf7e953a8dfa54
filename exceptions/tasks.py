"""Celery tasks of the exceptions app: thin callers of exceptions.routing / services."""
from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from exceptions import routing


@shared_task(name="exceptions.tasks.escalate_overdue_task")
def escalate_overdue_task(now: str | None = None) -> int:
    """Escalate exceptions whose SLA ran out; ``now`` (ISO datetime) pins the clock for tests."""
    clock = dt.datetime.fromisoformat(now) if now else timezone.now()
    if timezone.is_naive(clock):
        raise ValueError("now must carry a time zone offset")
    return routing.escalate_overdue(clock)


@shared_task(name="exceptions.tasks.route_unrouted_task")
def route_unrouted_task() -> int:
    """Route exceptions that have no queue yet."""
    return routing.route_unrouted()
