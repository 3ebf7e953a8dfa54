"""Strict policy input (issue 8): an import or a draft edit carrying a date outside the ten-year
window, NUL or a lone surrogate, a code or name longer than its column, or a number no column
or computation can hold is refused with the field's document path — through the API, the
command, the import screen and the draft forms — and nothing is saved, so the policy list,
the explainer and the API keep answering."""
import copy
import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from policies import services
from policies.errors import PolicyValidationError
from policies.forms import ProtectionForm, RuleForm, VersionDetailsForm
from policies.models import PolicyRule, PolicyVersion, Protection, Quota
from tests.policies.conftest import SPEC_DOCUMENT

pytestmark = pytest.mark.django_db


def deep(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


def _set(path: str, value):
    """A change that puts ``value`` at ``path`` ("rules[1].scope.channel") of the document."""

    def change(document):
        target = document
        parts = path.replace("]", "").replace("[", ".").split(".")
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last = parts[-1]
        target[int(last) if last.isdigit() else last] = value

    return change


HOSTILE = [
    ("effective_from", "9999-12-31T23:59:59-05:00"),
    ("effective_from", "0001-01-01T00:00:00+05:00"),
    ("effective_from", "2099-01-01T00:00:00Z"),
    ("effective_from", "1990-01-01T00:00:00Z"),
    ("name", "night\x00shift"),
    ("name", "broken \ud800 text"),
    ("name", "n" * 201),
    ("rules[1].scope.customer_segment", "h" * 65),
    ("rules[1].scope.customer_segment", "health\x00care"),
    ("rules[2].scope.channel", "\udfff"),
    ("protections[0].sku", "S" * 65),
    ("protections[0].location", "DC\x00EAST"),
    ("protections[0].quantity", 1e20),
    ("protections[0].quantity", 100_000_000_000),
    ("protections[0].quantity", 0.0001),
    ("quotas[0].quantity", 1e20),
    ("quotas[0].item_class", "valves\ud83d"),
    ("quotas[0].item_class", "v" * 65),
    ("rules[0].settings.urgency_horizon_days", 10**30),
    ("rules[0].settings.max_split_locations", 10**9),
    ("rules[0].settings.stale_feed_minutes", 10**12),
    ("rules[0].settings.override_approval_min_value", 1e300),
    ("rules[0].settings.auto_release_max_value", 1e20),
    ("rules[3].settings.weights", {"tier": 1e300}),
    ("rules[1].settings.strategy", deep(20)),
]


def hostile_document(path, value):
    document = copy.deepcopy(SPEC_DOCUMENT)
    _set(path, value)(document)
    return document


def expected_field(path):
    return "rules[3].settings.weights.tier" if path.endswith(".weights") else path


def saved_state():
    return (
        list(PolicyVersion.objects.order_by("pk").values_list("pk", "status", "name", "effective_from")),
        PolicyRule.objects.count(), Protection.objects.count(), Quota.objects.count(),
        PolicyVersion.history.count() + PolicyRule.history.count(),
    )


def still_answering(client):
    """The list, a version, its document and the explainer answer after the refused import."""
    assert client.get("/api/v1/policies/").status_code == 200
    for version in PolicyVersion.objects.all():
        assert client.get(f"/api/v1/policies/{version.pk}/").status_code == 200
        assert client.get(f"/api/v1/policies/{version.pk}/document").status_code == 200
    assert client.get("/api/v1/policies/explain", {"channel": "ecommerce"}).status_code == 200


@pytest.mark.parametrize(("path", "value"), HOSTILE, ids=[f"{p}={str(v)[:24]!r}" for p, v in HOSTILE])
def test_api_import_refuses_and_saves_nothing(api_client_for, policy_admin, path, value):
    client = api_client_for(policy_admin)
    before = saved_state()
    response = client.post("/api/v1/policies/import", data=json.dumps(hostile_document(path, value)), content_type="application/json")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [expected_field(path)]
    assert saved_state() == before
    still_answering(client)


def test_api_import_of_the_year_9999_answers_400_and_the_screens_keep_working(api_client_for, client, policy_admin):
    api = api_client_for(policy_admin)
    response = api.post(
        "/api/v1/policies/import", data=json.dumps(hostile_document("effective_from", "9999-12-31T23:59:59-05:00")),
        content_type="application/json",
    )
    assert response.json()["errors"] == [
        {"field": "effective_from", "message": response.json()["errors"][0]["message"]}
    ]
    assert "years either side of now" in response.json()["errors"][0]["message"]
    assert PolicyVersion.objects.count() == 1  # the migration's default policy only
    client.force_login(policy_admin)
    assert client.get(reverse("policies:policy_list")).status_code == 200
    assert client.get(reverse("policies:explain")).status_code == 200


def test_a_valid_document_within_the_bounds_still_imports(api_client_for, policy_admin):
    document = hostile_document("protections[0].quantity", 99_999_999_999.999)
    document["effective_from"] = "2035-01-01T00:00:00-05:00"
    document["name"] = "n" * 200
    response = api_client_for(policy_admin).post("/api/v1/policies/import", data=json.dumps(document), content_type="application/json")
    assert response.status_code == 201


def test_api_import_body_must_be_the_document(api_client_for, policy_admin):
    client = api_client_for(policy_admin)
    before = saved_state()
    for body in ([SPEC_DOCUMENT], "default", 7, None):
        response = client.post("/api/v1/policies/import", data=json.dumps(body), content_type="application/json")
        assert response.status_code == 400
    unknown = client.post("/api/v1/policies/import", data=json.dumps({**SPEC_DOCUMENT, "activate": True}), content_type="application/json")
    assert unknown.json()["errors"][0]["field"] == "activate"
    assert saved_state() == before


@pytest.mark.parametrize(("path", "value"), HOSTILE[:8] + HOSTILE[12:13] + HOSTILE[18:19], ids=lambda v: str(v)[:24])
def test_command_import_refuses_and_saves_nothing(tmp_path, path, value):
    document_file = tmp_path / "policy.json"
    document_file.write_text(json.dumps(hostile_document(path, value)))
    before = saved_state()
    with pytest.raises(CommandError) as refused:
        call_command("policy", "import", str(document_file), stdout=StringIO())
    assert f"  {expected_field(path)}: " in str(refused.value)
    assert saved_state() == before


@pytest.mark.parametrize("text", ["[" * 100_000, "1" * 5000, b"\xff\xfe{}"], ids=["deep", "long-int", "not-utf8"])
def test_command_import_of_unparseable_files_is_a_command_error(tmp_path, text):
    document_file = tmp_path / "policy.json"
    document_file.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(CommandError):
        call_command("policy", "import", str(document_file), stdout=StringIO())


@pytest.mark.parametrize(("path", "value"), HOSTILE[:3] + HOSTILE[4:6] + HOSTILE[12:13], ids=lambda v: str(v)[:24])
def test_import_screen_refuses_and_saves_nothing(client, policy_admin, path, value):
    client.force_login(policy_admin)
    before = saved_state()
    response = client.post(reverse("policies:import"), {"document": json.dumps(hostile_document(path, value))})
    assert response.status_code == 422
    assert expected_field(path) in response.content.decode()
    assert saved_state() == before


def test_import_screen_survives_json_nested_too_deeply(client, policy_admin):
    client.force_login(policy_admin)
    response = client.post(reverse("policies:import"), {"document": "[" * 100_000})
    assert response.status_code == 422
    assert "nested more than" in response.content.decode()


# ----------------------------------------------------------------------------- draft edits


def test_draft_details_form_refuses_dates_outside_the_window():
    for value in ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "2090-01-01T00:00"):
        form = VersionDetailsForm({"name": "x", "effective_from": value, "note": ""})
        assert not form.is_valid()
        assert list(form.errors) == ["effective_from"]
    assert not VersionDetailsForm({"name": "x\x00", "effective_from": "2026-07-01T00:00"}).is_valid()


def test_draft_details_screen_refuses_year_9999_and_keeps_the_draft(client, policy_admin, draft):
    client.force_login(policy_admin)
    before = saved_state()
    response = client.post(
        reverse("policies:version_edit", args=[draft.pk]),
        {"name": "later", "effective_from": "9999-12-31T23:59:59-05:00", "note": ""},
    )
    assert response.status_code == 422
    assert saved_state() == before
    assert client.get(reverse("policies:policy_list")).status_code == 200


def test_update_version_service_refuses_dates_outside_the_window(policy_admin, draft):
    far = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    with pytest.raises(PolicyValidationError) as refused:
        services.update_version(draft, actor=policy_admin, name="x", effective_from=far)
    assert [e["field"] for e in refused.value.errors] == ["effective_from"]
    draft.refresh_from_db()
    assert draft.name == "default"


@pytest.mark.parametrize(
    ("settings_json", "field"),
    [('{"urgency_horizon_days": 1e30}', "rules[4].settings.urgency_horizon_days"),
     ('{"urgency_horizon_days": 100000000000000000000}', "rules[4].settings.urgency_horizon_days"),
     ('{"strategy": "win\\u0000"}', "rules[4].settings.strategy"),
     ('{"weights": {"tier": 1e300}}', "rules[4].settings.weights.tier")],
)
def test_rule_screen_refuses_unbounded_settings(client, policy_admin, draft, settings_json, field):
    client.force_login(policy_admin)
    before = saved_state()
    response = client.post(
        reverse("policies:entry_new", args=[draft.pk, "rules"]), {"channel": "edi", "settings": settings_json}
    )
    assert response.status_code == 422
    assert field in response.content.decode()
    assert saved_state() == before


def test_rule_form_survives_hostile_json():
    assert not RuleForm({"settings": "[" * 100_000}).is_valid()
    assert not RuleForm({"settings": '{"a": ' + "1" * 5000 + "}"}).is_valid()
    assert not RuleForm({"channel": "edi\x00"}).is_valid()
    assert not RuleForm({"channel": "e" * 65}).is_valid()


def test_protection_screen_refuses_1e20_and_long_codes(client, policy_admin, draft):
    client.force_login(policy_admin)
    before = saved_state()
    url = reverse("policies:entry_new", args=[draft.pk, "protections"])
    for data in ({"sku": "VALVE-10", "location": "DC-EAST", "quantity": "1e20", "for_scope": "{}"},
                 {"sku": "V" * 65, "location": "DC-EAST", "quantity": "1", "for_scope": "{}"},
                 {"sku": "VALVE-10", "location": "DC-EAST", "quantity": "1", "for_scope": '{"customer": "c\\u0000"}'},
                 {"sku": "VALVE-10", "location": "DC-EAST", "quantity": "1", "for_scope": '{"customer": "' + "c" * 65 + '"}'}):
        response = client.post(url, data)
        assert response.status_code == 422, data
    assert not ProtectionForm({"sku": "V", "location": "L", "quantity": "1e20", "for_scope": "{}"}).is_valid()
    assert saved_state() == before


def test_service_edits_refuse_what_the_columns_cannot_hold(policy_admin, draft):
    before = saved_state()
    with pytest.raises(PolicyValidationError) as refused:
        services.add_protection(draft, actor=policy_admin, sku="VALVE-10", location="DC-EAST", quantity=1e20, for_scope={})
    assert [e["field"] for e in refused.value.errors] == ["protections[1].quantity"]
    with pytest.raises(PolicyValidationError) as refused:
        services.add_quota(draft, actor=policy_admin, sku="S" * 65, for_scope={}, period="week", quantity=1)
    assert [e["field"] for e in refused.value.errors] == ["quotas[1].sku"]
    with pytest.raises(PolicyValidationError) as refused:
        services.add_rule(draft, actor=policy_admin, scope={"region": "west\x00"}, settings={})
    assert [e["field"] for e in refused.value.errors] == ["rules[4].scope.region"]
    assert saved_state() == before


# ----------------------------------------------------------------------------- lifecycle API


@pytest.mark.parametrize(
    ("action", "persona", "body", "field"),
    [("submit", "policy_admin", {"note": "go", "notes": "x"}, "notes"),
     ("submit", "policy_admin", {"note": "go\x00"}, "note"),
     ("submit", "policy_admin", {"note": "\ud800"}, "note"),
     ("rollback", "policy_admin", {"note": "back", "version": 1}, "version")],
)
def test_lifecycle_writes_are_strict(api_client_for, request, draft, action, persona, body, field):
    client = api_client_for(request.getfixturevalue(persona))
    before = saved_state()
    response = client.post(f"/api/v1/policies/{draft.pk}/{action}", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert saved_state() == before


@pytest.mark.parametrize("decision", ["approve", "reject"])
@pytest.mark.parametrize(("body", "field"), [({"reason": "ok", "force": True}, "force"), ({"reason": "ok\x00"}, "reason")])
def test_approve_and_reject_are_strict(api_client_for, policy_admin, approver, draft, decision, body, field):
    services.submit(draft, actor=policy_admin)
    before = saved_state()
    response = api_client_for(approver).post(f"/api/v1/policies/{draft.pk}/{decision}", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert saved_state() == before


@pytest.mark.parametrize("key", ["\ud800", "bad\x00key", "k" * 5000])
def test_hostile_unknown_keys_are_named_escaped_on_the_import_screen_and_api(client, api_client_for, policy_admin, key):
    document = {**copy.deepcopy(SPEC_DOCUMENT), key: 1}
    document["rules"][0]["settings"][key] = 1
    client.force_login(policy_admin)
    before = saved_state()
    page = client.post(reverse("policies:import"), {"document": json.dumps(document)})
    assert page.status_code == 422
    api = api_client_for(policy_admin).post("/api/v1/policies/import", data=json.dumps(document), content_type="application/json")
    assert api.status_code == 400
    fields = [e["field"] for e in api.json()["errors"]]
    assert len(fields) == 2 and fields[1].startswith("rules[0].settings.")
    assert all(len(field) <= 100 and "\x00" not in field for field in fields)
    assert saved_state() == before
