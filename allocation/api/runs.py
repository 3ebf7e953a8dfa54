"""API of allocations, line decisions and runs (thin: validate, check the role, call a service).

- ``GET  /api/v1/allocations`` filters ``order``, ``sku``, ``location``, ``state``; paginated.
- ``GET  /api/v1/lines/{order}/{line}/decision`` the latest decision, allocations, open exceptions.
- ``GET  /api/v1/runs`` recent runs; ``POST`` starts one (planner, policy admin) -> 202.
- ``GET  /api/v1/runs/{id}`` status, progress, counts and timings.

Readers are ``config.roles.READERS``; missing and forbidden objects both answer 404.
"""
from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from allocation import export_specs, run_selectors
from allocation.choices import AllocationState
from allocation.models import Allocation, AllocationRun, Item, LineDecisionLog, OrderLine
from allocation.persistence import decimal_text
from allocation.services import start_run
from config import exports, roles
from config.api import StrictSerializer
from config.roles import RolePermission
from exceptions.choices import ACTIVE_STATUSES
from exceptions.models import DecisionException

RUN_STARTERS = frozenset({roles.PLANNER, roles.POLICY_ADMIN})
MAX_RUN_ITEMS = 1000


class AllocationSerializer(serializers.Serializer):
    order = serializers.CharField(source="line.order.number")
    line = serializers.IntegerField(source="line.line")
    sku = serializers.CharField(source="item.sku")
    location = serializers.CharField(source="location.code")
    quantity = serializers.SerializerMethodField()
    confirmed_date = serializers.DateField()
    supply_ref = serializers.SerializerMethodField()
    state = serializers.CharField()
    run = serializers.IntegerField(source="run_id", allow_null=True)

    def get_quantity(self, allocation: Allocation) -> str:
        return decimal_text(allocation.quantity)

    def get_supply_ref(self, allocation: Allocation) -> str | None:
        return allocation.supply.ref if allocation.supply_id else None


class RunSerializer(serializers.ModelSerializer):
    policy_version = serializers.SerializerMethodField()
    actor = serializers.SerializerMethodField()

    class Meta:
        model = AllocationRun
        fields = [
            "id", "trigger", "scope", "scope_items", "as_of", "policy_version", "status", "progress", "phase",
            "line_count", "allocation_count", "changed_line_count", "exceptions_raised", "exceptions_updated",
            "exceptions_resolved", "timings", "error", "is_simulation", "actor", "created_at", "started_at",
            "finished_at", "warnings", "price_of_fairness",
        ]

    def get_policy_version(self, run: AllocationRun) -> int | None:
        return run.policy_version.number if run.policy_version_id else None

    def get_actor(self, run: AllocationRun) -> str | None:
        return run.actor.get_username() if run.actor_id else None


class StartRunSerializer(StrictSerializer):
    """``items``: the SKUs to run (each item group they belong to); absent = a full run.

    Strict: a misspelt field (``scop``, ``skus``) is a 400 naming it, never a full run.
    """

    items = serializers.ListField(
        child=serializers.CharField(max_length=64, allow_blank=False), required=False, allow_empty=False,
        max_length=MAX_RUN_ITEMS,
    )

    def validate_items(self, skus: list[str]) -> list[str]:
        wanted = sorted(set(skus))
        known = set(Item.objects.filter(sku__in=wanted).values_list("sku", flat=True))
        unknown = [sku for sku in wanted if sku not in known]
        if unknown:
            raise serializers.ValidationError(f"unknown SKU: {', '.join(unknown)}")
        return wanted


class AllocationList(exports.ApiExportMixin, ListAPIView):
    """Current allocations, filterable by order number, SKU, location code and state
    (``?format=csv``: every filtered allocation)."""

    permission_classes = [RolePermission]
    required_roles = {"GET": roles.READERS}
    serializer_class = AllocationSerializer
    export_spec = export_specs.ALLOCATIONS
    filter_backends: list = []

    def get_queryset(self):
        params = self.request.query_params
        queryset = Allocation.objects.select_related("line__order", "item", "location", "supply").order_by(
            "line__order__number", "line__line", "id"
        )
        state = params.get("state")
        if state and state not in AllocationState.values:
            raise serializers.ValidationError({"state": [f"must be one of {', '.join(AllocationState.values)}."]})
        filters = {
            "line__order__number": params.get("order"),
            "item__sku": params.get("sku"),
            "location__code": params.get("location"),
            "state": state,
        }
        return queryset.filter(**{name: value for name, value in filters.items() if value})


def _decision_json(log: LineDecisionLog | None) -> dict[str, Any] | None:
    if log is None:
        return None
    return {
        "run": log.run_id,
        "policy_version": log.policy_version.number if log.policy_version_id else None,
        "rank": log.rank,
        "rank_key": log.rank_key,
        "score": log.score,
        "factors": log.factors,
        "strategy": log.strategy,
        "priority_class": log.priority_class,
        "setting_sources": log.setting_sources,
        "allocations": log.allocations,
        "path": log.path,
        "constraints": log.constraints,
        "shortfall": decimal_text(log.shortfall),
        "shortfall_reasons": log.shortfall_reasons,
        "projected_date": log.projected_date.isoformat() if log.projected_date else None,
        "fingerprint": log.fingerprint,
        "created_at": log.created_at.isoformat(),
    }


class LineDecision(APIView):
    """Why a line holds what it holds: its latest decision, current allocations, open exceptions."""

    permission_classes = [RolePermission]
    required_roles = {"GET": roles.READERS}

    def get(self, request: Request, order: str, line: int) -> Response:
        order_line = OrderLine.objects.select_related("order", "item").filter(order__number=order, line=line).first()
        if order_line is None:
            raise Http404("No such order line.")
        log = (
            LineDecisionLog.objects.select_related("policy_version").filter(line=order_line).order_by("-id").first()
        )
        allocations = Allocation.objects.filter(line=order_line).select_related(
            "line__order", "item", "location", "supply"
        ).order_by("id")
        exceptions = DecisionException.objects.filter(
            line=order_line, status__in=[str(s) for s in ACTIVE_STATUSES]
        ).order_by("id")
        return Response(
            {
                "order": order_line.order.number,
                "line": order_line.line,
                "sku": order_line.item.sku,
                "quantity": decimal_text(order_line.quantity),
                "decision": _decision_json(log),
                "allocations": AllocationSerializer(allocations, many=True).data,
                "exceptions": [
                    {"id": e.pk, "type": e.type, "status": e.status, "message": e.message, "version": e.version}
                    for e in exceptions
                ],
            }
        )


class RunList(APIView):
    """Recent runs (GET, readers) and starting a run (POST, planner or policy admin)."""

    permission_classes = [RolePermission]
    required_roles = {"GET": roles.READERS, "POST": RUN_STARTERS}
    renderer_classes = exports.API_RENDERERS

    def get(self, request: Request) -> Response:
        if exports.api_csv_requested(request):  # every run, not only the recent 50
            return exports.api_export_response(request, run_selectors.run_rows(), export_specs.RUNS)
        runs = AllocationRun.objects.select_related("policy_version", "actor").order_by("-id")[:50]
        return Response({"results": RunSerializer(runs, many=True).data})

    @extend_schema(
        request=StartRunSerializer,
        responses={202: inline_serializer("RunStarted", {"id": serializers.IntegerField(), "status": serializers.CharField()})},
    )
    def post(self, request: Request) -> Response:
        body = StartRunSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = start_run(scope_skus=body.validated_data.get("items"), trigger="manual", actor=request.user)
        return Response({"id": run.pk, "status": run.status}, status=status.HTTP_202_ACCEPTED)


class RunDetail(APIView):
    """One run's status, progress, counts and timings."""

    permission_classes = [RolePermission]
    required_roles = {"GET": roles.READERS}

    def get(self, request: Request, run_id: int) -> Response:
        run = AllocationRun.objects.select_related("policy_version", "actor").filter(pk=run_id).first()
        if run is None:
            raise Http404("No such run.")
        return Response(RunSerializer(run).data)
