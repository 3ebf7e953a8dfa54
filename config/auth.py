"""Authentication hardening: the login throttle, expiring API tokens revoked on a password
change, and the API throttle on the shared cache.

- Logins go through django-axes (``LoginThrottleBackend`` first in AUTHENTICATION_BACKENDS):
  ``AXES_FAILURE_LIMIT`` failures for one username from one address lock that pair out for
  ``AXES_COOLOFF_TIME``; every failure is an ``AccessFailureLog`` row and the lock an
  ``AccessAttempt`` row (admin: Axes), and the lockout is logged on ``allot.security``.
  A locked-out login answers 429 with the login page saying so.
- ``ExpiringTokenAuthentication`` refuses tokens older than ``ALLOT_TOKEN_TTL_DAYS``.
- Changing a user's password (``set_password`` then ``save``, any form or command) deletes
  their API tokens, so a leaked token dies with the old password.
- ``SharedUserRateThrottle`` counts in the default cache (Redis in production, so every
  worker shares one count) and lets a request through when that cache is unreachable.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.throttling import UserRateThrottle

log = logging.getLogger("allot.security")


class LoginThrottleBackend(AxesStandaloneBackend):
    """The axes lockout check for logins made over HTTP. ``authenticate()`` called from code
    without a request (commands, tests) has nothing to throttle and is left to the next backend."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def lockout_message() -> str:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return (
        f"Too many failed logins: this account is locked on this device for {minutes} minutes. "
        "Wait, or ask an administrator to unlock it."
    )


def lockout_response(request: HttpRequest, original_response: Any = None, credentials: dict | None = None) -> HttpResponse:
    """The login page with the lockout message (429); the password is never checked meanwhile."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    form = AuthenticationForm(request, initial={"username": username})
    context = {"form": form, "locked_out": True, "lockout_message": lockout_message(), "next": request.POST.get("next", "")}
    return render(request, "registration/login.html", context, status=429)


@receiver(user_locked_out)
def _log_lockout(sender: Any, request: HttpRequest | None = None, username: str | None = None, ip_address: str | None = None, **kwargs: Any) -> None:
    log.warning("login locked out: username=%r ip=%s after %s failures", username, ip_address, settings.AXES_FAILURE_LIMIT)


class ExpiringTokenAuthentication(TokenAuthentication):
    """Token authentication that refuses tokens older than ``ALLOT_TOKEN_TTL_DAYS``."""

    def authenticate_credentials(self, key: str):
        user, token = super().authenticate_credentials(key)
        if token_expired(token):
            raise exceptions.AuthenticationFailed(
                f"Token expired (older than {settings.ALLOT_TOKEN_TTL_DAYS} days); ask an administrator for a new one."
            )
        return user, token


def token_expired(token: Any, now: dt.datetime | None = None) -> bool:
    return (now or timezone.now()) - token.created > dt.timedelta(days=settings.ALLOT_TOKEN_TTL_DAYS)


@receiver(pre_save, sender=get_user_model())
def _note_password_change(sender: Any, instance: Any, update_fields: Any = None, raw: bool = False, **kwargs: Any) -> None:
    if raw or instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance._allot_password_changed = stored is not None and stored != instance.password


@receiver(post_save, sender=get_user_model())
def _revoke_tokens_on_password_change(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if getattr(instance, "_allot_password_changed", False):
        from rest_framework.authtoken.models import Token

        deleted, _ = Token.objects.filter(user=instance).delete()
        instance._allot_password_changed = False
        if deleted:
            log.info("password changed for %s: API tokens revoked", instance.get_username())


class SharedUserRateThrottle(UserRateThrottle):
    """DRF's per-user rate throttle; when the cache cannot be reached the request goes through
    (and it is logged) rather than the whole API failing with the cache."""

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception as error:  # any cache backend's connection error
            if not _is_cache_outage(error):
                raise
            log.warning("API throttle skipped: cache unavailable (%s)", error)
            return True


def _is_cache_outage(error: Exception) -> bool:
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover - redis is a dependency through celery[redis]
        return isinstance(error, OSError)
    return isinstance(error, (RedisConnectionError, RedisTimeoutError, OSError))
