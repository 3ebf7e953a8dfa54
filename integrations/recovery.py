"""Event processing after a broker fault: wake it up when events wait and no task will come.

Part of the sweep (``allocation.recovery.sweep``): an ingested batch whose wake-up the broker
refused stays ``pending`` until this publishes processing for it.
"""
from __future__ import annotations

from config import broker
from integrations.choices import EventStatus
from integrations.models import Event


def wake_pending_processing() -> bool:
    """Publish (coalesced) event processing if events are pending; True if a task was published."""
    from integrations.services import _schedule_processing

    if not broker.broker_configured():
        return False
    if not Event.objects.filter(status=EventStatus.PENDING).exists():
        return False
    return _schedule_processing()
