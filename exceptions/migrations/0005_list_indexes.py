"""The exceptions API list's default sort (jeopardy, then due, then id) over active exceptions of
every queue, so a keyset page is an ordered index scan with a LIMIT instead of a sort of all."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("exceptions", "0004_queue_view_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="decisionexception",
            index=models.Index(
                condition=models.Q(("status__in", ["open", "claimed", "awaiting_approval"])),
                fields=["-jeopardy_score", "due_at", "id"],
                name="exception_active_jeop_list",
            ),
        ),
    ]
