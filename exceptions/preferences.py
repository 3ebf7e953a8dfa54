"""A person's display preferences (the date format), and the context every screen gets.

Dates on the screens are written ``{{ value|date:date_fmt }}``: ``date_fmt`` is the person's
chosen ``DateFormat`` or, without a choice, ``settings.ALLOT_DATE_FORMAT`` (ISO 8601
``Y-m-d`` by default). The API and exports keep ISO dates whatever the preference.
``date_fmt`` comes from the session (copied there at login), so it costs no query.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings

from exceptions.choices import DateFormat
from exceptions.models import UserPreference

DEFAULT_DATE_FORMAT = DateFormat.ISO.value


def site_date_format() -> str:
    value = getattr(settings, "ALLOT_DATE_FORMAT", DEFAULT_DATE_FORMAT)
    return value if value in DateFormat.values else DEFAULT_DATE_FORMAT


SESSION_KEY = "allot_date_format"


def date_format_of(user: Any) -> str:
    if user is None or not getattr(user, "is_authenticated", False):
        return site_date_format()
    value = UserPreference.objects.filter(user=user).values_list("date_format", flat=True).first()
    return value if value in DateFormat.values else site_date_format()


def set_date_format(user: Any, value: str, *, request: Any = None) -> UserPreference:
    """Save the person's date format (and put it in their session, which the screens read)."""
    if value not in DateFormat.values:
        raise ValueError(f"unknown date format {value!r}")
    preference, _ = UserPreference.objects.update_or_create(user=user, defaults={"date_format": value})
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = value
    return preference


def _on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = date_format_of(user)


def connect_signals() -> None:
    from django.contrib.auth.signals import user_logged_in

    user_logged_in.connect(_on_login, dispatch_uid="allot_date_format_on_login")


def request_date_format(request: Any) -> str:
    """The date format of the person making ``request``: from their session (no query; put
    there at login and when they change it), else the site's."""
    session = getattr(request, "session", None)
    value = session.get(SESSION_KEY) if session is not None else None
    return value if value in DateFormat.values else site_date_format()


def context(request) -> dict[str, Any]:
    """Template context processor: ``date_fmt`` (no query: read from the session)."""
    return {"date_fmt": request_date_format(request)}
