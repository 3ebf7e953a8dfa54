"""The Why page at a point in time, across a planner override and a policy change."""
import datetime as dt
import time

import pytest
from django.urls import reverse
from django.utils import timezone

from exceptions import services
from policies import services as policy_services
from tests.audit.conftest import policy_document


def _at(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat()


def _tick() -> dt.datetime:
    time.sleep(0.01)
    moment = timezone.now()
    time.sleep(0.01)
    return moment


@pytest.fixture
def history(world, active_policy, run_all, planner, approver, policy_admin, django_capture_on_commit_callbacks):
    world.stock(world.east, 100)
    line = world.line(world.hospital, 60, unit_price="10")
    world.line(world.shop, 80, unit_price="10")
    before_any = _tick()
    first_run = run_all()
    after_first = _tick()
    exception = world.exception(line)
    services.claim(exception.pk, actor=planner, expected_version=exception.version)
    exception.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        services.override(exception.pk, actor=planner, expected_version=exception.version, location="DC-EAST",
                          quantity="30", reason_code="expedite", note="half now, by phone")
    after_override = _tick()
    draft = policy_services.import_document(policy_document("fill first", strategy="fill"), actor=policy_admin)
    policy_services.submit(draft, actor=policy_admin)
    with django_capture_on_commit_callbacks(execute=True):
        policy_services.approve(draft, actor=approver, reason="quarter close")
    after_policy = _tick()
    return {"line": line, "first_run": first_run, "draft": draft, "times": (before_any, after_first, after_override, after_policy)}


def test_the_decision_in_force_at_each_time(client, history, finance, active_policy):
    client.force_login(finance)
    line = history["line"]
    url = reverse("allocation:line_why", args=[line.order.number, line.line])
    before_any, after_first, after_override, after_policy = history["times"]

    nothing = client.get(url, {"at": _at(before_any)})
    assert nothing.status_code == 200 and nothing.context["log"] is None
    assert b"No run had decided this line" in nothing.content

    first = client.get(url, {"at": _at(after_first)})
    log = first.context["log"]
    assert log.run_id == history["first_run"].pk
    assert log.policy_version_id == active_policy.pk
    assert [a["state"] for a in log.allocations] == ["reserved"]
    assert {s["name"]: s["value"] for s in first.context["view"].settings}["strategy"] == "redistribute"
    since = first.context["view"].since
    kinds = {e.kind for e in since}
    assert "override" in kinds and "decision" in kinds
    override = next(e for e in since if e.kind == "override")
    assert override.actor == "pat_planner" and "expedite" in override.summary
    assert [v.number for v in first.context["view"].policies_since] == [history["draft"].number]
    assert "quarter close" in first.content.decode()

    pinned = client.get(url, {"at": _at(after_override)}).context["log"]
    assert pinned.run_id != history["first_run"].pk
    assert ("pinned", "30") in [(a["state"], a["quantity"]) for a in pinned.allocations]  # the run gave the rest
    assert pinned.policy_version_id == active_policy.pk

    latest = client.get(url, {"at": _at(after_policy)})
    assert latest.context["log"].policy_version_id == history["draft"].pk
    assert latest.context["view"].later_log is None
    assert latest.context["view"].since == []


def test_a_bad_time_is_a_400_naming_the_field(client, history, finance):
    client.force_login(finance)
    line = history["line"]
    url = reverse("allocation:line_why", args=[line.order.number, line.line])
    for bad in ("yesterday", "2026-02-30T10:00", "9999-01-01T00:00", "2026-06-01T10:00\x00"):
        response = client.get(url, {"at": bad})
        assert response.status_code == 400, bad
