"""Data for the export tests: the read screens' distributor plus events, outbox messages, runs
with decisions, cases in a queue and an approval request, each with hand-checkable values
(and one text cell that starts like a formula)."""
import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType

UTC = dt.UTC


def at(day: str, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), tzinfo=UTC)


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def csv_rows(response) -> list[list[str]]:
    """The rows of a CSV answer (the byte order mark of a screen export removed)."""
    text = body_of(response).decode("utf-8")
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


def xlsx_rows(response) -> list[list]:
    """Every row of every sheet of an XLSX answer, read back by openpyxl (None for an empty cell)."""
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(body_of(response)), read_only=True)
    return [[cell for cell in row] for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)]


@pytest.fixture
def export_world(distributor, integration):
    """Two events (one with a formula-like entity), two outbox messages, two runs (the first
    logged SO-1/1's decision), two cases in the shortages queue and a pending approval."""
    from allocation.models import AllocationRun, LineDecisionLog, OrderLine
    from exceptions.models import ApprovalRequest, DecisionException, Queue
    from integrations.models import Event, OutboxMessage, Source

    erp = Source.objects.get(code="erp")
    Event.objects.create(source=erp, event_id="e-1", type="order.upserted", occurred_at=at("2026-05-30"),
                         data={"number": "SO-1"}, body_hash="h1", entity_key="order:SO-1", status="applied",
                         received_at=at("2026-05-30", 11))
    Event.objects.create(source=erp, event_id="e-2", type="order.upserted", occurred_at=at("2026-05-31"),
                         data={}, body_hash="h2", entity_key="=HYPERLINK(\"x\")", status="failed", attempts=2,
                         errors=[{"field": "data.number", "message": "required"}], received_at=at("2026-05-31", 11))
    OutboxMessage.objects.create(message_id="m-1", type="reservation.changed", payload={"order": "SO-1", "line": 1},
                                 status="sent", attempts=1, created_at=at("2026-06-01"), next_attempt_at=at("2026-06-01"),
                                 sent_at=at("2026-06-01", 11))
    OutboxMessage.objects.create(message_id="m-2", type="promise.changed", payload={"order": "SO-2", "line": 1},
                                 status="dead", attempts=8, created_at=at("2026-06-01", 12),
                                 next_attempt_at=at("2026-06-01", 12), last_error="-1 refused")
    first = AllocationRun.objects.create(trigger="manual", scope="full", as_of=dt.date(2026, 6, 1), status="completed",
                                         line_count=3, allocation_count=3, changed_line_count=1,
                                         timings={"total": 1.5}, started_at=at("2026-06-01"),
                                         finished_at=at("2026-06-01", 11))
    AllocationRun.objects.create(trigger="event", scope="items", as_of=dt.date(2026, 6, 1), status="failed",
                                 error="@lost", started_at=at("2026-06-01", 12))
    line = OrderLine.objects.get(order__number="SO-1", line=1)
    LineDecisionLog.objects.create(line=line, run=first, rank=1, rank_key=[], score=0.5, strategy="fill",
                                   priority_class=1, allocations=[{"location": "DC-EAST-1", "quantity": "60"}],
                                   shortfall=Decimal("0"), fingerprint="f", created_at=at("2026-06-01", 10))
    short_line = OrderLine.objects.get(order__number="SO-2", line=1)
    shortages = Queue.objects.get(code="shortages")
    common = {"queue": shortages, "type": "priority_shortage", "raised_at": at("2026-06-01", 9),
              "updated_at": at("2026-06-01", 9)}
    big = DecisionException.objects.create(key="case:SO-2/1", message="SO-2/1 short 5", line=short_line,
                                           order=short_line.order, item=short_line.item, value=Decimal("450.00"),
                                           jeopardy_score=Decimal("80.00"), severity="high", **common)
    DecisionException.objects.create(key="case:SO-1/2", message="+ small one", status="resolved",
                                     line=OrderLine.objects.get(order__number="SO-1", line=2), value=Decimal("12.50"),
                                     jeopardy_score=Decimal("5.00"), **common)
    from django.contrib.auth.models import User

    requester = User.objects.create_user("rita_requester")
    ApprovalRequest.objects.create(kind="exception.override", subject_type=ContentType.objects.get_for_model(DecisionException),
                                   subject_id=big.pk, requested_by=requester, request_note="=2+2 please")
    return {"run": first, "case": big}
