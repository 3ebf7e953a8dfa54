"""``bench_allocation --json``: the benchmark contract of issue 14 (a small run on SQLite or PostgreSQL)."""
import io
import json

import pytest
from django.core.management import call_command

from allocation.management.commands.bench_allocation import JSON_KEYS

NUMBERS = (int, float)


@pytest.mark.django_db(transaction=True)
def test_bench_allocation_json_last_line_has_the_contract(in_process_tasks):
    out = io.StringIO()
    call_command(
        "bench_allocation", "--lines", "300", "--incremental", "3", "--incremental-largest", "2",
        "--actions", "2", "--floor-rows", "500", "--json", stdout=out,
    )
    printed = out.getvalue().strip().splitlines()
    human = "\n".join(printed[:-1])
    figures = json.loads(printed[-1])

    # The human-readable lines are still there, before the JSON line.
    assert "cold full run:" in human and "warm full run:" in human
    assert "incremental single-event runs, small groups (3)" in human
    assert "incremental single-event runs, largest groups (2)" in human
    assert "floor: read" in human and "planner overrides through the service (2" in human

    missing = [key for key in (*JSON_KEYS, "notes") if key not in figures]
    assert not missing
    for key in JSON_KEYS:
        assert isinstance(figures[key], NUMBERS) and not isinstance(figures[key], bool), (key, figures[key])
        assert figures[key] >= 0, (key, figures[key])
    assert 270 <= figures["lines"] <= 300  # open lines the run decided, about the requested count
    assert figures["cold_s"] > 0 and figures["warm_s"] > 0 and figures["engine_lines_per_s"] > 0
    assert 0 < figures["largest_group_lines"] <= figures["lines"]
    assert figures["incr_p50_ms_small"] <= figures["incr_p95_ms_small"]
    assert figures["incr_p50_ms_largest"] <= figures["incr_p95_ms_largest"]
    assert figures["incr_n_small"] == 3 and figures["incr_n_largest"] == 2
    assert figures["action_n"] == 2 and figures["action_p95_ms"] > 0
    assert figures["action_run_mode"] == "inline"  # commands run without a background thread
    assert figures["floor_read_copy_s"] > 0 and figures["floor_rows_copied"] == 500
    assert "inline" in figures["notes"] and "received_at" in figures["notes"]
    if figures["database"] == "sqlite":
        assert "executemany" in figures["notes"]
    else:
        assert "COPY" in figures["notes"]
