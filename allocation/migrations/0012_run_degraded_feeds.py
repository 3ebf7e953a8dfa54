# A run records the stale feeds it discounted (integrations.freshness).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('allocation', '0011_release_waves_and_recommendations'),
    ]

    operations = [
        migrations.AddField(
            model_name='allocationrun',
            name='degraded_feeds',
            field=models.JSONField(blank=True, default=list, help_text='Stale sources whose on-hand the run discounted by stale_feed_buffer_pct: [{source, locations}] (integrations.freshness).'),
        ),
    ]
