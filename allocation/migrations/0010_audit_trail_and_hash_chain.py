# The audit trail's own records: role changes, hash-chain seals and heads, verifications.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('allocation', '0009_depth_pack_size_quotes_run_outputs'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The audit trail reads the decision log newest first (allocation.audit.selectors); the
        # model's Meta is not changed, so no later migration drops it.
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS decisionlog_created ON allocation_linedecisionlog (created_at, id)",
            "DROP INDEX IF EXISTS decisionlog_created",
        ),
        migrations.CreateModel(
            name='AuditChainHead',
            fields=[
                ('stream', models.CharField(max_length=64, primary_key=True, serialize=False)),
                ('table', models.CharField(max_length=128)),
                ('columns', models.JSONField(default=list)),
                ('seq', models.BigIntegerField(default=0)),
                ('hash', models.BinaryField(default=bytes(32), max_length=32)),
                ('legacy_below', models.BigIntegerField(blank=True, null=True)),
                ('low_watermark', models.BigIntegerField(default=0)),
                ('passes', models.JSONField(blank=True, default=list)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.CreateModel(
            name='AuditVerification',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('started_at', models.DateTimeField()),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('since', models.DateField(blank=True, null=True)),
                ('ok', models.BooleanField(default=False)),
                ('checked', models.PositiveBigIntegerField(default=0)),
                ('problem', models.TextField(blank=True, default='', help_text='The first broken entry, named.')),
                ('trigger', models.CharField(default='command', max_length=16)),
            ],
            options={
                'ordering': ['-started_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='AuditSeal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('stream', models.CharField(max_length=64)),
                ('seq', models.BigIntegerField()),
                ('source_id', models.BigIntegerField()),
                ('content_hash', models.BinaryField(max_length=32)),
                ('prev_hash', models.BinaryField(max_length=32)),
                ('hash', models.BinaryField(max_length=32)),
                ('sealed_at', models.DateTimeField()),
            ],
            options={
                'indexes': [models.Index(fields=['stream', 'source_id'], name='audit_seal_source')],
                'constraints': [models.UniqueConstraint(fields=('stream', 'seq'), name='audit_seal_stream_seq')],
            },
        ),
        migrations.CreateModel(
            name='RoleChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('action', models.CharField(choices=[('granted', 'Role granted'), ('revoked', 'Role revoked'), ('created', 'User created'), ('deactivated', 'User deactivated'), ('activated', 'User activated')], max_length=16)),
                ('role', models.CharField(blank=True, default='', max_length=64)),
                ('before', models.JSONField(blank=True, default=list, help_text="The user's roles before.")),
                ('after', models.JSONField(blank=True, default=list, help_text="The user's roles after.")),
                ('reason', models.CharField(blank=True, default='', max_length=300)),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('actor', models.ForeignKey(blank=True, help_text='Who made the change (empty: the command line).', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='role_changes', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
    ]
