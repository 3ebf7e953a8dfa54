"""Security hardening (issue 8): webhook signatures over timestamp and body, the login throttle,
the shared API throttle cache, password validators, expiring and revocable tokens, production
settings (SECRET_KEY required, ``check --deploy`` clean), integration tokens bound to their
sources and source auto-registration only in the embedded default."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config import roles
from config.auth import SharedUserRateThrottle
from integrations.models import Event, Source
from integrations.services import register_source
from tests.fixtures.personas import make_user

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
EVENTS_URL = "/api/v1/events"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def location_event(event_id: str, source: str = "erp") -> dict:
    return {
        "id": event_id, "type": "location.upserted", "source": source, "occurred_at": "2026-05-31T18:00:00Z",
        "data": {"code": "DC-1", "name": "One", "region": "east", "kind": "warehouse"},
    }


# ---------------------------------------------------------------- 1. webhook HMAC over timestamp and body


def _post_webhook(source: Source, body: bytes, *, timestamp: str, signature: str):
    return APIClient().post(
        f"/api/v1/webhooks/{source.code}", data=body, content_type="application/json",
        HTTP_X_ALLOT_SIGNATURE=signature, HTTP_X_ALLOT_TIMESTAMP=timestamp,
    )


def _sign(secret: str, message: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def test_webhook_signature_covers_the_timestamp_so_a_captured_request_cannot_be_replayed_later():
    wms = register_source(code="wms")
    body = json.dumps(location_event("w-1", source="wms")).encode()
    sent = str(int(time.time()) - 200)
    captured = _sign(wms.secret, sent.encode() + b"." + body)
    assert _post_webhook(wms, body, timestamp=sent, signature=captured).status_code == 202

    # The attacker replays the captured body and signature under a fresh timestamp.
    replay = _post_webhook(wms, body, timestamp=str(int(time.time())), signature=captured)
    assert replay.status_code == 401
    assert replay.json() == {"detail": "missing or invalid signature"}
    assert Event.objects.count() == 1


def test_webhook_signature_of_the_body_alone_is_refused():
    wms = register_source(code="wms")
    body = json.dumps(location_event("w-1", source="wms")).encode()
    response = _post_webhook(wms, body, timestamp=str(int(time.time())), signature=_sign(wms.secret, body))
    assert response.status_code == 401
    assert Event.objects.count() == 0


def test_webhook_with_a_non_ascii_signature_is_401_not_500():
    wms = register_source(code="wms")
    response = _post_webhook(wms, b"{}", timestamp=str(int(time.time())), signature="sha256=\u00e9\u00e9")
    assert response.status_code == 401


# ---------------------------------------------------------------- 2. login throttle and lockout


def _login(client: Client, username: str, password: str, ip: str = "10.0.0.7"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_thirty_wrong_passwords_lock_the_login_and_the_right_one_is_refused_meanwhile(settings):
    user = make_user("lena_locked", roles.PLANNER)
    client = Client()
    codes = [_login(client, "lena_locked", f"wrong-{i}").status_code for i in range(30)]
    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 5
    assert codes[: limit - 1] == [200] * (limit - 1)  # the form again, "didn't match"
    assert codes[limit - 1 :] == [429] * (30 - limit + 1)

    locked = _login(client, "lena_locked", "pw-lena_locked")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert "15 minutes" in locked.content.decode()
    assert "_auth_user_id" not in client.session

    # The audit: every failure and the lock itself are recorded.
    attempt = AccessAttempt.objects.get(username="lena_locked", ip_address="10.0.0.7")
    assert attempt.failures_since_start >= limit
    assert AccessFailureLog.objects.filter(username="lena_locked", locked_out=True).exists()
    assert AccessFailureLog.objects.filter(username="lena_locked").count() >= limit

    # Another address is not locked out (the lock is per username and address) ...
    other = Client()
    assert _login(other, "lena_locked", "pw-lena_locked", ip="10.0.0.8").status_code == 302
    # ... and after the cool-off the right password works again from the first address.
    AccessAttempt.objects.filter(username="lena_locked").update(attempt_time=timezone.now() - dt.timedelta(minutes=16))
    assert _login(client, "lena_locked", "pw-lena_locked").status_code == 302
    assert int(client.session["_auth_user_id"]) == user.pk


def test_a_successful_login_resets_the_failure_count():
    make_user("rita_reset", roles.PLANNER)
    client = Client()
    for i in range(4):
        assert _login(client, "rita_reset", f"wrong-{i}").status_code == 200
    assert _login(client, "rita_reset", "pw-rita_reset").status_code == 302
    for i in range(4):
        assert _login(Client(), "rita_reset", f"wrong-again-{i}").status_code == 200
    assert _login(Client(), "rita_reset", "pw-rita_reset").status_code == 302


# ---------------------------------------------------------------- 3. shared throttle cache


def _settings_in_subprocess(env: dict[str, str], expression: str) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter with exactly ``env`` on top of a clean one."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "CACHE_URL", "CELERY_", "SECRET_KEY", "ALLOT_", "DEBUG", "PYTEST"))}
    code = f"import django; django.setup(); from django.conf import settings; print(repr({expression}))"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
    )


def test_cache_is_redis_when_redis_url_is_set_and_process_memory_otherwise():
    shared = _settings_in_subprocess({"REDIS_URL": "redis://cache.internal:6379/3", "ALLOT_ENV": "development"}, 'settings.CACHES["default"]')
    assert shared.returncode == 0, shared.stderr
    assert "django.core.cache.backends.redis.RedisCache" in shared.stdout
    assert "redis://cache.internal:6379/3" in shared.stdout
    embedded = _settings_in_subprocess({"ALLOT_ENV": "development"}, 'settings.CACHES["default"]["BACKEND"]')
    assert embedded.stdout.strip() == "'django.core.cache.backends.locmem.LocMemCache'"
    throttle = _settings_in_subprocess({"ALLOT_ENV": "development"}, 'settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]')
    assert throttle.stdout.strip() == "['config.auth.SharedUserRateThrottle']"


def _redis_cache(prefix: str) -> RedisCache:
    """A fresh cache client (its own connection pool) on the configured Redis."""
    location = django_settings.CACHES["default"]["LOCATION"]
    return RedisCache(location, {"KEY_PREFIX": prefix, "OPTIONS": {"socket_connect_timeout": 1}})


@pytest.mark.skipif(
    django_settings.CACHES["default"]["BACKEND"] != "django.core.cache.backends.redis.RedisCache",
    reason="needs Redis (set REDIS_URL): the shared count is Redis's",
)
def test_two_cache_clients_share_the_api_throttle_count(monkeypatch, api_client_for, finance):
    """Two workers are two processes with their own Redis clients: the limit holds across them."""
    prefix = f"allot-test-{secrets.token_hex(4)}"
    first, second = _redis_cache(prefix), _redis_cache(prefix)
    assert first._cache is not second._cache
    monkeypatch.setattr(SharedUserRateThrottle, "THROTTLE_RATES", {"user": "3/min"})
    client = api_client_for(finance)
    monkeypatch.setattr(SharedUserRateThrottle, "cache", first)
    assert [client.get("/api/v1/events").status_code for _ in range(2)] == [200, 200]
    monkeypatch.setattr(SharedUserRateThrottle, "cache", second)
    assert [client.get("/api/v1/events").status_code for _ in range(2)] == [200, 429]
    first.clear()


def test_the_api_keeps_answering_when_the_throttle_cache_is_down(monkeypatch, api_client_for, finance):
    down = RedisCache("redis://127.0.0.1:1/0", {"OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}})
    monkeypatch.setattr(SharedUserRateThrottle, "cache", down)
    started = time.monotonic()
    response = api_client_for(finance).get("/api/v1/events")
    assert response.status_code == 200
    assert time.monotonic() - started < 3


# ---------------------------------------------------------------- 4. password validators


@pytest.mark.parametrize(
    ("password", "complaint"),
    [
        ("short1!", "too short"),
        ("password123", "too common"),
        ("83749218374650", "entirely numeric"),
        ("mallory_planner", "too similar"),
    ],
)
def test_django_standard_password_validators_are_on(password, complaint):
    user = User(username="mallory_planner", email="mallory@example.com")
    with pytest.raises(ValidationError) as caught:
        validate_password(password, user)
    assert complaint in " ".join(caught.value.messages)
    validate_password("tangerine-ladder-47", user)


# ---------------------------------------------------------------- 5. token expiry and revocation


def test_a_token_older_than_the_ttl_is_refused(api_client_for, finance, settings):
    assert settings.ALLOT_TOKEN_TTL_DAYS == 90
    client = api_client_for(finance)
    assert client.get("/api/v1/events").status_code == 200
    Token.objects.filter(user=finance).update(created=timezone.now() - dt.timedelta(days=91))
    response = client.get("/api/v1/events")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    Token.objects.filter(user=finance).update(created=timezone.now() - dt.timedelta(days=89))
    assert client.get("/api/v1/events").status_code == 200


def test_changing_the_password_revokes_the_users_tokens(api_client_for, finance, planner):
    client = api_client_for(finance)
    other = api_client_for(planner)
    finance.last_login = timezone.now()
    finance.save(update_fields=["last_login"])
    finance.first_name = "Fin"
    finance.save()
    assert client.get("/api/v1/events").status_code == 200  # saves without a new password keep it

    finance.set_password("a-brand-new-passphrase")
    finance.save()
    assert not Token.objects.filter(user=finance).exists()
    assert client.get("/api/v1/events").status_code == 401
    assert other.get("/api/v1/events").status_code == 200  # nobody else's


# ---------------------------------------------------------------- 6 and 7. production settings


def _production_env(**extra: str) -> dict[str, str]:
    return {"DATABASE_URL": "postgres://allot@db.internal:5432/allot", "ALLOWED_HOSTS": "allot.example.com", **extra}


def test_production_refuses_to_start_without_secret_key():
    refused = _settings_in_subprocess(_production_env(), "settings.SECRET_KEY")
    assert refused.returncode != 0
    assert "SECRET_KEY must be set in production" in refused.stderr
    explicit = _settings_in_subprocess({"ALLOT_ENV": "production"}, "settings.SECRET_KEY")
    assert explicit.returncode != 0
    assert "SECRET_KEY must be set in production" in explicit.stderr

    key = secrets.token_urlsafe(50)
    started = _settings_in_subprocess(_production_env(SECRET_KEY=key), "(settings.SECRET_KEY, settings.PRODUCTION)")
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == repr((key, True))


def test_development_and_test_runs_keep_the_per_checkout_key():
    embedded = _settings_in_subprocess({}, "(settings.ALLOT_ENV, settings.SECRET_KEY.startswith('embedded-insecure-'))")
    assert embedded.stdout.strip() == "('development', True)"
    debug_pg = _settings_in_subprocess(_production_env(DEBUG="true"), "settings.ALLOT_ENV")
    assert debug_pg.stdout.strip() == "'development'"
    under_pytest = _settings_in_subprocess(_production_env(PYTEST_VERSION="8"), "settings.ALLOT_ENV")
    assert under_pytest.stdout.strip() == "'test'"


def _check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "CACHE_URL", "CELERY_", "SECRET_KEY", "ALLOT_", "DEBUG", "PYTEST", "SECURE_", "DJANGO_ALLOW_ASYNC_UNSAFE"))}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**clean, **env},
    )


def test_check_deploy_is_clean_with_production_settings():
    production = _check_deploy(_production_env(SECRET_KEY=secrets.token_urlsafe(50), SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto"))
    assert production.returncode == 0, production.stdout + production.stderr
    # The same check fails without the production hardening (so this test can fail).
    development = _check_deploy(_production_env(SECRET_KEY=secrets.token_urlsafe(50), ALLOT_ENV="development"))
    assert development.returncode != 0
    assert "security.W004" in development.stdout + development.stderr  # HSTS


def test_production_settings_are_https_only():
    env = _production_env(SECRET_KEY=secrets.token_urlsafe(50), SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    probe = _settings_in_subprocess(
        env,
        "(settings.SECURE_SSL_REDIRECT, settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE,"
        " settings.SECURE_HSTS_SECONDS, settings.SECURE_PROXY_SSL_HEADER, settings.ALLOT_AUTO_REGISTER_SOURCES)",
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == repr((True, True, True, 31536000, ("HTTP_X_FORWARDED_PROTO", "https"), False))


# ---------------------------------------------------------------- 11. auto-registration only embedded


def test_sources_auto_register_only_in_the_embedded_default():
    embedded = _settings_in_subprocess({}, "settings.ALLOT_AUTO_REGISTER_SOURCES")
    assert embedded.stdout.strip() == "True"
    server = _settings_in_subprocess(_production_env(ALLOT_ENV="development"), "settings.ALLOT_AUTO_REGISTER_SOURCES")
    assert server.stdout.strip() == "False"
    forced = _settings_in_subprocess(_production_env(ALLOT_ENV="development", ALLOT_AUTO_REGISTER_SOURCES="true"), "settings.ALLOT_AUTO_REGISTER_SOURCES")
    assert forced.stdout.strip() == "True"


# ---------------------------------------------------------------- 10. integration tokens bound to sources


def test_an_integration_token_writes_only_for_its_bound_sources_and_never_creates_one(api_client_for, integration, settings):
    settings.ALLOT_AUTO_REGISTER_SOURCES = True  # even where unknown sources would be registered
    register_source(code="wms")  # registered, but not bound to this token
    events = [location_event("e-1", "erp"), location_event("w-1", "wms"), location_event("n-1", "newsys"), location_event("s-1", " erp")]
    response = api_client_for(integration).post(EVENTS_URL, {"events": events}, format="json")
    assert response.status_code == 202
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected", "rejected"]
    for refused in results[1:3]:
        assert {"field": "source", "message": "is not a source this token is bound to"} in refused["errors"]
    assert [e["field"] for e in results[3]["errors"]] == ["source"]  # " erp" is not "erp"
    assert sorted(Source.objects.values_list("code", flat=True)) == ["erp", "wms"]
    assert list(Event.objects.values_list("source__code", "event_id")) == [("erp", "e-1")]


def test_binding_a_second_source_lets_the_token_write_for_it(api_client_for, integration):
    register_source(code="wms", integration_users=[integration])
    response = api_client_for(integration).post(EVENTS_URL, {"events": [location_event("w-1", "wms")]}, format="json")
    assert response.json()["results"][0]["status"] == "accepted"


def test_another_integration_user_is_not_bound_to_a_colleagues_source(api_client_for, integration):
    stranger = make_user("svc_other", roles.INTEGRATION)
    response = api_client_for(stranger).post(EVENTS_URL, {"events": [location_event("e-1", "erp")]}, format="json")
    assert response.json()["results"][0]["errors"] == [{"field": "source", "message": "is not a source this token is bound to"}]
    assert Event.objects.count() == 0


def test_demo_users_bind_the_demo_integration_user_to_the_demo_sources(db):
    from django.core.management import call_command

    call_command("demo_users", stdout=open(os.devnull, "w"))
    integration = User.objects.get(username="integration")
    assert sorted(integration.bound_sources.values_list("code", flat=True)) == ["edi", "erp", "shop", "wms"]
