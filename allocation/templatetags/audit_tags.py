"""Audit template tags: an order's timeline, and an approval request in words."""
from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.inclusion_tag("audit/order_timeline.html", takes_context=True)
def order_timeline(context: dict[str, Any], order: Any, limit: int = 100) -> dict[str, Any]:
    """The order's audit entries (its lines' decisions, cases, overrides, approvals...)."""
    from allocation.audit.finance import order_timeline as timeline

    return {"order": order, "entries": timeline(order, user=context["request"].user, limit=limit)}


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
