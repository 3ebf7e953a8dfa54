"""Celery tasks of the allocation app: thin callers of allocation.services.

Task bodies are filled in by the allocation-runs work; the ingestion side already calls
``schedule_incremental_runs`` after events that touch items are committed.
"""
from __future__ import annotations

from celery import shared_task


def schedule_incremental_runs(skus: list[str] | set[str]) -> None:
    """Ask for an incremental allocation run of the item groups of ``skus`` (after commit).

    Until allocation runs exist this only validates its input; the runs work replaces the body.
    """
    if not isinstance(skus, (list, set, tuple, frozenset)):
        raise TypeError("skus must be a collection of SKU codes")
