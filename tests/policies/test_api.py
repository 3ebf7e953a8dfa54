"""Policies API: read, import, lifecycle, explain, and the persona matrix (denied requests change nothing)."""
import pytest
from django.urls import reverse

from config import roles
from exceptions.models import ApprovalRequest
from policies import services
from policies.choices import VersionStatus
from policies.models import PolicyRule, PolicyVersion, Protection, Quota

pytestmark = pytest.mark.django_db


def snapshot():
    return (
        list(PolicyVersion.objects.order_by("pk").values_list("pk", "status", "name", "approved_by_id")),
        list(PolicyRule.objects.order_by("pk").values_list("pk", "settings")),
        Protection.objects.count(), Quota.objects.count(),
        list(ApprovalRequest.objects.order_by("pk").values_list("pk", "status")),
        PolicyRule.history.count() + PolicyVersion.history.count(),
    )


def test_list_and_retrieve_and_document(api_client_for, finance, draft, spec_document):
    client = api_client_for(finance)
    listing = client.get("/api/v1/policies/")
    assert listing.status_code == 200
    assert [(v["number"], v["status"]) for v in listing.json()["results"]] == [(2, "draft"), (1, "active")]
    detail = client.get(f"/api/v1/policies/{draft.pk}/").json()
    assert (detail["name"], detail["created_by"], detail["scheduled"]) == ("default", "pia_policy", False)
    assert client.get(f"/api/v1/policies/{draft.pk}/document").json() == spec_document
    assert client.get("/api/v1/policies/9999/").status_code == 404
    assert len(client.get("/api/v1/policies/", {"status": "active"}).json()["results"]) == 1


def test_import_returns_field_errors_and_saves_nothing(api_client_for, policy_admin, spec_document):
    spec_document["rules"][1]["settings"]["strategy"] = "maybe"
    spec_document["quotas"][0].pop("period")
    before = snapshot()
    response = api_client_for(policy_admin).post("/api/v1/policies/import", spec_document, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "rules[1].settings.strategy", "message": "must be one of win, gain, redistribute, fill, lose; got 'maybe'."},
        {"field": "quotas[0].period", "message": "is required: one of day, week, month."},
    ]
    assert snapshot() == before


def test_import_then_document_round_trips(api_client_for, policy_admin, spec_document):
    client = api_client_for(policy_admin)
    created = client.post("/api/v1/policies/import", spec_document, format="json")
    assert created.status_code == 201
    assert created.json()["status"] == "draft"
    assert client.get(f"/api/v1/policies/{created.json()['id']}/document").json() == spec_document


def test_import_activate_is_for_superusers_only(api_client_for, policy_admin, django_user_model, valves_document):
    before = snapshot()
    response = api_client_for(policy_admin).post("/api/v1/policies/import?activate=true", valves_document, format="json")
    assert response.status_code == 403
    assert snapshot() == before
    root = django_user_model.objects.create_superuser("root", password="x")
    response = api_client_for(root).post("/api/v1/policies/import?activate=true", valves_document, format="json")
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["administrative_activation"]) == ("active", True)


def test_maker_checker_through_the_api(api_client_for, policy_admin, approver, draft):
    admin_client = api_client_for(policy_admin)
    submitted = admin_client.post(f"/api/v1/policies/{draft.pk}/submit", {"note": "go"}, format="json")
    assert (submitted.status_code, submitted.json()["status"]) == (200, "pending_approval")
    assert admin_client.post(f"/api/v1/policies/{draft.pk}/approve", {}, format="json").status_code == 403
    approved = api_client_for(approver).post(f"/api/v1/policies/{draft.pk}/approve", {"reason": "fine"}, format="json")
    assert approved.status_code == 200
    assert (approved.json()["status"], approved.json()["approved_by"]) == ("active", "avery_approver")
    again = api_client_for(approver).post(f"/api/v1/policies/{draft.pk}/approve", {}, format="json")
    assert again.status_code == 409


def test_self_approval_refused_through_the_api(api_client_for, db):
    from tests.fixtures.personas import make_user

    both = make_user("sam_both", roles.POLICY_ADMIN, roles.APPROVER)
    version = services.create_draft(actor=both)
    client = api_client_for(both)
    assert client.post(f"/api/v1/policies/{version.pk}/submit", {}, format="json").status_code == 200
    before = snapshot()
    response = client.post(f"/api/v1/policies/{version.pk}/approve", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, "self_approval")
    assert snapshot() == before


def test_reject_requires_a_reason(api_client_for, policy_admin, approver, draft):
    services.submit(draft, actor=policy_admin)
    client = api_client_for(approver)
    response = client.post(f"/api/v1/policies/{draft.pk}/reject", {"reason": " "}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "reason", "message": "A reason is required to reject."}]
    response = client.post(f"/api/v1/policies/{draft.pk}/reject", {"reason": "no"}, format="json")
    assert (response.status_code, response.json()["status"]) == (200, "draft")


def test_rollback_through_the_api(api_client_for, policy_admin, approver, draft):
    services.submit(draft, actor=policy_admin)
    services.approve(draft, actor=approver)
    retired = PolicyVersion.objects.get(number=1)
    client = api_client_for(policy_admin)
    response = client.post(f"/api/v1/policies/{retired.pk}/rollback", {}, format="json")
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["based_on"]) == ("draft", retired.number)
    before = snapshot()
    assert client.post(f"/api/v1/policies/{draft.pk}/rollback", {}, format="json").status_code == 409
    assert snapshot() == before


def test_explain_by_dimensions_and_by_order_line(api_client_for, finance, distributor, valves_document, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="x")
    version = services.import_document(valves_document, actor=root, activate=True)
    client = api_client_for(finance)
    body = client.get("/api/v1/policies/explain", {"customer_segment": "healthcare", "channel": "edi"}).json()
    assert body["version"] == {"id": version.pk, "number": version.number, "status": "active"}
    settings = {row["name"]: row for row in body["settings"]}
    assert settings["strategy"] == {"name": "strategy", "value": "win", "source": 1, "source_scope": {"customer_segment": "healthcare"}}
    assert settings["max_split_locations"] == {"name": "max_split_locations", "value": 2, "source": None, "source_scope": None}
    by_line = client.get("/api/v1/policies/explain", {"order": "SO-2", "line": 1}).json()
    assert by_line["dimensions"] == {
        "customer": "RET-0001", "customer_segment": "retail", "customer_tier": 4, "channel": "ecommerce",
        "order_kind": "order", "item": "VLV-0002", "item_class": "valves", "location": None, "region": "west",
    }
    assert {row["name"]: row["source"] for row in by_line["settings"]}["strategy"] == 0
    missing = client.get("/api/v1/policies/explain", {"order": "SO-404", "line": 1})
    assert (missing.status_code, missing.json()["errors"][0]["field"]) == (400, "order")
    bad = client.get("/api/v1/policies/explain", {"customer_tier": 9})
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (400, "customer_tier")


def test_history_endpoint_for_finance(api_client_for, finance, draft, policy_admin):
    services.update_rule(draft.rules.get(position=2), actor=policy_admin, scope={"channel": "ecommerce"}, settings={"strategy": "lose"})
    entries = api_client_for(finance).get(f"/api/v1/policies/{draft.pk}/history").json()
    assert entries[0]["reason"] == "rule at 2 changed"
    assert entries[0]["who"] == "pia_policy"
    assert entries[0]["changes"] == [{"field": "settings", "old": {"strategy": "fill"}, "new": {"strategy": "lose"}}]


# ---- persona matrix ------------------------------------------------------------------------

READ_STATUS = {roles.PLANNER: 200, roles.CUSTOMER_SERVICE: 200, roles.POLICY_ADMIN: 200, roles.APPROVER: 200,
               roles.FINANCE: 200, roles.INTEGRATION: 403, "outsider": 403}


@pytest.mark.parametrize("persona", list(READ_STATUS))
def test_persona_reads(persona, personas, api_client_for, draft):
    client = api_client_for(personas[persona])
    expected = READ_STATUS[persona]
    assert client.get("/api/v1/policies/").status_code == expected
    assert client.get(f"/api/v1/policies/{draft.pk}/").status_code == expected
    assert client.get(f"/api/v1/policies/{draft.pk}/history").status_code == expected
    assert client.get("/api/v1/policies/explain").status_code == expected


@pytest.mark.parametrize("persona", [p for p in READ_STATUS if p != roles.POLICY_ADMIN])
def test_only_policy_admins_import_submit_and_roll_back(persona, personas, api_client_for, draft, spec_document):
    client = api_client_for(personas[persona])
    active = PolicyVersion.objects.get(status=VersionStatus.ACTIVE)
    before = snapshot()
    assert client.post("/api/v1/policies/import", spec_document, format="json").status_code == 403
    assert client.post(f"/api/v1/policies/{draft.pk}/submit", {}, format="json").status_code == 403
    assert client.post(f"/api/v1/policies/{active.pk}/rollback", {}, format="json").status_code == 403
    assert snapshot() == before


@pytest.mark.parametrize("persona", [p for p in READ_STATUS if p != roles.APPROVER])
def test_only_approvers_approve_and_reject(persona, personas, api_client_for, draft):
    services.submit(draft, actor=personas[roles.POLICY_ADMIN])
    client = api_client_for(personas[persona])
    before = snapshot()
    assert client.post(f"/api/v1/policies/{draft.pk}/approve", {}, format="json").status_code == 403
    assert client.post(f"/api/v1/policies/{draft.pk}/reject", {"reason": "x"}, format="json").status_code == 403
    assert snapshot() == before


UI_READ = {roles.PLANNER: 200, roles.CUSTOMER_SERVICE: 200, roles.POLICY_ADMIN: 200, roles.APPROVER: 200,
           roles.FINANCE: 200, roles.INTEGRATION: 403, "outsider": 403}


@pytest.mark.parametrize("persona", list(UI_READ))
def test_persona_matrix_in_the_ui(persona, personas, client, draft):
    client.force_login(personas[persona])
    expected = UI_READ[persona]
    assert client.get(reverse("policies:policy_list")).status_code == expected
    assert client.get(reverse("policies:version_detail", args=[draft.pk])).status_code == expected
    assert client.get(reverse("policies:explain")).status_code == expected
    rule = draft.rules.get(position=1)
    before = snapshot()
    edit_status = 200 if persona == roles.POLICY_ADMIN else 403
    assert client.get(reverse("policies:entry_edit", args=[draft.pk, "rules", rule.pk])).status_code == edit_status
    if persona != roles.POLICY_ADMIN:
        assert client.post(reverse("policies:entry_edit", args=[draft.pk, "rules", rule.pk]), {"settings": "{}"}).status_code == 403
        assert client.post(reverse("policies:entry_delete", args=[draft.pk, "rules", rule.pk])).status_code == 403
        assert client.post(reverse("policies:version_submit", args=[draft.pk])).status_code == 403
        assert client.post(reverse("policies:draft_create")).status_code == 403
        assert client.post(reverse("policies:import"), {"document": "{}"}).status_code == 403
        assert snapshot() == before
    page = client.get(reverse("policies:version_detail", args=[draft.pk])).content.decode() if expected == 200 else ""
    assert ("Submit for approval" in page) == (persona == roles.POLICY_ADMIN)
    assert ("Add rule" in page) == (persona == roles.POLICY_ADMIN)


def test_finance_reads_history_on_the_version_page(client, finance, draft):
    client.force_login(finance)
    html = client.get(reverse("policies:version_detail", args=[draft.pk])).content.decode()
    assert '<section class="card" id="history">' in html
    assert "imported" in html
