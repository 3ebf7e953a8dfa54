"""A running run's heartbeat: proof, visible to everyone, that its worker is still alive.

A run does all its work in one transaction, so what it writes to its own row (phase, progress)
is invisible until it commits. :class:`RunHeartbeat` writes from a thread of its own, on its
own database connection: ``heartbeat_at`` every ``ALLOT_RUN_HEARTBEAT_SECONDS``, and the phase
and progress as soon as the run moves on. When the worker dies the thread dies with it, the
heartbeat stops, and the sweeper's reaper (``allocation.recovery.reap_lost_runs``) fails the
run once its heartbeat is older than ``ALLOT_RUN_LOST_SECONDS``.

The thread runs on PostgreSQL outside any enclosing transaction (a worker, a command). On
SQLite (the embedded default: runs execute in the serving process, which a second connection
could only wait behind) and inside an enclosing transaction (whose run row nobody else can see
anyway) only the phase is kept, for the run's own final write. Every phase is also kept in
this process's memory (:func:`live_phase`) while the run executes, so the screens served by
the process that runs it (the embedded default's background thread, ``config.inprocess``)
show it live even where the row cannot be written before the run commits.
"""
from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from allocation.models import AllocationRun, RunStatus

logger = logging.getLogger(__name__)

_live_lock = threading.Lock()
_live: dict[int, tuple[str, int]] = {}


def live_phase(run_id: int) -> tuple[str, int] | None:
    """(phase, progress) of run ``run_id`` if it is executing in this process, else None."""
    with _live_lock:
        return _live.get(run_id)


class RunHeartbeat:
    """Context manager around a run's execution; ``phase()`` reports progress as it happens."""

    def __init__(self, run_id: int, *, interval: float | None = None) -> None:
        self.run_id = run_id
        self.interval = settings.ALLOT_RUN_HEARTBEAT_SECONDS if interval is None else interval
        self.beats = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._pending: tuple[str, int] | None = None
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self._thread is not None

    def __enter__(self) -> RunHeartbeat:
        with _live_lock:
            _live[self.run_id] = ("loading", 5)
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            self._thread = threading.Thread(target=self._loop, name=f"run-{self.run_id}-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with _live_lock:
            _live.pop(self.run_id, None)
        if self._thread is None:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=self.interval + 10)

    def phase(self, phase: str, progress: int) -> None:
        """Record that the run reached ``phase`` (``progress`` percent); written at once."""
        with self._lock:
            self._pending = (phase, progress)
        with _live_lock:
            _live[self.run_id] = (phase, progress)
        self._wake.set()

    def _loop(self) -> None:
        try:
            while True:
                self._wake.wait(self.interval)
                self._wake.clear()
                if self._stopping:
                    return
                self._beat()
        finally:
            connections.close_all()  # this thread's own connection only (connections are per thread)

    def _beat(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        fields: dict[str, object] = {"heartbeat_at": timezone.now()}
        if pending is not None:
            fields["phase"], fields["progress"] = pending
        try:
            with transaction.atomic():
                # Skip a beat rather than wait while the run itself holds its row (final write).
                mine = AllocationRun.objects.select_for_update(skip_locked=True).filter(
                    pk=self.run_id, status=RunStatus.RUNNING
                )
                if mine.values_list("pk", flat=True).first() is not None:
                    AllocationRun.objects.filter(pk=self.run_id).update(**fields)
                    self.beats += 1
        except DatabaseError as error:  # the next beat tries again; the run itself goes on
            logger.warning("heartbeat of run #%s not written: %s", self.run_id, error)
            connections.close_all()
