"""Indexes behind the keyset pagination of the order and supply lists (config/pagination.py):
each list's ordering, so a page is an index range scan with a LIMIT."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("allocation", "0004_run_policy_version"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["requested_date", "number"], name="order_requested_number"),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["status", "requested_date", "number"], name="order_status_requested_no"),
        ),
        # (status, requested_date) is a prefix of the index above.
        migrations.RemoveIndex(model_name="order", name="order_status_requested"),
        migrations.AddIndex(
            model_name="supply",
            index=models.Index(fields=["eta", "ref"], name="supply_eta_ref"),
        ),
    ]
