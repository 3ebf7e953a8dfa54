"""Fixtures of the run-screen tests: the valves scenario through the real stack (Chromium: tests/conftest.py).

The scenario goes in the way production data does: events through
``integrations.services.ingest`` + ``process_pending``, the policy through
``policies.services.import_document``, then ``allocation.services.run_full``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).resolve().parent.parent / "data" / "scenarios"


def scenario_events(name: str) -> list[dict]:
    return [json.loads(line) for line in (SCENARIOS / name).read_text().splitlines() if line.strip()]


def scenario_policy() -> dict:
    return json.loads((SCENARIOS / "valves.policy.json").read_text())


def load_valves(capture_on_commit) -> None:
    """Import and activate the valves policy, ingest valves-1 and apply it (its runs included)."""
    from integrations.services import ingest, process_pending
    from policies.services import import_document

    import_document(scenario_policy(), actor=None, activate=True)
    with capture_on_commit(execute=True):
        ingest(scenario_events("valves-1.jsonl"), actor=None, via="file")
        process_pending()


@pytest.fixture
def valves(db, in_process_tasks, django_capture_on_commit_callbacks):
    """valves-1 under the valves policy, then a full manual run; returns that run."""
    from allocation.services import run_full

    load_valves(django_capture_on_commit_callbacks)
    run = run_full(trigger="manual")
    assert run.status == "succeeded", run.error
    return run
