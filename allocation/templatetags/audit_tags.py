"""Audit template tags: an order's timeline, and an approval request in words."""
from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.inclusion_tag("audit/order_timeline_slot.html")
def order_timeline(order: Any) -> dict[str, Any]:
    """Where the order page shows its timeline: loaded by HTMX when the page has loaded (the
    order page keeps its own fixed query count), a plain link without JavaScript."""
    return {"order": order}


@register.simple_tag
def approval_words(approval: Any, subject: Any = None) -> str:
    """What an approval request asks, in words (``Override SO-1/1: pin 60 at DC-EAST``)."""
    from allocation.audit.selectors import approval_words as words

    if subject is None and approval.kind == "policy_activation":
        from policies.models import PolicyVersion

        subject = PolicyVersion.objects.filter(pk=approval.subject_id).first()
    return words(approval, subject)


@register.simple_tag
def case_approvals(case: Any) -> list[Any]:
    """Every approval request about a case, oldest first, with who asked and who decided."""
    from django.contrib.contenttypes.models import ContentType

    from exceptions.models import ApprovalRequest

    return list(
        ApprovalRequest.objects.filter(subject_type=ContentType.objects.get_for_model(type(case)), subject_id=case.pk)
        .select_related("requested_by", "decided_by").order_by("created_at", "pk")
    )
