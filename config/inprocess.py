"""The embedded default's worker: one background thread in the serving process.

Without a broker, Celery tasks would run eagerly, inside whatever request published them, so a
planner's override would wait for its allocation run. With ``ALLOT_INPROCESS_BACKGROUND`` on
(``dev.py serve`` and the WSGI/ASGI entry points turn it on; tests and management commands
keep it off), ``config.broker.publish`` hands the task to :data:`executor` instead: a single
daemon thread with a FIFO queue, so the request answers at once and the task runs right after,
as a worker would run it.

One thread serialises the jobs (SQLite has one writer anyway; runs never overlap). A job
already waiting with the same task and arguments is not queued twice (coalescing: a run that
is queued once executes once; incremental requests merge into a queued run in
``allocation.services.request_incremental_run``). Each job starts and ends by closing the
thread's database connections, so no connection outlives its job, and an exception is logged,
never raised into the thread (the run row records its own failure).

Jobs live in memory: a process that exits drops what is still queued, but the queued run rows
stay and the sweeper (``allocation.recovery``) publishes them again.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)


def enabled() -> bool:
    """Whether published tasks go to the background thread (no broker, setting on)."""
    return bool(getattr(settings, "ALLOT_INPROCESS_BACKGROUND", False))


class BackgroundExecutor:
    """A single daemon worker thread with a queue of jobs, started on first use."""

    def __init__(self, name: str = "allot-background") -> None:
        self.name = name
        self._queue: queue.Queue[tuple[Any, Callable[[], Any]]] = queue.Queue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._waiting: set[Any] = set()
        self._unfinished = 0
        self._thread: threading.Thread | None = None
        self.completed = 0
        self.failed = 0

    # --- submitting ----------------------------------------------------------------------

    def submit(self, job: Callable[[], Any], *, key: Any = None) -> bool:
        """Queue ``job``; False (and nothing queued) when a job with the same ``key`` is waiting."""
        with self._lock:
            if key is not None:
                if key in self._waiting:
                    return False
                self._waiting.add(key)
            self._unfinished += 1
            self._queue.put((key, job))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
        return True

    def submit_task(self, task: Any, *, args: tuple | list = (), kwargs: dict | None = None) -> bool:
        """Queue a Celery task to run here (``task.apply``: in this process, like an eager task)."""
        args, kwargs = list(args or ()), dict(kwargs or {})
        key = (task.name, json.dumps(args, sort_keys=True, default=str), json.dumps(kwargs, sort_keys=True, default=str))
        return self.submit(lambda: task.apply(args=args, kwargs=kwargs, throw=True), key=key)

    # --- state ---------------------------------------------------------------------------

    @property
    def on_thread(self) -> bool:
        """True when called from the background thread itself."""
        return threading.current_thread() is self._thread

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        with self._lock:
            return self._unfinished

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until every queued job has finished; False on timeout (tests, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout=timeout)

    # --- the thread ----------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            key, job = self._queue.get()
            with self._lock:
                self._waiting.discard(key)  # from now on the same job may be queued again
            try:
                close_old_connections()
                job()
                self.completed += 1
            except Exception:  # logged; the thread goes on with the next job
                self.failed += 1
                logger.exception("background job %s failed", key[0] if isinstance(key, tuple) else key)
            finally:
                connections.close_all()  # this thread's connections only
                with self._idle:
                    self._unfinished -= 1
                    self._idle.notify_all()


executor = BackgroundExecutor()
