"""Create the role groups (config.roles) so every database has them after migrate."""
from django.db import migrations

ROLE_NAMES = ("planner", "customer_service", "policy_admin", "approver", "finance", "integration")


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLE_NAMES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
