"""Errors of the allocation app's services that callers show to people (views, API, commands)."""
from __future__ import annotations

from typing import Any


class WaveError(Exception):
    """A release wave that cannot start or run; ``field`` names the input at fault."""

    code = "invalid"

    def __init__(self, message: str, *, field: str = "location", **data: Any):
        super().__init__(message)
        self.message = message
        self.field = field
        self.data = data


class WaveAlreadyRunning(WaveError):
    """Another wave is running at the location (two planners at once: one runs, this one is told)."""

    code = "conflict"

    def __init__(self, message: str, *, wave_id: int | None):
        super().__init__(message, field="location", wave_id=wave_id)
        self.wave_id = wave_id
