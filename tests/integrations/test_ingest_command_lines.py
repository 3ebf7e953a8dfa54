"""``manage.py ingest FILE.jsonl`` survives bad lines (issue 8): a line that is not JSON, is
nested too deep, is not UTF-8, is too long or is not a valid event is reported with its line
number and skipped; every other line is ingested and applied; the exit status (2) says some
lines were bad."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError
from django.db import connections

from allocation.models import Location
from integrations.models import Event

pytestmark = pytest.mark.django_db


def location_event(number: int, code: str) -> bytes:
    return json.dumps({
        "id": f"erp-{number:04d}", "type": "location.upserted", "source": "erp", "occurred_at": "2026-05-31T18:00:00Z",
        "data": {"code": code, "name": code, "region": "east", "kind": "warehouse"},
    }).encode()


@pytest.fixture
def bad_file(tmp_path, settings):
    settings.ALLOT_MAX_BATCH_BYTES = 20_000
    lines = [
        location_event(1, "DC-1"),                               # 1 good
        b"[" * 100_000 + b"]" * 100_000,                          # 2 too long for the limit
        b"[" * 5_000 + b"]" * 5_000,                              # 3 nested far too deep (RecursionError before)
        b"{not json",                                             # 4
        b'{"id": "erp-9", "type": "location.upserted", "note": "\xff\xfe"}',  # 5 not UTF-8
        b"NaN",                                                   # 6 not JSON either
        b"",                                                      # 7 blank: ignored
        json.dumps({"id": "erp-0005", "type": "location.upserted", "source": "erp"}).encode(),  # 8 invalid event
        location_event(2, "DC-2"),                                # 9 good
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_bad_lines_are_named_and_skipped_and_the_rest_is_applied(bad_file):
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError) as failed:
        call_command("ingest", str(bad_file), stdout=out, stderr=err)

    report = err.getvalue()
    assert failed.value.returncode == 2
    assert str(failed.value) == "6 of 8 lines were not ingested (named above); the other lines were."
    assert "line 2: skipped, longer than 20000 bytes" in report
    assert "line 3: skipped, the JSON body is nested more than 32 levels deep" in report
    assert "line 4: skipped, malformed JSON" in report
    assert "line 5: skipped, malformed JSON" in report
    assert "line 6: skipped, malformed JSON: NaN is not valid JSON" in report
    assert "line 7" not in report
    assert "line 8: rejected 'erp-0005': " in report and "occurred_at" in report
    assert out.getvalue().strip() == (
        "stored 2, duplicates 0, rejected 1, applied 2, stale 0, parked 0, failed 0, pending 0, unreadable 5"
    )
    assert sorted(Location.objects.values_list("code", flat=True)) == ["DC-1", "DC-2"]
    assert Event.objects.filter(status="applied").count() == 2


def test_the_exit_status_of_the_command_line_says_some_lines_were_bad(bad_file, capsys, monkeypatch):
    # run_from_argv closes every connection when it ends, the test's own one included.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "ingest", str(bad_file)])

    assert exited.value.code == 2
    assert "line 3: skipped" in capsys.readouterr().err
    assert Location.objects.count() == 2


def test_a_clean_file_exits_zero(tmp_path):
    path = tmp_path / "good.jsonl"
    path.write_bytes(location_event(1, "DC-1") + b"\n" + location_event(2, "DC-2"))
    out = StringIO()

    call_command("ingest", str(path), stdout=out)

    assert out.getvalue().strip() == "stored 2, duplicates 0, rejected 0, applied 2, stale 0, parked 0, failed 0, pending 0"
