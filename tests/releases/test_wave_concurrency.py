"""Two planners start a wave for one location at the same moment, on PostgreSQL with real
connections: one runs, the other is told which wave is running; nothing is released twice."""
from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from allocation import releases
from allocation.choices import AllocationState
from allocation.errors import WaveAlreadyRunning
from allocation.locks import lock_run_scope
from allocation.models import Allocation, Location, Wave
from config import roles
from integrations.models import OutboxMessage
from tests.fixtures.personas import make_user


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_planners_starting_a_wave_at_once_one_runs_the_other_is_told(world, planner):
    second = make_user("quinn_planner", roles.PLANNER)
    # A run holds the items' locks, so the winning wave is still running when the other arrives.
    run_holds, release_run = threading.Event(), threading.Event()

    def run_holding_locks() -> None:
        try:
            with transaction.atomic():
                lock_run_scope(["BOLT", "NUT"])
                run_holds.set()
                release_run.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=run_holding_locks)
    holder.start()
    assert run_holds.wait(10)

    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def start(name: str, user) -> None:
        try:
            location = Location.objects.get(code="DC-EAST")
            barrier.wait(5)
            results[name] = releases.run_wave(location, user)
        except WaveAlreadyRunning as told:
            results[name] = told
        finally:
            connection.close()

    threads = [threading.Thread(target=start, args=(name, user)) for name, user in (("a", planner), ("b", second))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while not any(isinstance(r, WaveAlreadyRunning) for r in results.values()) and time.monotonic() < deadline:
        time.sleep(0.02)
    told = [r for r in results.values() if isinstance(r, WaveAlreadyRunning)]
    assert len(told) == 1, results  # told at once, while the other wave waits for the run's locks
    release_run.set()
    for thread in threads:
        thread.join(10)
    holder.join(10)

    waves = [r for r in results.values() if isinstance(r, Wave)]
    assert len(waves) == 1 and waves[0].status == "succeeded" and waves[0].released_count == 3
    assert told[0].wave_id == waves[0].pk and f"wave #{waves[0].pk}" in told[0].message
    assert Wave.objects.count() == 1
    assert Allocation.objects.filter(state=AllocationState.RELEASED).count() == 3
    assert OutboxMessage.objects.filter(type="order.released").count() == 3
