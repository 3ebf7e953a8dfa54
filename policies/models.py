from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from policies.choices import QuotaPeriod, VersionStatus

QTY = {"max_digits": 14, "decimal_places": 3}


class PolicyVersion(models.Model):
    """One version of the allocation policy: its rules, protections and quotas.

    Lifecycle ``draft`` -> ``pending_approval`` -> ``active`` -> ``retired``. Only drafts are
    edited. An approved version whose ``effective_from`` is still ahead stays
    ``pending_approval`` with ``approved_at`` set (it is *scheduled*) until the beat task
    activates it. At most one version is active (partial unique index). ``based_on`` names
    the earlier version a rollback copied; ``administrative_activation`` marks a version that
    was activated by an import without approval.
    """

    name = models.CharField(max_length=200)
    number = models.PositiveIntegerField(unique=True)
    status = models.CharField(max_length=20, choices=VersionStatus.choices, default=VersionStatus.DRAFT)
    effective_from = models.DateTimeField()
    note = models.TextField(blank=True, default="")
    based_on = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="copies")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    administrative_activation = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="active"), name="policy_one_active_version"
            )
        ]

    def __str__(self) -> str:
        return f"v{self.number} {self.name}"

    @property
    def is_draft(self) -> bool:
        return self.status == VersionStatus.DRAFT

    @property
    def is_scheduled(self) -> bool:
        """Approved, waiting for its effective date."""
        return self.status == VersionStatus.PENDING_APPROVAL and self.approved_at is not None

    @property
    def awaits_decision(self) -> bool:
        return self.status == VersionStatus.PENDING_APPROVAL and self.approved_at is None


class PolicyRule(models.Model):
    """A scoped rule: the settings it gives to lines matching every dimension of ``scope``.

    ``scope`` maps dimension names (policies.schema.DIMENSIONS) to values; ``{}`` is the global
    rule. ``position`` is the rule's index in the version's document (later wins ties).
    """

    version = models.ForeignKey(PolicyVersion, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveIntegerField()
    scope = models.JSONField(default=dict, blank=True)
    settings = models.JSONField(default=dict, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["version", "position"]
        indexes = [models.Index(fields=["version", "position"], name="policy_rule_version_position")]

    def __str__(self) -> str:
        return f"rules[{self.position}] {self.scope}"


class Protection(models.Model):
    """Holds ``quantity`` of a SKU's on-hand at a location for lines matching ``for_scope``."""

    version = models.ForeignKey(PolicyVersion, on_delete=models.CASCADE, related_name="protections")
    position = models.PositiveIntegerField()
    sku = models.CharField(max_length=64)
    location = models.CharField(max_length=64)
    quantity = models.DecimalField(**QTY)
    for_scope = models.JSONField(default=dict, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["version", "position"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gte=0), name="protection_quantity_non_negative"),
        ]

    def __str__(self) -> str:
        return f"protections[{self.position}] {self.sku}@{self.location}"


class Quota(models.Model):
    """Caps what lines matching ``for_scope`` may be allocated of a SKU or item class per period."""

    version = models.ForeignKey(PolicyVersion, on_delete=models.CASCADE, related_name="quotas")
    position = models.PositiveIntegerField()
    sku = models.CharField(max_length=64, blank=True, default="")
    item_class = models.CharField(max_length=64, blank=True, default="")
    for_scope = models.JSONField(default=dict, blank=True)
    period = models.CharField(max_length=8, choices=QuotaPeriod.choices)
    quantity = models.DecimalField(**QTY)
    history = HistoricalRecords()

    class Meta:
        ordering = ["version", "position"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gte=0), name="quota_quantity_non_negative"),
            models.CheckConstraint(
                condition=(models.Q(sku="") & ~models.Q(item_class="")) | (~models.Q(sku="") & models.Q(item_class="")),
                name="quota_sku_xor_item_class",
            ),
        ]

    def __str__(self) -> str:
        return f"quotas[{self.position}] {self.sku or self.item_class}/{self.period}"
