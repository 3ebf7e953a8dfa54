"""Policies API (/api/v1/policies/): versions, documents, history, import, lifecycle, explain.

Permission map: readers (planner, customer service, policy admin, approver, finance) read;
only policy admins import, submit and roll back; only approvers approve and reject (never their
own request); activating on import is for superusers only. Errors name the field, with 400 for
invalid input, 403 for a role or four-eyes refusal, 409 for a state conflict.
"""
from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config import roles
from config.roles import RolePermission
from exceptions.errors import (
    ApprovalError,
    ApprovalNotAllowed,
    ApprovalNotPending,
    SelfApprovalRefused,
)
from policies import explain, selectors, services
from policies.api.serializers import (
    DecisionSerializer,
    ExplainQuerySerializer,
    PolicyVersionSerializer,
    SubmitSerializer,
)
from policies.errors import (
    PolicyError,
    PolicyPermissionError,
    PolicyStateError,
    PolicyValidationError,
)

READ = {"GET": roles.READERS}


def error_response(error: Exception) -> Response:
    """A domain error as a 4xx answer that names the field when there is one."""
    if isinstance(error, PolicyValidationError):
        return Response({"code": error.code, "detail": "Invalid policy.", "errors": error.errors}, status=400)
    if isinstance(error, (PolicyPermissionError, SelfApprovalRefused)):
        return Response({"code": error.code, "detail": error.message}, status=403)
    if isinstance(error, ApprovalNotAllowed):
        field = error.data.get("field")
        if field:
            return Response({"code": error.code, "detail": error.message, "errors": [{"field": field, "message": error.message}]}, status=400)
        return Response({"code": error.code, "detail": error.message}, status=403)
    if isinstance(error, (PolicyStateError, ApprovalNotPending)):
        return Response({"code": error.code, "detail": error.message}, status=409)
    if isinstance(error, (PolicyError, ApprovalError)):
        return Response({"code": error.code, "detail": error.message}, status=400)
    raise error


class PolicyVersionList(ListAPIView):
    """Every policy version, newest first (filter with ?status=)."""

    permission_classes = [RolePermission]
    required_roles = READ
    serializer_class = PolicyVersionSerializer
    filterset_fields = ["status"]

    def get_queryset(self):
        return selectors.visible_versions(self.request.user)


class PolicyVersionDetail(GenericAPIView):
    permission_classes = [RolePermission]
    required_roles = READ
    serializer_class = PolicyVersionSerializer

    def get(self, request: Request, pk: int) -> Response:
        return Response(PolicyVersionSerializer(selectors.get_version_for(request.user, pk)).data)


@extend_schema_view(get=extend_schema(responses=OpenApiTypes.OBJECT))
class PolicyDocumentView(APIView):
    """The version as a policy document (policies-v1.md)."""

    permission_classes = [RolePermission]
    required_roles = READ

    def get(self, request: Request, pk: int) -> Response:
        return Response(selectors.export_document(selectors.get_version_for(request.user, pk)))


@extend_schema_view(get=extend_schema(responses={200: OpenApiTypes.OBJECT}))
class PolicyHistoryView(APIView):
    """Every change to the version and its rules, protections and quotas: who, when, what, why."""

    permission_classes = [RolePermission]
    required_roles = READ

    def get(self, request: Request, pk: int) -> Response:
        version = selectors.get_version_for(request.user, pk)
        entries = selectors.version_history(version)
        return Response(
            [
                {**entry, "when": entry["when"].isoformat(),
                 "changes": [{k: _plain(v) for k, v in change.items()} for change in entry["changes"]]}
                for entry in entries
            ]
        )


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value.__class__.__name__ == "Decimal":
        return str(value)
    return value


@extend_schema_view(
    post=extend_schema(
        request=inline_serializer(
            "PolicyDocumentInput",
            {
                "name": serializers.CharField(max_length=200),
                "effective_from": serializers.DateTimeField(),
                "rules": serializers.ListField(child=serializers.DictField()),
                "protections": serializers.ListField(child=serializers.DictField(), required=False),
                "quotas": serializers.ListField(child=serializers.DictField(), required=False),
            },
        ),
        responses={201: PolicyVersionSerializer},
        parameters=[OpenApiParameter("activate", OpenApiTypes.BOOL, description="Superusers only: activate at once.")],
    )
)
class PolicyImportView(APIView):
    """Create a draft from the document in the body; ``?activate=true`` (superusers only) makes it
    active at once, recorded as an administrative activation."""

    permission_classes = [RolePermission]
    required_roles = {"POST": {roles.POLICY_ADMIN}}

    def post(self, request: Request) -> Response:
        activate_param = request.query_params.get("activate", "false").lower()
        if activate_param not in {"true", "false", "1", "0"}:
            return Response({"code": "invalid", "errors": [{"field": "activate", "message": "must be true or false."}]}, status=400)
        try:
            version = services.import_document(request.data, actor=request.user, activate=activate_param in {"true", "1"})
        except (PolicyError, ApprovalError) as error:
            return error_response(error)
        return Response(PolicyVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class _VersionAction(APIView):
    permission_classes = [RolePermission]

    def act(self, request: Request, version) -> Any:
        raise NotImplementedError

    def post(self, request: Request, pk: int) -> Response:
        version = selectors.get_version_for(request.user, pk)
        try:
            result = self.act(request, version)
        except (PolicyError, ApprovalError) as error:
            return error_response(error)
        if isinstance(result, Response):
            return result
        return Response(PolicyVersionSerializer(result).data, status=self.success_status)

    success_status = status.HTTP_200_OK


@extend_schema_view(post=extend_schema(request=SubmitSerializer, responses={200: PolicyVersionSerializer}))
class PolicySubmitView(_VersionAction):
    required_roles = {"POST": {roles.POLICY_ADMIN}}

    def act(self, request, version):
        serializer = SubmitSerializer(data=request.data)
        if not serializer.is_valid():
            return Response({"code": "invalid", "errors": _errors(serializer.errors)}, status=400)
        services.submit(version, actor=request.user, note=serializer.validated_data["note"])
        return selectors.get_version_for(request.user, version.pk)


@extend_schema_view(post=extend_schema(request=DecisionSerializer, responses={200: PolicyVersionSerializer}))
class PolicyApproveView(_VersionAction):
    required_roles = {"POST": {roles.APPROVER}}

    def act(self, request, version):
        serializer = DecisionSerializer(data=request.data)
        if not serializer.is_valid():
            return Response({"code": "invalid", "errors": _errors(serializer.errors)}, status=400)
        return services.approve(version, actor=request.user, reason=serializer.validated_data["reason"])


@extend_schema_view(post=extend_schema(request=DecisionSerializer, responses={200: PolicyVersionSerializer}))
class PolicyRejectView(_VersionAction):
    required_roles = {"POST": {roles.APPROVER}}

    def act(self, request, version):
        serializer = DecisionSerializer(data=request.data)
        if not serializer.is_valid():
            return Response({"code": "invalid", "errors": _errors(serializer.errors)}, status=400)
        return services.reject(version, actor=request.user, reason=serializer.validated_data["reason"])


@extend_schema_view(post=extend_schema(request=SubmitSerializer, responses={201: PolicyVersionSerializer}))
class PolicyRollbackView(_VersionAction):
    """Copy this earlier (retired) version as a new draft, to submit through the same approval."""

    required_roles = {"POST": {roles.POLICY_ADMIN}}
    success_status = status.HTTP_201_CREATED

    def act(self, request, version):
        serializer = SubmitSerializer(data=request.data)
        if not serializer.is_valid():
            return Response({"code": "invalid", "errors": _errors(serializer.errors)}, status=400)
        return services.rollback(version, actor=request.user, note=serializer.validated_data["note"])


def _errors(serializer_errors: dict) -> list[dict[str, str]]:
    return [{"field": field, "message": " ".join(str(m) for m in messages)} for field, messages in serializer_errors.items()]


@extend_schema_view(get=extend_schema(parameters=[ExplainQuerySerializer], responses=OpenApiTypes.OBJECT))
class PolicyExplainView(APIView):
    """The effective policy for a combination of dimensions (or ?order=&line=): each setting's
    value and the rule it came from (position and scope; null = the default)."""

    permission_classes = [RolePermission]
    required_roles = READ

    def get(self, request: Request) -> Response:
        query = ExplainQuerySerializer(data=request.query_params)
        if not query.is_valid():
            return Response({"code": "invalid", "errors": _errors(query.errors)}, status=400)
        data = query.validated_data
        version = selectors.get_version_for(request.user, data["version"]) if "version" in data else None
        try:
            result = explain.explain(
                version=version, values=query.dimension_values(), order=data.get("order"), line=data.get("line")
            )
        except explain.UnknownLine:
            return Response({"code": "invalid", "errors": [{"field": "order", "message": "No such order line."}]}, status=400)
        except PolicyError as error:
            return error_response(error)
        return Response(
            {
                "version": {"id": result.version.pk, "number": result.version.number, "status": result.version.status},
                "dimensions": result.dimensions.as_dict(),
                "settings": [
                    {"name": row["name"], "value": row["value"], "source": row["source"], "source_scope": row["source_scope"]}
                    for row in result.rows
                ],
            }
        )
