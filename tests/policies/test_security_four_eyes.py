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
