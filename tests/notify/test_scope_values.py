"""Policy forms pick scope values from the data, and a value that matches nothing warns
(issue 9, item 4): never an error, shown beside the entry and after saving."""
import pytest
from django.test import Client
from django.urls import reverse

from allocation.models import Customer, Item, Location
from policies import scope_values, services

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(db):
    east = Location.objects.create(code="DC-EAST", name="East", region="east", kind="warehouse")
    for index in range(30):
        Customer.objects.create(code=f"C-{index:03d}", name=f"C{index}", tier=2, segment="healthcare" if index % 2 else "retail",
                                region="north", home_location=east)
    Item.objects.create(sku="VALVE-10", item_class="valves")
    Item.objects.create(sku="VALVE-20", item_class="valves")
    Item.objects.create(sku="PUMP-1", item_class="pumps")


def test_unmatched_values_warn_and_known_ones_do_not(data):
    assert scope_values.unmatched({"customer_segment": "healthcare", "item": "VALVE-10", "region": "east"}) == []
    assert scope_values.unmatched({"customer_segment": "helthcare", "customer_tier": 9}) == [
        "customer_segment = helthcare matches no customer segment in the data yet: check the spelling."
    ]
    # A region is a customer's or a location's.
    assert scope_values.unmatched({"region": "north"}) == [] and scope_values.unmatched({"region": "mars"}) != []


def test_many_scopes_cost_one_query(data, django_assert_num_queries):
    scopes = [{"customer": f"C-{i:03d}", "item": "NOPE", "location": "DC-EAST", "region": "east"} for i in range(40)]
    with django_assert_num_queries(1):
        warnings = scope_values.warnings_for(scopes)
    assert warnings[0] == ["item = NOPE matches no SKU in the data yet: check the spelling."]
    assert warnings[35] == [
        "customer = C-035 matches no customer code in the data yet: check the spelling.",
        "item = NOPE matches no SKU in the data yet: check the spelling.",
    ]


def test_suggestions_are_keyset_slices_of_what_was_typed(data):
    assert scope_values.suggestions("customer", "C-01") == [f"C-01{i}" for i in range(10)]
    first = scope_values.suggestions("customer", "C-", limit=5)
    assert first == ["C-000", "C-001", "C-002", "C-003", "C-004"]
    assert scope_values.suggestions("customer", "C-", after=first[-1], limit=2) == ["C-005", "C-006"]
    assert scope_values.values("item_class") == ["pumps", "valves"]


def test_rule_form_points_inputs_at_datalists_and_warns_after_saving(data, policy_admin, django_user_model):
    draft = services.create_draft(actor=policy_admin, name="d")
    client = Client()
    client.force_login(policy_admin)
    form = client.get(reverse("policies:entry_new", args=[draft.pk, "rules"])).content.decode()
    assert 'name="customer_segment"' in form and 'list="scope-customer_segment"' in form
    assert '<datalist id="scope-customer_segment"><option value="healthcare"></option><option value="retail"></option></datalist>' in form
    assert 'hx-get="/policies/scope-values/customer/"' in form  # large: looked up as the person types
    assert '<datalist id="scope-item_class"><option value="pumps"></option><option value="valves"></option></datalist>' in form
    saved = client.post(
        reverse("policies:entry_new", args=[draft.pk, "rules"]),
        {"customer_segment": "helthcare", "settings": '{"priority_class": 2}'}, follow=True,
    )
    assert saved.status_code == 200  # a warning, not an error: the rule is saved
    html = saved.content.decode()
    assert draft.rules.filter(scope={"customer_segment": "helthcare"}).exists()
    assert "customer_segment = helthcare matches no customer segment in the data yet" in html
    assert html.count("data-scope-warning") == 1


def test_scope_value_endpoint_answers_options_for_what_was_typed(data, policy_admin):
    client = Client()
    client.force_login(policy_admin)
    answer = client.get(reverse("policies:scope_values", args=["customer"]), {"customer": "C-02"}).content.decode()
    assert answer.count("<option") == 10 and 'value="C-020"' in answer
    assert client.get(reverse("policies:scope_values", args=["colour"])).status_code == 404
    assert client.get(reverse("policies:scope_values", args=["item"]), {"sku": "VAL"}).content.decode().count("<option") == 2
    assert client.get(reverse("policies:scope_values", args=["item"]), {"item": "\x00"}).status_code == 200


def test_protection_with_an_unknown_sku_warns_beside_it(data, policy_admin):
    draft = services.create_draft(actor=policy_admin, name="d")
    services.add_protection(draft, actor=policy_admin, sku="VALVE-99", location="DC-EAST", quantity=1, for_scope={})
    client = Client()
    client.force_login(policy_admin)
    html = client.get(reverse("policies:version_detail", args=[draft.pk])).content.decode()
    row = html.split('id="protection-')[1].split("</tr>")[0]
    assert "item = VALVE-99 matches no SKU in the data yet" in row
