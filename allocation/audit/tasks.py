"""Beat tasks of the audit trail: seal new audit records, verify the chains daily."""
from __future__ import annotations

from celery import shared_task

from allocation.audit import chain


@shared_task(name="allocation.audit.tasks.seal_audit_task", ignore_result=True)
def seal_audit_task() -> dict[str, int]:
    """Seal the audit records written since the last pass (history rows, role and promise changes)."""
    return chain.seal_pending()


@shared_task(name="allocation.audit.tasks.verify_audit_task", ignore_result=True)
def verify_audit_task() -> bool:
    """Verify every hash chain and record the result (shown on the audit screen)."""
    return chain.verify(trigger="beat").ok
