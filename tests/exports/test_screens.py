"""Each list screen exports what it shows, filters applied, every page: ?export=csv (exact
content) and ?export=xlsx (read back with openpyxl: the same rows), each export recorded;
the download links carry the current filters."""
import pytest

from integrations.models import ExportRecord
from tests.exports.conftest import csv_rows, xlsx_rows

ORDER_HEADER = [
    "order", "customer", "customer_name", "tier", "channel", "requested_date", "promised_date", "lines",
    "ordered_quantity", "open_quantity", "allocated_quantity", "status", "order_credit_hold", "customer_credit_hold",
]


def test_orders_csv_has_every_filtered_row_in_list_order(client, finance, distributor):
    client.force_login(finance)
    response = client.get("/orders/", {"status": "open", "export": "csv", "cursor": "ignored"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="orders-')
    assert b"".join(response.streaming_content).startswith("\ufeff".encode())  # screens: Excel reads UTF-8
    response = client.get("/orders/", {"status": "open", "export": "csv"})
    assert csv_rows(response) == [
        ORDER_HEADER,
        ["SO-1", "HC-0001", "Mercy Memorial Hospital", "1", "b2b_contract", "2026-06-01", "", "2", "65", "65", "65",
         "open", "false", "false"],
        ["SO-2", "RET-0001", "Reno Web Shop", "4", "ecommerce", "2026-06-10", "2026-06-12", "1", "10", "10", "5",
         "open", "false", "true"],
    ]
    record = ExportRecord.objects.order_by("-id").first()
    assert (record.username, record.screen, record.path, record.format, record.via) == (
        finance.username, "orders", "/orders/", "csv", "screen")
    assert record.filters == {"status": "open"}  # export and cursor are not filters
    assert (record.status, record.row_count) == ("completed", 2)
    assert record.finished_at >= record.started_at


def test_orders_xlsx_holds_the_same_rows(client, finance, distributor):
    client.force_login(finance)
    response = client.get("/orders/", {"has_shortage": "true", "export": "xlsx"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response["Content-Disposition"].startswith('attachment; filename="orders-')
    assert xlsx_rows(response) == [
        ORDER_HEADER,
        ["SO-2", "RET-0001", "Reno Web Shop", 4, "ecommerce", "2026-06-10", "2026-06-12", 1, 10, 10, 5,
         "open", "false", "true"],
    ]
    record = ExportRecord.objects.get()
    assert (record.format, record.row_count, record.status, record.filters) == ("xlsx", 1, "completed", {"has_shortage": "true"})


def test_invalid_filters_export_nothing(client, finance, distributor):
    client.force_login(finance)
    response = client.get("/orders/", {"requested_from": "not-a-date", "export": "csv"})
    assert response.status_code == 400
    assert not response.streaming
    assert not ExportRecord.objects.exists()


def test_unknown_export_format_is_a_400(client, finance, distributor):
    client.force_login(finance)
    response = client.get("/orders/", {"export": "pdf"})
    assert response.status_code == 400
    assert not ExportRecord.objects.exists()


def test_inventory_and_supply_exports(client, planner, distributor):
    client.force_login(planner)
    assert csv_rows(client.get("/inventory/", {"short_only": "true", "export": "csv"})) == [
        ["sku", "location", "on_hand", "holds", "available", "allocated", "free", "as_of", "source"],
        ["VLV-0002", "DC-WEST-1", "5", "0", "5", "5", "0", "2026-05-31T22:00:00+00:00", ""],
    ]
    rows = csv_rows(client.get("/supply/", {"status": "received", "export": "csv"}))
    assert rows == [
        ["ref", "kind", "sku", "location", "quantity", "received_quantity", "open_quantity", "allocated_quantity",
         "eta", "confidence", "supplier", "status", "last_received_at", "last_days_late"],
        ["PO-H1", "purchase_order", "VLV-0001", "DC-EAST-1", "30", "30", "0", "0", "2026-05-20", "1", "ACME-IND",
         "received", "2026-05-23T10:00:00+00:00", "3"],
    ]


def test_order_page_exports_its_lines_and_allocations(client, customer_service, distributor):
    client.force_login(customer_service)
    assert csv_rows(client.get("/orders/SO-1/", {"export": "csv"})) == [
        ["order", "line", "sku", "quantity", "shipped_quantity", "allocated_quantity", "unit_price", "ship_from",
         "allow_substitute", "status"],
        ["SO-1", "1", "VLV-0001", "60", "0", "60", "100", "", "true", "open"],
        ["SO-1", "2", "PMP-0001", "5", "0", "5", "400", "", "false", "open"],
    ]
    response = client.get("/orders/SO-2/", {"export": "xlsx", "section": "allocations"})
    assert xlsx_rows(response) == [
        ["order", "line", "sku", "location", "quantity", "confirmed_date", "supply_ref", "state", "run"],
        ["SO-2", 1, "VLV-0002", "DC-WEST-1", 5, "2026-06-10", None, "proposed", None],
    ]
    assert list(ExportRecord.objects.order_by("id").values_list("screen", "row_count")) == [
        ("order-lines", 2), ("allocations", 1)]


def test_runs_list_and_run_sections(client, planner, export_world):
    client.force_login(planner)
    run = export_world["run"]
    rows = csv_rows(client.get("/runs/", {"status": "failed", "export": "csv"}))
    assert rows[0][:6] == ["run", "trigger", "scope", "as_of", "policy_version", "status"]
    assert len(rows) == 2 and rows[1][1:6] == ["event", "items", "2026-06-01", "", "failed"]
    assert rows[1][-1] == "'@lost"  # a formula-like error text is escaped
    rows = csv_rows(client.get(f"/runs/{run.pk}/", {"export": "csv"}))
    assert rows == [
        ["run", "rank", "order", "line", "customer", "sku", "strategy", "priority_class", "score", "shortfall",
         "projected_date", "allocations", "policy_version", "created_at"],
        [str(run.pk), "1", "SO-1", "1", "HC-0001", "VLV-0001", "fill", "1", "0.5", "0", "",
         '[{"location":"DC-EAST-1","quantity":"60"}]', "", "2026-06-01T10:00:00+00:00"],
    ]
    assert csv_rows(client.get(f"/runs/{run.pk}/", {"export": "csv", "section": "exceptions"})) == [
        ["exception", "type", "status", "severity", "order", "line", "sku", "value", "message", "raised_at"]]


def test_events_and_outbox_exports(client, finance, export_world):
    client.force_login(finance)
    rows = csv_rows(client.get("/integrations/events/", {"status": "failed", "export": "csv"}))
    assert rows[0] == ["event", "source", "event_id", "type", "entity", "status", "attempts", "occurred_at",
                       "received_at", "processed_at", "errors"]
    assert rows[1][1:] == ["erp", "e-2", "order.upserted", "'=HYPERLINK(\"x\")", "failed", "2",
                           "2026-05-31T10:00:00+00:00", "2026-05-31T11:00:00+00:00", "",
                           '[{"field":"data.number","message":"required"}]']
    assert len(rows) == 2
    assert xlsx_rows(client.get("/integrations/outbox/", {"export": "xlsx"})) == [
        ["message_id", "type", "status", "attempts", "created_at", "next_attempt_at", "sent_at", "last_error",
         "replayed_by", "replayed_at", "payload"],
        ["m-2", "promise.changed", "dead", 8, "2026-06-01T12:00:00+00:00", "2026-06-01T12:00:00+00:00", None,
         "'-1 refused", None, None, '{"line":1,"order":"SO-2"}'],
        ["m-1", "reservation.changed", "sent", 1, "2026-06-01T10:00:00+00:00", "2026-06-01T10:00:00+00:00",
         "2026-06-01T11:00:00+00:00", None, None, None, '{"line":1,"order":"SO-1"}'],
    ]


CASE_HEADER = [
    "case", "queue", "kind", "type", "reasons", "status", "severity", "jeopardy_score", "jeopardy_band", "value",
    "order", "line", "sku", "location", "assignee", "raised_at", "due_at", "resolved_at", "resolution_reason", "message",
]


def test_case_queue_exports_the_filtered_cases(client, planner, export_world):
    client.force_login(planner)
    case = export_world["case"]
    rows = csv_rows(client.get("/exceptions/queues/shortages/", {"export": "csv"}))  # default filter: active
    assert rows == [
        CASE_HEADER,
        [str(case.pk), "shortages", "work", "priority_shortage", "[]", "open", "high", "80", "low", "450", "SO-2", "1",
         "VLV-0002", "", "", "2026-06-01T09:00:00+00:00", "", "", "", "SO-2/1 short 5"],
    ]
    rows = csv_rows(client.get("/exceptions/queues/shortages/", {"status": "all", "sort": "value", "export": "csv"}))
    assert [row[0] for row in rows[1:]] == [str(case.pk), str(case.pk + 1)]
    assert rows[2][-1] == "'+ small one"
    record = ExportRecord.objects.order_by("-id").first()
    assert (record.screen, record.filters, record.row_count) == ("cases", {"status": "all", "sort": "value"}, 2)


def test_approval_inbox_export(client, approver, export_world):
    client.force_login(approver)
    from exceptions.models import ApprovalRequest

    approval = ApprovalRequest.objects.get()
    rows = csv_rows(client.get("/exceptions/approvals/", {"export": "csv"}))
    assert rows == [
        ["approval", "kind", "subject", "subject_id", "status", "requested_by", "requested_at", "request_note",
         "decided_by", "decided_at", "decision_reason"],
        [str(approval.pk), "exception.override", "decisionexception", str(export_world["case"].pk), "pending",
         "rita_requester", approval.created_at.isoformat(), "'=2+2 please", "", "", ""],
    ]


@pytest.mark.parametrize(
    ("url", "persona", "query"),
    [
        ("/orders/", "finance", "status=open"),
        ("/inventory/", "planner", "short_only=true"),
        ("/supply/", "planner", "status=open"),
        ("/runs/", "planner", "status=failed"),
        ("/integrations/events/", "finance", "status=failed"),
        ("/integrations/outbox/", "finance", "status=dead"),
        ("/exceptions/queues/shortages/", "planner", "status=all"),
        ("/exceptions/approvals/", "approver", ""),
        ("/integrations/exports/", "finance", "screen=orders"),
        ("/policies/", "policy_admin", "status=active"),
    ],
)
def test_list_screens_link_the_downloads_with_their_filters(client, personas, export_world, url, persona, query):
    client.force_login(personas[persona])
    client.get("/orders/?export=csv")  # one export record for the Exports screen to list
    page = client.get(f"{url}?{query}").content.decode()
    prefix = f"?{query}&amp;" if query else "?"
    assert f'href="{prefix}export=csv"' in page
    assert f'href="{prefix}export=xlsx"' in page


def test_order_and_run_pages_link_their_sections(client, planner, export_world):
    client.force_login(planner)
    page = client.get("/orders/SO-1/").content.decode()
    assert 'href="?export=csv"' in page and 'href="?section=allocations&amp;export=xlsx"' in page
    page = client.get(f"/runs/{export_world['run'].pk}/").content.decode()
    assert 'href="?section=decisions&amp;export=csv"' in page
    assert 'href="?section=exceptions&amp;export=csv"' not in page  # the run raised none: nothing to download


def test_policy_list_export(client, policy_admin, db):
    from policies.models import PolicyVersion

    client.force_login(policy_admin)
    active = PolicyVersion.objects.get(status="active")
    rows = csv_rows(client.get("/policies/", {"status": "active", "export": "csv"}))
    assert rows[0] == ["version", "name", "status", "effective_from", "created_by", "submitted_by", "approved_by", "note"]
    assert [row[:3] for row in rows[1:]] == [[str(active.number), active.name, "active"]]


def test_audit_trail_spec_writes_entries_with_their_changes(finance):
    """The audit trail's rows are selector entries, not a queryset: read by attribute."""
    import datetime as dt
    from decimal import Decimal
    from types import SimpleNamespace

    from django.test import RequestFactory

    from allocation.audit_export_specs import AUDIT_TRAIL
    from config import exports

    entry = SimpleNamespace(
        at=dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC), kind="override", actor="pat_planner", actor_kind="user",
        summary="Pinned 5 at DC-EAST-1", changes=[("quantity", "0", "5")], reason="=customer escalation",
        policy_number=3, order="SO-2", line=1, sku="VLV-0002", customer="RET-0001", value=Decimal("450.00"),
        run_id=None, case_id=7, approval_id=None, event_id=None, uid="history.exception:9",
    )
    request = RequestFactory().get("/audit/?kind=override&export=csv")
    request.user = finance
    rows = csv_rows(exports.export_response(request, iter([entry]), AUDIT_TRAIL))
    assert rows == [
        ["at", "kind", "actor", "actor_kind", "summary", "changes", "reason", "policy_version", "order", "line", "sku",
         "customer", "value", "run", "case", "approval", "event", "entry"],
        ["2026-06-01T10:00:00+00:00", "override", "pat_planner", "user", "Pinned 5 at DC-EAST-1", "quantity: 0 -> 5",
         "'=customer escalation", "3", "SO-2", "1", "VLV-0002", "RET-0001", "450", "", "7", "", "", "history.exception:9"],
    ]
    assert ExportRecord.objects.get().screen == "audit-trail"


def test_wave_lines_export(client, planner, distributor):
    import datetime as dt
    from decimal import Decimal

    from allocation.models import Location, OrderLine
    from allocation.models.releases import Wave, WaveLine

    client.force_login(planner)
    wave = Wave.objects.create(location=Location.objects.get(code="DC-EAST-1"), business_date=dt.date(2026, 6, 1),
                               started_at=dt.datetime(2026, 6, 1, 16, tzinfo=dt.UTC))
    for number, outcome in ((1, "released"), (2, "held")):
        WaveLine.objects.create(wave=wave, line=OrderLine.objects.get(order__number="SO-1", line=number),
                                order_number="SO-1", line_number=number, sku="VLV-0001", rank=number,
                                quantity=Decimal("5"), value=Decimal("500.0000"), outcome=outcome)
    rows = csv_rows(client.get(f"/release/waves/{wave.pk}/", {"outcome": "held", "export": "csv"}))
    assert rows == [
        ["wave", "order", "line", "sku", "rank", "quantity", "value", "outcome", "reason", "detail", "approval"],
        [str(wave.pk), "SO-1", "2", "VLV-0001", "2", "5", "500", "held", "", "", ""],
    ]
    assert 'href="?outcome=held&amp;export=csv"' in client.get(f"/release/waves/{wave.pk}/", {"outcome": "held"}).content.decode()


def test_upload_rejections_export(client, integration):
    from integrations.feeds_models import EventUpload, UploadRejection
    from integrations.models import Source

    client.force_login(integration)
    upload = EventUpload.objects.create(source=Source.objects.get(code="erp"), actor=integration, format="csv",
                                        event_type="order.upserted", filename="orders.csv", sha256="0" * 64,
                                        content=b"", status="done")
    UploadRejection.objects.create(upload=upload, row=7, event_id="o-7", field="requested_date", message="not a date")
    UploadRejection.objects.create(upload=upload, row=3, event_id="o-3", field="customer", message="=unknown customer")
    rows = csv_rows(client.get(f"/integrations/uploads/{upload.public_id}/", {"export": "csv"}))
    assert rows == [
        ["row", "event_id", "field", "reason"],
        ["3", "o-3", "customer", "'=unknown customer"],
        ["7", "o-7", "requested_date", "not a date"],
    ]
    assert 'href="?export=xlsx"' in client.get(f"/integrations/uploads/{upload.public_id}/").content.decode()
