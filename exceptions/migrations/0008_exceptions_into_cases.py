"""Existing run exceptions become cases: one active case per line (or ship-complete order).

Each active run-raised exception becomes a reason of its subject's case. Where a line had
several active exceptions, the most severe one stays and becomes the case (its claim, queue
and notes kept); the others are resolved as merged into it. Exceptions from ingestion and
integrations are cases of one reason already and keep their keys.
"""
from django.db import migrations
from django.utils import timezone

RUN_TYPES = (
    "priority_shortage", "promise_at_risk", "credit_hold", "ship_complete_blocked", "substitution_proposed",
    "margin_below_floor", "allocation_reversed", "split_limit", "approval_required",
)
SEVERITY = (
    "priority_shortage", "ship_complete_blocked", "allocation_reversed", "credit_hold", "promise_at_risk",
    "substitution_proposed", "split_limit", "margin_below_floor", "approval_required",
)
ACTIVE = ("open", "claimed", "awaiting_approval")


def forwards(apps, schema_editor):
    Exception_ = apps.get_model("exceptions", "DecisionException")
    Reason = apps.get_model("exceptions", "CaseReason")
    now = timezone.now()
    by_subject: dict[str, list] = {}
    for exception in Exception_.objects.filter(type__in=RUN_TYPES, status__in=ACTIVE).order_by("id"):
        subject = exception.key.split(":", 1)[1] if ":" in exception.key else exception.key
        by_subject.setdefault(f"case:{subject}", []).append(exception)
    reasons = []
    for case_key, members in by_subject.items():
        members.sort(key=lambda e: (SEVERITY.index(e.type) if e.type in SEVERITY else 99, e.id))
        case = members[0]
        for member in members:
            reasons.append(Reason(
                case_id=case.id, type=member.type, key=member.key, status="open", message=member.message,
                details=member.details, line_id=member.line_id, order_id=member.order_id, value=member.value,
                run_id=member.run_id, raised_at=member.raised_at, updated_at=now,
            ))
        for member in members[1:]:
            member.status = "resolved"
            member.resolved_at = now
            member.resolution_reason = f"merged into case #{case.id}"
            member.save(update_fields=["status", "resolved_at", "resolution_reason"])
        types = sorted({m.type for m in members}, key=lambda t: SEVERITY.index(t) if t in SEVERITY else 99)
        case.key = case_key
        case.reason_types = types
        case.save(update_fields=["key", "reason_types"])
    Reason.objects.bulk_create(reasons, batch_size=1000)
    for exception in Exception_.objects.exclude(type__in=RUN_TYPES).filter(reason_types=[]):
        exception.reason_types = [exception.type]
        exception.save(update_fields=["reason_types"])


class Migration(migrations.Migration):
    dependencies = [("exceptions", "0007_cases_and_reasons")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
