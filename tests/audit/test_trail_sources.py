"""The trail also holds what runs do to case reasons and what waves release (allocation.audit)."""
import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from allocation.audit.selectors import AuditFilters, audit_rows
from allocation.models import LineRelease, Wave
from allocation.services import run_full
from policies.services import import_document
from tests.exceptions.conftest import World
from tests.fixtures.personas import make_user

AS_OF = dt.date(2026, 6, 1)


@pytest.mark.django_db
def test_case_reasons_and_wave_releases_are_in_the_trail():
    world = World()
    import_document({"name": "p", "rules": [{"scope": {}, "settings": {}}]}, actor=None, activate=True)
    world.stock(world.west, "4")
    short = world.line(world.shop, "10")
    run = run_full(as_of=AS_OF)
    finance = make_user("fin", "finance")

    reasons = list(audit_rows(finance, AuditFilters(kind="reason")))
    assert [(e.summary, e.order, e.actor, e.run_id) for e in reasons] == [
        ("Reason promise_at_risk raised", short.order.number, f"run #{run.pk}", run.pk)]

    planner = make_user("pat", "planner")
    wave = Wave.objects.create(location=world.west, business_date=AS_OF, started_by=planner, status="succeeded",
                               started_at=timezone.now())
    LineRelease.objects.create(line=short, location=world.west, quantity=Decimal("4"), business_date=AS_OF, wave=wave,
                               actor=planner, released_at=timezone.now())
    [entry] = list(audit_rows(finance, AuditFilters(kind="wave")))
    assert (entry.actor, entry.order, entry.changes, entry.value) == ("pat", short.order.number,
                                                                      [("released", "", "4")], Decimal("40"))
    assert f"in wave #{wave.pk}" in entry.summary
    # and both show in the unfiltered trail, beside the run's decision
    kinds = {e.kind for e in audit_rows(finance, AuditFilters(order=short.order.number))}
    assert {"reason", "wave", "decision"} <= kinds
