"""Persona tests of the audit and finance screens: finance reads everything and changes
nothing; a planner does not see users and roles; anonymous requests get nothing."""
import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from allocation.audit import roles as role_service
from allocation.models import Allocation, AuditVerification, RoleChange
from exceptions import services
from exceptions.models import ApprovalRequest, DecisionException
from policies import services as policy_services


@pytest.fixture
def story(world, active_policy, run_all, planner, approver, policy_admin):
    """A decided book, an override through an approval, a credit hold, a pending policy change."""
    world.stock(world.east, 2000)
    line = world.line(world.hospital, 1500, unit_price="10")  # worth 15,000: the override needs an approver
    held = world.line(world.shop, 40, unit_price="3")
    held.order.credit_hold = True
    held.order.credit_hold_reason = "over limit"
    held.order._change_reason = "credit hold"
    held.order.save()
    run_all()
    exception = world.exception(line)
    services.claim(exception.pk, actor=planner, expected_version=exception.version)
    exception.refresh_from_db()
    result = services.override(exception.pk, actor=planner, expected_version=exception.version, location="DC-EAST",
                               quantity="1500", reason_code="customer_commitment", note="ward reopening")
    approval = result.approval
    from exceptions import approvals

    approvals.approve(approval.pk, actor=approver, reason="agreed with sales")
    draft = policy_services.create_draft(actor=policy_admin, name="tighter")
    policy_request = policy_services.submit(draft, actor=policy_admin, note="quarter end")
    role_service.grant_role(User.objects.get(pk=planner.pk), "customer_service", actor=None, reason="covering")
    return {"line": line, "held": held, "exception": exception, "approval": approval, "policy_request": policy_request,
            "draft": draft}


def _screens(story):
    line = story["line"]
    return [
        reverse("audit:trail"),
        reverse("audit:trail") + f"?order={line.order.number}",
        reverse("audit:trail") + "?kind=override",
        reverse("audit:trail") + "?kind=credit_hold",
        reverse("audit:trail") + "?policy=1&since=2026-01-01&until=2100-01-01",
        reverse("audit:trail") + "?min_value=1000",
        reverse("audit:trail") + "?customer=HOSP&item=VALVE-10",
        reverse("audit:credit_holds"),
        reverse("audit:approvals"),
        reverse("audit:approvals") + "?status=approved",
        reverse("audit:approval_detail", args=[story["approval"].pk]),
        reverse("audit:approval_detail", args=[story["policy_request"].pk]),
        reverse("audit:policy_changes"),
        reverse("allocation:order_detail", args=[line.order.number]),
        reverse("audit:order_timeline", args=[line.order.number]),
        reverse("allocation:line_why", args=[line.order.number, 1]) + "?at=2026-06-01T10:00",
        reverse("allocation:line_why", args=[line.order.number, 1]) + "?at=2100-01-01T10:00",
    ]


def _counts():
    return (
        DecisionException.objects.count(), ApprovalRequest.objects.filter(status="pending").count(),
        Allocation.objects.count(), RoleChange.objects.count(), AuditVerification.objects.count(),
        list(ApprovalRequest.objects.order_by("pk").values_list("status", flat=True)),
    )


def test_finance_reads_every_screen(client, story, finance):
    client.force_login(finance)
    for url in _screens(story):
        response = client.get(url)
        assert response.status_code == 200, url


def test_finance_sees_the_override_its_approver_and_reason_from_the_order_page(client, story, finance):
    client.force_login(finance)
    order_page = client.get(reverse("allocation:order_detail", args=[story["line"].order.number])).content.decode()
    timeline_url = reverse("audit:order_timeline", args=[story["line"].order.number])
    assert 'id="timeline"' in order_page and timeline_url in order_page  # loaded by HTMX, a link without JS
    page = client.get(timeline_url, HTTP_HX_REQUEST="true").content.decode()
    assert page.lstrip().startswith('<section class="card" id="timeline">')
    assert "Timeline of order" in client.get(timeline_url).content.decode()
    assert f"Approval #{story['approval'].pk}" in page
    assert "agreed with sales" in page
    assert "ward reopening" in page
    detail = client.get(reverse("audit:approval_detail", args=[story["approval"].pk])).content.decode()
    assert "agreed with sales" in detail and "avery_approver" in detail and "pat_planner" in detail
    assert "Override SO-1/1: pin 1500 at DC-EAST on hand" in detail


def test_finance_changes_nothing(client, story, finance):
    client.force_login(finance)
    before = _counts()
    posts = [
        reverse("audit:approval_withdraw", args=[story["policy_request"].pk]),
        reverse("audit:approval_simulate", args=[story["policy_request"].pk]),
        reverse("exceptions:approval_decide", args=[story["policy_request"].pk]),
        reverse("exceptions:exception_action", args=[story["exception"].pk, "comment"]),
        reverse("audit:trail"),
        reverse("audit:credit_holds"),
    ]
    for url in posts:
        response = client.post(url, {"reason": "x", "decision": "approve", "version": 1, "body": "x"})
        assert response.status_code in (403, 405), (url, response.status_code)
    assert _counts() == before


def test_anonymous_gets_nothing(client, story):
    for url in _screens(story):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
        assert b"agreed with sales" not in response.content


def test_a_planner_cannot_see_the_audit_of_users_and_roles(client, story, planner, finance):
    client.force_login(finance)
    assert "Role granted: customer_service for pat_planner" in client.get(reverse("audit:trail")).content.decode()
    client.force_login(planner)
    page = client.get(reverse("audit:trail")).content.decode()
    assert "Role granted" not in page
    assert client.get(reverse("audit:trail") + "?kind=role").status_code == 400  # not a kind they may ask for
    assert "Changes of users and roles are shown to finance only" in page


def test_the_trail_filters_and_pages_by_cursor(client, story, finance):
    client.force_login(finance)
    response = client.get(reverse("audit:trail") + "?kind=override")
    entries = [e for e in response.context["page_obj"]]
    assert entries and {e.kind for e in entries} == {"override"}
    assert all(e.order == story["line"].order.number for e in entries)
    credit = client.get(reverse("audit:trail") + "?kind=credit_hold").context["page_obj"].object_list
    assert [(e.order, e.changes[0][2]) for e in credit if e.changes and e.changes[0][0] == "credit_hold"] == [
        (story["held"].order.number, "True")]
    # Small pages walk the whole stream once, newest first, without repeats.
    from allocation.audit.selectors import AuditFilters, audit_page

    seen, cursor = [], None
    while True:
        page = audit_page(finance, AuditFilters(), cursor, 3)
        seen += [e.uid for e in page]
        if not page.has_next():
            break
        cursor = page.next_cursor
    every = [e.uid for e in audit_page(finance, AuditFilters(), None, 1000)]
    assert seen == every and len(set(every)) == len(every) > 10
    assert client.get(reverse("audit:trail") + "?since=2026-13-01").status_code == 400
    assert client.get(reverse("audit:trail") + "?cursor=garbage").status_code == 200


def test_credit_holds_show_value_since_and_shortfall(client, story, finance):
    client.force_login(finance)
    rows = client.get(reverse("audit:credit_holds")).context["page_obj"].object_list
    assert [(r.order.number, r.value_at_stake, r.short_quantity) for r in rows] == [
        (story["held"].order.number, Decimal("120.00"), Decimal("40"))]
    assert rows[0].held_since is not None


def test_policy_approval_shows_its_simulation_before_the_approve_button(
    client, story, second_approver, django_capture_on_commit_callbacks
):
    client.force_login(second_approver)
    url = reverse("audit:approval_detail", args=[story["policy_request"].pk])
    page = client.get(url).content.decode()
    assert 'id="approve"' not in page and 'id="approve-waits"' in page
    assert "Run the simulation" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("audit:approval_simulate", args=[story["policy_request"].pk]))
    assert response.status_code == 302
    page = client.get(url).content.decode()  # the simulation ran in-process (tests run tasks eagerly)
    assert 'id="simulation-summary"' in page and 'id="approve"' in page
    inbox = client.get(reverse("exceptions:approval_inbox")).content.decode()
    assert f"Activate policy v{story['draft'].number} &quot;tighter&quot;" in inbox
    assert "Review the simulation and decide" in inbox


def test_a_rejection_needs_a_reason_and_shows_it(client, story, second_approver, finance):
    client.force_login(second_approver)
    decide = reverse("exceptions:approval_decide", args=[story["policy_request"].pk])
    assert client.post(decide, {"decision": "reject", "reason": ""}).status_code == 400
    client.post(decide, {"decision": "reject", "reason": "not before the audit"})
    client.force_login(finance)
    assert "not before the audit" in client.get(reverse("audit:approvals")).content.decode()
    assert "not before the audit" in client.get(reverse("audit:policy_changes")).content.decode()
    assert "not before the audit" in client.get(reverse("audit:trail") + "?kind=rejection").content.decode()


def test_the_requester_withdraws_a_pending_request_and_it_is_audited(client, story, policy_admin, approver):
    url = reverse("audit:approval_withdraw", args=[story["policy_request"].pk])
    client.force_login(approver)
    assert client.post(url, {"reason": "mine?"}).status_code == 403
    client.force_login(policy_admin)
    response = client.post(url, {"reason": "wrong effective date"})
    assert response.status_code == 302
    request = ApprovalRequest.objects.get(pk=story["policy_request"].pk)
    assert (request.status, request.decision_reason, request.decided_by_id) == ("cancelled", "wrong effective date", policy_admin.pk)
    story["draft"].refresh_from_db()
    assert story["draft"].status == "draft"
    entries = client.get(reverse("audit:trail") + "?kind=withdrawal").context["page_obj"].object_list
    assert [e.reason for e in entries] == ["wrong effective date"]
    assert client.post(url, {"reason": "again"}).status_code == 409


def test_role_changes_are_recorded(db, planner):
    changes = role_service.set_roles(planner, {"planner", "approver"}, actor=None, reason="holiday cover")
    assert [(c.action, c.role, c.before, c.after) for c in changes] == [
        ("granted", "approver", ["planner"], ["approver", "planner"])]
    with pytest.raises(ValueError):
        role_service.set_roles(planner, {"wizard"}, actor=None)
    assert dt.date.today() is not None


def test_the_case_page_shows_its_approvals_with_the_reason(client, story, approver):
    client.force_login(approver)
    page = client.get(reverse("exceptions:exception_detail", args=[story["exception"].pk])).content.decode()
    assert 'id="case-approvals"' in page
    assert "agreed with sales" in page and reverse("audit:approval_detail", args=[story["approval"].pk]) in page
