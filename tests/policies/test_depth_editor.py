"""The policy editor and explainer know issue 15's additions: the order_kind dimension and the
registered factor plugins."""
import pytest
from django.urls import reverse

from tests.policies.test_screens import login

pytestmark = pytest.mark.django_db


def test_the_catalogue_names_the_registered_factor_plugins(client, policy_admin, draft):
    html = login(client, policy_admin).get(reverse("policies:entry_new", args=[draft.pk, "rules"])).content.decode()

    assert '<span class="muted" id="registered-factor-plugins">registered: <code title="' in html
    assert ">expedite_flag</code>, <code" in html and ">strategic_item</code>" in html


def test_a_rule_scoped_by_order_kind_is_added_in_the_editor_and_explained(client, policy_admin, draft):
    client = login(client, policy_admin)
    response = client.post(reverse("policies:entry_new", args=[draft.pk, "rules"]), {
        "order_kind": "quote", "settings": '{"priority_class": 8}',
    })
    assert response.status_code in (200, 302), response.content.decode()[:500]
    rule = draft.rules.get(scope={"order_kind": "quote"})
    assert rule.settings == {"priority_class": 8}

    explained = client.get(reverse("policies:explain"), {"version": draft.pk, "order_kind": "quote"}).content.decode()
    assert "order_kind=quote" in explained
    assert '<tr data-setting="priority_class">' in explained and "<code>8</code>" in explained


def test_the_editor_refuses_an_order_kind_it_does_not_know(client, policy_admin, draft):
    before = list(draft.rules.values_list("scope", flat=True))
    response = login(client, policy_admin).post(reverse("policies:entry_new", args=[draft.pk, "rules"]), {
        "order_kind": "estimate", "settings": "{}",
    })
    assert response.status_code in (400, 422)
    assert list(draft.rules.values_list("scope", flat=True)) == before
