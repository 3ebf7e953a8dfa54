"""Allocation runs and what they decide: the run row, the append-only decision log, simulations.

A run is a user-visible job row (trigger, scope, as-of date, policy version, progress, counts
and timings). The decision log keeps one entry per line each time its decision changes
(its fingerprint differs from the current one), so it grows with change, not with runs;
``LineDecisionCurrent`` points at each line's latest entry so "what is decided now" is one
indexed join.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models

QTY = {"max_digits": 14, "decimal_places": 3}


class RunTrigger(models.TextChoices):
    MANUAL = "manual"
    SCHEDULED = "scheduled"
    EVENT = "event"
    DEMO = "demo"
    SIMULATION = "simulation"
    OVERRIDE = "override", "Planner action"
    APPROVAL = "approval"
    POLICY = "policy", "Policy activation"
    QUOTE_EXPIRY = "quote_expiry", "Quote expiry"


class RunScope(models.TextChoices):
    FULL = "full"
    ITEMS = "items"


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class AllocationRun(models.Model):
    """One execution of the allocation engine over all open lines or over some item groups.

    ``scope_items`` lists the SKUs an incremental run was asked for (its item groups are
    expanded when it runs and recorded in ``scope_groups_items``). Timings are seconds per
    phase (``load``, ``engine``, ``persist``, ``total``). A failed run keeps its ``error`` and
    left the previous allocations untouched. While it runs, ``heartbeat_at`` is refreshed; a run
whose heartbeat stopped (its worker died) is failed by the sweeper's reaper. Simulations (``is_simulation``) persist nothing
    but this row and their :class:`SimulationResult`. The run is itself a log, so it has no
    history table.
    """

    trigger = models.CharField(max_length=16, choices=RunTrigger.choices, default=RunTrigger.MANUAL)
    scope = models.CharField(max_length=8, choices=RunScope.choices, default=RunScope.FULL)
    scope_items = models.JSONField(default=list, blank=True, help_text="SKUs asked for (scope items).")
    scope_expanded_items = models.JSONField(
        default=list, blank=True, help_text="Every SKU of the item groups the run covered (scope items)."
    )
    as_of = models.DateField()
    policy_version = models.ForeignKey(
        "policies.PolicyVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="allocation_runs"
    )
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    phase = models.CharField(max_length=200, blank=True, default="")
    line_count = models.PositiveIntegerField(default=0)
    allocation_count = models.PositiveIntegerField(default=0)
    changed_line_count = models.PositiveIntegerField(default=0)
    exceptions_raised = models.PositiveIntegerField(default=0, help_text="New exceptions created.")
    exceptions_updated = models.PositiveIntegerField(default=0)
    exceptions_resolved = models.PositiveIntegerField(default=0)
    timings = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(
        default=list, blank=True,
        help_text="What the run skipped without failing, e.g. a factor plugin that raised or was slow (allocation.plugins).",
    )
    price_of_fairness = models.JSONField(
        default=dict, blank=True,
        help_text="Priority-weighted fill in rank mode minus the fill the run gave, in total and per strategy and class.",
    )
    degraded_feeds = models.JSONField(
        default=list, blank=True,
        help_text="Stale sources whose on-hand the run discounted by stale_feed_buffer_pct: [{source, locations}] (integrations.freshness).",
    )
    error = models.TextField(blank=True, default="")
    is_simulation = models.BooleanField(default=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="allocation_runs"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the worker executing the run (allocation.heartbeat)."
    )
    worker = models.CharField(max_length=200, blank=True, default="", help_text="Host and process executing the run.")
    db_pid = models.PositiveIntegerField(
        null=True, blank=True, help_text="PostgreSQL backend of the run's transaction (ended when the run is reaped)."
    )

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "-id"], name="run_status_id")]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="run_progress_0_100"),
        ]

    def __str__(self) -> str:
        return f"run #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (RunStatus.SUCCEEDED, RunStatus.FAILED)

    @property
    def ran_degraded(self) -> bool:
        """True when a stale feed made the run discount on-hand (see ``degraded_feeds``)."""
        return bool(self.degraded_feeds)

    def _live(self) -> tuple[str, int] | None:
        if self.status != RunStatus.RUNNING:
            return None
        from allocation.heartbeat import live_phase

        return live_phase(self.pk)

    @property
    def current_phase(self) -> str:
        """The phase now: reported live by a run executing in this process (its own row is
        only written when it commits on SQLite), else the stored one."""
        live = self._live()
        return live[0] if live is not None else self.phase

    @property
    def current_progress(self) -> int:
        live = self._live()
        return max(live[1], self.progress) if live is not None else self.progress


class LineDecisionLog(models.Model):
    """Append-only: what a run decided for one line and why, written when the decision changed.

    Holds the rank and rank key, the score with each factor's contribution, the strategy and
    priority class with the rule behind each setting, the allocations (as JSON, so the entry
    stays true after later runs rewrite them), the supply path taken, the constraints met, the
    shortfall, and the policy version. ``fingerprint`` is the engine's stable hash of the
    decision; an unchanged fingerprint writes no entry.
    """

    line = models.ForeignKey("allocation.OrderLine", on_delete=models.CASCADE, related_name="decision_logs")
    run = models.ForeignKey(AllocationRun, on_delete=models.CASCADE, related_name="decision_logs")
    rank = models.PositiveIntegerField()
    rank_key = models.JSONField(default=list)
    score = models.FloatField()
    factors = models.JSONField(default=list)
    strategy = models.CharField(max_length=16)
    priority_class = models.PositiveSmallIntegerField()
    setting_sources = models.JSONField(default=dict, blank=True)
    allocations = models.JSONField(default=list)
    path = models.JSONField(default=list, blank=True)
    constraints = models.JSONField(default=list, blank=True)
    shortfall = models.DecimalField(**QTY, default=0)
    shortfall_reasons = models.JSONField(
        default=list, blank=True, help_text="Why the line is short, as data: [{reason, quantity, ...}] (allocation.md)."
    )
    projected_date = models.DateField(
        null=True, blank=True, help_text="When open inbound would cover the shortfall; null when covered or never."
    )
    fingerprint = models.CharField(max_length=64)
    policy_version = models.ForeignKey(
        "policies.PolicyVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["line", "-id"], name="decisionlog_line_latest"),
            models.Index(fields=["run"], name="decisionlog_run"),
        ]

    def __str__(self) -> str:
        return f"decision of line {self.line_id} in run {self.run_id}"


class LineDecisionCurrent(models.Model):
    """Pointer to each line's latest decision log entry, with its fingerprint for cheap change checks."""

    line = models.OneToOneField(
        "allocation.OrderLine", primary_key=True, on_delete=models.CASCADE, related_name="current_decision"
    )
    log = models.ForeignKey(LineDecisionLog, on_delete=models.CASCADE, related_name="+")
    fingerprint = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"current decision of line {self.line_id}"


class SimulationResult(models.Model):
    """What a draft policy version would change against the active one (a simulation run's output).

    ``payload`` holds lines gaining and losing (with quantities), fill rate by customer
    segment and by channel before and after, and exceptions added and removed.
    """

    run = models.OneToOneField(AllocationRun, on_delete=models.CASCADE, related_name="simulation_result")
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"simulation of run {self.run_id}"
