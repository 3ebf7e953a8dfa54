"""A run page lists the exceptions the run raised, a keyset page at a time in (raised_at, id)
order: an index on (run_id, raised_at, id) makes each page a range scan with a LIMIT
(``run_id`` is a plain column, so it had no index and every page read the whole table)."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("exceptions", "0005_list_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="decisionexception",
            index=models.Index(fields=["run_id", "raised_at", "id"], name="exception_run_raised"),
        ),
    ]
