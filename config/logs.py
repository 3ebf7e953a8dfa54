"""Logs: JSON lines in production, readable lines in the embedded default, never a secret.

On the one console handler (``logging_config``) :class:`ContextFilter` adds what is known
about the work in progress (request id, user, view, Celery task id, allocation run id, event
batch id) from a context variable, and both formatters write a :func:`redacted_copy` of each
record: secrets (``Authorization`` values, tokens, passwords, webhook secrets and signatures,
credentials in URLs) masked in the message, its arguments, extra fields and a traceback. (A copy,
not the record: another handler, pytest's log capture, an error tracker, still gets it intact.) :class:`RequestLogMiddleware` gives each request an id (the caller's ``X-Request-ID``
when it is sane, else a fresh one), returns it in the ``X-Request-ID`` response header, binds it
for the records emitted while the request runs and writes one line per request (method, path,
view, status, duration, user) on the ``allot.request`` logger. Celery tasks bind their task id
(and a run task its run id); ``bind`` and ``bound`` add fields from anywhere (ingestion binds
the batch id, run execution the run id).

JSON uses python-json-logger (a formatter for the standard ``logging`` module: the project's
and its libraries' loggers stay as they are, nothing to wrap); structlog would bring its own
logger API and processors for what one formatter and two filters do here.
"""
from __future__ import annotations

import contextvars
import functools
import logging
import logging.config
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
REDACTED = "[REDACTED]"
# The fields the context may carry, in the order the readable format prints them.
CONTEXT_FIELDS = ("request_id", "user", "view", "task", "task_id", "run_id", "batch_id")

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("allot_log_context", default=None)


# --- context ---------------------------------------------------------------------------------


def current() -> dict[str, Any]:
    """The fields bound to the work in progress (a copy)."""
    return dict(_context.get() or {})


def bind(**fields: Any) -> None:
    """Add ``fields`` to the current request's, task's or ``bound`` block's log context (until
    it ends). Outside all of them this does nothing: a long-lived thread never keeps one
    batch's id on every later line."""
    context = _context.get()
    if context is not None:
        context.update({k: v for k, v in fields.items() if v is not None})


def _push(fields: dict[str, Any]) -> contextvars.Token:
    """A new context for a request or a task: the enclosing one's fields plus ``fields``
    (an eager task inside a request keeps the request id)."""
    return _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})


def _pop(token: contextvars.Token) -> None:
    try:
        _context.reset(token)
    except ValueError:  # reset from another context (should not happen): start clean
        _context.set(None)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Bind ``fields`` for the duration of the block only."""
    token = _push(fields)
    try:
        yield
    finally:
        _pop(token)


def with_run_context(function: Callable) -> Callable:
    """Decorate a function whose first argument is an ``AllocationRun``: its log lines carry ``run_id``."""

    @functools.wraps(function)
    def wrapper(run: Any, *args: Any, **kwargs: Any) -> Any:
        with bound(run_id=getattr(run, "pk", None)):
            return function(run, *args, **kwargs)

    return wrapper


class ContextFilter(logging.Filter):
    """Copies the bound context onto every record (a field the call passed itself wins).

    Django logs a 4xx/5xx response (``django.request``) after the middleware chain has
    returned, with the request attached: its request id is taken from the request then.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_context.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        request = getattr(record, "request", None)
        if not hasattr(record, "request_id") and getattr(request, "request_id", None):
            record.request_id = request.request_id
            record.view = view_name(request)
            record.user = _username(request)
        return True


# --- redaction -------------------------------------------------------------------------------

_SENSITIVE_NAME = re.compile(
    r"(password|passwd|pwd|secret|token|api[_-]?key|authorization|signature|cookie|sessionid|csrf)", re.IGNORECASE
)
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Credentials in URLs: postgres://user:pass@host, redis://:pass@host.
    (re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^\s:/@]*:)[^\s@/]+(@)", re.IGNORECASE), r"\1" + REDACTED + r"\2"),
    # An Authorization header or value, whatever its scheme.
    (
        re.compile(r"((?:http_)?authorization['\"]?\s*[:=]\s*['\"]?)(?:(?:token|bearer|basic)\s+)?[^\s'\",;}]+", re.IGNORECASE),
        r"\1" + REDACTED,
    ),
    (re.compile(r"\b(token|bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE), r"\1 " + REDACTED),
    # name=value, name: value, 'name': 'value' for any name that says password, secret, token...
    (
        re.compile(
            r"((?:[\w.\-]*(?:password|passwd|pwd|secret|token|api[_-]?key|signature|cookie|sessionid)[\w.\-]*)"
            r"['\"]?\s*[:=]\s*['\"]?)([^\s'\",;&}\]]+)",
            re.IGNORECASE,
        ),
        r"\1" + REDACTED,
    ),
    # HMAC signatures written bare, and the 40-hex API token keys and 64-hex webhook secrets.
    (re.compile(r"\bsha256=[0-9a-f]{16,}", re.IGNORECASE), "sha256=" + REDACTED),
    (re.compile(r"\b(?:[0-9a-f]{40}|[0-9a-f]{64})\b", re.IGNORECASE), REDACTED),
)


def redact(text: str) -> str:
    """``text`` with every secret the patterns know masked as ``[REDACTED]``."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(name: str, value: Any, depth: int = 0) -> Any:
    if _SENSITIVE_NAME.search(name):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict) and depth < 4:
        return {k: _redact_value(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and depth < 4:
        return type(value)(_redact_value("", v, depth + 1) for v in value)
    return value


_STANDARD_ATTRS = frozenset(RESERVED_ATTRS) | {"message", "asctime", "taskName", *CONTEXT_FIELDS}


def redacted_copy(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of ``record`` with its secrets masked (see :func:`redact`); the record itself is
    left as it is for any other handler.

    The message is rendered with its arguments and redacted as a whole (a secret may be an
    argument or part of the template); extra fields named like a secret are replaced, other
    text fields redacted; a traceback is rendered and redacted (an exception message may quote
    a connection URL).
    """
    copy = logging.makeLogRecord(record.__dict__)
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: keep what it said, unformatted
        message = f"{record.msg} {record.args!r}"
    copy.msg, copy.args = redact(message), None
    for name, value in list(copy.__dict__.items()):
        if name not in _STANDARD_ATTRS and not name.startswith("_"):
            copy.__dict__[name] = _redact_value(name, value)
    if record.exc_info:
        copy.exc_text = redact(record.exc_text or logging.Formatter().formatException(record.exc_info))
        copy.exc_info = None
    elif record.exc_text:
        copy.exc_text = redact(record.exc_text)
    if record.stack_info:
        copy.stack_info = redact(record.stack_info)
    return copy


# --- formats ---------------------------------------------------------------------------------


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: timestamp, level, logger, message and every context and extra
    field (request_id, user, view, method, path, status, duration_ms, task_id, run_id, batch_id...),
    secrets redacted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", True)
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        # Django's request logger attaches the request object: its repr repeats the query string.
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "request", "server_time", "color_message"])
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        return super().format(redacted_copy(record))


class HumanFormatter(logging.Formatter):
    """``time level logger message [request_id=... run_id=...]`` for people at a terminal,
    secrets redacted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record = redacted_copy(record)
        text = super().format(record)
        context = " ".join(f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS if getattr(record, name, None) is not None)
        if not context:
            return text
        first, newline, rest = text.partition("\n")
        return f"{first} [{context}]{newline}{rest}"


def logging_config(*, json_lines: bool, level: str = "WARNING", request_lines: bool = False) -> dict[str, Any]:
    """The ``LOGGING`` setting: one console handler (JSON or readable, both redacting) with the
    context filter.

    ``request_lines`` turns on the one line per request of ``allot.request`` (INFO); with
    it off the logger still says WARNING and above.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "config.logs.ContextFilter"},
        },
        "formatters": {
            "json": {"()": "config.logs.JsonFormatter"},
            "human": {"()": "config.logs.HumanFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json" if json_lines else "human",
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "allot.request": {"level": "INFO" if request_lines else "WARNING"},
            # Replaces Django's own console and mail handlers (they would write unfiltered copies).
            "django": {"level": level},
            # runserver's own access line; the request line replaces it where that is on.
            "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }


# --- requests --------------------------------------------------------------------------------

request_logger = logging.getLogger("allot.request")


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is at most 64 characters of ``[A-Za-z0-9._-]``, else a fresh one."""
    if header and REQUEST_ID_PATTERN.fullmatch(header):
        return header
    return uuid.uuid4().hex


def view_name(request: Any) -> str:
    """The resolved view's name (``app:name``), else its route pattern; ``<unmatched>`` when no URL matched."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unmatched>"
    return match.view_name or match.route or "<unnamed>"


def _username(request: Any) -> str | None:
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return user.get_username()
    return None


class RequestLogMiddleware:
    """Request id in, request id out, one log line per request (first in ``MIDDLEWARE``)."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        started = time.perf_counter()
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id
        token = _push({"request_id": request_id})
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            view, user = view_name(request), _username(request)
            bind(view=view, user=user)
            request_logger.info(
                "%s %s %s %.1fms", request.method, request.path, response.status_code, duration_ms,
                # user too, so an anonymous request says null rather than nothing.
                extra={"method": request.method, "path": request.path, "status": response.status_code,
                       "duration_ms": duration_ms, "user": user},
            )
            return response
        finally:
            _pop(token)

    def process_view(self, request: Any, view_func: Any, view_args: Any, view_kwargs: Any) -> None:
        # Lines logged by the view itself already know it and the session's user.
        bind(view=view_name(request), user=_username(request))
        return None


# --- Celery ----------------------------------------------------------------------------------

_task_tokens: dict[str, contextvars.Token] = {}
RUN_TASKS = {"allocation.tasks.run_task", "allocation.tasks.simulate_task"}


def _task_started(task_id: str | None = None, task: Any = None, args: Any = None, **_: Any) -> None:
    fields: dict[str, Any] = {"task_id": task_id, "task": getattr(task, "name", None)}
    if getattr(task, "name", None) in RUN_TASKS and args:
        fields["run_id"] = args[0]
    if task_id:
        _task_tokens[task_id] = _push(fields)


def _task_finished(task_id: str | None = None, **_: Any) -> None:
    token = _task_tokens.pop(task_id or "", None)
    if token is not None:
        _pop(token)


def _setup_worker_logging(loglevel: int | None = None, **_: Any) -> None:
    """Celery worker and beat: Django's ``LOGGING`` instead of Celery's own handlers, so their
    lines have the same format and filters; ``-l`` can lower the root level, never raise it."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    root = logging.getLogger()
    if loglevel and loglevel < root.level:
        root.setLevel(loglevel)


def connect_celery() -> None:
    from celery import signals

    signals.task_prerun.connect(_task_started, weak=False, dispatch_uid="allot-log-task-started")
    signals.task_postrun.connect(_task_finished, weak=False, dispatch_uid="allot-log-task-finished")
    signals.setup_logging.connect(_setup_worker_logging, weak=False, dispatch_uid="allot-log-setup")


# Settings import this module to build LOGGING, so the worker has these before it sets up logging.
connect_celery()
