from django.db import models


class KpiSnapshot(models.Model):
    """One KPI's value on one day (and segment, "" = the whole book): the trends' memory.

    Written by ``allocation.kpis.snapshot`` (the daily beat task). ``synthetic`` marks demo
    history backfilled by ``manage.py demo`` so nobody mistakes it for measured figures.
    """

    day = models.DateField()
    kpi = models.CharField(max_length=64)
    segment = models.CharField(max_length=100, blank=True, default="")
    value = models.FloatField(null=True, blank=True)
    extra = models.JSONField(default=dict, blank=True)
    synthetic = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kpi", "segment", "day"]
        constraints = [models.UniqueConstraint(fields=["day", "kpi", "segment"], name="kpi_snapshot_unique")]
        indexes = [models.Index(fields=["kpi", "segment", "day"], name="kpi_snapshot_series")]

    def __str__(self) -> str:
        return f"{self.kpi}[{self.segment}] {self.day}: {self.value}"
