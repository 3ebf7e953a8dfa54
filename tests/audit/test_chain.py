"""Tamper evidence: runs seal their decision-log entries, verify_audit names the first broken entry."""
import io

import pytest
from django.core.management import call_command
from django.db import connection

from allocation.audit import chain
from allocation.models import (
    AuditChainHead,
    AuditSeal,
    AuditVerification,
    LineDecisionCurrent,
    LineDecisionLog,
)


def _verify_command(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_audit", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def decided(world, active_policy, run_all):
    world.stock(world.east, 100)
    lines = [world.line(world.hospital, 60), world.line(world.shop, 80)]
    run = run_all()
    return run, lines


def test_a_run_seals_every_decision_it_logs_and_the_chain_verifies(decided):
    run, lines = decided
    logs = list(LineDecisionLog.objects.filter(run=run).order_by("id").values_list("id", flat=True))
    assert len(logs) == 2
    seals = list(AuditSeal.objects.filter(stream="decision").order_by("seq"))
    assert [s.source_id for s in seals] == logs
    assert [s.seq for s in seals] == [1, 2]
    assert bytes(seals[0].prev_hash) == chain.GENESIS
    assert bytes(seals[1].prev_hash) == bytes(seals[0].hash)
    assert bytes(seals[1].hash) == chain.link(bytes(seals[0].hash), bytes(seals[1].content_hash))
    head = AuditChainHead.objects.get(stream="decision")
    assert (head.seq, bytes(head.hash)) == (2, bytes(seals[1].hash))

    code, out, _ = _verify_command()
    assert code == 0, out
    assert out.startswith("OK: ")
    assert AuditVerification.objects.get().ok is True


def test_changing_one_decision_log_row_with_sql_is_named_by_verify_audit(decided):
    run, lines = decided
    target = LineDecisionLog.objects.filter(run=run).order_by("id").last()
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {LineDecisionLog._meta.db_table} SET shortfall = 0, rank = 99 WHERE id = %s", [target.pk])

    code, _, err = _verify_command()

    assert code == 1
    assert f"decision log entry #{target.pk}" in err
    assert "content changed" in err
    verification = AuditVerification.objects.get()
    assert verification.ok is False
    assert f"#{target.pk}" in verification.problem


def test_a_row_inserted_outside_a_run_and_a_deleted_row_are_named(decided, world):
    run, lines = decided
    first = LineDecisionLog.objects.filter(run=run).order_by("id").first()
    forged = LineDecisionLog.objects.create(
        line=first.line, run=run, rank=1, score=1.0, strategy="win", priority_class=1, fingerprint="forged",
        created_at=first.created_at,
    )
    code, _, err = _verify_command("--since", "2026-01-01")
    assert code == 1
    assert f"decision log entry #{forged.pk}: it has no seal" in err

    forged.delete()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {LineDecisionCurrent._meta.db_table} WHERE log_id = %s", [first.pk])
        cursor.execute(f"DELETE FROM {LineDecisionLog._meta.db_table} WHERE id = %s", [first.pk])
    code, _, err = _verify_command()
    assert code == 1
    assert f"decision log entry #{first.pk}" in err and "deleted" in err


def test_audit_records_are_sealed_and_a_changed_history_row_is_named(decided, world, planner):
    from exceptions.models import DecisionException

    exception = world.exception(lines := decided[1][0])
    assert lines is not None
    from exceptions import services

    services.claim(exception.pk, actor=planner, expected_version=exception.version)
    sealed = chain.seal_pending()
    assert sealed["history.exception"] >= 2
    assert _verify_command()[0] == 0

    history = DecisionException.history.model
    row = history.objects.filter(id=exception.pk).order_by("-history_id").first()
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {history._meta.db_table} SET history_change_reason = 'nothing happened' WHERE history_id = %s",
                       [row.history_id])
    code, _, err = _verify_command()
    assert code == 1
    assert f"exception history record #{row.history_id}" in err


def test_a_bad_since_date_is_refused():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not a date"):
        call_command("verify_audit", "--since", "yesterday")


def test_the_audit_screen_shows_the_last_verification(client, decided, finance):
    client.force_login(finance)
    assert "not verified yet" in client.get("/audit/").content.decode()
    assert _verify_command()[0] == 0
    assert "chains intact" in client.get("/audit/").content.decode()
    target = LineDecisionLog.objects.order_by("id").first()
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {LineDecisionLog._meta.db_table} SET strategy = 'win' WHERE id = %s", [target.pk])
    assert _verify_command()[0] == 1
    page = client.get("/audit/").content.decode()
    assert "chain broken" in page and f"First broken entry: decision log entry #{target.pk}" in page


def test_the_beat_verifies_daily_and_seals_often(settings):
    from allocation.audit import tasks

    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["verify-audit-daily"]["task"] == tasks.verify_audit_task.name
    assert schedule["seal-audit-records"]["task"] == tasks.seal_audit_task.name
    assert "allocation.audit.tasks" in settings.CELERY_IMPORTS
