"""Fixtures of the audit tests: the exceptions tests' small distributor, a policy, a run."""
import datetime as dt

import pytest

from tests.exceptions.conftest import NOW, World


@pytest.fixture
def world(db):
    from django.apps import apps

    from exceptions.models import Queue

    if not Queue.objects.exists():
        import importlib

        importlib.import_module("exceptions.migrations.0003_default_queues").create_defaults(apps, None)
    return World()


def policy_document(name: str, strategy: str = "redistribute") -> dict:
    return {"name": name, "rules": [{"scope": {}, "settings": {"strategy": strategy}}], "protections": [], "quotas": []}


@pytest.fixture
def active_policy(db):
    from policies.services import import_document

    return import_document(policy_document("baseline"), actor=None, activate=True)


@pytest.fixture
def run_all(in_process_tasks):
    """A full run as of the business date; returns the run."""
    from allocation.services import run_full

    def run():
        found = run_full(as_of=dt.date(2026, 6, 1))
        assert found.status == "succeeded", found.error
        return found

    return run


__all__ = ["NOW"]
