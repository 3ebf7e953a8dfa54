"""The Events screen: stored events with filters, an event's detail, and retry; the Outbox screen."""
from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from config import exports, pagination, roles
from integrations import export_specs, relay, selectors, services
from integrations.choices import RETRYABLE_STATUSES
from integrations.errors import EventNotRetryable
from integrations.forms import EventFilterForm, OutboxFilterForm
from integrations.models import Event, OutboxMessage

EVENT_READERS = (roles.INTEGRATION, roles.PLANNER, roles.FINANCE)
PAGE_SIZE = 50


@roles.role_required(*EVENT_READERS)
def event_list(request: HttpRequest) -> HttpResponse:
    """Stored events, newest first, filterable; the HTMX request gets only the #event-rows partial."""
    form = EventFilterForm(request.GET or None)
    valid = form.is_valid() if request.GET else True
    criteria = form.cleaned_data if request.GET and valid else {}
    events = selectors.events_matching(
        source=criteria.get("source", ""),
        status=criteria.get("status", ""),
        type=criteria.get("type", ""),
        search=criteria.get("q", ""),
    )
    if not valid:
        events = events.none()
    elif exports.requested(request):  # ?export=csv|xlsx: every filtered event
        return exports.export_response(request, events, export_specs.EVENTS)
    page_obj = pagination.screen_page(request, events, PAGE_SIZE)  # keyset pages: ?cursor=
    context = {
        "form": form,
        "page_obj": page_obj,
        "query": pagination.screen_query(request),
        "filtered": any(criteria.values()) if criteria else False,
        "valid": valid,
        "sources": selectors.sources_with_freshness(),
        "can_retry": roles.has_role(request.user, {roles.INTEGRATION}),
    }
    template = "integrations/event_list.html#event-rows" if request.htmx else "integrations/event_list.html"
    return render(request, template, context, status=200 if valid else 400)


def _event_or_404(pk: int) -> Event:
    event = Event.objects.select_related("source", "batch", "retried_by").filter(pk=pk).first()
    if event is None:
        raise Http404("No such event.")
    return event


@roles.role_required(*EVENT_READERS)
def event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One event: envelope, data, errors, parked references and differing duplicate deliveries."""
    event = _event_or_404(pk)
    context = {
        "event": event,
        "duplicates": list(event.duplicate_deliveries.select_related("batch")[:50]),
        "can_retry": roles.has_role(request.user, {roles.INTEGRATION}) and event.status in RETRYABLE_STATUSES,
    }
    return render(request, "integrations/event_detail.html", context)


@require_POST
@roles.role_required(roles.INTEGRATION)
def event_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Retry a failed or parked event (integration role), then show it again."""
    event = _event_or_404(pk)
    try:
        services.retry_event(event.pk, actor=request.user)
    except EventNotRetryable as error:
        messages.error(request, str(error))
        return redirect("integrations:event_detail", pk=event.pk)
    event.refresh_from_db()
    messages.success(request, f"Event {event.source.code}:{event.event_id} was retried; it is now {event.status}.")
    return redirect("integrations:event_detail", pk=event.pk)


OUTBOX_PAGE_SIZE = 50


@roles.role_required(*EVENT_READERS)
def outbox_list(request: HttpRequest) -> HttpResponse:
    """Outbound messages, newest first, filterable by status and type, with payload and last
    error; dead letters carry a Replay button for the integration role. The HTMX request gets
    only the #outbox-rows partial."""
    form = OutboxFilterForm(request.GET or None)
    valid = form.is_valid() if request.GET else True
    criteria = form.cleaned_data if request.GET and valid else {}
    found = selectors.outbox_matching(
        status=criteria.get("status", ""), type=criteria.get("type", ""), search=criteria.get("q", "")
    )
    if not valid:
        found = found.none()
    elif exports.requested(request):  # ?export=csv|xlsx: every filtered message
        return exports.export_response(request, found, export_specs.OUTBOX)
    page_obj = pagination.screen_page(request, found, OUTBOX_PAGE_SIZE)  # keyset pages: ?cursor=
    context = {
        "form": form,
        "page_obj": page_obj,
        "query": pagination.screen_query(request),
        "filtered": any(criteria.values()) if criteria else False,
        "valid": valid,
        "counts": selectors.outbox_counts(),
        "destination": relay.destination(),
        "can_replay": roles.has_role(request.user, {roles.INTEGRATION}),
    }
    template = "integrations/outbox_list.html#outbox-rows" if request.htmx else "integrations/outbox_list.html"
    return render(request, template, context, status=200 if valid else 400)


@require_POST
@roles.role_required(roles.INTEGRATION)
def outbox_replay(request: HttpRequest, pk: int) -> HttpResponse:
    """Put a dead letter back to pending (integration role); 404 for a missing message."""
    message = OutboxMessage.objects.filter(pk=pk).first()
    if message is None:
        raise Http404("No such message.")
    try:
        relay.replay(message.message_id, actor=request.user)
    except relay.MessageNotReplayable as error:
        messages.error(request, str(error))
        return redirect("integrations:outbox_list")
    messages.success(request, f"Message {message.message_id} is pending again; the relay sends it next.")
    return redirect("integrations:outbox_list")
