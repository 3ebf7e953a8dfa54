"""What the audit trail adds to the records it reads: role changes, and the hash chain.

The trail itself (``allocation.audit.selectors``) is read from the records the domain
already keeps (simple-history tables, the decision log, approvals, promise changes, events);
these models hold only what no other record has:

- ``RoleChange``: who gave or took which role (or created, deactivated a user), when and why,
  written by ``allocation.audit.roles`` (the one write path for roles).
- ``AuditSeal`` / ``AuditChainHead``: tamper evidence. Each sealed record of a stream (the
  decision log, each history table...) has one seal carrying the hash of the record's
  content, the hash of its predecessor in the stream and its own chain hash
  ``sha256(prev_hash || content_hash)``; the head keeps the stream's last sequence and hash,
  so a truncated tail is noticed too.
- ``AuditVerification``: each verification of the chains and its result (shown on the audit
  screen).
"""
from __future__ import annotations

from django.conf import settings
from django.db import models


class RoleChange(models.Model):
    """A change of a user's roles or standing: granted/revoked a role, created, (de)activated."""

    class Action(models.TextChoices):
        GRANTED = "granted", "Role granted"
        REVOKED = "revoked", "Role revoked"
        CREATED = "created", "User created"
        DEACTIVATED = "deactivated", "User deactivated"
        ACTIVATED = "activated", "User activated"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="role_changes")
    action = models.CharField(max_length=16, choices=Action.choices)
    role = models.CharField(max_length=64, blank=True, default="")
    before = models.JSONField(default=list, blank=True, help_text="The user's roles before.")
    after = models.JSONField(default=list, blank=True, help_text="The user's roles after.")
    reason = models.CharField(max_length=300, blank=True, default="")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="Who made the change (empty: the command line).",
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.role} for {self.user_id}"


class AuditChainHead(models.Model):
    """The end of one hash chain (a stream): its last sequence number and hash.

    ``columns`` freezes which columns of the stream's table are hashed (a column added later
    does not change the content of earlier records). ``legacy_below`` (decision stream): log
    entries below this id were written before sealing began and are sealed by the backfill.
    ``passes`` keeps the recent sealing passes of a history stream (time, highest id) so the
    sealer scans only ids above a watermark that no still-open transaction can be below.
    """

    stream = models.CharField(max_length=64, primary_key=True)
    table = models.CharField(max_length=128)
    columns = models.JSONField(default=list)
    seq = models.BigIntegerField(default=0)
    hash = models.BinaryField(max_length=32, default=bytes(32))
    legacy_below = models.BigIntegerField(null=True, blank=True)
    low_watermark = models.BigIntegerField(default=0)
    passes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.stream} @ {self.seq}"


class AuditSeal(models.Model):
    """One sealed record: its stream and sequence, the record's id, and the three hashes."""

    stream = models.CharField(max_length=64)
    seq = models.BigIntegerField()
    source_id = models.BigIntegerField()
    content_hash = models.BinaryField(max_length=32)
    prev_hash = models.BinaryField(max_length=32)
    hash = models.BinaryField(max_length=32)
    sealed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["stream", "seq"], name="audit_seal_stream_seq")]
        indexes = [models.Index(fields=["stream", "source_id"], name="audit_seal_source")]

    def __str__(self) -> str:
        return f"{self.stream}#{self.seq} ({self.source_id})"


class AuditVerification(models.Model):
    """One verification of the hash chains: when, from which date, how many seals, the result."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    since = models.DateField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    checked = models.PositiveBigIntegerField(default=0)
    problem = models.TextField(blank=True, default="", help_text="The first broken entry, named.")
    trigger = models.CharField(max_length=16, default="command")

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"verification {self.pk} ({'ok' if self.ok else 'broken'})"
