"""GET /api/v1/models: the latest version of each governed model (as ``manage.py models --json``)."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from allocation.insights import services
from allocation.models import ModelVersion
from config import roles
from config.roles import RolePermission


class ModelList(APIView):
    """Each model's latest version: inputs, parameters, training rows, backtest quality, status and reason."""

    permission_classes = [RolePermission]
    required_roles = {"GET": {roles.PLANNER, roles.POLICY_ADMIN, roles.APPROVER}}

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        latest: dict[str, ModelVersion] = {}
        for version in ModelVersion.objects.order_by("name", "-version")[:200]:
            latest.setdefault(version.name, version)
        return Response({"models": [services.model_json(v) for v in latest.values()]})
