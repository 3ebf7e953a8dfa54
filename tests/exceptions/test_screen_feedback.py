"""The exceptions screens say what was wrong (issue 8): a refused bulk action names its reason
(the cap, a malformed or repeated id, no selection, the action), the selection is checked for
visibility in one query, the shortage workbench's note and location are validated by a form
(NUL, an unpaired surrogate, too long: a 400 naming the field), and free text on every form is
a form error rather than a 500 when it holds a lone surrogate.

A lone surrogate cannot be sent as UTF-8; it arrives in a body declared ``charset=utf-7``
(``+2AA-`` decodes to U+D800), which Django accepts for multipart forms and query strings.
"""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from allocation.models import Allocation
from exceptions import services
from exceptions.models import ApprovalRequest, DecisionException, ExceptionComment

LONE_SURROGATE = "\ud800"


def utf7_multipart(client, url: str, fields: dict[str, str]):
    """POST ``fields`` as multipart/form-data declared UTF-7 (how a lone surrogate gets in)."""
    parts = []
    for name, value in fields.items():
        parts.append(b'--B\r\nContent-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n' + value.encode("utf-7") + b"\r\n")
    body = b"".join(parts) + b"--B--\r\n"
    return client.generic("POST", url, body, content_type="multipart/form-data; boundary=B; charset=utf-7")


def page(response) -> str:
    return response.content.decode()


@pytest.fixture
def scene(world, recorded_runs):
    world.stock(world.east, 40)
    hospital = world.line(world.hospital, 20, unit_price="10")
    shop = world.line(world.shop, 30, unit_price="10")
    world.allocate(hospital, world.east, 10)
    world.allocate(shop, world.east, 30)
    return hospital, shop, world.exception(hospital)


def state():
    return (
        list(DecisionException.objects.order_by("pk").values_list("status", "version", "assignee_id")),
        list(Allocation.objects.order_by("pk").values_list("line_id", "quantity", "state")),
        ApprovalRequest.objects.count(),
        ExceptionComment.objects.count(),
    )


# --- bulk actions -----------------------------------------------------------------------------------

BULK = reverse("exceptions:bulk_action", args=["shortages"])


def test_a_bulk_action_over_the_cap_says_so_and_changes_nothing(as_planner, world, settings, recorded_runs):
    settings.ALLOT_BULK_MAX_IDS = 2
    exceptions = [world.exception(world.line(world.shop, 1)) for _ in range(3)]
    before = state()

    response = as_planner.post(BULK, {"action": "claim", "selected": [f"{e.pk}:1" for e in exceptions], "back": "sort=age"})

    assert response.status_code == 400
    assert "Selection: At most 2 exceptions at once; got 3." in page(response)
    assert "Select at least one exception and an action." not in page(response)
    assert f'data-key="{exceptions[0].pk}"' in page(response)  # the queue as it was (its sort kept)
    assert state() == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"action": "claim", "selected": ["abc:1"]}, "Selection: Bad selection &#x27;abc:1&#x27;: expected id:version."),
        ({"action": "claim", "selected": ["{pk}:1", "{pk}:2"]}, "Selection: Exception {pk} is selected twice."),
        ({"action": "claim"}, "Selection: Select at least one exception."),
        ({"action": "explode", "selected": ["{pk}:1"]}, "Action: Select a valid choice. explode is not one of the available choices."),
    ],
)
def test_a_refused_bulk_action_names_the_real_reason(as_planner, scene, body, message):
    pk = scene[2].pk
    body = {k: [v.format(pk=pk) for v in value] if isinstance(value, list) else value for k, value in body.items()}
    before = state()

    response = as_planner.post(BULK, body)

    assert response.status_code == 400
    assert message.format(pk=pk) in page(response)
    assert state() == before


def test_a_bulk_action_checks_what_the_user_may_see_in_one_query(as_planner, world, monkeypatch, recorded_runs):
    exceptions = [world.exception(world.line(world.shop, 1)) for _ in range(10)]
    seen = []
    monkeypatch.setattr(services, "bulk_claim", lambda selection, actor: seen.append(selection) or services.BulkResult())

    def visibility_queries(selected) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert as_planner.post(BULK, {"action": "claim", "selected": selected}).status_code == 302
        return sum('FROM "exceptions_decisionexception"' in q["sql"] for q in queries.captured_queries)

    one = visibility_queries([f"{exceptions[0].pk}:1"])
    ten = visibility_queries([f"{e.pk}:1" for e in exceptions] + ["999999:1"])

    assert one == ten == 1
    assert seen[-1] == {e.pk: 1 for e in exceptions}  # the unknown id is not passed on


def test_the_bulk_back_link_cannot_inject_a_header(as_planner, scene):
    response = as_planner.post(BULK, {"action": "claim", "selected": [f"{scene[2].pk}:1"], "back": "sort=age\r\nSet-Cookie: x=1"})
    assert response.status_code == 302
    assert "\n" not in response["Location"] and "\r" not in response["Location"]
    assert response["Location"].startswith("/exceptions/queues/shortages/?sort=age")


# --- the shortage workbench's note ---------------------------------------------------------------------


def workbench_url() -> str:
    return reverse("exceptions:shortage_workbench", args=["VALVE-10"]) + "?location=DC-EAST"


def commit_body(hospital, shop, note: str) -> dict[str, str]:
    return {
        "location": "DC-EAST", f"line-{hospital.pk}": "20", f"seen-{hospital.pk}": "10",
        f"line-{shop.pk}": "20", f"seen-{shop.pk}": "30", "reason_code": "customer_commitment", "note": note,
    }


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ("hospital\x00first", "note: Must not contain NUL characters."),
        ("x" * 501, "note: Ensure this value has at most 500 characters (it has 501)."),
        ("   ", "note: A note is required."),
    ],
)
def test_a_bad_workbench_note_is_a_400_naming_it(as_planner, scene, note, message):
    hospital, shop, _ = scene
    before = state()

    response = as_planner.post(workbench_url(), commit_body(hospital, shop, note))

    assert response.status_code == 400
    assert message in page(response)
    assert state() == before


def test_a_workbench_note_with_a_lone_surrogate_is_a_400_naming_it(as_planner, scene):
    hospital, shop, _ = scene
    before = state()

    response = utf7_multipart(as_planner, workbench_url(), commit_body(hospital, shop, "hospital" + LONE_SURROGATE))

    assert response.status_code == 400
    assert "note: Must not contain unpaired surrogate characters (invalid Unicode)." in page(response)
    assert 'value="hospital\ufffd"' in page(response)  # echoed without the character UTF-8 cannot encode
    assert state() == before


def test_a_workbench_location_with_nul_is_a_400_and_a_good_note_still_commits(as_planner, scene):
    hospital, shop, _ = scene

    shown = as_planner.get(reverse("exceptions:shortage_workbench", args=["VALVE-10"]), {"location": "DC\x00EAST"})
    committed = as_planner.post(workbench_url(), commit_body(hospital, shop, "hospital first"))

    assert shown.status_code == 400 and "location: Must not contain NUL characters." in page(shown)
    assert committed.status_code == 302
    assert list(Allocation.objects.filter(line=hospital).values_list("quantity", "state")) == [(Decimal("20.000"), "pinned")]


# --- lone surrogates in the other free-text forms ---------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "fields", "field"),
    [
        ("comment", {"body": "see" + LONE_SURROGATE}, "body"),
        ("dismiss", {"reason": "noise" + LONE_SURROGATE}, "reason"),
        ("escalate", {"note": LONE_SURROGATE}, "note"),
        ("assign", {"assignee": "pat" + LONE_SURROGATE}, "assignee"),
    ],
)
def test_a_lone_surrogate_in_an_action_form_is_a_400_naming_the_field(as_planner, scene, action, fields, field):
    exception = scene[2]
    before = state()

    response = utf7_multipart(as_planner, reverse("exceptions:exception_action", args=[exception.pk, action]), {"version": "1", **fields})

    assert response.status_code == 400
    assert "Must not contain unpaired surrogate characters" in page(response)
    assert field in page(response)
    assert state() == before


def test_a_lone_surrogate_in_the_queue_search_is_a_400_naming_q(as_planner, scene):
    response = as_planner.get(
        reverse("exceptions:queue_detail", args=["shortages"]), {"q": "+2AA-"}, CONTENT_TYPE="text/plain; charset=utf-7"
    )
    nul = as_planner.get(reverse("exceptions:queue_detail", args=["shortages"]), {"q": "a\x00b"})

    assert response.status_code == 400 and "q: must not contain unpaired surrogate characters" in page(response)
    assert nul.status_code == 400 and "q: must not contain NUL characters." in page(nul)
