"""Governed models (issue 13): each fit is a ``ModelVersion`` with its inputs, training rows and
backtest quality; ``SupplyEstimate`` is what the supplier reliability model says of one open supply."""
from django.db import models


class ModelStatus(models.TextChoices):
    ACTIVE = "active"  # its outputs are used
    FALLBACK = "fallback"  # no data or below the minimum quality: the rule stands


class ModelVersion(models.Model):
    """One training of one model: what it learnt from and how well it did on held-out history."""

    name = models.CharField(max_length=64, db_index=True)
    version = models.PositiveIntegerField()
    inputs = models.JSONField(default=list, help_text="The data and features the model uses.")
    params = models.JSONField(default=dict, blank=True, help_text="Hyper-parameters and thresholds.")
    trained_at = models.DateTimeField()
    as_of = models.DateField(help_text="The business date it was trained at.")
    training_rows = models.PositiveIntegerField(default=0)
    holdout_rows = models.PositiveIntegerField(default=0)
    quality = models.JSONField(default=dict, blank=True, help_text="Backtest figures on held-out history.")
    status = models.CharField(max_length=12, choices=ModelStatus.choices)
    reason = models.CharField(max_length=300, help_text="Why it is active or why it fell back.")
    fit_seconds = models.FloatField(default=0)
    trained_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["name", "-version"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="model_version_unique")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version} ({self.status})"


class SupplyEstimate(models.Model):
    """The reliability model's view of one open supply, and which confidence ATP uses."""

    supply = models.OneToOneField("allocation.Supply", on_delete=models.CASCADE, related_name="estimate")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="estimates")
    on_time_probability = models.FloatField(null=True, blank=True)
    mean_days_late = models.FloatField(null=True, blank=True)
    p90_days_late = models.FloatField(null=True, blank=True)
    receipts = models.PositiveIntegerField(default=0, help_text="Receipts at the level the estimate comes from.")
    level = models.CharField(max_length=32, blank=True, default="", help_text="supplier+location+kind | supplier | kind | none")
    confidence_used = models.FloatField(help_text="The confidence allocation runs count this supply with.")
    confidence_source = models.CharField(max_length=16, help_text="model | sent")
    note = models.CharField(max_length=300, blank=True, default="")
    updated_at = models.DateTimeField()
