"""Events API: the batch endpoint, the event list and signed webhooks (events-v1.md)."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from config import exports, roles
from config.jsonlimits import JSONBodyError, parse_json
from config.roles import RolePermission
from integrations import export_specs
from integrations.api.serializers import EventSerializer
from integrations.choices import BatchVia, EventStatus, EventType
from integrations.errors import BatchRejected
from integrations.models import Event, Source
from integrations.services import ingest, sources_bound_to
from integrations.validation import parse_timestamp

EVENT_READERS = {roles.INTEGRATION, roles.PLANNER, roles.FINANCE}


class EventFilter(filters.FilterSet):
    source = filters.CharFilter(field_name="source__code")
    status = filters.ChoiceFilter(choices=EventStatus.choices)
    type = filters.ChoiceFilter(choices=EventType.choices)

    class Meta:
        model = Event
        fields = ["source", "status", "type"]


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _read_body(request: HttpRequest) -> tuple[bytes | None, str | None]:
    """The raw body, or an error when it is larger than a batch may be (checked before reading)."""
    limit = settings.ALLOT_MAX_BATCH_BYTES
    if _declared_length(request) > limit:
        return None, f"the request body is larger than {limit} bytes"
    body = request.body
    if len(body) > limit:
        return None, f"the request body is larger than {limit} bytes"
    return body, None


def _parse(body: bytes, *, single_allowed: bool) -> tuple[list | None, str | None]:
    try:
        payload = parse_json(body)
    except JSONBodyError as error:
        return None, error.message
    if isinstance(payload, dict) and "events" in payload:
        events = payload["events"]
        if not isinstance(events, list):
            return None, "events must be a list"
    elif single_allowed and isinstance(payload, dict):
        events = [payload]
    else:
        return None, "the body must be a JSON object with an events list"
    if len(events) > settings.ALLOT_MAX_BATCH_EVENTS:
        return None, f"a batch holds at most {settings.ALLOT_MAX_BATCH_EVENTS} events, got {len(events)}"
    return events, None


def _accepted_body(result: Any) -> dict:
    return {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
        "results": result.results,
    }


class EventCollection(GenericAPIView):
    """``GET``: stored events with their status (integration, planner, finance).
    ``POST``: a batch ``{"events": [...]}`` (integration) answered ``202`` with one result per event;
    a token writes only for the sources bound to its user (any other is rejected naming ``source``)."""

    permission_classes = [RolePermission]
    required_roles = {"GET": EVENT_READERS, "POST": {roles.INTEGRATION}}
    serializer_class = EventSerializer
    filterset_class = EventFilter
    renderer_classes = exports.API_RENDERERS

    def get_queryset(self):
        return Event.objects.select_related("source").order_by("-id")

    def get(self, request: Request) -> Response:
        events = self.filter_queryset(self.get_queryset())
        if exports.api_csv_requested(request):  # ?format=csv: every filtered event
            return exports.api_export_response(request, events, export_specs.EVENTS)
        page = self.paginate_queryset(events)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        request=inline_serializer(
            "EventBatchInput",
            {
                "events": serializers.ListField(
                    child=inline_serializer(
                        "EventEnvelopeInput",
                        {
                            "id": serializers.CharField(max_length=200),
                            "type": serializers.ChoiceField(choices=EventType.choices),
                            "source": serializers.CharField(max_length=64),
                            "occurred_at": serializers.DateTimeField(),
                            "data": serializers.DictField(),
                        },
                    ),
                    max_length=5000,
                )
            },
        ),
        responses={202: inline_serializer("EventBatchResult", {"accepted": serializers.IntegerField(), "duplicates": serializers.IntegerField(), "rejected": serializers.IntegerField(), "results": serializers.ListField(child=serializers.DictField())})},
    )
    def post(self, request: Request) -> Response:
        body, error = _read_body(request._request)
        if error is None:
            events, error = _parse(body, single_allowed=False)
        if error is not None:
            return Response({"detail": error}, status=status.HTTP_400_BAD_REQUEST)
        try:
            result = ingest(events, actor=request.user, via=BatchVia.API, allowed_sources=sources_bound_to(request.user))
        except BatchRejected as rejected:
            return Response({"detail": rejected.message}, status=status.HTTP_400_BAD_REQUEST)
        return Response(_accepted_body(result), status=status.HTTP_202_ACCEPTED)


def _timestamp(raw: str) -> dt.datetime | None:
    """Unix seconds or an RFC 3339 timestamp; None for anything else, including seconds
    beyond the datetime range (``99999999999999999999``) and non-ASCII digits."""
    raw = raw.strip()
    if raw.isascii() and raw.isdigit():
        if len(raw) > 12:  # more than 30,000 years of seconds: not a timestamp
            return None
        try:
            return dt.datetime.fromtimestamp(int(raw), tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return parse_timestamp(raw)


def _unauthorized(message: str) -> JsonResponse:
    return JsonResponse({"detail": message}, status=401)


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Allot-Signature`` value for a webhook call: ``sha256=`` and the hex HMAC-SHA256,
    keyed by the source's secret, of the timestamp header value, a dot, then the raw body."""
    message = timestamp.encode("utf-8", "replace") + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, source: str) -> JsonResponse:
    """One event or a batch from ``source``, authenticated by an HMAC-SHA256 signature that
    covers the timestamp and the raw body, so a captured request cannot be replayed later under
    a fresh timestamp.

    ``X-Allot-Timestamp``: unix seconds or RFC 3339, at most ``ALLOT_WEBHOOK_MAX_AGE_SECONDS``
    off. ``X-Allot-Signature: sha256=<hex>`` where hex is
    ``HMAC-SHA256(source secret, "<X-Allot-Timestamp value>." + raw body)``. Otherwise 401.
    """
    body, error = _read_body(request)
    if error is not None:
        return JsonResponse({"detail": error}, status=400)
    registered = Source.objects.filter(code=source).first()
    signature = request.headers.get("X-Allot-Signature", "")
    stamp = request.headers.get("X-Allot-Timestamp", "")
    if registered is None or not signature.startswith("sha256="):
        return _unauthorized("missing or invalid signature")
    expected = webhook_signature(registered.secret, stamp, body).encode()
    if not hmac.compare_digest(expected, signature.strip().lower().encode("utf-8", "replace")):
        return _unauthorized("missing or invalid signature")
    sent_at = _timestamp(stamp)
    if sent_at is None:
        return _unauthorized("X-Allot-Timestamp is missing or not a timestamp")
    age = (timezone.now() - sent_at).total_seconds()
    if abs(age) > settings.ALLOT_WEBHOOK_MAX_AGE_SECONDS:
        return _unauthorized(f"X-Allot-Timestamp is more than {settings.ALLOT_WEBHOOK_MAX_AGE_SECONDS} seconds off")
    events, error = _parse(body, single_allowed=True)
    if error is not None:
        return JsonResponse({"detail": error}, status=400)
    try:
        result = ingest(events, actor=None, via=BatchVia.WEBHOOK, source_hint=source)
    except BatchRejected as rejected:
        return JsonResponse({"detail": rejected.message}, status=400)
    return JsonResponse(_accepted_body(result), status=202)
