"""API of release waves and recommendations (thin: validate, check the role, call a service).

- ``POST /api/v1/waves`` ``{"location": CODE}`` runs a wave now (planner) -> 201 with the wave;
  ``{"location": CODE, "preview": true}`` -> 200 with what it would do, changing nothing;
  a wave already running there -> 409 naming it.
- ``GET  /api/v1/waves/{id}`` the wave, its counts and every line with its outcome and reason.
- ``POST /api/v1/recommendations/accept`` ``{"lines": [{"order": N, "line": L}, ...]}`` accepts
  what runs recommended for those lines (planner) -> 200 with counts and the run that
  publishes them (``reservation.changed``).
"""
from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from allocation import execution_modes, releases
from allocation.choices import WaveTrigger
from allocation.errors import WaveAlreadyRunning
from allocation.models import Location, OrderLine, Wave, WaveLine
from allocation.persistence import decimal_text
from config import roles
from config.api import CleanSlugRelatedField, StrictIntegerField, StrictSerializer
from config.roles import RolePermission

WAVE_STARTERS = frozenset({roles.PLANNER})
MAX_WAVE_LINES = 10000


class StartWaveSerializer(StrictSerializer):
    location = CleanSlugRelatedField(slug_field="code", queryset=Location.objects.all(), max_length=64)
    preview = serializers.BooleanField(required=False, default=False)


class LineRefSerializer(StrictSerializer):
    order = serializers.CharField(max_length=64)
    line = StrictIntegerField(min_value=1, max_value=2**31 - 1)


class AcceptSerializer(StrictSerializer):
    lines = serializers.ListField(child=LineRefSerializer(), allow_empty=False, max_length=execution_modes.MAX_ACCEPT_LINES)
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


def _line_json(x: Any) -> dict[str, Any]:
    return {
        "order": x.order_number, "line": x.line_number, "sku": x.sku, "rank": x.rank,
        "quantity": decimal_text(x.quantity), "value": decimal_text(x.value), "outcome": x.outcome,
        "reason": x.reason or None, "detail": x.detail or None,
    }


def wave_json(wave: Wave, *, with_lines: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": wave.pk, "location": wave.location.code, "business_date": wave.business_date.isoformat(),
        "cutoff_at": wave.cutoff_at.isoformat() if wave.cutoff_at else None, "trigger": wave.trigger,
        "started_by": wave.started_by_label, "status": wave.status, "capacity": wave.capacity,
        "used_before": wave.used_before, "considered": wave.considered_count, "released": wave.released_count,
        "held_back": wave.held_count, "approvals": wave.approval_count,
        "released_quantity": decimal_text(wave.released_quantity), "error": wave.error or None,
        "started_at": wave.started_at.isoformat(), "finished_at": wave.finished_at.isoformat() if wave.finished_at else None,
        "duration_ms": wave.duration_ms,
    }
    if with_lines:
        lines = list(WaveLine.objects.filter(wave=wave).order_by("id")[: MAX_WAVE_LINES + 1])
        data["lines"] = [
            {**_line_json(x), "approval": x.approval_id} for x in lines[:MAX_WAVE_LINES]
        ]
        data["lines_truncated"] = len(lines) > MAX_WAVE_LINES
    return data


def plan_json(plan: releases.WavePlan) -> dict[str, Any]:
    capacity = plan.capacity
    return {
        "location": plan.location.code, "business_date": capacity.day.isoformat(), "capacity": capacity.capacity,
        "used": capacity.used, "remaining": capacity.remaining,
        "cutoff_at": capacity.cutoff_at.isoformat() if capacity.cutoff_at else None,
        "considered": len(plan.lines), "released": len(plan.released), "held_back": len(plan.held),
        "lines": [_line_json(x) for x in plan.lines[:MAX_WAVE_LINES]],
    }


class WaveList(APIView):
    """Run (or preview) a release wave at one location."""

    permission_classes = [RolePermission]
    required_roles = {"POST": WAVE_STARTERS}

    @extend_schema(request=StartWaveSerializer, responses={201: dict, 200: dict, 409: dict})
    def post(self, request: Request) -> Response:
        body = StartWaveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        location = body.validated_data["location"]
        if body.validated_data["preview"]:
            return Response(plan_json(releases.plan_wave(location)))
        try:
            wave = releases.run_wave(location, request.user, trigger=WaveTrigger.API)
        except WaveAlreadyRunning as busy:
            return Response({"detail": busy.message, "wave": busy.wave_id}, status=status.HTTP_409_CONFLICT)
        return Response(wave_json(wave), status=status.HTTP_201_CREATED)


class WaveDetail(APIView):
    """One wave with its lines."""

    permission_classes = [RolePermission]
    required_roles = {"GET": roles.READERS}

    def get(self, request: Request, wave_id: int) -> Response:
        wave = Wave.objects.select_related("location", "started_by").filter(pk=wave_id).first()
        if wave is None:
            raise Http404("No such wave.")
        return Response(wave_json(wave))


class AcceptRecommendations(APIView):
    """Accept what runs recommended for some lines (recommend scopes)."""

    permission_classes = [RolePermission]
    required_roles = {"POST": WAVE_STARTERS}

    @extend_schema(request=AcceptSerializer, responses={200: dict})
    def post(self, request: Request) -> Response:
        body = AcceptSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        refs = {(ref["order"], ref["line"]) for ref in body.validated_data["lines"]}
        condition = Q(pk__in=[])
        for order, line in refs:
            condition |= Q(order__number=order, line=line)
        found = {(o, n): pk for pk, o, n in OrderLine.objects.filter(condition).values_list("pk", "order__number", "line")}
        missing = sorted(refs - set(found))
        if missing:
            return Response(
                {"lines": [f"unknown order line {order}/{line}" for order, line in missing]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            result = execution_modes.accept_recommendations(
                list(found.values()), actor=request.user, note=body.validated_data["note"]
            )
        except execution_modes.RecommendationError as error:
            return Response({error.field: [error.message]}, status=status.HTTP_400_BAD_REQUEST)
        ids = {pk: ref for ref, pk in found.items()}
        return Response({
            "accepted_lines": result.lines, "allocations": result.allocations,
            "run": getattr(result.run, "pk", None),
            "skipped": [{"order": ids[pk][0], "line": ids[pk][1]} for pk in result.skipped],
        })
