from django.db import migrations, models


class Migration(migrations.Migration):
    """Runs record the planner action, approval or policy activation that asked for them."""

    dependencies = [
        ("allocation", "0007_process_tick"),
    ]

    operations = [
        migrations.AlterField(
            model_name="allocationrun",
            name="trigger",
            field=models.CharField(
                choices=[
                    ("manual", "Manual"), ("scheduled", "Scheduled"), ("event", "Event"), ("demo", "Demo"),
                    ("simulation", "Simulation"), ("override", "Planner action"), ("approval", "Approval"),
                    ("policy", "Policy activation"),
                ],
                default="manual",
                max_length=16,
            ),
        ),
    ]
