"""The finance screens export what they show: the audit trail (merged entries, newest first),
credit holds, overrides and approvals, policy changes."""
from exceptions.models import ApprovalRequest
from integrations.models import ExportRecord
from policies.models import PolicyVersion
from tests.exports.conftest import csv_rows, xlsx_rows

TRAIL_HEADER = ["at", "kind", "actor", "actor_kind", "summary", "changes", "reason", "policy_version", "order", "line",
                "sku", "customer", "value", "run", "case", "approval", "event", "entry"]


def test_audit_trail_exports_every_entry_the_filters_select(client, finance, export_world):
    client.force_login(finance)
    rows = csv_rows(client.get("/audit/", {"kind": "decision", "export": "csv"}))
    assert rows[0] == TRAIL_HEADER
    decisions = [row for row in rows[1:] if row[1] == "decision"]
    assert len(decisions) == len(rows) - 1 == 1
    decision = dict(zip(TRAIL_HEADER, decisions[0], strict=True))
    assert (decision["order"], decision["line"], decision["sku"], decision["run"]) == (
        "SO-1", "1", "VLV-0001", str(export_world["run"].pk))
    assert decision["at"] == "2026-06-01T10:00:00+00:00"
    record = ExportRecord.objects.get()
    assert (record.screen, record.filters, record.row_count) == ("audit-trail", {"kind": "decision"}, 1)
    page = client.get("/audit/", {"kind": "decision"}).content.decode()
    assert 'href="?kind=decision&amp;export=xlsx"' in page


def test_audit_trail_xlsx_matches_its_csv(client, finance, export_world):
    client.force_login(finance)
    as_csv = csv_rows(client.get("/audit/", {"export": "csv"}))
    as_xlsx = xlsx_rows(client.get("/audit/", {"export": "xlsx"}))
    assert len(as_xlsx) == len(as_csv) > 1
    assert [row[1] for row in as_xlsx] == [row[1] for row in as_csv]  # the kinds, in the same order


def test_credit_holds_export(client, finance, distributor):
    client.force_login(finance)
    rows = csv_rows(client.get("/audit/credit-holds/", {"export": "csv"}))
    assert rows == [
        ["order", "line", "customer", "customer_credit_hold", "order_credit_hold", "credit_hold_reason", "sku", "quantity",
         "value_at_stake", "held_quantity", "short_quantity", "projected_date"],
        ["SO-2", "1", "RET-0001", "true", "false", "Invoices over 90 days past due", "VLV-0002", "10", "900", "5", "5", ""],
    ]
    page = client.get("/audit/credit-holds/").content.decode()
    assert 'href="?export=csv"' in page


def test_overrides_and_approvals_export(client, finance, export_world):
    client.force_login(finance)
    approval = ApprovalRequest.objects.get()
    rows = csv_rows(client.get("/audit/approvals/", {"status": "pending", "export": "csv"}))
    assert [row[:6] for row in rows] == [
        ["approval", "kind", "subject", "subject_id", "status", "requested_by"],
        [str(approval.pk), "exception.override", "decisionexception", str(export_world["case"].pk), "pending", "rita_requester"],
    ]
    assert csv_rows(client.get("/audit/approvals/", {"status": "approved", "export": "csv"}))[1:] == []


def test_policy_changes_export(client, finance, db):
    client.force_login(finance)
    versions = list(PolicyVersion.objects.order_by("-number").values_list("number", "status"))
    rows = csv_rows(client.get("/audit/policy-changes/", {"export": "csv"}))
    assert [(int(row[0]), row[2]) for row in rows[1:]] == versions


def test_anonymous_gets_no_finance_export(client, export_world):
    for url in ("/audit/?export=csv", "/audit/credit-holds/?export=csv", "/audit/approvals/?export=xlsx",
                "/audit/policy-changes/?export=csv"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not ExportRecord.objects.exists()
