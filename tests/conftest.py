"""Shared test setup. Fixtures live in tests/fixtures/ modules registered here.

The suite runs on SQLite by default and again on PostgreSQL (DATABASE_URL) with a real
Celery worker on Redis (REDIS_URL) where those answer; tests marked ``postgres`` or
``worker`` are skipped when their service is not configured.
"""
import os

import pytest
from django.conf import settings

pytest_plugins = ["tests.fixtures.personas", "tests.fixtures.read_data"]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    on_postgres = settings.DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")
    has_broker = bool(settings.CELERY_BROKER_URL)
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    skip_worker = pytest.mark.skip(reason="needs Redis and a Celery worker (set REDIS_URL)")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)
        if "worker" in item.keywords and not (has_broker and on_postgres):
            item.add_marker(skip_worker)


@pytest.fixture(autouse=True)
def _business_date(settings):
    """Tests run on a pinned business date unless they set another."""
    import datetime as dt

    settings.ALLOT_BUSINESS_DATE = dt.date(2026, 6, 1)
