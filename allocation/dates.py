""""Today" for the business: the pinned ALLOT_BUSINESS_DATE, else the date in TIME_ZONE.

Only callers outside the engine read this; the engine receives its as-of date.
"""
import datetime as dt

from django.conf import settings
from django.utils import timezone


def business_today() -> dt.date:
    pinned = getattr(settings, "ALLOT_BUSINESS_DATE", None)
    if pinned is not None:
        return pinned
    return timezone.localdate()
