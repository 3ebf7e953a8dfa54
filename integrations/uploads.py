"""Events uploaded in the browser: a CSV file of one event type, or a JSON Lines file.

The file is stored whole (``EventUpload``) in the request, then processed in the background
after commit (``process_upload_task``: a Celery worker in production, the serving process's
background thread in the embedded default). Processing turns rows into canonical envelopes and
hands them to :func:`integrations.services.ingest` in chunks of at most
``ALLOT_MAX_BATCH_EVENTS``: the same validation, idempotency and storage as the batch API, one
``EventBatch`` (via ``file``) per chunk. Each rejected row is recorded with its row number,
field and reason (``UploadRejection``); valid rows are stored, and an invalid event is never
stored, so nothing is half-applied (an order whose one line is wrong is rejected whole, every
one of its rows named).

CSV: the header names the ``data`` fields of the event type (templates: :func:`template_csv`),
plus the optional envelope columns ``id`` and ``occurred_at``. ``order.upserted`` takes one row
per order line (the line columns ``line``, ``sku``, ``quantity``, ...); the rows of one order
``number`` make one event. An empty cell is an absent field; whole numbers and booleans
(``true``/``false``, ``yes``/``no``, ``1``/``0``) are converted, decimals stay text;
``substitutes`` is ``SKU:priority`` pairs separated by ``;``. Without ``id`` an event's id is a
hash of its content, so uploading the same file twice stores nothing twice; without
``occurred_at`` it is the upload's time.

Hostile input is refused at the edge: a file over ``ALLOT_UPLOAD_MAX_BYTES`` or
``ALLOT_UPLOAD_MAX_ROWS`` is refused before it is stored; a file that is not UTF-8 is refused
naming the line; NUL characters, unknown or repeated columns, ragged rows and overlong lines are
named per row (or for the file); codes may hold ``/`` (they are data, never paths).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.choices import BatchVia, EventType, IngestStatus
from integrations.feeds_models import EventUpload, UploadFormat, UploadRejection, UploadStatus
from integrations.models import Source
from integrations.validation import printable

TEXT, INTEGER, BOOLEAN, DECIMAL, SUBSTITUTES = "text", "integer", "boolean", "decimal", "substitutes"
ENVELOPE_COLUMNS = ("id", "occurred_at")
MESSAGE_LIMIT = 500
LINE_LIMIT = 1024 * 1024  # one JSON line or CSV field
EXAMPLE_TIME = "2026-06-01T08:00:00Z"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = TEXT
    required: bool = True
    example: str = ""


def _c(name: str, kind: str = TEXT, required: bool = True, example: str = "") -> Column:
    return Column(name, kind, required, example)


# The data fields of each event type (events-v1.md, "Types and data"), in template order.
COLUMNS: dict[str, tuple[Column, ...]] = {
    EventType.LOCATION_UPSERTED: (
        _c("code", example="DC-EAST"), _c("name", example="East DC"), _c("region", example="east"),
        _c("kind", example="warehouse"), _c("release_capacity_per_day", INTEGER, False, "400"),
        _c("cutoff_time", required=False, example="16:00"), _c("timezone", required=False, example="America/New_York"),
    ),
    EventType.ITEM_UPSERTED: (
        _c("sku", example="VALVE-10"), _c("description", example="Ball valve 10 mm"), _c("item_class", example="valves"),
        _c("uom", example="EA"), _c("unit_cost", DECIMAL, example="60.00"),
        _c("substitutes", SUBSTITUTES, False, "VALVE-12:1;VALVE-8:2"), _c("pack_size", DECIMAL, False, "1"),
    ),
    EventType.CUSTOMER_UPSERTED: (
        _c("code", example="HOSP-1"), _c("name", example="Mercy Hospital"), _c("tier", INTEGER, example="1"),
        _c("segment", example="healthcare"), _c("region", example="east"), _c("home_location", required=False, example="DC-EAST"),
        _c("sla_days", INTEGER, False, "2"), _c("late_penalty_per_day", DECIMAL, False, "50"),
        _c("credit_hold", BOOLEAN, False, "false"),
    ),
    EventType.LANE_UPSERTED: (
        _c("location", example="DC-EAST"), _c("region", example="west"), _c("transit_days", INTEGER, example="3"),
        _c("cost_per_unit", DECIMAL, example="1.25"),
    ),
    EventType.INVENTORY_SNAPSHOT: (
        _c("location", example="DC-EAST"), _c("sku", example="VALVE-10"), _c("on_hand", DECIMAL, example="120"),
        _c("quality_hold", DECIMAL, False, "0"), _c("warehouse_hold", DECIMAL, False, "0"), _c("as_of", example=EXAMPLE_TIME),
    ),
    EventType.INVENTORY_ADJUSTED: (
        _c("location", example="DC-EAST"), _c("sku", example="VALVE-10"), _c("delta", DECIMAL, example="-5"),
        _c("reason", example="cycle count"), _c("as_of", example=EXAMPLE_TIME),
    ),
    EventType.SUPPLY_UPSERTED: (
        _c("ref", example="PO-1001"), _c("kind", example="purchase_order"), _c("sku", example="VALVE-10"),
        _c("location", example="DC-EAST"), _c("quantity", DECIMAL, example="200"), _c("eta", example="2026-06-10"),
        _c("supplier", required=False, example="ACME"), _c("confidence", DECIMAL, False, "0.9"),
        _c("status", required=False, example="open"),
    ),
    EventType.SUPPLY_RECEIVED: (
        _c("ref", example="PO-1001"), _c("quantity", DECIMAL, example="200"), _c("received_at", example=EXAMPLE_TIME),
    ),
    EventType.ORDER_UPSERTED: (
        _c("number", example="SO-1001"), _c("customer", example="HOSP-1"), _c("channel", example="b2b_contract"),
        _c("created_at", example="2026-05-30T10:00:00Z"), _c("requested_date", example="2026-06-03"),
        _c("promised_date", required=False), _c("ship_complete", BOOLEAN, False, "false"),
        _c("kind", required=False, example="order"), _c("expires_at", required=False),
        # One row per order line: the line fields.
        _c("line", INTEGER, example="1"), _c("sku", example="VALVE-10"), _c("quantity", DECIMAL, example="10"),
        _c("unit_price", DECIMAL, example="100"), _c("unit_cost", DECIMAL, example="60"),
        _c("allow_substitute", BOOLEAN, False, "false"), _c("ship_from", required=False),
    ),
    EventType.ORDER_CANCELLED: (_c("number", example="SO-1001"), _c("reason", example="customer request")),
    EventType.CREDIT_HOLD_CHANGED: (
        _c("customer", required=False, example="HOSP-1"), _c("order", required=False), _c("on_hold", BOOLEAN, example="true"),
        _c("reason", example="overdue invoices"),
    ),
    EventType.SHIPMENT_CONFIRMED: (
        _c("order", example="SO-1001"), _c("line", INTEGER, example="1"), _c("location", example="DC-EAST"),
        _c("quantity", DECIMAL, example="10"), _c("shipped_at", example=EXAMPLE_TIME),
    ),
}
LINE_FIELDS = frozenset({"line", "sku", "quantity", "unit_price", "unit_cost", "allow_substitute", "ship_from"})
TRUE_WORDS = frozenset({"true", "yes", "1"})
FALSE_WORDS = frozenset({"false", "no", "0"})
WHOLE_NUMBER = re.compile(r"[+-]?\d{1,18}")


class UploadRefused(Exception):
    """The file as a whole is unacceptable (too big, wrong type); nothing was stored."""

    def __init__(self, message: str, *, field: str = "file"):
        super().__init__(message)
        self.message = message
        self.field = field


def template_csv(event_type: str) -> str:
    """The CSV template of ``event_type``: the header and one example row."""
    columns = ENVELOPE_COLUMNS + tuple(c.name for c in COLUMNS[event_type])
    examples = ("", "") + tuple(c.example for c in COLUMNS[event_type])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerow(examples)
    return out.getvalue()


# ----------------------------------------------------------------------------- storing


def create_upload(*, actor: Any, source: Source, filename: str, content: bytes, event_type: str = "") -> EventUpload:
    """Store an uploaded file and schedule its processing after commit.

    ``event_type`` names the CSV's type; empty means JSON Lines (the type is in each line).
    Raises ``UploadRefused`` for an empty or oversized file or an unknown type; nothing is stored then.
    """
    if not getattr(actor, "is_authenticated", False):
        raise PermissionError("An authenticated actor is required.")
    if not content:
        raise UploadRefused("The file is empty.")
    if len(content) > settings.ALLOT_UPLOAD_MAX_BYTES:
        raise UploadRefused(f"The file is {len(content):,} bytes; at most {settings.ALLOT_UPLOAD_MAX_BYTES:,} are accepted.")
    if event_type and event_type not in COLUMNS:
        raise UploadRefused("is not an event type", field="event_type")
    upload_format = UploadFormat.CSV if event_type else UploadFormat.JSONL
    with transaction.atomic():
        upload = EventUpload.objects.create(
            source=source, actor=actor, format=upload_format, event_type=event_type,
            filename=printable(filename or "upload")[:255], size=len(content),
            sha256=hashlib.sha256(content).hexdigest(), content=content,
        )
        transaction.on_commit(lambda: schedule_processing(upload.pk))
    return upload


def schedule_processing(upload_id: int) -> bool:
    from config import broker
    from integrations.tasks import process_upload_task

    return broker.publish(process_upload_task, args=[upload_id])


def requeue_stalled(*, now: Any = None, older_than_seconds: int = 300) -> int:
    """Publish processing again for uploads still ``queued`` after ``older_than_seconds`` (their
    wake-up was lost: broker down, or the serving process exited first). Beat calls it."""
    import datetime as dt

    now = now or timezone.now()
    stalled = list(
        EventUpload.objects.filter(status=UploadStatus.QUEUED, created_at__lt=now - dt.timedelta(seconds=older_than_seconds))
        .values_list("pk", flat=True)[:100]
    )
    for upload_id in stalled:
        schedule_processing(upload_id)
    return len(stalled)


# ----------------------------------------------------------------------------- parsing


@dataclass
class Candidate:
    """One envelope made from one or more rows (an order's lines), or a row refused before it."""

    rows: list[int]
    envelope: dict[str, Any] | None
    errors: list[dict[str, Any]] = field(default_factory=list)  # {row, field, message}
    line_rows: list[int] = field(default_factory=list)  # order.upserted: the row of each line


class FileRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _decode(content: bytes) -> str:
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as error:
        line = content.count(b"\n", 0, error.start) + 1
        raise FileRefused(
            f"The file is not UTF-8 text (byte 0x{content[error.start]:02x} on line {line}); save it as UTF-8 and upload it again."
        ) from None


def _convert(column: Column, raw: str) -> tuple[Any, str | None]:
    """The JSON value of a cell, or an error message."""
    if column.kind == INTEGER:
        return (int(raw), None) if WHOLE_NUMBER.fullmatch(raw) else (raw, None)  # validation names a non-number
    if column.kind == BOOLEAN:
        word = raw.strip().lower()
        if word in TRUE_WORDS:
            return True, None
        if word in FALSE_WORDS:
            return False, None
        return raw, None
    if column.kind == SUBSTITUTES:
        entries = []
        for index, part in enumerate(p for p in raw.split(";") if p.strip()):
            sku, sep, priority = part.strip().rpartition(":")
            if not sep or not sku or not WHOLE_NUMBER.fullmatch(priority.strip()):
                return None, f"entry {index + 1} ({printable(part.strip())[:40]}) must be SKU:priority, entries separated by ;"
            entries.append({"sku": sku, "priority": int(priority)})
        return entries, None
    return raw, None


def _content_id(event_type: str, data: dict) -> str:
    text = json.dumps([event_type, data], sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "csv-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def parse_csv(text: str, event_type: str, *, source: str, default_time: str) -> tuple[list[Candidate], int]:
    """Candidates (one per event, or per refused row) and the number of data rows."""
    columns = {c.name: c for c in COLUMNS[event_type]}
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    try:
        header = next(reader)
    except StopIteration:
        raise FileRefused("The file has no header row.") from None
    except csv.Error as error:
        raise FileRefused(f"The header row cannot be read: {error}.") from None
    header = [printable(name.strip()) for name in header]
    unknown = [name for name in header if name not in columns and name not in ENVELOPE_COLUMNS]
    if unknown:
        raise FileRefused(
            f"Unknown column{'s' if len(unknown) > 1 else ''} {', '.join(n[:64] for n in unknown[:5])} for {event_type}; "
            "download the template for the expected columns."
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise FileRefused(f"Column {', '.join(repeated)} appears more than once.")
    missing = [c.name for c in COLUMNS[event_type] if c.required and c.name not in header]
    if missing:
        raise FileRefused(f"Missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} for {event_type}.")
    limit = settings.ALLOT_UPLOAD_MAX_ROWS
    candidates: list[Candidate] = []
    orders: dict[str, Candidate] = {}
    order_fields: dict[str, dict[str, tuple[Any, int]]] = {}
    rows = 0
    while True:
        row_number = reader.line_num + 1  # rows are named by the file line they start on
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            rows += 1
            candidates.append(Candidate([row_number], None, [{"row": row_number, "field": "", "message": f"cannot be read as CSV: {error}"}]))
            continue
        if not any(cell.strip() for cell in cells):
            continue  # blank line
        rows += 1
        if rows > limit:
            raise FileRefused(f"The file has more than {limit:,} rows; split it.")
        if len(cells) != len(header):
            candidates.append(Candidate([row_number], None, [
                {"row": row_number, "field": "", "message": f"has {len(cells)} cells; the header has {len(header)}"}
            ]))
            continue
        values: dict[str, Any] = {}
        envelope_values: dict[str, str] = {}
        errors: list[dict[str, Any]] = []
        for name, raw in zip(header, cells, strict=True):
            if raw == "":
                continue
            if name in ENVELOPE_COLUMNS:
                envelope_values[name] = raw
                continue
            value, problem = _convert(columns[name], raw)
            if problem:
                errors.append({"row": row_number, "field": f"data.{name}", "message": problem})
            else:
                values[name] = value
        if event_type == EventType.ORDER_UPSERTED:
            line = {k: v for k, v in values.items() if k in LINE_FIELDS}
            head = {k: v for k, v in values.items() if k not in LINE_FIELDS}
            number = head.get("number")
            key = number if isinstance(number, str) else f"\x00row{row_number}"
            candidate = orders.get(key)
            if candidate is None:
                envelope = {
                    "id": envelope_values.get("id"), "type": event_type, "source": source,
                    "occurred_at": envelope_values.get("occurred_at") or default_time, "data": {**head, "lines": []},
                }
                candidate = orders[key] = Candidate([], envelope)
                order_fields[key] = {name: (value, row_number) for name, value in head.items()}
                candidates.append(candidate)
            else:
                seen = order_fields[key]
                for name, value in head.items():
                    if name in seen and seen[name][0] != value:
                        errors.append({
                            "row": row_number, "field": f"data.{name}",
                            "message": f"differs from row {seen[name][1]} of the same order ({printable(str(seen[name][0]))[:40]})",
                        })
                    elif name not in seen:
                        seen[name] = (value, row_number)
                        candidate.envelope["data"][name] = value  # type: ignore[index]
                for name in ENVELOPE_COLUMNS:
                    if name in envelope_values and not candidate.envelope.get(name):  # type: ignore[union-attr]
                        candidate.envelope[name] = envelope_values[name]  # type: ignore[index]
            candidate.rows.append(row_number)
            candidate.line_rows.append(row_number)
            candidate.envelope["data"]["lines"].append(line)  # type: ignore[index]
            candidate.errors.extend(errors)
            continue
        envelope = {
            "id": envelope_values.get("id"), "type": event_type, "source": source,
            "occurred_at": envelope_values.get("occurred_at") or default_time, "data": values,
        }
        candidates.append(Candidate([row_number], envelope, errors))
    for candidate in candidates:
        if candidate.envelope is not None and not candidate.envelope.get("id"):
            candidate.envelope["id"] = _content_id(event_type, candidate.envelope["data"])
    return candidates, rows


def parse_jsonl(text: str, *, source: str) -> tuple[list[Candidate], int]:
    """One candidate per non-blank line; a line that is not a JSON object is refused by itself."""
    candidates: list[Candidate] = []
    rows = 0
    limit = settings.ALLOT_UPLOAD_MAX_ROWS
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        rows += 1
        if rows > limit:
            raise FileRefused(f"The file has more than {limit:,} lines; split it.")
        if len(line) > LINE_LIMIT:
            candidates.append(Candidate([number], None, [{"row": number, "field": "", "message": f"is longer than {LINE_LIMIT:,} characters"}]))
            continue
        try:
            raw = json.loads(line)
        except (ValueError, RecursionError) as error:
            message = f"is not valid JSON: {error}" if isinstance(error, ValueError) else "is nested too deeply"
            candidates.append(Candidate([number], None, [{"row": number, "field": "", "message": printable(message)[:200]}]))
            continue
        if not isinstance(raw, dict):
            candidates.append(Candidate([number], None, [{"row": number, "field": "", "message": "must be a JSON object (one event)"}]))
            continue
        errors = []
        if "source" in raw and raw["source"] != source:
            errors.append({"row": number, "field": "source", "message": f"must be {source}, the source of this upload"})
        raw.setdefault("source", source)
        candidates.append(Candidate([number], raw, errors))
    return candidates, rows


# ----------------------------------------------------------------------------- processing


def _row_of(candidate: Candidate, field_path: str) -> int:
    """The row an error belongs to: a line's own row for ``data.lines[i]...``, else the first."""
    match = re.match(r"data\.lines\[(\d+)\]", field_path or "")
    if match and candidate.line_rows:
        index = int(match.group(1))
        if index < len(candidate.line_rows):
            return candidate.line_rows[index]
    return candidate.rows[0]


def _rejections(upload: EventUpload, candidate: Candidate, errors: list[dict[str, Any]]) -> list[UploadRejection]:
    """One rejection per error, plus one for each row of the event that has no error of its own."""
    event_id = ""
    if candidate.envelope is not None and isinstance(candidate.envelope.get("id"), str):
        event_id = printable(candidate.envelope["id"])[:200]
    found = [
        UploadRejection(
            upload=upload, row=error.get("row") or _row_of(candidate, error.get("field", "")), event_id=event_id,
            field=printable(str(error.get("field", "")))[:200], message=printable(str(error.get("message", "")))[:MESSAGE_LIMIT],
        )
        for error in errors
    ]
    named = {r.row for r in found}
    if len(candidate.rows) > 1:
        first = min(named) if named else candidate.rows[0]
        number = (candidate.envelope or {}).get("data", {}).get("number", "")
        for row in candidate.rows:
            if row not in named:
                found.append(UploadRejection(
                    upload=upload, row=row, event_id=event_id, field="",
                    message=f"not stored: order {printable(str(number))[:64]} is rejected as a whole (see row {first})",
                ))
    return found


def _chunks(candidates: list[Candidate], size: int) -> Iterator[list[Candidate]]:
    for start in range(0, len(candidates), size):
        yield candidates[start : start + size]


def process_upload(upload_id: int) -> EventUpload:
    """Parse a stored upload and ingest its events chunk by chunk, recording progress, counts and
    every rejected row. Restartable: a second call starts over (stored events become duplicates)."""
    from integrations.services import ingest

    with transaction.atomic():
        upload = EventUpload.objects.select_for_update().get(pk=upload_id)
        if upload.status == UploadStatus.DONE:
            return upload
        upload.status = UploadStatus.PROCESSING
        upload.started_at = timezone.now()
        upload.processed_rows = upload.events = upload.accepted = upload.duplicates = upload.rejected_rows = 0
        upload.batch_ids = []
        upload.error = ""
        upload.save()
        UploadRejection.objects.filter(upload=upload).delete()
    source = upload.source.code
    try:
        text = _decode(bytes(upload.content))
        if upload.format == UploadFormat.CSV:
            candidates, rows = parse_csv(text, upload.event_type, source=source, default_time=upload.created_at.isoformat())
        else:
            candidates, rows = parse_jsonl(text, source=source)
    except FileRefused as refused:
        upload.status = UploadStatus.FAILED
        upload.error = refused.message[:500]
        upload.finished_at = timezone.now()
        upload.save(update_fields=["status", "error", "finished_at"])
        return upload
    EventUpload.objects.filter(pk=upload.pk).update(total_rows=rows)
    upload.total_rows = rows
    size = settings.ALLOT_MAX_BATCH_EVENTS
    for chunk in _chunks(candidates, size):
        valid = [c for c in chunk if c.envelope is not None and not c.errors]
        with transaction.atomic():
            rejections: list[UploadRejection] = []
            for candidate in chunk:
                if candidate.envelope is None or candidate.errors:
                    rejections += _rejections(upload, candidate, candidate.errors)
            accepted = duplicates = 0
            if valid:
                result = ingest(
                    [c.envelope for c in valid], actor=upload.actor, via=BatchVia.FILE, source_hint=source,
                    allowed_sources={source},
                )
                upload.batch_ids.append(result.batch_id)
                for candidate, outcome in zip(valid, result.results, strict=True):
                    if outcome["status"] == IngestStatus.REJECTED:
                        rejections += _rejections(upload, candidate, outcome["errors"])
                    elif outcome["status"] == IngestStatus.ACCEPTED:
                        accepted += 1
                    else:
                        duplicates += 1
            UploadRejection.objects.bulk_create(rejections, batch_size=2000)
            upload.processed_rows += sum(len(c.rows) for c in chunk)
            upload.events += sum(1 for c in chunk if c.envelope is not None)
            upload.accepted += accepted
            upload.duplicates += duplicates
            upload.rejected_rows += len({r.row for r in rejections})
            upload.save(update_fields=["processed_rows", "events", "accepted", "duplicates", "rejected_rows", "batch_ids"])
    upload.status = UploadStatus.DONE
    upload.finished_at = timezone.now()
    upload.processed_rows = rows
    upload.save(update_fields=["status", "finished_at", "processed_rows"])
    return upload
