"""Publishing Celery tasks so that a broker outage never reaches the caller.

Everything a task would act on is stored first (an event batch, a run row); the published task
is only a wake-up. So a publish that fails is logged and dropped here, at the call site, and
the sweeper (``allocation.recovery.sweep``, on beat and when a worker starts) publishes again
once the broker is back. The broker settings (``config/settings.py``) make a failed publish
fail fast: about ``ALLOT_BROKER_TIMEOUT_SECONDS``, one attempt.

``publish_once`` coalesces bursts: a Redis flag (``SET NX`` with a TTL) says "a task is
waiting"; while it is set, further requests publish nothing. The task clears the flag before
it looks for work, so a request arriving after that point publishes a new task: no wake-up is
ever lost, and a burst of any size makes a few tasks. A lost task blocks publishing for at
most the TTL (and the sweeper ignores the flag once it is that old).

Without a broker (the embedded default) tasks run in-process and none of this applies: on the
serving process's background thread (``config.inprocess``) when ``ALLOT_INPROCESS_BACKGROUND``
is on, else eagerly in the caller (tests, commands).
"""
from __future__ import annotations

import logging
from typing import Any

import redis
from django.conf import settings
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

# What a broker that is down, unreachable or half-open raises from a publish or a Redis command.
PUBLISH_ERRORS: tuple[type[BaseException], ...] = (OperationalError, redis.exceptions.RedisError, OSError)

_clients: dict[str, redis.Redis] = {}


def broker_configured() -> bool:
    """True when tasks go through a broker (not run in-process)."""
    return bool(settings.CELERY_BROKER_URL) and not settings.CELERY_TASK_ALWAYS_EAGER


def redis_client() -> redis.Redis:
    """A Redis client on the broker's URL (coalescing flags live beside the queue); one pool per URL.

    Same short timeouts as publishing, and no retries: a caller that cannot reach Redis hears
    so within about ``ALLOT_BROKER_TIMEOUT_SECONDS``.
    """
    url = settings.REDIS_URL or settings.CELERY_BROKER_URL
    client = _clients.get(url)
    if client is None:
        timeout = settings.ALLOT_BROKER_TIMEOUT_SECONDS
        client = _clients[url] = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=None
        )
    return client


def _options(args: tuple | list, kwargs: dict | None, countdown: float | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args:
        options["args"] = list(args)
    if kwargs:
        options["kwargs"] = kwargs
    if countdown:
        options["countdown"] = countdown
    return options


def publish(task: Any, *, args: tuple | list = (), kwargs: dict | None = None, countdown: float | None = None) -> bool:
    """Send ``task``; True if it was handed to the broker (or ran in-process without one).

    A broker failure is logged and answers False: the caller's stored record stays the
    durable one and the sweeper publishes again later. Without a broker the task runs here
    and its errors are its own (raised as they are), unless ``ALLOT_INPROCESS_BACKGROUND``
    is on: then it runs on the process's background thread (``config.inprocess``) right
    after, so the caller does not wait for it (a countdown is not waited for).
    """
    if not broker_configured():
        from config import inprocess

        if inprocess.enabled():
            inprocess.executor.submit_task(task, args=args, kwargs=kwargs)
            return True
        task.apply_async(**_options(args, kwargs, countdown))
        return True
    try:
        task.apply_async(**_options(args, kwargs, countdown))
    except PUBLISH_ERRORS as error:
        logger.warning("broker unavailable, %s not published (the sweeper will): %s", task.name, error)
        return False
    return True


def publish_once(
    task: Any, *, flag: str, ttl: int, args: tuple | list = (), kwargs: dict | None = None,
    countdown: float | None = None,
) -> bool:
    """Publish ``task`` unless one is already waiting (``flag`` set); True if published now.

    The task must call :func:`clear_flag` before it looks for work. Broker failures are logged
    and answer False, with the flag cleared again so the next request or sweep tries anew.
    """
    try:
        client = redis_client()
        if not client.set(flag, "1", nx=True, ex=ttl):
            return False
    except PUBLISH_ERRORS as error:
        logger.warning("broker unavailable, %s not published (the sweeper will): %s", task.name, error)
        return False
    if publish(task, args=args, kwargs=kwargs, countdown=countdown):
        return True
    clear_flag(flag)
    return False


def clear_flag(flag: str) -> None:
    """Reopen publishing for ``flag`` (tasks call it first thing); a Redis failure is logged only."""
    try:
        redis_client().delete(flag)
    except PUBLISH_ERRORS as error:
        logger.warning("could not clear %s: %s", flag, error)


def flag_set(flag: str) -> bool:
    """Whether a task for ``flag`` is waiting; False when Redis cannot be asked."""
    try:
        return bool(redis_client().exists(flag))
    except PUBLISH_ERRORS:
        return False
