"""bench_queue seeds and measures (a small smoke run on whichever database the suite uses)."""
import pytest
from django.core.management import CommandError, call_command

from exceptions.models import DecisionException


@pytest.mark.django_db
def test_bench_queue_refuses_sqlite_without_flag(settings):
    settings.DATABASE_IS_POSTGRES = False
    with pytest.raises(CommandError, match="measures PostgreSQL"):
        call_command("bench_queue", "--exceptions", "100")


@pytest.mark.django_db
def test_bench_queue_smoke(capsys):
    call_command("bench_queue", "--exceptions", "100", "--requests", "3", "--allow-sqlite")
    out = capsys.readouterr().out
    assert DecisionException.objects.filter(key__startswith="BENCH-").count() == 100
    assert "queue page (status=active, band=high, sort=sla): n=3" in out
    assert "claim action (POST, redirect): n=3" in out
