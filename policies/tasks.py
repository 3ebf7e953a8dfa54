"""Celery tasks of the policies app: thin callers of policies.services."""
from __future__ import annotations

from celery import shared_task

from policies import services


@shared_task
def activate_due_policy_versions_task() -> list[int]:
    """Activate approved versions whose effective date has come (run every minute by beat)."""
    return [version.number for version in services.activate_due_versions()]
