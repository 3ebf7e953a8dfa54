"""Free text on the HTML forms (and the filter forms the API shares) is checked once, by
``config.forms.StorableTextForm``: NUL and unpaired surrogates are an error on their field,
never a 500 while storing, comparing or echoing them (issue 8).

A lone surrogate cannot be sent as UTF-8; it arrives in a body or query string declared
``charset=utf-7`` (``+2AA-`` decodes to U+D800), which Django accepts for multipart forms and
for the query string.
"""
from __future__ import annotations

import copy

import pytest
from django import forms
from django.http import QueryDict
from django.urls import reverse

from allocation.models import AllocationRun, Item
from config import roles
from config.forms import StorableTextForm
from policies import services
from policies.choices import VersionStatus
from policies.models import PolicyVersion
from tests.fixtures.personas import make_user
from tests.policies.conftest import SPEC_DOCUMENT

pytestmark = pytest.mark.django_db
SURROGATE_ERROR = "Must not contain unpaired surrogate characters (invalid Unicode)."
UTF7_QUERY = {"CONTENT_TYPE": "text/plain; charset=utf-7"}


def utf7_multipart(client, url: str, fields: dict[str, str]):
    body = b"".join(
        b'--B\r\nContent-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n' + value.encode("utf-7") + b"\r\n"
        for name, value in fields.items()
    ) + b"--B--\r\n"
    return client.generic("POST", url, body, content_type="multipart/form-data; boundary=B; charset=utf-7")


class Sample(StorableTextForm):
    note = forms.CharField(max_length=50)
    kind = forms.ChoiceField(choices=[("a", "A")])
    tags = forms.MultipleChoiceField(choices=[("x", "X")], required=False)


def test_the_form_names_each_field_and_works_on_a_copy_without_the_characters():
    data = QueryDict(mutable=True)
    data.update({"note": "ok\ud800", "kind": "\ud800", "other": "ignored\x00"})
    data.setlist("tags", ["x", "y\x00"])

    form = Sample(data)

    assert not form.is_valid()
    assert form.errors == {
        "note": [SURROGATE_ERROR], "kind": [SURROGATE_ERROR], "tags": ["Must not contain NUL characters."],
    }
    assert form["note"].value() == "ok\ufffd" and form.data.getlist("tags") == ["x", "y\ufffd"]
    assert data["note"] == "ok\ud800"  # the request's own data is left alone
    assert str(form.errors).encode("utf-8")  # renders


def test_a_valid_form_is_unchanged():
    form = Sample({"note": "naïve — fine", "kind": "a"})
    assert form.is_valid() and form.cleaned_data == {"note": "naïve — fine", "kind": "a", "tags": []}


# --- policies ----------------------------------------------------------------------------------------


@pytest.fixture
def admin(client):
    user = make_user("pia", roles.POLICY_ADMIN)
    client.force_login(user)
    return user


@pytest.fixture
def draft(admin):
    return services.import_document(copy.deepcopy(SPEC_DOCUMENT), actor=admin)


@pytest.mark.parametrize("note", ["please\ud800", "x" * 2001])
def test_a_bad_submit_note_is_a_400_and_the_draft_stays_a_draft(client, draft, note):
    response = utf7_multipart(client, reverse("policies:version_submit", args=[draft.pk]), {"note": note})

    assert response.status_code == 400
    assert "Note: " in response.content.decode()
    assert PolicyVersion.objects.get(pk=draft.pk).status == VersionStatus.DRAFT


def test_a_lone_surrogate_in_the_draft_name_is_refused_naming_it(client, draft):
    response = utf7_multipart(
        client, reverse("policies:version_edit", args=[draft.pk]),
        {"name": "spring\ud800", "effective_from": "2026-06-10T00:00", "note": ""},
    )

    assert 400 <= response.status_code < 500
    assert SURROGATE_ERROR in response.content.decode()
    assert PolicyVersion.objects.get(pk=draft.pk).name == draft.name


def test_a_lone_surrogate_in_a_rule_scope_is_refused_naming_it(client, draft):
    response = utf7_multipart(
        client, reverse("policies:entry_new", args=[draft.pk, "rules"]), {"customer": "C\ud800", "settings": "{}"},
    )

    assert 400 <= response.status_code < 500
    assert SURROGATE_ERROR in response.content.decode()
    assert draft.rules.count() == len(SPEC_DOCUMENT["rules"])


# --- allocation screens and the API lists that share their filter forms ----------------------------------


@pytest.fixture
def planner_client(client, planner):
    client.force_login(planner)
    return client


@pytest.mark.parametrize("url_name", ["allocation:order_list", "allocation:inventory_list", "allocation:supply_list"])
def test_a_lone_surrogate_in_a_list_search_is_a_400_naming_q(planner_client, url_name):
    response = planner_client.get(reverse(url_name), {"q": "+2AA-"}, **UTF7_QUERY)
    assert response.status_code == 400
    assert SURROGATE_ERROR in response.content.decode()


def test_a_lone_surrogate_in_the_orders_api_search_is_a_400_naming_q(api_client_for, planner):
    # DRF's test client sets its own content type on a GET; generic() keeps the declared charset.
    response = api_client_for(planner).generic("GET", "/api/v1/orders?q=%2B2AA-", content_type="text/plain; charset=utf-7")
    assert response.status_code == 400
    assert list(response.json()) == ["q"]


def test_a_lone_surrogate_in_the_runs_screens_is_a_400_naming_the_field(planner_client):
    Item.objects.create(sku="VALVE-10", item_class="valves")

    listed = planner_client.get(reverse("allocation:run_list"), {"status": "+2AA-"}, **UTF7_QUERY)
    started = utf7_multipart(planner_client, reverse("allocation:run_start"), {"scope": "items", "skus": "VALVE-10 X\ud800"})

    assert listed.status_code == 400 and "Status: " + SURROGATE_ERROR in listed.content.decode()
    assert started.status_code == 400 and "SKUs: " + SURROGATE_ERROR in started.content.decode()
    assert not AllocationRun.objects.exists()
