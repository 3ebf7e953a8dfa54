"""No request waits on a run (issue 14): planner actions, approvals and policy activation commit
and answer at once; their run executes after commit on the serving process's background thread
(``config.inprocess``) or on a worker; the page follows it ("recalculating") and refreshes."""
from __future__ import annotations

import datetime as dt
import json
import os
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from allocation import services as allocation_services
from allocation.heartbeat import RunHeartbeat
from allocation.models import Allocation, AllocationRun
from config import inprocess
from exceptions.models import ApprovalRequest
from tests.fixtures.faults import wait_until

BACKGROUND = inprocess.executor.name
SCENARIOS = Path(__file__).resolve().parents[1] / "data" / "scenarios"


@pytest.fixture
def background(settings, in_process_tasks):
    """No broker: published tasks go to the background thread; all finished when the test ends."""
    settings.ALLOT_INPROCESS_BACKGROUND = True
    yield inprocess.executor
    assert inprocess.executor.wait_idle(60), "background jobs still running"


@pytest.fixture
def gate(background):
    """The background thread is busy until the test opens the gate (a run queued meanwhile waits)."""
    opened, busy = threading.Event(), threading.Event()

    def hold() -> None:
        busy.set()
        opened.wait(30)

    background.submit(hold)
    assert busy.wait(5)
    yield opened
    opened.set()


@pytest.fixture
def executions(monkeypatch):
    """Which thread executed each run (execute_run is what every path ends in)."""
    seen: list[tuple[int, str]] = []
    original = allocation_services.execute_run

    def recording(run):
        seen.append((run.pk, threading.current_thread().name))
        return original(run)

    monkeypatch.setattr(allocation_services, "execute_run", recording)
    return seen


@pytest.fixture
def contested(world):
    """A hospital line short of 10 (holds 10 of its 20) and a shop line holding 30 of DC-EAST's 40."""
    world.stock(world.east, 40)
    world.stock(world.west, 5)
    hospital = world.line(world.hospital, 20, unit_price="10")
    shop = world.line(world.shop, 30, unit_price="10")
    world.allocate(hospital, world.east, 10)
    world.allocate(shop, world.east, 30)
    return hospital, shop, world.exception(hospital)


def _held(line):
    return sorted(
        (a.location.code, a.state, a.quantity) for a in Allocation.objects.filter(line=line).select_related("location")
    )


def _override(client, exception, location="DC-WEST", quantity="5"):
    return client.post(
        reverse("exceptions:exception_action", args=[exception.pk, "override"]),
        {"version": exception.version, "location": location, "quantity": quantity, "reason_code": "expedite", "note": "rush"},
    )


# --------------------------------------------------------------------------- (a) answers first


@pytest.mark.django_db(transaction=True)
def test_an_override_answers_before_its_run_executes(client, planner, contested, gate, background, executions):
    hospital, shop, exception = contested
    client.force_login(planner)
    response = _override(client, exception)
    # Answered while the background thread is still busy: the run waits, queued.
    assert response.status_code == 302
    run = AllocationRun.objects.get()
    assert response["Location"].endswith(f"/exceptions/{exception.pk}/?run={run.pk}")
    assert (run.trigger, run.status, run.scope_items) == ("override", "queued", ["VALVE-10"])
    assert executions == []
    assert _held(hospital) == [("DC-WEST", "pinned", Decimal("5.000"))]  # the change itself is committed
    page = client.get(response["Location"])
    assert b"Recalculating" in page.content and f'hx-get="/runs/{run.pk}/status/?poll=1"'.encode() in page.content

    gate.set()
    assert background.wait_idle(30)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert executions == [(run.pk, BACKGROUND)]
    # The run re-decided the group: the hospital ranks first and takes the rest at DC-EAST.
    assert _held(hospital) == [("DC-EAST", "reserved", Decimal("15.000")), ("DC-WEST", "pinned", Decimal("5.000"))]
    assert _held(shop) == [("DC-EAST", "reserved", Decimal("25.000"))]
    page = client.get(response["Location"])
    assert b"Decisions updated." in page.content and b"every 1s" not in page.content


@pytest.mark.django_db(transaction=True)
def test_actions_while_a_run_waits_merge_into_it(planner, world, gate, background, executions):
    from exceptions import services

    world.stock(world.east, 40)
    other_item = world.substitute
    world.stock(world.east, 10, item=other_item)
    first = world.line(world.hospital, 10)
    second = world.line(world.shop, 10)
    second.item = other_item
    second.save()
    world.allocate(first, world.east, 10)
    world.allocate(second, world.east, 10, item=other_item)
    one, two = world.exception(first), world.exception(second)
    a = services.hold(one.pk, actor=planner, expected_version=one.version)
    b = services.hold(two.pk, actor=planner, expected_version=two.version)
    assert a.run.pk == b.run.pk  # coalesced: one queued run for both
    assert AllocationRun.objects.get().scope_items == ["VALVE-10", "VALVE-10B"]
    gate.set()
    assert background.wait_idle(30)
    run = AllocationRun.objects.get()
    assert (run.status, executions) == ("succeeded", [(run.pk, BACKGROUND)])


# --------------------------------------------------------------------------- (b) approvals, policies


@pytest.mark.django_db(transaction=True)
def test_an_approved_override_queues_an_approval_run_the_request_does_not_execute(
    client, planner, approver, world, gate, background, executions
):
    from exceptions import services

    world.stock(world.east, 2000)
    line = world.line(world.hospital, 1500, unit_price="10")  # worth 15,000: needs an approver
    exception = world.exception(line)
    waiting = services.override(
        exception.pk, actor=planner, expected_version=exception.version, location="DC-EAST", quantity="1500",
        reason_code="customer_commitment", note="ward reopening",
    )
    assert waiting.approval is not None and AllocationRun.objects.count() == 0
    client.force_login(approver)
    approval = ApprovalRequest.objects.get()
    response = client.post(reverse("exceptions:approval_decide", args=[approval.pk]), {"decision": "approve", "reason": "ok"})
    assert response.status_code == 302
    run = AllocationRun.objects.get()
    assert (run.trigger, run.status, run.actor) == ("approval", "queued", approver)
    assert response["Location"].endswith(f"?run={run.pk}")
    assert _held(line) == [("DC-EAST", "pinned", Decimal("1500.000"))]
    gate.set()
    assert background.wait_idle(30)
    run.refresh_from_db()
    assert run.status == "succeeded" and executions == [(run.pk, BACKGROUND)]


def _submitted_draft(policy_admin, *, effective_from=None):
    from policies import services as policy_services

    document = json.loads((SCENARIOS / "valves.policy.json").read_text())
    if effective_from is not None:
        document["effective_from"] = effective_from.isoformat()
    draft = policy_services.import_document(document, actor=policy_admin)
    policy_services.submit(draft, actor=policy_admin)
    return draft


@pytest.mark.django_db(transaction=True)
def test_approving_a_policy_starts_the_reallocation_by_itself(
    client, policy_admin, approver, contested, gate, background, executions
):
    draft = _submitted_draft(policy_admin)
    client.force_login(approver)
    response = client.post(reverse("policies:version_approve", args=[draft.pk]), {"reason": "ok"})
    assert response.status_code == 302
    run = AllocationRun.objects.get()
    assert (run.trigger, run.scope, run.status) == ("policy", "full", "queued")
    assert response["Location"].endswith(f"?run={run.pk}")
    assert executions == []
    gate.set()
    assert background.wait_idle(30)
    run.refresh_from_db()
    draft.refresh_from_db()
    assert draft.status == "active"
    assert (run.status, run.policy_version_id) == ("succeeded", draft.pk)  # the run used the new version
    assert executions == [(run.pk, BACKGROUND)]


@pytest.mark.django_db(transaction=True)
def test_a_policy_activated_at_its_effective_date_starts_its_run(policy_admin, approver, contested, background, executions):
    from policies import services as policy_services

    later = timezone.now() + dt.timedelta(hours=1)
    draft = _submitted_draft(policy_admin, effective_from=later)
    policy_services.approve(draft, actor=approver)
    assert AllocationRun.objects.count() == 0  # approved, not active yet: nothing to re-allocate
    assert policy_services.activate_due_versions(now=later + dt.timedelta(seconds=1)) == [draft]
    assert background.wait_idle(30)
    run = AllocationRun.objects.get()
    assert (run.trigger, run.scope, run.status, run.policy_version_id) == ("policy", "full", "succeeded", draft.pk)
    assert executions == [(run.pk, BACKGROUND)]


def test_a_policy_approval_without_background_still_records_a_policy_run(
    policy_admin, approver, contested, in_process_tasks, django_capture_on_commit_callbacks
):
    """Tasks eager (tests, commands): the activation's run executes right after the commit."""
    from policies import services as policy_services

    draft = _submitted_draft(policy_admin)
    with django_capture_on_commit_callbacks(execute=True):
        version = policy_services.approve(draft, actor=approver)
    run = AllocationRun.objects.get()
    assert version.reallocation_run.pk == run.pk
    assert (run.trigger, run.status, run.policy_version_id) == ("policy", "succeeded", draft.pk)


# --------------------------------------------------------------------------- (c) the status partial


def test_the_status_partial_shows_phase_and_progress_then_the_finished_state(client, planner, contested):
    run = AllocationRun.objects.create(
        trigger="override", scope="items", scope_items=["VALVE-10"], as_of=dt.date(2026, 6, 1), status="running",
        progress=5, phase="loading",
    )
    client.force_login(planner)
    url = reverse("allocation:run_status", args=[run.pk]) + "?poll=1"
    with RunHeartbeat(run.pk) as heartbeat:  # SQLite: the phase lives in this process until commit
        heartbeat.phase("ranking and allocating 2 lines", 40)
        running = client.get(url, HTTP_HX_REQUEST="true")
    body = running.content.decode()
    assert running.status_code == 200 and "HX-Refresh" not in running
    assert "Recalculating" in body and "40%" in body and "ranking and allocating 2 lines" in body
    assert 'hx-trigger="every 1s"' in body

    AllocationRun.objects.filter(pk=run.pk).update(
        status="succeeded", progress=100, phase="done", line_count=2, changed_line_count=1, exceptions_resolved=1,
        timings={"total": 0.25}, finished_at=timezone.now(),
    )
    finished = client.get(url, HTTP_HX_REQUEST="true")
    body = finished.content.decode()
    assert finished["HX-Refresh"] == "true"  # the page reloads with the decisions that landed
    assert "Decisions updated." in body and "1 of 2 lines changed" in body and "1 resolved" in body
    assert "every 1s" not in body

    AllocationRun.objects.filter(pk=run.pk).update(status="failed", error="OperationalError: disk full")
    failed = client.get(reverse("allocation:run_status", args=[run.pk]))
    assert "Recalculation failed." in failed.content.decode() and "disk full" in failed.content.decode()


def test_the_runs_screen_shows_the_live_phase_of_a_running_run(client, planner):
    run = AllocationRun.objects.create(trigger="policy", as_of=dt.date(2026, 6, 1), status="running", progress=5, phase="loading")
    client.force_login(planner)
    with RunHeartbeat(run.pk) as heartbeat:
        heartbeat.phase("persisting decisions of 20,000 lines, 312 exceptions", 70)
        page = client.get(reverse("allocation:run_list")).content.decode()
    assert "70% · persisting decisions of 20,000 lines, 312 exceptions" in page
    assert "Policy activation" in page


def test_a_page_with_a_bad_run_parameter_shows_no_block(client, planner, contested):
    _h, _s, exception = contested
    client.force_login(planner)
    for value in ("abc", "99999", "1" * 40):
        page = client.get(reverse("exceptions:exception_detail", args=[exception.pk]), {"run": value})
        assert page.status_code == 200 and b'id="run-follow"' not in page.content


# --------------------------------------------------------------------------- (d) with a worker


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_with_a_broker_an_overrides_run_executes_on_the_worker(client, planner, contested, worker_processes):
    hospital, _shop, exception = contested
    worker = worker_processes()
    client.force_login(planner)
    response = _override(client, exception)
    assert response.status_code == 302
    run = AllocationRun.objects.get()
    wait_until(lambda: AllocationRun.objects.filter(pk=run.pk, status__in=["succeeded", "failed"]).exists(), 60, "the run")
    run.refresh_from_db()
    assert run.status == "succeeded", run.error + worker.output()
    assert run.worker.endswith(f"pid {worker.pid}") and not run.worker.endswith(f"pid {os.getpid()}")
    assert ("DC-EAST", "reserved", Decimal("15.000")) in _held(hospital)
