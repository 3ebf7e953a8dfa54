"""Run locks on PostgreSQL: runs sharing an item wait for each other; a full run waits for all."""
from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from allocation.locks import lock_run_scope

HOLD_SECONDS = 0.6


def _hold(scope, acquired: threading.Event, release: threading.Event) -> None:
    try:
        with transaction.atomic():
            lock_run_scope(scope)
            acquired.set()
            release.wait(10)
    finally:
        connection.close()


def _wait_time(scope) -> float:
    """Seconds another connection waited to take ``scope``'s locks."""
    result: list[float] = []

    def take() -> None:
        try:
            started = time.perf_counter()
            with transaction.atomic():
                lock_run_scope(scope)
                result.append(time.perf_counter() - started)
        finally:
            connection.close()

    thread = threading.Thread(target=take)
    thread.start()
    thread.join(10)
    return result[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("held", "wanted", "waits"),
    [
        (["VALVE-10"], ["PUMP-2", "VALVE-10"], True),   # shares an item: waits
        (["VALVE-10"], ["PUMP-2"], False),              # disjoint groups: runs at once
        (["VALVE-10"], None, True),                     # a full run waits for incremental ones
        (None, ["PUMP-2"], True),                       # and incremental ones wait for a full run
    ],
)
def test_runs_touching_one_item_group_never_overlap(held, wanted, waits):
    acquired, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold, args=(held, acquired, release))
    holder.start()
    assert acquired.wait(10)
    timer = threading.Timer(HOLD_SECONDS, release.set)
    timer.start()
    try:
        waited = _wait_time(wanted)
    finally:
        release.set()
        holder.join(10)
        timer.cancel()
    assert (waited >= HOLD_SECONDS * 0.8) is waits
