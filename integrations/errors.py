"""Python exceptions of the integrations app (never confused with the exceptions/ app)."""
from __future__ import annotations


class IntegrationError(Exception):
    """Base class for errors raised by integrations services."""


class EventNotRetryable(IntegrationError):
    """Only failed or parked events can be retried."""

    def __init__(self, status: str) -> None:
        super().__init__(f"Only failed or parked events can be retried; this one is {status}.")
        self.status = status


class BatchRejected(IntegrationError):
    """A whole delivery is refused (malformed, over the limits); nothing was stored."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EventApplyError(IntegrationError):
    """One event cannot be applied; carries the field errors stored on the event."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.errors = [{"field": field, "message": message}]
