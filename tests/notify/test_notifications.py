"""In-app notifications (issue 9, item 6): each kind is written by the service that made the
change, in its transaction, for the right person; the bell counts unread ones, the page
marks what it shows read, the API lists them."""
import datetime as dt

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from allocation import services as allocation_services
from allocation.models import AllocationRun, RunTrigger
from exceptions import approvals, notifications, routing, services
from exceptions.models import DecisionException, Notification, Queue

pytestmark = pytest.mark.django_db


def kinds_for(user):
    return list(Notification.objects.filter(recipient=user).order_by("id").values_list("kind", flat=True))


@pytest.fixture
def claimed(world, planner):
    case = world.exception(world.line(world.hospital, 5))
    services.claim(case.pk, actor=planner, expected_version=1)
    return case


def test_take_over_notifies_the_first_planner_with_the_reason(claimed, planner, customer_service):
    services.claim(claimed.pk, actor=customer_service, expected_version=2, take_over=True, reason="customer called")
    (note,) = Notification.objects.filter(recipient=planner)
    assert note.kind == "claim_taken_over"
    assert "casey_cs took over your claim on case #" in note.text and "customer called" in note.text
    assert note.link == f"/exceptions/{claimed.pk}/" and note.read_at is None
    assert kinds_for(customer_service) == []  # nobody hears of their own action


def test_a_refused_take_over_notifies_nobody(claimed, planner, customer_service):
    with pytest.raises(services.InvalidAction):
        services.claim(claimed.pk, actor=customer_service, expected_version=2, take_over=True, reason="  ")
    assert Notification.objects.count() == 0


def test_notification_rolls_back_with_the_change(claimed, planner, customer_service):
    """Written in the change's transaction: a change that fails later leaves no notification."""
    with pytest.raises(RuntimeError), transaction.atomic():
        services.claim(claimed.pk, actor=customer_service, expected_version=2, take_over=True, reason="r")
        raise RuntimeError("the request failed after the claim")
    assert Notification.objects.count() == 0
    assert DecisionException.objects.get(pk=claimed.pk).assignee == planner


def test_approval_requested_reaches_every_approver_but_the_requester(world, planner, approver, second_approver):
    world.stock(world.east, 2000)
    line = world.line(world.hospital, 1500, unit_price="10")  # 15,000: needs an approver
    case = world.exception(line)
    result = services.override(
        case.pk, actor=planner, expected_version=1, location="DC-EAST", quantity="1500", reason_code="expedite", note="ward"
    )
    assert kinds_for(approver) == ["approval_requested"] and kinds_for(second_approver) == ["approval_requested"]
    assert kinds_for(planner) == []
    assert f"approval #{result.approval.pk} (override)" in Notification.objects.filter(recipient=approver).get().text


def test_approval_decisions_tell_the_requester(world, planner, approver, in_process_tasks):
    world.stock(world.east, 4000)
    first = world.exception(world.line(world.hospital, 1500, unit_price="10"))
    second = world.exception(world.line(world.hospital, 1600, unit_price="10"))
    asked = [
        services.override(c.pk, actor=planner, expected_version=1, location="DC-EAST", quantity=q, reason_code="expedite", note="n")
        for c, q in ((first, "1500"), (second, "1600"))
    ]
    approvals.reject(asked[0].approval.pk, actor=approver, reason="too much")
    approvals.approve(asked[1].approval.pk, actor=approver, reason="fine")
    mine = Notification.objects.filter(recipient=planner, kind__startswith="approval_").order_by("id")
    assert [(n.kind, n.link) for n in mine] == [
        ("approval_rejected", f"/exceptions/{first.pk}/"), ("approval_approved", f"/exceptions/{second.pk}/"),
    ]
    assert "rejected your request" in mine[0].text and "too much" in mine[0].text


def test_bulk_escalation_tells_former_assignees_and_the_target_group_once_per_queue(world, planner, customer_service, now):
    source = Queue.objects.create(code="src", name="Source", group="planner", sla_minutes=10, position=90)
    target = Queue.objects.create(code="tgt", name="Target", group="customer_service", sla_minutes=60, position=91)
    source.escalation_queue = target
    source.save()
    cases = [world.exception(world.line(world.shop, 1), route=False) for _ in range(3)]
    DecisionException.objects.filter(pk__in=[c.pk for c in cases]).update(queue=source, due_at=now - dt.timedelta(minutes=1))
    DecisionException.objects.filter(pk=cases[0].pk).update(status="claimed", assignee=planner)

    assert routing.escalate_overdue(now) == 3

    (lost,) = Notification.objects.filter(recipient=planner)
    assert lost.kind == "case_escalated" and f"Case #{cases[0].pk}" in lost.text and "no longer claimed by you" in lost.text
    (arrived,) = Notification.objects.filter(recipient=customer_service)
    assert arrived.text == "3 cases were escalated to Target (SLA overdue)." and arrived.link == "/exceptions/queues/tgt/"


def test_bulk_escalation_costs_a_fixed_number_of_queries(world, planner, now, django_assert_max_num_queries):
    source = Queue.objects.create(code="src", name="Source", group="planner", sla_minutes=10, position=90)
    target = Queue.objects.create(code="tgt", name="Target", group="planner", sla_minutes=60, position=91)
    source.escalation_queue = target
    source.save()
    line = world.line(world.shop, 1)
    for index in range(40):
        world.exception(line, route=False, suffix=str(index))
    DecisionException.objects.update(queue=source, due_at=now - dt.timedelta(minutes=1), status="claimed", assignee=planner)
    with django_assert_max_num_queries(14):
        assert routing.escalate_overdue(now) == 40
    assert Notification.objects.filter(recipient=planner).count() == 41  # 40 lost claims + 1 per queue


def test_a_run_tells_the_person_who_started_it(world, planner):
    run = allocation_services.run_full(trigger=RunTrigger.MANUAL, actor=planner)
    assert run.status == "succeeded"
    (note,) = Notification.objects.filter(recipient=planner)
    assert (note.kind, note.link) == ("run_finished", f"/runs/{run.pk}/")
    assert note.text.startswith(f"Your allocation run #{run.pk} finished")


def test_a_system_run_tells_nobody(world):
    allocation_services.run_full(trigger=RunTrigger.SCHEDULED)
    assert AllocationRun.objects.count() == 1 and Notification.objects.count() == 0


def test_a_failed_run_tells_its_requester(world, planner, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("engine exploded")

    monkeypatch.setattr(allocation_services.engine, "allocate", broken)
    run = allocation_services.run_full(actor=planner)
    assert run.status == "failed"
    (note,) = Notification.objects.filter(recipient=planner)
    assert note.kind == "run_finished" and "failed" in note.text and "engine exploded" in note.text


# --------------------------------------------------------------------------- screens and API


def make(user, n):
    return notifications.notify_many((user, "run_finished", f"note {i}", "/runs/") for i in range(n))


def test_bell_counts_unread_and_the_page_marks_shown_ones_read(planner, customer_service):
    make(planner, 3)
    make(customer_service, 2)
    client = Client()
    client.force_login(planner)
    bell = client.get(reverse("exceptions:notification_bell")).content.decode()
    assert 'data-testid="bell-count">3<' in bell
    page = client.get(reverse("exceptions:notifications")).content.decode()
    assert page.count('class="new"') == 3 and "note 2" in page and "note 0" in page
    assert notifications.unread_count(planner) == 0
    assert notifications.unread_count(customer_service) == 2  # others' untouched
    assert 'data-testid="bell-count"' not in client.get(reverse("exceptions:notification_bell")).content.decode()


def test_the_page_is_keyset_paginated_newest_first(planner):
    make(planner, 35)
    client = Client()
    client.force_login(planner)
    first = client.get(reverse("exceptions:notifications")).content.decode()
    assert "note 34" in first and "note 5<" in first and "note 4<" not in first
    cursor = first.split('rel="next"')[0].rsplit("cursor=", 1)[1].split('"')[0]
    second = client.get(reverse("exceptions:notifications") + f"?cursor={cursor}").content.decode()
    assert "note 4<" in second and "note 0<" in second and "note 5<" not in second


def test_opening_one_marks_it_read_and_follows_its_link_only_for_its_recipient(planner, customer_service):
    note = notifications.notify(planner, "run_finished", "done", link="/runs/")
    evil = notifications.notify(planner, "run_finished", "x", link="https://evil.example/")
    client = Client()
    client.force_login(customer_service)
    assert client.get(reverse("exceptions:notification_open", args=[note.pk])).status_code == 404
    client.force_login(planner)
    response = client.get(reverse("exceptions:notification_open", args=[note.pk]))
    assert (response.status_code, response["Location"]) == (302, "/runs/")
    note.refresh_from_db()
    assert note.read_at is not None
    assert client.get(reverse("exceptions:notification_open", args=[evil.pk]))["Location"] == "/exceptions/notifications/"


def test_every_page_has_the_bell_without_a_count_query(as_planner):
    html = as_planner.get(reverse("exceptions:queue_list")).content.decode()
    assert 'id="bell"' in html and 'data-bell-url="/exceptions/notifications/bell/"' in html and "js/bell.js" in html


def test_api_lists_the_callers_notifications(planner, customer_service, api_client_for):
    make(planner, 3)
    make(customer_service, 1)
    client = api_client_for(planner)
    body = client.get("/api/v1/notifications", {"page_size": 2}).json()
    assert [r["text"] for r in body["results"]] == ["note 2", "note 1"] and body["unread_count"] == 3
    assert set(body["results"][0]) == {"id", "kind", "text", "link", "created_at", "read_at"}
    assert [r["text"] for r in client.get(body["next"]).json()["results"]] == ["note 0"]
    assert client.get("/api/v1/notifications", {"unread": "maybe"}).status_code == 400
    one = body["results"][0]["id"]
    marked = client.post("/api/v1/notifications/read", {"ids": [one]}, format="json").json()
    assert marked == {"marked": 1, "unread_count": 2}
    assert len(client.get("/api/v1/notifications", {"unread": "true"}).json()["results"]) == 2
    assert client.post("/api/v1/notifications/read", {"ids": ["1"]}, format="json").status_code == 400
    assert api_client_for(customer_service).get("/api/v1/notifications").json()["unread_count"] == 1


def test_anonymous_gets_no_notifications(client):
    assert client.get(reverse("exceptions:notification_bell")).status_code == 302
    assert client.get("/api/v1/notifications").status_code in (401, 403)


def test_date_format_preference_changes_the_screens_dates(world, planner):
    case = world.exception(world.line(world.hospital, 5))
    client = Client()
    client.force_login(planner)
    assert "requested 2026-06-03" in client.get(f"/exceptions/{case.pk}/").content.decode()
    client.post(reverse("exceptions:date_format_save"), {"date_format": "d.m.Y"})
    assert "requested 03.06.2026" in client.get(f"/exceptions/{case.pk}/").content.decode()
    assert client.post(reverse("exceptions:date_format_save"), {"date_format": "%Y"}).status_code == 302
    assert "requested 03.06.2026" in client.get(f"/exceptions/{case.pk}/").content.decode()  # refused, unchanged
    # Kept across logins: copied into the session when the person signs in.
    fresh = Client()
    planner.set_password("pw")
    planner.save()
    assert fresh.login(username=planner.username, password="pw")
    assert "requested 03.06.2026" in fresh.get(f"/exceptions/{case.pk}/").content.decode()


def test_policy_approvals_notify_too(policy_admin, approver, django_user_model):
    from policies import services as policy_services

    draft = policy_services.create_draft(actor=policy_admin, name="spring")
    approval = policy_services.submit(draft, actor=policy_admin)
    assert kinds_for(approver) == ["approval_requested"]
    assert "(policy activation)" in Notification.objects.get(recipient=approver).text
    approvals.reject(approval.pk, actor=approver, reason="not yet")
    (told,) = Notification.objects.filter(recipient=policy_admin)
    assert (told.kind, told.link) == ("approval_rejected", f"/policies/{draft.pk}/")
