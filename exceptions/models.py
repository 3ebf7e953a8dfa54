from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from simple_history.models import HistoricalRecords

from exceptions.choices import (
    ACTIVE_STATUSES,
    ApprovalStatus,
    CaseKind,
    DateFormat,
    ExceptionStatus,
    ExceptionType,
    NotificationKind,
    ReasonStatus,
    Severity,
)

_ACTIVE_Q = models.Q(status__in=[str(s) for s in ACTIVE_STATUSES])


class Queue(models.Model):
    """A work queue of exceptions for one group of people (a role), with an SLA clock.

    An exception routed here is due ``sla_minutes`` after it was raised; an overdue one moves
    to ``escalation_queue`` (when set). Exactly one queue is the default: it takes every
    exception that no routing rule matches.
    """

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100, unique=True)
    group = models.CharField(max_length=64, help_text="The role (Django group) that works this queue.")
    sla_minutes = models.PositiveIntegerField(default=240)
    escalation_queue = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="escalated_from")
    position = models.PositiveIntegerField(default=0)
    is_default = models.BooleanField(default=False)
    history = HistoricalRecords()

    class Meta:
        ordering = ["position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True), name="queue_one_default"),
        ]

    def __str__(self) -> str:
        return self.name


class RoutingRule(models.Model):
    """Sends exceptions to a queue: rules are tried by ``position`` and the first match wins.

    Every criterion left blank matches anything; ``value_band`` compares the band of the
    exception's value (see ``exceptions.routing.value_band``).
    """

    position = models.PositiveIntegerField()
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="rules")
    exception_type = models.CharField(max_length=32, choices=ExceptionType.choices, blank=True, default="")
    region = models.CharField(max_length=64, blank=True, default="")
    customer_tier = models.PositiveSmallIntegerField(null=True, blank=True)
    customer_segment = models.CharField(max_length=64, blank=True, default="")
    value_band = models.CharField(max_length=8, choices=Severity.choices, blank=True, default="")
    history = HistoricalRecords()

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"#{self.position} -> {self.queue_id}"


class DecisionException(models.Model):
    """A **case**: one decision a person must make, raised by a run, by ingestion or by an integration.

    A run gives a line at most one active case (key ``case:<order>/<line>``) and a
    ship-complete order one (``case:<order>``), listing all the line's open reasons
    (:class:`CaseReason`, each created, updated and resolved by runs with its own history);
    ``type`` is the most severe open reason (it routes the case) and ``reason_types`` lists
    them all. A case whose reasons no action can change today is ``kind=information``.
    Ingestion and integration problems are cases of their own (``key`` names the condition,
    one reason: their type). At most one active case exists per key. ``version`` increases
    on every change so that a stale action can be refused (optimistic concurrency).
    ``Case`` is this model's name in new code; the table keeps its first name.
    """

    type = models.CharField(max_length=32, choices=ExceptionType.choices, db_index=True)
    kind = models.CharField(max_length=12, choices=CaseKind.choices, default=CaseKind.WORK)
    reason_types = models.JSONField(default=list, blank=True)
    key = models.CharField(max_length=300)
    status = models.CharField(max_length=20, choices=ExceptionStatus.choices, default=ExceptionStatus.OPEN)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.MEDIUM)
    message = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    # Subject: the most specific of these that apply.
    line = models.ForeignKey("allocation.OrderLine", null=True, blank=True, on_delete=models.CASCADE, related_name="exceptions")
    order = models.ForeignKey("allocation.Order", null=True, blank=True, on_delete=models.CASCADE, related_name="exceptions")
    item = models.ForeignKey("allocation.Item", null=True, blank=True, on_delete=models.CASCADE, related_name="exceptions")
    location = models.ForeignKey("allocation.Location", null=True, blank=True, on_delete=models.CASCADE, related_name="exceptions")
    source = models.CharField(max_length=64, blank=True, default="")
    # What is at stake (filled by the jeopardy service).
    jeopardy_score = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    jeopardy_band = models.CharField(max_length=8, choices=Severity.choices, default=Severity.LOW)
    jeopardy_reason = models.CharField(max_length=300, blank=True, default="")
    value = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    run_id = models.BigIntegerField(null=True, blank=True)
    raised_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_reason = models.CharField(max_length=300, blank=True, default="")
    version = models.PositiveIntegerField(default=1)
    # Routing and the SLA clock (exceptions.routing).
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.SET_NULL, related_name="exceptions")
    due_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-jeopardy_score", "raised_at"]
        indexes = [
            models.Index(fields=["status", "type"], name="exception_status_type"),
            models.Index(fields=["status", "-jeopardy_score"], name="exception_status_jeopardy"),
            models.Index(fields=["queue", "status", "-jeopardy_score"], name="exception_queue_jeopardy"),
            models.Index(fields=["queue", "status", "due_at"], name="exception_queue_due"),
            models.Index(fields=["status", "due_at"], name="exception_status_due"),
            # The queue view's sorts over active exceptions (partial: resolved ones pile up).
            models.Index(fields=["queue", "due_at"], condition=_ACTIVE_Q, name="exception_active_queue_due"),
            models.Index(fields=["queue", "-jeopardy_score"], condition=_ACTIVE_Q, name="exception_active_queue_jeop"),
            models.Index(fields=["queue", "raised_at"], condition=_ACTIVE_Q, name="exception_active_queue_age"),
            models.Index(fields=["queue", "-value"], condition=_ACTIVE_Q, name="exception_active_queue_value"),
            models.Index(fields=["queue", "jeopardy_band", "status", "due_at"], condition=_ACTIVE_Q, name="exception_active_queue_band"),
            models.Index(fields=["queue", "type", "status"], condition=_ACTIVE_Q, name="exception_active_queue_type"),
            # The API list's default sort over every queue (keyset pages: config/pagination.py).
            models.Index(fields=["-jeopardy_score", "due_at", "id"], condition=_ACTIVE_Q, name="exception_active_jeop_list"),
            # A run page's exceptions, keyset pages in raised order (run_id is no foreign key: no index of its own).
            models.Index(fields=["run_id", "raised_at", "id"], name="exception_run_raised"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["key"],
                condition=models.Q(status__in=[str(s) for s in ACTIVE_STATUSES]),
                name="exception_one_active_per_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.key}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


Case = DecisionException


class CaseReason(models.Model):
    """One reason of a case, as a run raised it (``key`` = type + subject, at most one open).

    Reasons of lines worth less than the policy's ``exception_min_value`` have no case (they
    are counted in the KPIs but reach nobody). ``information`` marks a reason that no action
    can change today (its line is short only of supply that is fixed or does not exist).
    """

    case = models.ForeignKey(DecisionException, null=True, blank=True, on_delete=models.CASCADE, related_name="reasons")
    type = models.CharField(max_length=32, choices=ExceptionType.choices)
    key = models.CharField(max_length=300)
    status = models.CharField(max_length=12, choices=ReasonStatus.choices, default=ReasonStatus.OPEN)
    message = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    information = models.BooleanField(default=False)
    line = models.ForeignKey("allocation.OrderLine", null=True, blank=True, on_delete=models.CASCADE, related_name="case_reasons")
    order = models.ForeignKey("allocation.Order", null=True, blank=True, on_delete=models.CASCADE, related_name="case_reasons")
    value = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    run_id = models.BigIntegerField(null=True, blank=True)
    raised_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_reason = models.CharField(max_length=300, blank=True, default="")
    history = HistoricalRecords()

    class Meta:
        ordering = ["raised_at", "id"]
        indexes = [
            models.Index(fields=["line", "status"], name="reason_line_status"),
            models.Index(fields=["order", "status"], name="reason_order_status"),
            models.Index(fields=["status", "type"], name="reason_status_type"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["key"], condition=models.Q(status="open"), name="reason_one_open_per_key"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.key}"


class ApprovalRequest(models.Model):
    """A request for a second person's approval of an action (four-eyes).

    Generic: the subject is any record (a policy version, an exception), ``kind`` names the
    action and ``payload`` carries what to execute once approved. The requester can never
    decide their own request.
    """

    kind = models.CharField(max_length=64, db_index=True)
    subject_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    subject_id = models.PositiveBigIntegerField()
    subject = GenericForeignKey("subject_type", "subject_id")
    status = models.CharField(max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_requests")
    request_note = models.TextField(blank=True, default="")
    payload = models.JSONField(default=dict, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="approval_decisions")
    decision_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["subject_type", "subject_id"], name="approval_subject")]
        constraints = [
            models.UniqueConstraint(
                fields=["subject_type", "subject_id", "kind"],
                condition=models.Q(status="pending"),
                name="approval_one_pending_per_subject",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"


class ExceptionComment(models.Model):
    """A note a person left on an exception (the conversation beside the actions)."""

    exception = models.ForeignKey(DecisionException, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"comment #{self.pk} on {self.exception_id}"


class SavedView(models.Model):
    """A person's named filter and sort of a queue, kept as the querystring of the queue page."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_exception_views")
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=80)
    querystring = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "queue", "name"], name="saved_view_unique_name")]

    def __str__(self) -> str:
        return self.name


class PromiseChange(models.Model):
    """A promise date a planner deferred for an order line: the record behind the outbound
    ``promise.changed`` message (order, line, promised_date, previous_promised_date, reason)."""

    line = models.ForeignKey("allocation.OrderLine", on_delete=models.CASCADE, related_name="promise_changes")
    exception = models.ForeignKey(DecisionException, null=True, blank=True, on_delete=models.SET_NULL, related_name="promise_changes")
    previous_promised_date = models.DateField(null=True, blank=True)
    promised_date = models.DateField()
    reason = models.CharField(max_length=300)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.line_id}: {self.previous_promised_date} -> {self.promised_date}"


class Notification(models.Model):
    """An in-app notification for one person (the bell): written by the service that made
    the change, in the same transaction, so it exists exactly when the change does."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    text = models.CharField(max_length=500)
    link = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The notifications page: a person's newest first (keyset pages).
            models.Index(fields=["recipient", "-created_at", "-id"], name="notification_recipient_new"),
            # The bell: a person's unread count.
            models.Index(fields=["recipient"], condition=models.Q(read_at__isnull=True), name="notification_unread"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.recipient_id}"


class UserPreference(models.Model):
    """What a person chose for the screens (date format); absent = the site defaults."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="allot_preference")
    date_format = models.CharField(max_length=16, choices=DateFormat.choices, default=DateFormat.ISO)

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"
