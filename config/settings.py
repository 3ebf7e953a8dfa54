"""Allot settings, read from the environment through strict helpers.

Nothing set gives the embedded default: a SQLite file beside manage.py and Celery
tasks executed in-process, so one command runs the whole product. Production sets
DATABASE_URL (PostgreSQL), REDIS_URL (broker) and SECRET_KEY. Every variable is
documented in .env.example.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import sys
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    """A string setting; unset or empty gives the default."""
    return os.environ.get(name) or default


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from error


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from error


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_date(name: str) -> dt.date | None:
    raw = os.environ.get(name)
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be an ISO date (YYYY-MM-DD), got {raw!r}") from error


DEBUG = env_bool("DEBUG", False)
# Where this instance runs. "production": SECRET_KEY required, HTTPS only (SSL redirect, HSTS,
# secure cookies). "development" and "test": none of that. Unset: production when DATABASE_URL
# names a server database (not SQLite) and DEBUG is off; test under pytest (which sets
# PYTEST_VERSION); development otherwise (the embedded default, `dev.py serve`).
_SERVER_DATABASE = not env_str("DATABASE_URL", "sqlite://").startswith("sqlite")
ALLOT_ENV = env_str(
    "ALLOT_ENV",
    "test" if os.environ.get("PYTEST_VERSION")
    else "production" if _SERVER_DATABASE and not DEBUG
    else "development",
)
if ALLOT_ENV not in {"production", "development", "test"}:
    raise ImproperlyConfigured(f"ALLOT_ENV must be production, development or test, got {ALLOT_ENV!r}")
PRODUCTION = ALLOT_ENV == "production"
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set in production (ALLOT_ENV=production, or DATABASE_URL set "
            "with DEBUG off): generate one with `python -c 'import secrets; print(secrets.token_urlsafe(50))'`"
        )
    # Development and tests only: a per-checkout key, never used in production.
    SECRET_KEY = "embedded-insecure-" + str(BASE_DIR)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# HTTPS in production (`manage.py check --deploy` is clean). Behind a proxy that terminates TLS,
# set SECURE_PROXY_SSL_HEADER to the header it sets to "https" (e.g. X-Forwarded-Proto) — only
# when the proxy always sets or strips it, since a client could otherwise claim HTTPS.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = PRODUCTION
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
_PROXY_SSL_HEADER = env_str("SECURE_PROXY_SSL_HEADER", "")
if _PROXY_SSL_HEADER:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _PROXY_SSL_HEADER.upper().replace("-", "_"), "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "simple_history",
    "axes",
    "config.apps.AllotConfig",
    "allocation",
    "policies",
    "exceptions",
    "integrations",
]

MIDDLEWARE = [
    # First: /healthz and /readyz answer probes before host validation and the HTTPS redirect.
    "config.health.HealthCheckMiddleware",
    # Next: every other request gets its id, its log line and its latency observation.
    "config.logs.RequestLogMiddleware",
    "config.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last: turns a login refused for lockout into the login page with the lockout message.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.context_processors.navigation",
                "exceptions.preferences.context",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the in-process tasks and the web server share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASE_IS_POSTGRES = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The login throttle (django-axes) checks every login first; the model backend then authenticates.
AUTHENTICATION_BACKENDS = [
    "config.auth.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]

LANGUAGE_CODE = "en-us"
# The business time zone: "today" for runs and the urgency factor are read in it.
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve static files from the finders when collectstatic has not run (embedded mode, tests).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login throttle (django-axes): ALLOT_LOGIN_FAILURE_LIMIT failed logins for one username from
# one address lock that pair out for ALLOT_LOGIN_LOCKOUT_MINUTES, even with the right password.
# Every failure and the lockout are recorded (admin: Axes > Access attempts / failures).
AXES_FAILURE_LIMIT = env_int("ALLOT_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("ALLOT_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_LOCKOUT_CALLABLE = "config.auth.lockout_response"
AXES_VERBOSE = False
# API tokens older than this many days are refused; a password change deletes the user's tokens.
ALLOT_TOKEN_TTL_DAYS = env_int("ALLOT_TOKEN_TTL_DAYS", 90)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.auth.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON bodies go through config.jsonlimits (size and nesting limits): 400, never a RecursionError.
    "DEFAULT_PARSER_CLASSES": [
        "config.jsonlimits.LimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # An error echoing a lone surrogate from the input is still a 400 (config.api), never a 500.
    "DEFAULT_RENDERER_CLASSES": [
        "config.api.SurrogateSafeJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.KeysetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["config.auth.SharedUserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env_str("API_THROTTLE_USER", "6000/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Allot API",
    "DESCRIPTION": "Allocation and order prioritization for distributors.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Schema generation warnings are not deployment settings: `check --deploy` stays about those
    # (the schema is checked by its own tests); `manage.py spectacular --validate` shows them.
    "ENABLE_DJANGO_DEPLOY_CHECK": False,
}

# Celery: without a broker, tasks run eagerly in-process (the embedded default).
REDIS_URL = env_str("REDIS_URL", "")
# The API throttle counts live in the default cache: Redis (shared by every process and server)
# when CACHE_URL or REDIS_URL is set, else process memory (the single-process embedded default).
CACHE_URL = env_str("CACHE_URL", REDIS_URL)
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "allot",
            # Never hold a request up for a Redis outage: the throttle then lets requests through.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL) or None
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
# A broker that is down never holds a request up: publishing gives up after one short attempt
# (connect and socket timeouts of ALLOT_BROKER_TIMEOUT_SECONDS, no publish retry, no result-store
# retries); callers log and carry on, since the stored batch or run is the durable record and
# the sweeper below enqueues it once the broker is back (allocation/recovery.py). The worker
# itself keeps reconnecting (broker_connection_retry) until the broker returns.
ALLOT_BROKER_TIMEOUT_SECONDS = env_float("ALLOT_BROKER_TIMEOUT_SECONDS", 1.0)
_PUBLISH_RETRY = {"max_retries": 0, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_BROKER_CONNECTION_TIMEOUT = ALLOT_BROKER_TIMEOUT_SECONDS
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": ALLOT_BROKER_TIMEOUT_SECONDS,
    "socket_timeout": ALLOT_BROKER_TIMEOUT_SECONDS,
    "max_retries": 0,
}
CELERY_TASK_PUBLISH_RETRY_POLICY = _PUBLISH_RETRY
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = ALLOT_BROKER_TIMEOUT_SECONDS
CELERY_REDIS_SOCKET_TIMEOUT = max(ALLOT_BROKER_TIMEOUT_SECONDS, 2.0)
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"retry_policy": _PUBLISH_RETRY}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The sweeper (beat, and once when a worker starts) enqueues what publishing missed: processing
# when events are pending and no processing task is waiting, runs still queued after
# ALLOT_RUN_REQUEUE_SECONDS; and it fails runs whose heartbeat (written every
# ALLOT_RUN_HEARTBEAT_SECONDS while a run executes) is older than ALLOT_RUN_LOST_SECONDS.
ALLOT_SWEEP_SECONDS = env_float("ALLOT_SWEEP_SECONDS", 30.0)
ALLOT_RUN_REQUEUE_SECONDS = env_int("ALLOT_RUN_REQUEUE_SECONDS", 60)
ALLOT_RUN_HEARTBEAT_SECONDS = env_float("ALLOT_RUN_HEARTBEAT_SECONDS", 5.0)
ALLOT_RUN_LOST_SECONDS = env_int("ALLOT_RUN_LOST_SECONDS", 120)
# Without a broker, run published tasks (allocation runs after a planner action, approval or
# policy activation) on one background thread of the serving process instead of inside the
# request (config.inprocess). dev.py serve and the WSGI/ASGI entry points turn it on; tests and
# management commands keep tasks eager (synchronous).
ALLOT_INPROCESS_BACKGROUND = env_bool("ALLOT_INPROCESS_BACKGROUND", sys.argv[1:2] == ["runserver"])
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "sweep-stuck-work": {
        "task": "allocation.tasks.sweep_task",
        "schedule": ALLOT_SWEEP_SECONDS,
    },
    "activate-scheduled-policies": {
        "task": "policies.tasks.activate_due_policy_versions_task",
        "schedule": 60.0,
    },
    "nightly-full-allocation": {
        "task": "allocation.tasks.full_run_task",
        "schedule": crontab(hour=env_int("ALLOT_FULL_RUN_HOUR", 2), minute=0),
        "kwargs": {"trigger": "scheduled"},
    },
    "escalate-overdue-exceptions": {
        "task": "exceptions.tasks.escalate_overdue_task",
        "schedule": 60.0,
    },
    "relay-outbox": {
        "task": "integrations.tasks.relay_outbox_task",
        "schedule": 10.0,
    },
}
# Feed freshness (integrations.freshness): beat raises or resolves stale_feed cases this often.
ALLOT_FEED_CHECK_SECONDS = env_float("ALLOT_FEED_CHECK_SECONDS", 60.0)
CELERY_BEAT_SCHEDULE["check-feed-freshness"] = {
    "task": "integrations.tasks.check_feed_freshness_task",
    "schedule": ALLOT_FEED_CHECK_SECONDS,
}
# Event files uploaded in the browser (integrations.uploads): at most this many bytes and rows.
ALLOT_UPLOAD_MAX_BYTES = env_int("ALLOT_UPLOAD_MAX_BYTES", 50 * 1024 * 1024)
ALLOT_UPLOAD_MAX_ROWS = env_int("ALLOT_UPLOAD_MAX_ROWS", 500_000)
# A replay (integrations.replays) re-applies at most this many stored events at once.
ALLOT_REPLAY_MAX_EVENTS = env_int("ALLOT_REPLAY_MAX_EVENTS", 50_000)
# Release waves (allocation.releases): beat looks every ALLOT_RELEASE_SCHEDULE_SECONDS for
# locations whose cutoff (their own time zone) is within ALLOT_RELEASE_LEAD_MINUTES and runs
# their wave; a wave still "running" after ALLOT_WAVE_LOST_SECONDS (its process died) is failed.
ALLOT_RELEASE_LEAD_MINUTES = env_int("ALLOT_RELEASE_LEAD_MINUTES", 30)
ALLOT_RELEASE_SCHEDULE_SECONDS = env_float("ALLOT_RELEASE_SCHEDULE_SECONDS", 300.0)
ALLOT_WAVE_LOST_SECONDS = env_int("ALLOT_WAVE_LOST_SECONDS", 900)
CELERY_BEAT_SCHEDULE["release-waves-before-cutoff"] = {
    "task": "allocation.tasks.release_waves_task",
    "schedule": ALLOT_RELEASE_SCHEDULE_SECONDS,
}
# Quotes past expires_at: lines cancelled, supply re-allocated, quote.expired sent (allocation.quotes).
ALLOT_QUOTE_EXPIRY_SECONDS = env_float("ALLOT_QUOTE_EXPIRY_SECONDS", 60.0)
CELERY_BEAT_SCHEDULE["expire-quotes"] = {"task": "allocation.tasks.expire_quotes_task", "schedule": ALLOT_QUOTE_EXPIRY_SECONDS}
# Custom score factors (allocation.plugins): name=module:callable, comma-separated; and the time
# budget of one plugin in one run, past which it is skipped with a run warning and a case.
ALLOT_FACTOR_PLUGINS = env_str(
    "ALLOT_FACTOR_PLUGINS",
    "expedite_flag=allocation.plugins_sample:expedite_flag,strategic_item=allocation.plugins_sample:strategic_item",
)
ALLOT_FACTOR_PLUGIN_BUDGET_SECONDS = env_float("ALLOT_FACTOR_PLUGIN_BUDGET_SECONDS", 2.0)

# Business date: pins "today" for demo, training and test environments (allocation.md).
ALLOT_BUSINESS_DATE = env_date("ALLOT_BUSINESS_DATE")
# Register unknown event sources on first use: only in the embedded default (no server
# database; test runs behave like it) and only for trusted callers (the ingest and demo
# commands). Elsewhere sources are registered first. API tokens never create sources.
ALLOT_AUTO_REGISTER_SOURCES = env_bool("ALLOT_AUTO_REGISTER_SOURCES", not _SERVER_DATABASE or ALLOT_ENV == "test")
ALLOT_WEBHOOK_MAX_AGE_SECONDS = env_int("ALLOT_WEBHOOK_MAX_AGE_SECONDS", 300)
# Where outbound messages (the outbox) are POSTed as JSON. Unset = they wait, pending.
ALLOT_OUTBOX_URL = env_str("ALLOT_OUTBOX_URL", "")
# The destination's shared secret: each message is signed like an inbound webhook
# (X-Allot-Timestamp, X-Allot-Signature: sha256 HMAC of timestamp + "." + body). Unset = unsigned.
ALLOT_OUTBOX_SECRET = env_str("ALLOT_OUTBOX_SECRET", "")
ALLOT_OUTBOX_TIMEOUT_SECONDS = env_float("ALLOT_OUTBOX_TIMEOUT_SECONDS", 5.0)
# Readiness (GET /readyz, manage.py readiness; config/health.py) fails when beat's last tick, the
# oldest pending event or the oldest queued run is older than this many seconds.
ALLOT_READY_BEAT_SECONDS = env_int("ALLOT_READY_BEAT_SECONDS", 120)
ALLOT_READY_PENDING_EVENT_SECONDS = env_int("ALLOT_READY_PENDING_EVENT_SECONDS", 300)
ALLOT_READY_QUEUED_RUN_SECONDS = env_int("ALLOT_READY_QUEUED_RUN_SECONDS", 300)
ALLOT_MAX_BATCH_EVENTS = 5000
ALLOT_MAX_BATCH_BYTES = 10 * 1024 * 1024
# Every JSON body (config.jsonlimits): at most this many nested arrays/objects.
ALLOT_JSON_MAX_DEPTH = 32
# Timestamps and dates in events lie within this many years of now (integrations.validation);
# occurred_at at most this many minutes ahead of now (clock skew), so no event makes the future stale.
ALLOT_EVENT_TIME_WINDOW_YEARS = 10
ALLOT_EVENT_MAX_FUTURE_MINUTES = 5
# Exception actions: a bulk action takes at most this many exceptions; a deferred promise
# lies at most this many days after the business date.
ALLOT_BULK_MAX_IDS = env_int("ALLOT_BULK_MAX_IDS", 500)
ALLOT_DEFER_MAX_DAYS = env_int("ALLOT_DEFER_MAX_DAYS", 365)
# How screens write dates when a person chose none (exceptions.preferences; a Django date format).
ALLOT_DATE_FORMAT = env_str("ALLOT_DATE_FORMAT", "Y-m-d")
DATA_UPLOAD_MAX_MEMORY_SIZE = ALLOT_MAX_BATCH_BYTES + 1024 * 1024

# Logs (config/logs.py): JSON lines in production or with LOG_FORMAT=json, readable lines
# otherwise; secrets redacted either way. LOG_REQUESTS writes one line per request (INFO on
# allot.request: request id, user, view, method, path, status, duration).
LOG_FORMAT = env_str("LOG_FORMAT", "json" if PRODUCTION else "human")
if LOG_FORMAT not in {"json", "human"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or human, got {LOG_FORMAT!r}")
LOGGING = logging_config(
    json_lines=LOG_FORMAT == "json",
    level=env_str("LOG_LEVEL", "WARNING"),
    request_lines=env_bool("LOG_REQUESTS", PRODUCTION),
)

# Metrics (GET /metrics, config/metrics.py): a scraper sends `Authorization: Bearer
# <ALLOT_METRICS_TOKEN>` or connects from ALLOT_METRICS_ALLOWED_NETWORKS (CIDRs, matched against
# the peer address). With neither set the endpoint is open outside production and 404 in it.
ALLOT_METRICS_TOKEN = env_str("ALLOT_METRICS_TOKEN", "")
ALLOT_METRICS_ALLOWED_NETWORKS = env_list("ALLOT_METRICS_ALLOWED_NETWORKS", [])
for _network in ALLOT_METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as error:
        raise ImproperlyConfigured(f"ALLOT_METRICS_ALLOWED_NETWORKS: {_network!r} is not a network (CIDR)") from error
# A scraper inside the deployment speaks plain HTTP to the web container.
SECURE_REDIRECT_EXEMPT = [r"^metrics$"]

# Audit trail (allocation.audit): beat seals new audit records every ALLOT_AUDIT_SEAL_SECONDS
# (the window in which a history row is not yet hash-chained) and verifies every chain daily.
CELERY_IMPORTS = ("allocation.audit.tasks",)
ALLOT_AUDIT_SEAL_SECONDS = env_float("ALLOT_AUDIT_SEAL_SECONDS", 300.0)
CELERY_BEAT_SCHEDULE["seal-audit-records"] = {"task": "allocation.audit.tasks.seal_audit_task", "schedule": ALLOT_AUDIT_SEAL_SECONDS}
CELERY_BEAT_SCHEDULE["verify-audit-daily"] = {
    "task": "allocation.audit.tasks.verify_audit_task",
    "schedule": crontab(hour=env_int("ALLOT_AUDIT_VERIFY_HOUR", 3), minute=30),
}
