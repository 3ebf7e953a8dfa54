"""Two approvals racing on PostgreSQL: exactly one version ends active, the others retired."""
import threading

import pytest
from django.db import connection

from policies import services
from policies.choices import VersionStatus
from policies.models import PolicyVersion
from tests.fixtures.personas import make_user


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_approvals_leave_exactly_one_active_version():
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
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(v, a)) for v, a in zip(versions, approvers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    statuses = dict(PolicyVersion.objects.values_list("name", "status"))
    assert list(statuses.values()).count(VersionStatus.ACTIVE) == 1
    assert statuses["default"] == VersionStatus.RETIRED
    assert sorted([statuses["race-a"], statuses["race-b"]]) == [VersionStatus.ACTIVE, VersionStatus.RETIRED]


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_database_refuses_a_second_active_version():
    from django.db import IntegrityError

    version = PolicyVersion.objects.get(status=VersionStatus.ACTIVE)
    with pytest.raises(IntegrityError):
        PolicyVersion.objects.create(name="x", number=99, status=VersionStatus.ACTIVE, effective_from=version.effective_from)
