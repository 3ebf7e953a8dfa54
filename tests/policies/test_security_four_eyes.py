"""Four-eyes excludes the author (issue 8): a user who is both policy admin and approver cannot
approve (or reject) a draft they wrote or edited, even when a colleague submitted it."""
import datetime as dt

import pytest
from django.utils import timezone

from config import roles
from exceptions import approvals
from exceptions.errors import SelfApprovalRefused
from policies import services
from policies.choices import VersionStatus
from policies.models import PolicyVersion
from tests.fixtures.personas import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_approver(db):
    """Holds both roles: may approve others' policies, never their own."""
    return make_user("ada_both", roles.POLICY_ADMIN, roles.APPROVER)


@pytest.fixture
def colleague(db):
    return make_user("cole_policy", roles.POLICY_ADMIN)


def test_the_author_cannot_approve_a_draft_a_colleague_submitted(admin_approver, colleague, approver, spec_document):
    draft = services.import_document(spec_document, actor=admin_approver)
    services.submit(draft, actor=colleague)
    approval = services.pending_approval_of(draft)
    assert not approvals.can_decide(approval, admin_approver)
    with pytest.raises(SelfApprovalRefused):
        services.approve(draft, actor=admin_approver)
    with pytest.raises(SelfApprovalRefused):
        services.reject(draft, actor=admin_approver, reason="mine anyway")
    assert PolicyVersion.objects.get(pk=draft.pk).status == VersionStatus.PENDING_APPROVAL

    assert approvals.can_decide(approval, approver)
    assert services.approve(draft, actor=approver).status == VersionStatus.ACTIVE


def test_an_editor_of_the_draft_cannot_approve_it(admin_approver, colleague, approver, spec_document):
    draft = services.import_document(spec_document, actor=colleague)
    rule = draft.rules.order_by("position").last()
    services.update_rule(rule, actor=admin_approver, scope=rule.scope, settings={**rule.settings, "max_split_locations": 2})
    services.submit(draft, actor=colleague)
    assert services.authors(draft) == {colleague.pk, admin_approver.pk}
    with pytest.raises(SelfApprovalRefused):
        services.approve(draft, actor=admin_approver)


def test_changing_the_details_makes_an_author(admin_approver, colleague, spec_document):
    draft = services.import_document(spec_document, actor=colleague)
    later = timezone.now() + dt.timedelta(days=3)
    services.update_version(draft, actor=admin_approver, name="renamed", effective_from=later)
    services.submit(draft, actor=colleague)
    with pytest.raises(SelfApprovalRefused):
        services.approve(draft, actor=admin_approver)


def test_an_approver_who_rejected_it_once_is_not_an_author(admin_approver, colleague, approver, spec_document):
    """Rejecting returns the draft to its author; it does not make the approver an author."""
    draft = services.import_document(spec_document, actor=colleague)
    services.submit(draft, actor=colleague)
    services.reject(draft, actor=admin_approver, reason="fix the quota")
    services.submit(PolicyVersion.objects.get(pk=draft.pk), actor=colleague)
    assert services.authors(draft) == {colleague.pk}
    assert services.approve(draft, actor=admin_approver).status == VersionStatus.ACTIVE


# --- the approvals inbox: a draft's authors see it as another approver's work ------------------


def _inbox(client, user) -> str:
    client.force_login(user)
    response = client.get("/exceptions/approvals/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_inbox_does_not_offer_an_author_the_draft_a_colleague_submitted(
    client, admin_approver, colleague, approver, spec_document
):
    draft = services.import_document(spec_document, actor=admin_approver)
    services.submit(draft, actor=colleague)
    approval = services.pending_approval_of(draft)

    author_inbox = _inbox(client, admin_approver)
    other_inbox = _inbox(client, approver)

    assert f'<tr data-key="{approval.pk}"' not in author_inbox
    assert f'action="/exceptions/approvals/{approval.pk}/decide/"' not in author_inbox
    assert f'<tr data-authored="{approval.pk}"' in author_inbox
    assert "You wrote this draft — another approver must decide" in author_inbox
    assert f'<tr data-key="{approval.pk}"' in other_inbox and f'data-authored="{approval.pk}"' not in other_inbox


def test_the_inbox_treats_an_editor_of_the_draft_as_an_author(client, admin_approver, colleague, approver, spec_document):
    draft = services.import_document(spec_document, actor=colleague)
    rule = draft.rules.order_by("position").last()
    services.update_rule(rule, actor=admin_approver, scope=rule.scope, settings={**rule.settings, "max_split_locations": 2})
    services.submit(draft, actor=colleague)
    approval = services.pending_approval_of(draft)

    assert f'<tr data-authored="{approval.pk}"' in _inbox(client, admin_approver)
    assert f'<tr data-key="{approval.pk}"' not in _inbox(client, admin_approver)


def test_versions_authored_by_agrees_with_authors_for_every_version(admin_approver, colleague, approver, spec_document):
    """The set-based rule (one subquery) and the per-version rule name the same authors."""
    imported = services.import_document(spec_document, actor=colleague)
    edited = services.import_document(spec_document, actor=colleague)
    rule = edited.rules.order_by("position").first()
    services.update_rule(rule, actor=admin_approver, scope=rule.scope, settings=rule.settings)
    renamed = services.import_document(spec_document, actor=colleague)
    services.update_version(renamed, actor=admin_approver, name="renamed", effective_from=timezone.now() + dt.timedelta(days=2))
    mine = services.import_document(spec_document, actor=admin_approver)
    versions = [imported, edited, renamed, mine, *PolicyVersion.objects.exclude(pk__in=[imported.pk, edited.pk, renamed.pk, mine.pk])]

    for user in (admin_approver, colleague, approver):
        expected = {v.pk for v in versions if user.pk in services.authors(v)}
        assert set(services.versions_authored_by(user).values_list("pk", flat=True)) == expected
    assert set(services.versions_authored_by(admin_approver).values_list("pk", flat=True)) == {edited.pk, renamed.pk, mine.pk}
    assert not services.versions_authored_by(approver).exists()


def test_the_inbox_costs_the_same_queries_for_one_or_many_authored_drafts(
    client, admin_approver, colleague, spec_document, django_assert_max_num_queries
):
    client.force_login(admin_approver)
    first = services.import_document(spec_document, actor=admin_approver)
    services.submit(first, actor=colleague)
    client.get("/exceptions/approvals/")  # warm the session
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        client.get("/exceptions/approvals/")
    for _ in range(4):
        services.submit(services.import_document(spec_document, actor=admin_approver), actor=colleague)
    with django_assert_max_num_queries(len(one.captured_queries)):
        page = client.get("/exceptions/approvals/").content.decode()
    assert page.count("<tr data-authored=") == 5
