"""Create the default global policy (active, one global rule with every default) on first migrate."""
from django.db import migrations
from django.utils import timezone

# Frozen copy of policies.schema defaults at the time of this migration.
DEFAULT_SETTINGS = {
    "strategy": "redistribute",
    "priority_class": 5,
    "weights": {"tier": 0.35, "urgency": 0.25, "margin": 0.15, "value": 0.10, "age": 0.10, "penalty": 0.05, "risk": 0.0},
    "urgency_horizon_days": 14,
    "allow_partial": True,
    "max_split_locations": 2,
    "inbound_min_confidence": 0.7,
    "allow_substitutes": True,
    "substitute_needs_approval": True,
    "auto_release_max_value": None,
    "override_approval_min_value": 10000,
    "margin_floor_pct": None,
    "stale_feed_minutes": 60,
    "stale_feed_buffer_pct": 10,
}
REASON = "default policy created by the first migrate"


def create_default_policy(apps, schema_editor):
    PolicyVersion = apps.get_model("policies", "PolicyVersion")
    PolicyRule = apps.get_model("policies", "PolicyRule")
    if PolicyVersion.objects.exists():
        return
    now = timezone.now()
    version = PolicyVersion.objects.create(
        name="default",
        number=1,
        status="active",
        effective_from=now,
        activated_at=now,
        administrative_activation=True,
        note="Created by the first migrate: the global rule with every default.",
    )
    rule = PolicyRule.objects.create(version=version, position=0, scope={}, settings=DEFAULT_SETTINGS)
    HistoricalVersion = apps.get_model("policies", "HistoricalPolicyVersion")
    HistoricalRule = apps.get_model("policies", "HistoricalPolicyRule")
    version_fields = {f.attname: getattr(version, f.attname) for f in PolicyVersion._meta.concrete_fields}
    HistoricalVersion.objects.create(
        **version_fields, history_date=now, history_type="+", history_change_reason=REASON
    )
    HistoricalRule.objects.create(
        id=rule.id, version_id=version.id, position=0, scope={}, settings=DEFAULT_SETTINGS,
        history_date=now, history_type="+", history_change_reason=REASON,
    )


class Migration(migrations.Migration):
    dependencies = [("policies", "0001_initial")]
    operations = [migrations.RunPython(create_default_policy, migrations.RunPython.noop)]
