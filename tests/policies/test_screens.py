"""Policy screens: full pages and their HTMX fragments, inline editing, maker-checker, explain, diff."""
import pytest
from django.urls import reverse

from policies import services
from policies.choices import VersionStatus
from policies.models import PolicyRule, PolicyVersion
from tests.fixtures.personas import make_user

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def login(client, user):
    client.force_login(user)
    return client


def test_policy_list_shows_number_status_and_dates(client, finance, draft):
    response = login(client, finance).get(reverse("policies:policy_list"))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-key="{draft.number}"' in html
    assert '<span class="badge active">Active</span>' in html
    assert '<span class="badge draft">Draft</span>' in html
    assert "New draft from active" not in html


def test_policy_list_fragment_filters_by_status(client, finance, draft):
    response = login(client, finance).get(reverse("policies:policy_list"), {"status": "draft"}, **HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="versions" hx-swap="outerHTML">')  # the pager swaps it whole
    assert "<html" not in html
    assert 'data-key="2"' in html and 'data-key="1"' not in html


def test_version_page_groups_rules_by_specificity_and_has_the_simulation_slot(client, policy_admin, draft):
    response = login(client, policy_admin).get(reverse("policies:version_detail", args=[draft.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index("<h3>2 dimensions</h3>") < html.index("<h3>1 dimension</h3>") < html.index("<h3>Global</h3>")
    assert '<div id="simulation">' in html
    assert "Submit for approval" in html
    assert 'id="rule-3"' in html
    assert "VALVE-10" in html and "valves" in html


def test_active_version_page_has_no_simulation_slot_and_no_edit_links(client, policy_admin):
    active = PolicyVersion.objects.get(status=VersionStatus.ACTIVE)
    html = login(client, policy_admin).get(reverse("policies:version_detail", args=[active.pk])).content.decode()
    assert 'id="simulation"' not in html
    assert "Add rule" not in html
    assert "Roll back to this version" not in html


def test_inline_rule_edit_fragment_then_save_returns_the_rules_section(client, policy_admin, draft):
    login(client, policy_admin)
    rule = draft.rules.get(position=2)
    url = reverse("policies:entry_edit", args=[draft.pk, "rules", rule.pk])
    form = client.get(url, **HTMX)
    assert form.status_code == 200
    assert form.content.decode().lstrip().startswith(f'<tr id="rules-form-{rule.pk}" class="editing">')
    saved = client.post(url, {"channel": "ecommerce", "settings": '{"strategy": "lose"}'}, **HTMX)
    assert saved.status_code == 200
    assert saved.content.decode().lstrip().startswith('<section class="card" id="rules"')
    rule.refresh_from_db()
    assert (rule.scope, rule.settings) == ({"channel": "ecommerce"}, {"strategy": "lose"})


def test_inline_rule_edit_with_an_invalid_setting_shows_the_field_in_place_and_saves_nothing(client, policy_admin, draft):
    login(client, policy_admin)
    rule = draft.rules.get(position=1)
    url = reverse("policies:entry_edit", args=[draft.pk, "rules", rule.pk])
    response = client.post(url, {"customer_segment": "healthcare", "settings": '{"strategy": "maybe", "colour": 1}'}, **HTMX)
    assert response.status_code == 422
    assert response["HX-Retarget"] == f"#rules-form-{rule.pk}"
    html = response.content.decode()
    assert "rules[1].settings.strategy: must be one of win, gain, redistribute, fill, lose; got &#x27;maybe&#x27;." in html
    assert "rules[1].settings.colour: unknown setting." in html
    rule.refresh_from_db()
    assert rule.settings == {"strategy": "win", "priority_class": 1}


def test_rule_form_reports_invalid_json(client, policy_admin, draft):
    login(client, policy_admin)
    response = client.post(reverse("policies:entry_new", args=[draft.pk, "rules"]), {"channel": "x", "settings": "{strategy"}, **HTMX)
    assert response.status_code == 422
    assert "Not valid JSON" in response.content.decode()
    assert draft.rules.count() == 4


def test_add_rule_without_javascript_redirects_to_the_version(client, policy_admin, draft):
    login(client, policy_admin)
    url = reverse("policies:entry_new", args=[draft.pk, "rules"])
    assert client.get(url).status_code == 200
    response = client.post(url, {"region": "west", "customer_tier": "2", "settings": '{"priority_class": 2}'})
    assert response.status_code == 302
    assert response["Location"] == reverse("policies:version_detail", args=[draft.pk]) + "#rules"
    added = draft.rules.get(position=4)
    assert (added.scope, added.settings) == ({"customer_tier": 2, "region": "west"}, {"priority_class": 2})


def test_full_page_fallback_shows_errors_with_422(client, policy_admin, draft):
    login(client, policy_admin)
    response = client.post(reverse("policies:entry_new", args=[draft.pk, "quotas"]), {"item_class": "pipes", "quantity": "5", "for_scope": "{}"})
    assert response.status_code == 422
    assert "quotas[1].period: is required: one of day, week, month." in response.content.decode()
    assert draft.quotas.count() == 1


def test_deleting_the_global_rule_is_refused_in_place(client, policy_admin, draft):
    login(client, policy_admin)
    rule = draft.rules.get(position=0)
    response = client.post(reverse("policies:entry_delete", args=[draft.pk, "rules", rule.pk]), **HTMX)
    assert response.status_code == 422
    assert "rules: The global rule (scope {}) is required." in response.content.decode()
    assert PolicyRule.objects.filter(pk=rule.pk).exists()


def test_protection_edit_and_delete(client, policy_admin, draft):
    login(client, policy_admin)
    protection = draft.protections.get()
    url = reverse("policies:entry_edit", args=[draft.pk, "protections", protection.pk])
    response = client.post(url, {"sku": "VALVE-10", "location": "DC-EAST", "quantity": "12.5", "for_scope": '{"customer_tier": 1}'}, **HTMX)
    assert response.status_code == 200
    protection.refresh_from_db()
    assert (str(protection.quantity), protection.for_scope) == ("12.500", {"customer_tier": 1})
    response = client.post(reverse("policies:entry_delete", args=[draft.pk, "protections", protection.pk]), **HTMX)
    assert response.status_code == 200
    assert draft.protections.count() == 0


def test_editing_a_submitted_version_is_refused(client, policy_admin, draft):
    services.submit(draft, actor=policy_admin)
    login(client, policy_admin)
    rule = draft.rules.get(position=1)
    response = client.post(reverse("policies:entry_edit", args=[draft.pk, "rules", rule.pk]), {"settings": "{}"})
    assert response.status_code == 409
    rule.refresh_from_db()
    assert rule.settings == {"strategy": "win", "priority_class": 1}


def test_maker_checker_in_the_ui(client, draft, policy_admin, approver):
    login(client, policy_admin)
    response = client.post(reverse("policies:version_submit", args=[draft.pk]), {"note": "please"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == VersionStatus.PENDING_APPROVAL
    # The submitter is no approver: the approve button is absent and the view refuses.
    page = client.get(reverse("policies:version_detail", args=[draft.pk])).content.decode()
    assert ">Approve</button>" not in page
    assert client.post(reverse("policies:version_approve", args=[draft.pk])).status_code == 403
    login(client, approver)
    page = client.get(reverse("policies:version_detail", args=[draft.pk])).content.decode()
    # The approver decides on the approval page, after the simulation (issue 10): the version links there.
    assert "Review its simulation and decide" in page
    response = client.post(reverse("policies:version_approve", args=[draft.pk]), {"reason": "ok"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert (draft.status, draft.approved_by) == (VersionStatus.ACTIVE, approver)


def test_self_approval_refused_in_the_ui(client, db):
    both = make_user("sam_both", "policy_admin", "approver")
    version = services.create_draft(actor=both)
    login(client, both)
    client.post(reverse("policies:version_submit", args=[version.pk]))
    page = client.get(reverse("policies:version_detail", args=[version.pk])).content.decode()
    assert ">Approve</button>" not in page
    assert "another approver must decide it" in page
    response = client.post(reverse("policies:version_approve", args=[version.pk]), {"reason": "me"})
    assert response.status_code == 403
    assert "You cannot decide a request you made yourself." in response.content.decode()
    version.refresh_from_db()
    assert (version.status, version.approved_by) == (VersionStatus.PENDING_APPROVAL, None)


def test_reject_needs_a_reason_and_returns_to_draft(client, draft, policy_admin, approver):
    services.submit(draft, actor=policy_admin)
    login(client, approver)
    response = client.post(reverse("policies:version_reject", args=[draft.pk]), {"reason": ""})
    assert response.status_code == 400
    draft.refresh_from_db()
    assert draft.status == VersionStatus.PENDING_APPROVAL
    response = client.post(reverse("policies:version_reject", args=[draft.pk]), {"reason": "not now"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == VersionStatus.DRAFT


def test_rollback_button_on_a_retired_version_creates_a_draft_copy(client, policy_admin, approver, draft):
    services.submit(draft, actor=policy_admin)
    services.approve(draft, actor=approver)
    retired = PolicyVersion.objects.get(number=1)
    login(client, policy_admin)
    assert "Roll back to this version" in client.get(reverse("policies:version_detail", args=[retired.pk])).content.decode()
    response = client.post(reverse("policies:version_rollback", args=[retired.pk]))
    copy = PolicyVersion.objects.get(based_on=retired)
    assert response["Location"] == reverse("policies:version_detail", args=[copy.pk])
    assert (copy.status, copy.number) == (VersionStatus.DRAFT, 3)


def test_import_screen_reports_every_error_and_saves_nothing(client, policy_admin):
    login(client, policy_admin)
    before = PolicyVersion.objects.count()
    response = client.post(reverse("policies:import"), {"document": '{"name": "x", "rules": [{"scope": {"channel": "web"}, "settings": {"priority_class": 12}}]}'})
    assert response.status_code == 422
    html = response.content.decode()
    assert "<code>rules[0].settings.priority_class</code>: must be between 1 and 9; got 12." in html
    assert "<code>rules</code>: The global rule (scope {}) is required." in html
    assert PolicyVersion.objects.count() == before


def test_import_screen_creates_a_draft_and_refuses_activation_to_non_superusers(client, policy_admin, valves_document):
    import json

    login(client, policy_admin)
    response = client.post(reverse("policies:import"), {"document": json.dumps(valves_document), "activate": "on"})
    assert response.status_code == 403
    assert PolicyVersion.objects.filter(name="valves-sample").count() == 0
    response = client.post(reverse("policies:import"), {"document": json.dumps(valves_document)})
    version = PolicyVersion.objects.get(name="valves-sample")
    assert response["Location"] == reverse("policies:version_detail", args=[version.pk])
    assert version.status == VersionStatus.DRAFT


def test_explain_from_an_order_line_shows_values_sources_and_highlights_the_rule(client, finance, distributor, policy_admin, valves_document, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="x")
    services.import_document(valves_document, actor=root, activate=True)
    login(client, finance)
    response = client.get(reverse("policies:explain"), {"order": "SO-1", "line": "1"})
    assert response.status_code == 200
    html = response.content.decode()
    assert '<tr data-setting="strategy">' in html
    strategy_row = html[html.index('<tr data-setting="strategy">'):html.index('<tr data-setting="priority_class">')]
    assert "<code>&quot;win&quot;</code>" in strategy_row
    # The source reads as the rule's scope, not its index (issue 9, plain words).
    assert '<a href="#rule-1" title="rules[1] of the policy">rule for customer_segment = healthcare</a>' in strategy_row
    assert ">rules[1]<" not in strategy_row
    assert '<tr id="rule-1" data-position="1" class="highlight">' in html
    assert 'value="HC-0001"' in html


def test_explain_fragment_for_chosen_dimensions(client, finance):
    login(client, finance)
    response = client.get(reverse("policies:explain"), {"customer_segment": "retail"}, **HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="explanation">')
    assert '<tr id="rule-0" data-position="0" class="highlight">' in html


def test_explain_unknown_order_line_names_the_field(client, finance, distributor):
    login(client, finance)
    response = client.get(reverse("policies:explain"), {"order": "SO-404", "line": "1"})
    assert response.status_code == 400
    assert "No order line SO-404/1." in response.content.decode()


def test_diff_lists_added_removed_and_changed(client, finance, draft, policy_admin):
    services.update_rule(draft.rules.get(position=1), actor=policy_admin, scope={"customer_segment": "healthcare"}, settings={"strategy": "gain", "priority_class": 1})
    copy = services.create_draft(actor=policy_admin, copy_from=draft)
    services.delete_rule(copy.rules.get(position=3), actor=policy_admin)
    services.update_rule(copy.rules.get(position=1), actor=policy_admin, scope={"customer_segment": "healthcare"}, settings={"strategy": "win", "priority_class": 1})
    services.add_rule(copy, actor=policy_admin, scope={"customer": "HOSP-1"}, settings={"priority_class": 1})
    login(client, finance)
    response = client.get(reverse("policies:version_diff"), {"a": draft.number, "b": copy.number}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert '<td><span class="badge ok">added</span></td><td>customer=HOSP-1</td>' in html
    assert '<td><span class="badge bad">removed</span></td><td>channel=ecommerce, region=west</td>' in html
    assert "<code>strategy</code>: &quot;gain&quot; → &quot;win&quot;" in html
    assert "No protection changes." in html and "No quota changes." in html


def test_history_section_shows_who_what_and_why(client, finance, draft, policy_admin):
    services.update_rule(draft.rules.get(position=2), actor=policy_admin, scope={"channel": "ecommerce"}, settings={"strategy": "lose"})
    login(client, finance)
    html = client.get(reverse("policies:version_detail", args=[draft.pk]), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="history").content.decode()
    assert html.lstrip().startswith('<section class="card" id="history">')
    assert "rule at 2 changed" in html
    assert "pia_policy" in html


def test_list_and_version_page_cost_a_fixed_number_of_queries(client, finance, policy_admin, draft, django_assert_max_num_queries):
    for index in range(5):
        services.create_draft(actor=policy_admin, name=f"extra-{index}")
        services.add_rule(draft, actor=policy_admin, scope={"customer": f"C-{index}"}, settings={"priority_class": 2})
        services.add_protection(draft, actor=policy_admin, sku=f"S-{index}", location="DC-EAST", quantity=1, for_scope={})
    login(client, finance)
    client.get(reverse("policies:policy_list"))  # warm the session and role caches
    with django_assert_max_num_queries(5):
        assert client.get(reverse("policies:policy_list")).status_code == 200
    # 13: one UNION query checks every scope value against the data (policies.scope_values).
    with django_assert_max_num_queries(13):
        assert client.get(reverse("policies:version_detail", args=[draft.pk])).status_code == 200
