"""Release to execution: waves, what each released or held back, every release made, and
accepted recommendations.

A :class:`Wave` is one release run for one location on one business date (allocation.releases).
Its :class:`WaveLine` rows say, per line considered, what happened and why. A
:class:`LineRelease` is written for every release to the warehouse, in a wave or not (the
planner's release of one line, an approved release); the lines released at a location on a
business date are what its daily capacity counts, so capacity survives shipments that consume
the allocations. :class:`AcceptedRecommendation` is the audit of a planner accepting what a run
recommended in an ``execution_mode: recommend`` scope. All are logs: written once, never
edited (the wave row's status and counts aside), so none has a history table.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models

from allocation.choices import HoldReason, WaveOutcome, WaveStatus, WaveTrigger

QTY = {"max_digits": 14, "decimal_places": 3}


class Wave(models.Model):
    """One release run at one location: what it considered, released and held back, who started it.

    ``business_date`` is the location's business date (its own time zone, or the pinned
    ``ALLOT_BUSINESS_DATE``); ``cutoff_at`` the location's cutoff on that date (null without a
    cutoff). ``capacity`` is the location's lines per day when the wave ran (null: unlimited) and
    ``used_before`` the lines already released that day before it. A partial unique constraint
    allows one running wave per location: a second planner starting one at the same time is
    told (``allocation.errors.WaveAlreadyRunning``), on every database.
    """

    location = models.ForeignKey("allocation.Location", on_delete=models.PROTECT, related_name="waves")
    business_date = models.DateField()
    cutoff_at = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=16, choices=WaveTrigger.choices, default=WaveTrigger.PLANNER)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="release_waves"
    )
    status = models.CharField(max_length=16, choices=WaveStatus.choices, default=WaveStatus.RUNNING)
    capacity = models.PositiveIntegerField(null=True, blank=True)
    used_before = models.PositiveIntegerField(default=0)
    considered_count = models.PositiveIntegerField(default=0)
    released_count = models.PositiveIntegerField(default=0)
    held_count = models.PositiveIntegerField(default=0)
    approval_count = models.PositiveIntegerField(default=0)
    released_quantity = models.DecimalField(**QTY, default=0)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["location", "business_date"], name="wave_location_date")]
        constraints = [
            models.UniqueConstraint(
                fields=["location"], condition=models.Q(status="running"), name="wave_one_running_per_location"
            ),
        ]

    def __str__(self) -> str:
        return f"wave #{self.pk} at {self.location_id} ({self.status})"

    @property
    def started_by_label(self) -> str:
        if self.trigger == WaveTrigger.SCHEDULE:
            return "schedule"
        return self.started_by.get_username() if self.started_by_id else self.get_trigger_display()


class WaveLine(models.Model):
    """One line a wave considered: released, held back (with the reason), or sent for approval."""

    wave = models.ForeignKey(Wave, on_delete=models.CASCADE, related_name="lines")
    line = models.ForeignKey("allocation.OrderLine", on_delete=models.CASCADE, related_name="+")
    order_number = models.CharField(max_length=64)
    line_number = models.PositiveIntegerField()
    sku = models.CharField(max_length=64)
    rank = models.PositiveIntegerField(null=True, blank=True)
    quantity = models.DecimalField(**QTY)
    value = models.DecimalField(max_digits=18, decimal_places=4, default=0)
    outcome = models.CharField(max_length=16, choices=WaveOutcome.choices)
    reason = models.CharField(max_length=32, choices=HoldReason.choices, blank=True, default="")
    detail = models.CharField(max_length=300, blank=True, default="")
    approval = models.ForeignKey(
        "exceptions.ApprovalRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["wave", "id"]
        indexes = [models.Index(fields=["wave", "outcome"], name="waveline_wave_outcome")]

    def __str__(self) -> str:
        return f"{self.order_number}/{self.line_number} in wave {self.wave_id}: {self.outcome}"


class LineRelease(models.Model):
    """A line's allocations at a location released to the warehouse (never taken back).

    ``wave`` is null for a release outside a wave. ``business_date`` is the location's
    business date at the release: a location's capacity counts the distinct lines released
    there on a date.
    """

    line = models.ForeignKey("allocation.OrderLine", on_delete=models.CASCADE, related_name="releases")
    location = models.ForeignKey("allocation.Location", on_delete=models.PROTECT, related_name="+")
    quantity = models.DecimalField(**QTY)
    business_date = models.DateField()
    wave = models.ForeignKey(Wave, null=True, blank=True, on_delete=models.SET_NULL, related_name="releases")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    released_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["location", "business_date"], name="release_location_date")]

    def __str__(self) -> str:
        return f"release of line {self.line_id} at {self.location_id} on {self.business_date}"


class AcceptedRecommendation(models.Model):
    """A planner accepted what a run recommended for a line: the recommended allocations
    (as JSON, as they were) became reservations and were published."""

    line = models.ForeignKey("allocation.OrderLine", on_delete=models.CASCADE, related_name="accepted_recommendations")
    run_id = models.BigIntegerField(null=True, blank=True, help_text="The run that made the newest accepted allocation.")
    allocations = models.JSONField(default=list)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=300, blank=True, default="")
    accepted_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"recommendation of line {self.line_id} accepted"
