"""The bell, the notifications page and the date-format preference (any signed-in person).

Opening the page marks the notifications it shows read (they are shown as new once);
opening one notification marks it read and goes where it points. The bell is a partial the
top bar refreshes with HTMX (every 15 s, and on an ``allot:notifications`` event), never a full reload.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from config import pagination
from exceptions import notifications, preferences
from exceptions.choices import DateFormat
from exceptions.models import Notification

PAGE_SIZE = 30


@login_required
@require_GET
def bell(request: HttpRequest) -> HttpResponse:
    """The bell with the unread count (the top bar's HTMX partial)."""
    return render(request, "exceptions/notifications.html#bell", {"unread_notifications": notifications.unread_count(request.user)})


@login_required
@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    """A keyset page of the person's notifications, newest first; those shown are now read."""
    page = pagination.screen_page(request, notifications.for_user(request.user), PAGE_SIZE)
    rows = list(page.object_list)
    unread_ids = [n.pk for n in rows if n.read_at is None]
    notifications.mark_read(request.user, unread_ids)
    context = {
        "rows": [{"n": n, "new": n.pk in unread_ids} for n in rows],
        "page_obj": page,
        "query": pagination.screen_query(request),
        "unread_notifications": notifications.unread_count(request.user),
        "date_formats": DateFormat.choices,
    }
    return render(request, "exceptions/notifications.html", context)


@login_required
@require_GET
def notification_open(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one notification read and go to what it is about (another person's is a 404)."""
    notification = get_object_or_404(Notification, pk=pk, recipient=request.user)
    notifications.mark_read(request.user, [notification.pk])
    link = notification.link
    if not link or not url_has_allowed_host_and_scheme(link, allowed_hosts={request.get_host()}):
        link = reverse("exceptions:notifications")
    return HttpResponseRedirect(link)


@login_required
@require_POST
def notification_read_all(request: HttpRequest) -> HttpResponse:
    done = notifications.mark_read(request.user, now=timezone.now())
    messages.success(request, f"{done} notification(s) marked read.")
    return HttpResponseRedirect(reverse("exceptions:notifications"))


@login_required
@require_POST
def date_format_save(request: HttpRequest) -> HttpResponse:
    """Save how the person reads dates (one of ``DateFormat``); anything else is refused."""
    value = request.POST.get("date_format", "")
    if value not in DateFormat.values:
        messages.error(request, "Choose one of the listed date formats.")
    else:
        preferences.set_date_format(request.user, value, request=request)
        messages.success(request, f"Dates now read {DateFormat(value).label}.")
    back = request.POST.get("next") or reverse("exceptions:notifications")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("exceptions:notifications")
    return HttpResponseRedirect(back)
