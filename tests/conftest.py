"""Shared test setup. Fixtures live in tests/fixtures/ modules registered here.

The suite runs on SQLite by default and again on PostgreSQL (DATABASE_URL) with a real
Celery worker on Redis (REDIS_URL) where those answer; tests marked ``postgres`` or
``worker`` are skipped when their service is not configured.
"""
import os

import pytest
from django.conf import settings

pytest_plugins = ["tests.fixtures.personas", "tests.fixtures.read_data", "tests.fixtures.tasks", "tests.fixtures.faults"]

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# Browser tests (marker ``browser``) drive Debian's Chromium through pytest-playwright's ``page``;
# a browser is never downloaded. ``.ci/run`` installs the package when it is missing.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args():
    """Debian's Chromium, headless, with nothing reaching out to the network."""
    return {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


def pytest_collection_modifyitems(config, items):
    on_postgres = settings.DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")
    has_broker = bool(settings.CELERY_BROKER_URL)
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    skip_worker = pytest.mark.skip(reason="needs Redis and a Celery worker (set REDIS_URL)")
    has_chromium = os.path.exists(CHROMIUM)
    skip_browser = pytest.mark.skip(reason=f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords and not has_chromium:
            item.add_marker(skip_browser)
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)
        if "worker" in item.keywords and not (has_broker and on_postgres):
            item.add_marker(skip_worker)


def _is_transactional(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    if marker is not None and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])):
        return True
    return bool({"transactional_db", "live_server"} & set(request.fixturenames))


@pytest.fixture(autouse=True)
def _baseline_data(request):
    """Transactional tests start from a flushed database: put back what migrations seed.

    Rows written by data migrations (role groups, the default policy, the default queues and
    routing rules) are gone after any earlier transactional test's flush; serialized rollback
    would restore them but clashes with the content types ``post_migrate`` re-creates, so we
    re-run the same idempotent seeding functions instead.
    """
    if not _is_transactional(request):
        yield
        return
    import importlib

    from django.apps import apps

    request.getfixturevalue("transactional_db")
    for module, function in (
        ("allocation.migrations.0001_groups", "create_groups"),
        ("policies.migrations.0002_default_policy", "create_default_policy"),
        ("exceptions.migrations.0003_default_queues", "create_defaults"),
    ):
        getattr(importlib.import_module(module), function)(apps, None)
    yield


@pytest.fixture(autouse=True, scope="session")
def _tasks_in_the_caller():
    """Published tasks run in the caller (eager) unless a test turns the background thread on
    (``config.inprocess``): most tests assert right after an action."""
    settings.ALLOT_INPROCESS_BACKGROUND = False


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """A cheap password hasher: tests log users in by the hundred."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _business_date(settings):
    """Tests run on a pinned business date unless they set another."""
    import datetime as dt

    settings.ALLOT_BUSINESS_DATE = dt.date(2026, 6, 1)
