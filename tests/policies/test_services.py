"""Lifecycle services: drafts, validation, submit/approve/reject, activation, rollback, import/export."""
import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from exceptions.choices import ApprovalStatus
from exceptions.errors import ApprovalNotAllowed, SelfApprovalRefused
from exceptions.models import ApprovalRequest
from policies import selectors, services
from policies.choices import VersionStatus
from policies.errors import PolicyPermissionError, PolicyStateError, PolicyValidationError
from policies.models import PolicyRule, PolicyVersion, Protection, Quota
from policies.resolution import Dimensions
from policies.tasks import activate_due_policy_versions_task

pytestmark = pytest.mark.django_db

HEALTHCARE = Dimensions(customer="HOSP-1", customer_segment="healthcare", customer_tier=1, channel="sales_rep",
                        item="VALVE-10", item_class="valves", location="DC-EAST", region="east")
RETAIL = Dimensions(customer="SHOP-1", customer_segment="retail", customer_tier=3, channel="ecommerce",
                    item="VALVE-10", item_class="valves", location="DC-EAST", region="east")


def counts():
    return (PolicyVersion.objects.count(), PolicyRule.objects.count(), Protection.objects.count(), Quota.objects.count())


def test_first_migrate_leaves_one_active_default_policy_with_every_default():
    version, compiled = selectors.active_compiled_policy()
    assert (version.number, version.name, version.status) == (1, "default", VersionStatus.ACTIVE)
    effective = compiled.resolve(RETAIL)
    assert effective.values["strategy"] == "redistribute"
    assert effective.values["weights"] == {"tier": 0.35, "urgency": 0.25, "margin": 0.15, "value": 0.10, "age": 0.10, "penalty": 0.05, "risk": 0.0}
    # The seeded global rule names every setting the first catalogue had; settings added since
    # (case routing, depth, execution mode) take their defaults, source None.
    from policies import schema
    assert effective.values == schema.defaults()
    assert {n for n, src in effective.sources.items() if src is None} == {
        "promise_risk_tolerance_days", "exception_min_value", "allocation_horizon_days", "freeze_days",
        "min_fill_pct", "share_mode", "factor_plugins", "execution_mode",
    }


def test_valves_document_imports_and_resolves_healthcare_to_win(policy_admin, valves_document):
    version = services.import_document(valves_document, actor=policy_admin)
    assert version.status == VersionStatus.DRAFT
    compiled = selectors.compiled_version(version)
    healthcare = compiled.resolve(HEALTHCARE)
    assert (healthcare.values["strategy"], healthcare.values["priority_class"]) == ("win", 1)
    assert (healthcare.sources["strategy"], healthcare.sources["priority_class"]) == (1, 1)
    other = compiled.resolve(RETAIL)
    assert (other.values["strategy"], other.values["priority_class"]) == ("redistribute", 5)
    assert (other.sources["strategy"], other.sources["priority_class"]) == (0, 0)


def test_import_then_export_returns_the_same_document(policy_admin, spec_document, valves_document):
    import json

    for document in (spec_document, valves_document):
        version = services.import_document(document, actor=policy_admin)
        assert selectors.export_document(version) == document
        # Same text too: keys come out in canonical order on SQLite and PostgreSQL alike.
        assert json.dumps(selectors.export_document(version)) == json.dumps(document)


def test_export_keeps_fractional_quantities(policy_admin, spec_document):
    spec_document["protections"][0]["quantity"] = 40.25
    version = services.import_document(spec_document, actor=policy_admin)
    assert selectors.export_document(version)["protections"][0]["quantity"] == 40.25


@pytest.mark.parametrize(
    "change,field",
    [
        (lambda d: d["rules"][1]["settings"].update(colour="blue"), "rules[1].settings.colour"),
        (lambda d: d["rules"][1]["settings"].update(strategy="maybe"), "rules[1].settings.strategy"),
        (lambda d: d["rules"][1]["settings"].update(priority_class=12), "rules[1].settings.priority_class"),
        (lambda d: d["rules"].pop(0), "rules"),
        (lambda d: d["quotas"][0].pop("period"), "quotas[0].period"),
    ],
)
def test_invalid_documents_are_rejected_with_the_field_and_nothing_saved(policy_admin, spec_document, change, field):
    change(spec_document)
    before = counts()
    with pytest.raises(PolicyValidationError) as error:
        services.import_document(spec_document, actor=policy_admin)
    assert [e["field"] for e in error.value.errors] == [field]
    assert counts() == before


def test_only_policy_admins_import(approver, spec_document):
    before = counts()
    with pytest.raises(PolicyPermissionError):
        services.import_document(spec_document, actor=approver)
    assert counts() == before


def test_activate_on_import_is_for_superusers_and_recorded_as_administrative(policy_admin, django_user_model, spec_document):
    with pytest.raises(PolicyPermissionError):
        services.import_document(spec_document, actor=policy_admin, activate=True)
    root = django_user_model.objects.create_superuser("root", password="x")
    version = services.import_document(spec_document, actor=root, activate=True)
    assert version.status == VersionStatus.ACTIVE
    assert version.administrative_activation is True
    assert PolicyVersion.objects.get(number=1).status == VersionStatus.RETIRED
    assert version.history.first().history_change_reason == "administrative activation on import"
    assert selectors.active_compiled_policy()[0] == version


def test_editing_a_draft_rule_records_history_with_actor_and_reason(draft, policy_admin):
    rule = draft.rules.get(position=2)
    services.update_rule(rule, actor=policy_admin, scope={"channel": "ecommerce"}, settings={"strategy": "lose"})
    rule.refresh_from_db()
    assert rule.settings == {"strategy": "lose"}
    latest = rule.history.first()
    assert (latest.history_user, latest.history_change_reason, latest.history_type) == (policy_admin, "rule at 2 changed", "~")


def test_invalid_rule_edit_names_the_field_and_saves_nothing(draft, policy_admin):
    rule = draft.rules.get(position=1)
    with pytest.raises(PolicyValidationError) as error:
        services.update_rule(rule, actor=policy_admin, scope={"customer_segment": "healthcare"}, settings={"strategy": "maybe"})
    assert error.value.errors == [{"field": "rules[1].settings.strategy", "message": "must be one of win, gain, redistribute, fill, lose; got 'maybe'."}]
    rule.refresh_from_db()
    assert rule.settings == {"strategy": "win", "priority_class": 1}


def test_the_global_rule_cannot_be_deleted_or_rescoped(draft, policy_admin):
    rule = draft.rules.get(position=0)
    with pytest.raises(PolicyValidationError) as error:
        services.delete_rule(rule, actor=policy_admin)
    assert error.value.errors == [{"field": "rules", "message": "The global rule (scope {}) is required."}]
    with pytest.raises(PolicyValidationError):
        services.update_rule(rule, actor=policy_admin, scope={"channel": "x"}, settings={})
    assert draft.rules.count() == 4


def test_deleting_a_rule_renumbers_the_later_ones(draft, policy_admin):
    services.delete_rule(draft.rules.get(position=1), actor=policy_admin)
    assert list(draft.rules.order_by("position").values_list("position", "scope")) == [
        (0, {}), (1, {"channel": "ecommerce"}), (2, {"channel": "ecommerce", "region": "west"})
    ]


def test_add_protection_and_quota_and_validation(draft, policy_admin):
    services.add_protection(draft, actor=policy_admin, sku="PIPE-1", location="DC-WEST", quantity=5, for_scope={})
    services.add_quota(draft, actor=policy_admin, sku="PIPE-1", for_scope={"channel": "ecommerce"}, period="day", quantity=7)
    with pytest.raises(PolicyValidationError) as error:
        services.add_quota(draft, actor=policy_admin, item_class="pipes", for_scope={}, period="", quantity=7)
    assert error.value.errors == [{"field": "quotas[2].period", "message": "is required: one of day, week, month."}]
    document = selectors.export_document(draft)
    assert document["protections"][1] == {"sku": "PIPE-1", "location": "DC-WEST", "quantity": 5, "for": {}}
    assert document["quotas"][1] == {"sku": "PIPE-1", "for": {"channel": "ecommerce"}, "period": "day", "quantity": 7}
    assert Quota.objects.filter(version=draft).count() == 2


def test_only_drafts_are_editable(draft, policy_admin, approver):
    services.submit(draft, actor=policy_admin)
    rule = draft.rules.get(position=1)
    with pytest.raises(PolicyStateError):
        services.update_rule(rule, actor=policy_admin, scope={}, settings={})
    with pytest.raises(PolicyStateError):
        services.add_quota(draft, actor=policy_admin, sku="X", for_scope={}, period="day", quantity=1)


def test_submit_then_approve_by_another_approver_activates_and_retires_the_previous(draft, policy_admin, approver):
    approval = services.submit(draft, actor=policy_admin, note="healthcare first")
    draft.refresh_from_db()
    assert (draft.status, draft.submitted_by, approval.kind, approval.status) == (
        VersionStatus.PENDING_APPROVAL, policy_admin, "policy_activation", ApprovalStatus.PENDING)
    version = services.approve(draft, actor=approver, reason="ok")
    assert (version.status, version.approved_by, version.administrative_activation) == (VersionStatus.ACTIVE, approver, False)
    assert PolicyVersion.objects.get(number=1).status == VersionStatus.RETIRED
    assert PolicyVersion.objects.filter(status=VersionStatus.ACTIVE).count() == 1
    assert ApprovalRequest.objects.get(pk=approval.pk).status == ApprovalStatus.APPROVED
    assert version.history.first().history_change_reason == "approved by avery_approver: ok; activated"


def test_self_approval_is_refused(draft, django_user_model):
    from tests.fixtures.personas import make_user

    both = make_user("sam_both", "policy_admin", "approver")
    services.import_document({"name": "x", "rules": [{"scope": {}, "settings": {}}]}, actor=both)
    version = PolicyVersion.objects.get(name="x")
    services.submit(version, actor=both)
    with pytest.raises(SelfApprovalRefused):
        services.approve(version, actor=both)
    version.refresh_from_db()
    assert (version.status, version.approved_at) == (VersionStatus.PENDING_APPROVAL, None)


def test_only_approvers_approve_and_only_policy_admins_submit(draft, policy_admin, finance, approver):
    with pytest.raises(PolicyPermissionError):
        services.submit(draft, actor=approver)
    services.submit(draft, actor=policy_admin)
    with pytest.raises(ApprovalNotAllowed):
        services.approve(draft, actor=finance)
    draft.refresh_from_db()
    assert draft.status == VersionStatus.PENDING_APPROVAL


def test_reject_returns_the_version_to_draft(draft, policy_admin, approver):
    services.submit(draft, actor=policy_admin)
    version = services.reject(draft, actor=approver, reason="too aggressive")
    assert version.status == VersionStatus.DRAFT
    assert version.history.first().history_change_reason == "rejected: too aggressive"
    assert selectors.active_version().number == 1


def test_future_effective_date_is_scheduled_and_the_beat_task_activates_it(draft, policy_admin, approver):
    future = timezone.now() + dt.timedelta(hours=2)
    services.update_version(draft, actor=policy_admin, name=draft.name, effective_from=future)
    services.submit(draft, actor=policy_admin)
    version = services.approve(draft, actor=approver)
    assert (version.status, version.is_scheduled) == (VersionStatus.PENDING_APPROVAL, True)
    assert activate_due_policy_versions_task() == []
    assert services.activate_due_versions(now=future + dt.timedelta(seconds=1)) == [version]
    version.refresh_from_db()
    assert version.status == VersionStatus.ACTIVE
    assert version.history.first().history_change_reason == "activated at its effective date"
    assert PolicyVersion.objects.get(number=1).status == VersionStatus.RETIRED


def test_rollback_copies_an_earlier_version_through_the_same_approval(draft, policy_admin, approver, second_approver):
    original = PolicyVersion.objects.get(number=1)
    services.submit(draft, actor=policy_admin)
    services.approve(draft, actor=approver)
    copy = services.rollback(PolicyVersion.objects.get(number=1), actor=policy_admin)
    assert (copy.status, copy.based_on, copy.number) == (VersionStatus.DRAFT, original, draft.number + 1)
    assert selectors.export_document(copy)["rules"] == selectors.export_document(original)["rules"]
    services.submit(copy, actor=policy_admin)
    services.approve(copy, actor=second_approver)
    assert selectors.active_version() == copy
    draft.refresh_from_db()
    assert draft.status == VersionStatus.RETIRED


def test_rollback_to_a_draft_or_the_active_version_is_refused(draft, policy_admin):
    before = counts()
    for version in (draft, PolicyVersion.objects.get(status=VersionStatus.ACTIVE)):
        with pytest.raises(PolicyStateError):
            services.rollback(version, actor=policy_admin)
    assert counts() == before


def test_active_compiled_policy_is_cached_per_version_and_update(policy_admin, django_assert_num_queries):
    version, compiled = selectors.active_compiled_policy()
    with django_assert_num_queries(1):
        again_version, again = selectors.active_compiled_policy()
    assert again is compiled


def test_history_lists_every_change_with_who_and_why(draft, policy_admin, approver):
    services.update_rule(draft.rules.get(position=2), actor=policy_admin, scope={"channel": "ecommerce"}, settings={"strategy": "lose"})
    services.submit(draft, actor=policy_admin)
    services.approve(draft, actor=approver, reason="fine")
    entries = selectors.version_history(draft)
    summary = [(e["kind"], e["action"], e["who"], e["reason"]) for e in entries]
    assert ("rule", "changed", "pia_policy", "rule at 2 changed") in summary
    assert ("version", "changed", "pia_policy", "submitted for approval") in summary
    assert ("version", "changed", "avery_approver", "approved by avery_approver: fine; activated") in summary
    rule_change = next(e for e in entries if e["reason"] == "rule at 2 changed")
    assert rule_change["changes"] == [{"field": "settings", "old": {"strategy": "fill"}, "new": {"strategy": "lose"}}]
    assert sum(1 for e in entries if e["action"] == "created") == 7


def test_policy_command_exports_the_active_version_and_imports_a_file(tmp_path, capsys, valves_document):
    import json

    path = tmp_path / "p.json"
    path.write_text(json.dumps(valves_document))
    call_command("policy", "import", str(path), "--activate")
    assert capsys.readouterr().out.strip() == "Imported v2 (valves-sample) as active."
    call_command("policy", "export")
    assert json.loads(capsys.readouterr().out) == valves_document
    call_command("policy", "export", "--version", "1")
    assert json.loads(capsys.readouterr().out)["name"] == "default"


def test_policy_command_import_reports_field_errors(tmp_path):
    from django.core.management.base import CommandError

    path = tmp_path / "p.json"
    path.write_text('{"name": "x", "rules": [{"scope": {}, "settings": {"strategy": "maybe"}}]}')
    before = counts()
    with pytest.raises(CommandError) as error:
        call_command("policy", "import", str(path))
    assert "rules[0].settings.strategy: must be one of win, gain, redistribute, fill, lose; got 'maybe'." in str(error.value)
    assert counts() == before


def test_delete_draft_removes_it_and_keeps_its_history(draft, policy_admin):
    pk = draft.pk
    services.delete_draft(draft, actor=policy_admin)
    assert not PolicyVersion.objects.filter(pk=pk).exists()
    assert PolicyRule.objects.filter(version_id=pk).count() == 0
    assert PolicyVersion.history.filter(id=pk, history_type="-").get().history_change_reason == "draft deleted"
    with pytest.raises(PolicyStateError):
        services.delete_draft(PolicyVersion.objects.get(number=1), actor=policy_admin)
