"""``manage.py check_integrity`` (allocation/integrity.py).

Unit tests build a tiny world with the ORM and break one thing per test; the PostgreSQL test
dumps a real world (the valves scenario through ingest, processing and a full run) with
``pg_dump -Fc``, restores it into a fresh database with ``pg_restore --clean --if-exists`` and
runs the command there as a separate process — clean — then corrupts the restored copy and
sees the command report it and exit 1.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from allocation import integrity
from allocation.models import (
    Allocation,
    AllocationRun,
    Customer,
    InventoryPosition,
    Item,
    LineDecisionCurrent,
    LineDecisionLog,
    Location,
    Order,
    OrderLine,
    RunStatus,
    Supply,
)
from integrations.models import Event, OutboxMessage, Source
from tests.runs import conftest as runs

valves_policy = runs.valves_policy  # the valves scenario fixtures of the run tests
ingest_events = runs.ingest_events
valves_stage1 = runs.valves_stage1
_fast_password_hashing = runs._fast_password_hashing

ROOT = Path(__file__).resolve().parent.parent
NOW = timezone.now()


def _statuses(report: integrity.IntegrityReport) -> dict[str, str]:
    return {check.name: check.status for check in report.checks}


def _check(report: integrity.IntegrityReport, name: str) -> integrity.CheckResult:
    return next(check for check in report.checks if check.name == name)


@pytest.fixture
def world(db):
    """One item at one location: 10 on hand (2 on hold), an inbound PO of 5, two lines of 4."""
    location = Location.objects.create(code="DC-1", name="DC 1", region="east", kind="warehouse")
    item = Item.objects.create(sku="VALVE-10", item_class="valves")
    customer = Customer.objects.create(code="C-1", name="C 1", tier=1, segment="hospital", region="east")
    order = Order.objects.create(number="SO-1", customer=customer, channel="edi", created_at=NOW, requested_date=dt.date(2026, 6, 2))
    lines = [OrderLine.objects.create(order=order, line=n, item=item, quantity=Decimal("4")) for n in (1, 2)]
    InventoryPosition.objects.create(location=location, item=item, on_hand=Decimal("10"), quality_hold=Decimal("2"), as_of=NOW)
    supply = Supply.objects.create(ref="PO-1", kind="purchase_order", item=item, location=location,
                                   quantity=Decimal("5"), eta=dt.date(2026, 6, 10))
    run = AllocationRun.objects.create(as_of=dt.date(2026, 6, 1), status=RunStatus.SUCCEEDED)

    def allocate(line, quantity, *, state="reserved", supply_=None):
        return Allocation.objects.create(line=line, item=item, location=location, supply=supply_, quantity=Decimal(quantity),
                                         confirmed_date=dt.date(2026, 6, 2), state=state, run_id=run.pk)

    allocate(lines[0], "4")
    allocate(lines[1], "3", supply_=supply)
    return {"location": location, "item": item, "lines": lines, "supply": supply, "run": run, "allocate": allocate}


def test_a_consistent_world_is_clean(world, capsys):
    report = integrity.check_integrity()
    assert report.ok, report.text()
    statuses = _statuses(report)
    assert statuses["audit_chain"] == "info"
    assert {name for name, status in statuses.items() if status != "ok"} == {"audit_chain"}
    call_command("check_integrity", "--json")
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "ok"
    assert set(out["checks"]) == {
        "allocations_within_supply", "runs_left_open", "outbox", "events_stuck", "decision_references",
        "history_tables", "audit_chain",
    }


def test_reserved_over_allocation_of_on_hand_is_a_problem(world, capsys):
    world["allocate"](world["lines"][1], "1")  # 4 + 1 = 5 on-hand allocated; 8 available: still fine
    assert integrity.check_allocations_within_supply().status == "ok"
    InventoryPosition.objects.update(warehouse_hold=Decimal("4"))  # available 10 - 2 - 4 = 4 < 5
    check = integrity.check_allocations_within_supply()
    assert check.status == "problem"
    assert "on-hand VALVE-10 at DC-1: allocated 5 (fixed 0), available 4" in check.findings[0].examples
    with pytest.raises(CommandError) as raised:
        call_command("check_integrity")
    assert raised.value.returncode == 1
    assert "allocations_within_supply" in str(raised.value)
    assert "over-allocated" in capsys.readouterr().out


def test_fixed_allocations_alone_over_supply_are_a_warning(world):
    Allocation.objects.filter(supply__isnull=True).update(state="released")
    InventoryPosition.objects.update(on_hand=Decimal("3"), quality_hold=0)
    check = integrity.check_allocations_within_supply()
    assert check.status == "warning"
    assert integrity.check_integrity().ok


def test_inbound_over_allocation_and_closed_supply(world):
    Supply.objects.update(quantity=Decimal("2"))
    check = integrity.check_allocations_within_supply()
    assert check.status == "problem"
    assert check.findings[0].examples == ["inbound PO-1: allocated 3 (fixed 0), available 2"]
    Supply.objects.update(quantity=Decimal("5"), status="cancelled")  # nothing left to allocate
    assert "available 0" in integrity.check_allocations_within_supply().findings[0].examples[0]


def test_allocation_against_another_items_supply(world):
    other = Item.objects.create(sku="VALVE-20", item_class="valves")
    Supply.objects.update(item=other)
    check = integrity.check_allocations_within_supply()
    assert any("another item or location" in finding.message for finding in check.findings)


def test_line_holding_more_than_its_open_quantity(world):
    OrderLine.objects.filter(pk=world["lines"][0].pk).update(shipped_quantity=Decimal("1"))
    check = integrity.check_allocations_within_supply()
    assert check.status == "problem"
    assert check.findings[-1].examples == ["SO-1/1: allocated 4, open 3"]


def test_runs_left_running_or_queued(world, settings):
    settings.ALLOT_RUN_LOST_SECONDS = 120
    settings.ALLOT_READY_QUEUED_RUN_SECONDS = 300
    assert integrity.check_runs_left_open(timezone.now()).status == "ok"
    live = AllocationRun.objects.create(as_of=dt.date(2026, 6, 1), status=RunStatus.RUNNING, heartbeat_at=timezone.now())
    assert integrity.check_runs_left_open(timezone.now()).status == "warning"
    AllocationRun.objects.filter(pk=live.pk).update(heartbeat_at=timezone.now() - dt.timedelta(minutes=10))
    check = integrity.check_runs_left_open(timezone.now())
    assert check.status == "problem"
    assert check.findings[0].examples[0].startswith(f"run #{live.pk}: last sign of life")
    AllocationRun.objects.filter(pk=live.pk).update(status=RunStatus.FAILED)
    queued = AllocationRun.objects.create(as_of=dt.date(2026, 6, 1), status=RunStatus.QUEUED)
    assert integrity.check_runs_left_open(timezone.now()).status == "info"
    AllocationRun.objects.filter(pk=queued.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))
    check = integrity.check_runs_left_open(timezone.now())
    assert check.status == "problem" and f"run #{queued.pk}" in check.findings[0].examples[0]


@pytest.mark.parametrize("fields, status, words", [
    ({"status": "sent", "attempts": 1}, "problem", "sent without a delivery time"),
    ({"status": "dead", "attempts": 8, "sent_at": NOW}, "problem", "delivered (sent_at set) yet pending or dead"),
    ({"status": "sent", "attempts": 0, "sent_at": NOW}, "problem", "sent without any attempt"),
    ({"status": "pending", "attempts": 8}, "problem", "pending after 8 attempts"),
    ({"status": "pending", "attempts": 1, "next_attempt_at": NOW + dt.timedelta(days=2)}, "problem", "due later than the longest backoff"),
    ({"status": "dead", "attempts": 2}, "warning", "dead letters with fewer than 8 attempts"),
])
def test_outbox_inconsistencies(db, fields, status, words):
    OutboxMessage.objects.create(message_id="reservation.changed:1:1", type="reservation.changed", payload={})
    assert integrity.check_outbox(timezone.now()).status == "ok"  # a fresh pending message
    OutboxMessage.objects.create(message_id="reservation.changed:1:2", type="reservation.changed", payload={}, **fields)
    check = integrity.check_outbox(timezone.now())
    assert check.status == status
    finding = next(finding for finding in check.findings if words in finding.message)
    assert finding.examples == ["reservation.changed:1:2"]


def test_events_pending_too_long(db, settings):
    settings.ALLOT_READY_PENDING_EVENT_SECONDS = 300
    source = Source.objects.create(code="erp", name="ERP", secret="s" * 32)

    def event(event_id, age):
        at = timezone.now() - dt.timedelta(seconds=age)
        Event.objects.create(source=source, event_id=event_id, type="item.upserted", occurred_at=at, data={},
                             body_hash="0" * 64, entity_key="item:X", received_at=at)

    event("fresh", 5)
    assert integrity.check_events_stuck(timezone.now()).status == "ok"
    event("old", 3600)
    check = integrity.check_events_stuck(timezone.now())
    assert check.status == "problem"
    assert check.findings[0].count == 1 and check.findings[0].examples[0].startswith("erp:old received")


def _log(line, run_id):
    return LineDecisionLog.objects.create(line=line, run_id=run_id, rank=1, score=0.5, strategy="fill", priority_class=3,
                                          fingerprint="f" * 64, created_at=timezone.now())


def test_decision_references(world):
    line_a, line_b = world["lines"]
    entry_a, entry_b = _log(line_a, world["run"].pk), _log(line_b, world["run"].pk)
    LineDecisionCurrent.objects.create(line=line_a, log=entry_a, fingerprint="f" * 64)
    assert integrity.check_decision_references().status == "ok"
    # Foreign keys are checked at commit: inside the test's transaction a dangling one can be written.
    dangling = _log(line_a, 987654)
    LineDecisionCurrent.objects.create(line=line_b, log=entry_a, fingerprint="f" * 64)  # another line's entry
    Allocation.objects.filter(line=line_b).update(run_id=987655)
    check = integrity.check_decision_references()
    assert check.status == "problem"
    messages = " | ".join(finding.message for finding in check.findings)
    assert "1 decision-log entries point at a missing run" in messages
    assert "1 current-decision pointers name a missing entry or another line's" in messages
    assert "1 allocations name a run that does not exist" in messages
    assert not any(f"entry {entry_b.pk} " in example for finding in check.findings for example in finding.examples)
    # Django checks deferred constraints when the test ends: take the dangling rows back.
    dangling.delete()
    LineDecisionCurrent.objects.filter(line=line_b).delete()


def test_history_tables(db, monkeypatch):
    pairs = integrity.audited_models()
    labels = {model._meta.label for model, _ in pairs}
    assert {"allocation.Item", "allocation.Order", "policies.PolicyVersion", "exceptions.DecisionException"} <= labels
    assert integrity.check_history_tables().status == "ok"
    real = connection.introspection.table_names
    monkeypatch.setattr(connection.introspection, "table_names", lambda *a, **k: [t for t in real(*a, **k) if t != "allocation_historicalitem"])
    check = integrity.check_history_tables()
    assert check.status == "problem"
    assert check.findings[0].examples == ["allocation.Item: allocation_historicalitem"]


def test_audit_chain_is_reported_absent(db):
    check = integrity.check_audit_chain()
    assert check.status == "info" and check.summary == "no audit chain"


# --- backup and restore on PostgreSQL -----------------------------------------------------------


def _pg_env(db: dict) -> dict[str, str]:
    env = {**os.environ, "PGHOST": db.get("HOST") or "127.0.0.1", "PGPORT": str(db.get("PORT") or 5432), "PGUSER": db["USER"] or ""}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    return env


def _run(command: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, **kwargs)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_dump_restore_into_a_fresh_database_then_check_integrity(valves_stage1, tmp_path):
    for tool in ("pg_dump", "pg_restore", "createdb", "dropdb", "psql"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (Debian's postgresql-client)")
    assert Allocation.objects.filter(state="reserved").exists()
    db = connection.settings_dict
    env = _pg_env(db)
    dump = tmp_path / "allot.dump"
    restored = f"{db['NAME']}_restored"

    # The README's procedure: a custom-format dump, a fresh database, restore, (migrate,) check.
    assert _run(["pg_dump", "-Fc", "--no-owner", "-f", str(dump), db["NAME"]], env).returncode == 0
    _run(["dropdb", "--if-exists", restored], env)
    assert _run(["createdb", restored], env).returncode == 0
    try:
        restore = _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "-d", restored, str(dump)], env)
        assert restore.returncode == 0, restore.stderr
        app_env = {
            **env, "DATABASE_URL": _database_url(restored), "ALLOT_ENV": "development", "REDIS_URL": "",
            "CELERY_BROKER_URL": "", "CELERY_RESULT_BACKEND": "", "CACHE_URL": "",
        }
        app_env.pop("PYTEST_VERSION", None)
        migrate = _run([sys.executable, "manage.py", "migrate", "--check"], app_env, cwd=ROOT)
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr

        clean = _run([sys.executable, "manage.py", "check_integrity", "--json"], app_env, cwd=ROOT)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        report = json.loads(clean.stdout)
        assert report["status"] == "ok" and report["database"] == "postgresql"
        expected = Allocation.objects.count()
        assert report["checks"]["allocations_within_supply"]["summary"].startswith(f"{expected} allocations")
        assert report["checks"]["decision_references"]["summary"] == f"{LineDecisionLog.objects.count()} decision-log entries"

        # Corrupt the restored copy: one reserved allocation beyond its supply, one run left running.
        table, runs_table = Allocation._meta.db_table, AllocationRun._meta.db_table
        corrupt = (
            f"UPDATE {table} SET quantity = quantity + 100000 WHERE id = (SELECT min(id) FROM {table} WHERE state = 'reserved');"
            f"UPDATE {runs_table} SET status = 'running', heartbeat_at = now() - interval '1 hour' WHERE id = (SELECT max(id) FROM {runs_table});"
        )
        assert _run(["psql", "-v", "ON_ERROR_STOP=1", "-d", restored, "-c", corrupt], env).returncode == 0
        broken = _run([sys.executable, "manage.py", "check_integrity", "--json"], app_env, cwd=ROOT)
        assert broken.returncode == 1, broken.stdout + broken.stderr
        report = json.loads(broken.stdout)
        assert report["status"] == "problem"
        assert report["checks"]["allocations_within_supply"]["status"] == "problem"
        assert report["checks"]["runs_left_open"]["status"] == "problem"
        assert report["checks"]["outbox"]["status"] == "ok"
        text = _run([sys.executable, "manage.py", "check_integrity"], app_env, cwd=ROOT)
        assert text.returncode == 1 and "over-allocated" in text.stdout and "without a heartbeat" in text.stdout
    finally:
        _run(["dropdb", "--if-exists", "--force", restored], env)


def _database_url(name: str) -> str:
    """The test database's URL with another database name."""
    from tests.fixtures.faults import database_url

    return database_url().rsplit("/", 1)[0] + "/" + name
