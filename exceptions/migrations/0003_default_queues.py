"""Default queues and routing rules, so exceptions land somewhere sensible from the start.

Admins can change them afterwards; re-running this migration backwards removes only what it
created (by code).
"""
from django.db import migrations

QUEUES = [
    # code, name, group (role), SLA minutes, escalation queue code, position, default
    ("escalations", "Escalations", "planner", 120, None, 50, False),
    ("shortages", "Shortages", "planner", 240, "escalations", 10, False),
    ("promises-at-risk", "Promises at risk", "customer_service", 480, "escalations", 20, False),
    ("substitutions", "Substitutions", "planner", 240, "escalations", 30, False),
    ("data-quality", "Data quality", "planner", 1440, "escalations", 40, True),
]

RULES = [
    # position, queue code, exception type
    (10, "shortages", "priority_shortage"),
    (20, "shortages", "ship_complete_blocked"),
    (30, "shortages", "split_limit"),
    (40, "shortages", "allocation_reversed"),
    (50, "shortages", "margin_below_floor"),
    (60, "promises-at-risk", "promise_at_risk"),
    (70, "promises-at-risk", "credit_hold"),
    (80, "substitutions", "substitution_proposed"),
    (90, "escalations", "approval_required"),
    (100, "data-quality", "event_parked"),
    (110, "data-quality", "event_failed"),
    (120, "data-quality", "unknown_code"),
    (130, "data-quality", "negative_stock"),
    (140, "data-quality", "stale_feed"),
    (150, "data-quality", "outbox_dead_letter"),
]


def create_defaults(apps, schema_editor):
    Queue = apps.get_model("exceptions", "Queue")
    RoutingRule = apps.get_model("exceptions", "RoutingRule")
    by_code = {}
    for code, name, group, sla, _escalation, position, is_default in QUEUES:
        by_code[code], _ = Queue.objects.get_or_create(
            code=code,
            defaults={"name": name, "group": group, "sla_minutes": sla, "position": position, "is_default": is_default},
        )
    for code, *_rest in QUEUES:
        escalation = _rest[3]
        if escalation:
            queue = by_code[code]
            queue.escalation_queue = by_code[escalation]
            queue.save(update_fields=["escalation_queue"])
    if not RoutingRule.objects.exists():
        RoutingRule.objects.bulk_create(
            RoutingRule(position=position, queue=by_code[code], exception_type=exception_type)
            for position, code, exception_type in RULES
        )


def remove_defaults(apps, schema_editor):
    Queue = apps.get_model("exceptions", "Queue")
    Queue.objects.filter(code__in=[q[0] for q in QUEUES]).delete()


class Migration(migrations.Migration):
    dependencies = [("exceptions", "0002_queues_routing_comments")]

    operations = [migrations.RunPython(create_defaults, remove_defaults)]
