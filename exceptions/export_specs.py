"""What the exception (case) queues, the approvals inbox and their API lists export (``config.exports``)."""
from __future__ import annotations

from config.exports import ExportSpec, columns

CASES = ExportSpec(
    "cases",
    columns(
        ("case", "pk"), ("queue", "queue__code"), ("kind", "kind"), ("type", "type"), ("reasons", "reason_types"),
        ("status", "status"), ("severity", "severity"),
        ("jeopardy_score", "jeopardy_score"), ("jeopardy_band", "jeopardy_band"), ("value", "value"),
        ("order", "order__number"), ("line", "line__line"), ("sku", "item__sku"), ("location", "location__code"),
        ("assignee", "assignee__username"), ("raised_at", "raised_at"), ("due_at", "due_at"),
        ("resolved_at", "resolved_at"), ("resolution_reason", "resolution_reason"), ("message", "message"),
    ),
)

APPROVALS = ExportSpec(
    "approvals",
    columns(
        ("approval", "pk"), ("kind", "kind"), ("subject", "subject_type__model"), ("subject_id", "subject_id"),
        ("status", "status"), ("requested_by", "requested_by__username"), ("requested_at", "created_at"),
        ("request_note", "request_note"), ("decided_by", "decided_by__username"), ("decided_at", "decided_at"),
        ("decision_reason", "decision_reason"),
    ),
)
