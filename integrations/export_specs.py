"""What the Events, Outbox and Exports screens (and the events API) export (``config.exports``)."""
from __future__ import annotations

from config.exports import ExportSpec, columns

EVENTS = ExportSpec(
    "events",
    columns(
        ("event", "pk"), ("source", "source__code"), ("event_id", "event_id"), ("type", "type"),
        ("entity", "entity_key"), ("status", "status"), ("attempts", "attempts"), ("occurred_at", "occurred_at"),
        ("received_at", "received_at"), ("processed_at", "processed_at"), ("errors", "errors"),
    ),
)

OUTBOX = ExportSpec(
    "outbox",
    columns(
        ("message_id", "message_id"), ("type", "type"), ("status", "status"), ("attempts", "attempts"),
        ("created_at", "created_at"), ("next_attempt_at", "next_attempt_at"), ("sent_at", "sent_at"),
        ("last_error", "last_error"), ("replayed_by", "replayed_by__username"), ("replayed_at", "replayed_at"),
        ("payload", "payload"),
    ),
)

# An upload's rejected rows (the upload page's table, by row).
UPLOAD_REJECTIONS = ExportSpec(
    "upload-rejections",
    columns(("row", "row"), ("event_id", "event_id"), ("field", "field"), ("reason", "message")),
    ordering=("row", "id"),
)

EXPORTS = ExportSpec(
    "exports",
    columns(
        ("export", "pk"), ("user", "username"), ("screen", "screen"), ("path", "path"), ("filters", "filters"),
        ("format", "format"), ("via", "via"), ("status", "status"), ("rows", "row_count"),
        ("started_at", "started_at"), ("finished_at", "finished_at"),
    ),
)
