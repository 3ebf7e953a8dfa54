"""Two approvals racing on PostgreSQL: exactly one version ends active, the others retired."""
import threading

import pytest
from django.db import IntegrityError, connection

from policies import services
from policies.choices import VersionStatus
from policies.models import PolicyVersion
from tests.fixtures.personas import make_user


def race_two_approvals() -> tuple[list[BaseException], dict[str, str]]:
    """Submit two drafts, then approve both at the same moment from two threads."""
    admin = make_user("pia_race", "policy_admin")
    approvers = [make_user("approver_a", "approver"), make_user("approver_b", "approver")]
    versions = []
    for name in ("race-a", "race-b"):
        version = services.import_document({"name": name, "rules": [{"scope": {}, "settings": {}}]}, actor=admin)
        services.submit(version, actor=admin)
        versions.append(version)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def approve(version, approver):
        try:
            barrier.wait()
            services.approve(version, actor=approver)
        except BaseException as error:  # reported by the caller
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(v, a)) for v, a in zip(versions, approvers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors, dict(PolicyVersion.objects.values_list("name", "status"))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_leave_exactly_one_active_version():
    if not PolicyVersion.objects.filter(status=VersionStatus.ACTIVE).exists():
        services.import_document({"name": "default", "rules": [{"scope": {}, "settings": {}}]}, actor=None, activate=True)
    previously_active = PolicyVersion.objects.get(status=VersionStatus.ACTIVE).name

    errors, statuses = race_two_approvals()

    assert errors == []
    assert list(statuses.values()).count(VersionStatus.ACTIVE) == 1
    assert statuses[previously_active] == VersionStatus.RETIRED
    assert sorted([statuses["race-a"], statuses["race-b"]]) == [VersionStatus.ACTIVE, VersionStatus.RETIRED]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_with_no_active_version_still_leave_exactly_one():
    # Set-up only: no active version, so there is no row to lock (the advisory lock must serialise).
    PolicyVersion.objects.filter(status=VersionStatus.ACTIVE).update(status=VersionStatus.RETIRED)

    errors, statuses = race_two_approvals()

    assert errors == []
    assert sorted([statuses["race-a"], statuses["race-b"]]) == [VersionStatus.ACTIVE, VersionStatus.RETIRED]
    assert list(statuses.values()).count(VersionStatus.ACTIVE) == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_database_refuses_a_second_active_version():
    version = services.import_document({"name": "one", "rules": [{"scope": {}, "settings": {}}]}, actor=None, activate=True)
    with pytest.raises(IntegrityError):
        PolicyVersion.objects.create(name="x", number=99, status=VersionStatus.ACTIVE, effective_from=version.effective_from)
