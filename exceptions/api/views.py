"""The exceptions API: list and detail, one POST per action (``version`` in the body; a
stale version answers 409 with the current state), bulk actions, and approvals."""
from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config import exports, roles
from config.pagination import KeysetPagination
from config.roles import RolePermission
from exceptions import approvals, export_specs, selectors, services
from exceptions.api import serializers as s
from exceptions.choices import ExceptionAction
from exceptions.errors import (
    ActionError,
    ActionNotAllowed,
    ApprovalError,
    ApprovalNotPending,
    ExceptionNotFound,
    InvalidAction,
    SelfApprovalRefused,
    StaleAction,
)

READERS = selectors.READER_ROLES
ACTORS = selectors.ACTOR_ROLES


def action_error_response(error: ActionError) -> Response:
    """The HTTP answer of a domain error: 409 stale (with current state), 400 invalid
    (naming the field), 403 not allowed, 404 not found."""
    if isinstance(error, StaleAction):
        return Response(
            {"detail": error.message, "code": error.code, "current": error.current, "changes": error.changes},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(error, InvalidAction):
        field = error.data.get("field", "non_field_errors")
        return Response({field: [error.message]}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(error, ExceptionNotFound):
        return Response({"detail": error.message}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(error, ActionNotAllowed):
        return Response({"detail": error.message}, status=status.HTTP_403_FORBIDDEN)
    return Response({"detail": error.message}, status=status.HTTP_400_BAD_REQUEST)


def approval_error_response(error: ApprovalError) -> Response:
    if isinstance(error, SelfApprovalRefused):
        return Response({"detail": error.message, "code": error.code}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(error, ApprovalNotPending):
        return Response({"detail": error.message, "code": error.code, "status": error.data.get("status")}, status=status.HTTP_409_CONFLICT)
    field = error.data.get("field")
    if field:
        return Response({field: [error.message], "code": error.code}, status=status.HTTP_400_BAD_REQUEST)
    return Response({"detail": error.message, "code": error.code}, status=status.HTTP_400_BAD_REQUEST)


def result_payload(result: services.ActionResult) -> dict[str, Any]:
    run = result.run
    return {
        "message": result.message,
        "exception": s.ExceptionSerializer(result.exception).data,
        "approval": s.ApprovalSerializer(result.approval).data if result.approval is not None else None,
        "run": (
            {"id": run.pk, "status": run.status, "changed_line_count": getattr(run, "changed_line_count", None)}
            if run is not None
            else None
        ),
    }


class ExceptionList(APIView):
    """Exceptions, filtered by queue, status, type, assignee (me|none|username), band, sla, q;
    sorted by ``sort`` (jeopardy|sla|age|value)."""

    permission_classes = [RolePermission]
    required_roles = {"GET": READERS}
    renderer_classes = exports.API_RENDERERS

    def get(self, request: Request) -> Response:
        filters = selectors.parse_filters(request.query_params)
        if filters.errors:
            return Response({name: [message] for name, message in filters.errors}, status=status.HTTP_400_BAD_REQUEST)
        qs = selectors.filter_exceptions(
            selectors.visible_to(request.user), filters, user=request.user, now=timezone.now()
        ).select_related("order", "item")
        if exports.api_csv_requested(request):  # ?format=csv: every filtered case
            return exports.api_export_response(request, qs, export_specs.CASES)
        paginator = KeysetPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(s.ExceptionSerializer(page, many=True).data)


class ExceptionDetail(APIView):
    permission_classes = [RolePermission]
    required_roles = {"GET": READERS}

    def get(self, request: Request, pk: int) -> Response:
        exception = selectors.get_exception_for(request.user, pk)
        return Response(s.ExceptionDetailSerializer(exception).data)


class CaseList(ExceptionList):
    """Cases (one per line or ship-complete order, with their open reasons), filtered like
    exceptions plus ``kind`` (work|information)."""

    def get(self, request: Request) -> Response:
        filters = selectors.parse_filters(request.query_params)
        if filters.errors:
            return Response({name: [message] for name, message in filters.errors}, status=status.HTTP_400_BAD_REQUEST)
        qs = selectors.filter_exceptions(
            selectors.visible_to(request.user), filters, user=request.user, now=timezone.now()
        ).select_related("order", "item", "queue", "assignee", "line__order", "line__item")
        if exports.api_csv_requested(request):  # ?format=csv: every filtered case
            return exports.api_export_response(request, qs, export_specs.CASES)
        paginator = KeysetPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(s.CaseSerializer(page, many=True).data)


class CaseDetail(ExceptionDetail):
    def get(self, request: Request, pk: int) -> Response:
        case = selectors.get_exception_for(request.user, pk)
        return Response(s.CaseDetailSerializer(case).data)



INPUTS = {
    ExceptionAction.CLAIM: s.ClaimInput,
    ExceptionAction.RELEASE: s.VersionInput,
    ExceptionAction.ASSIGN: s.AssignInput,
    ExceptionAction.ACCEPT: s.VersionInput,
    ExceptionAction.OVERRIDE: s.OverrideInput,
    ExceptionAction.SPLIT: s.SplitInput,
    ExceptionAction.DEFER: s.DeferInput,
    ExceptionAction.HOLD: s.NoteInput,
    ExceptionAction.RELEASE_TO_WAREHOUSE: s.NoteInput,
    ExceptionAction.ESCALATE: s.NoteInput,
    ExceptionAction.DISMISS: s.ReasonInput,
    ExceptionAction.COMMENT: s.CommentInput,
}


class ExceptionActionView(APIView):
    """POST /exceptions/{id}/{action} with ``version``: 200 with the result, 202 when it waits
    for an approver, 409 stale, 400 naming the field."""

    permission_classes = [RolePermission]
    required_roles = {"POST": ACTORS}

    @extend_schema(
        request=PolymorphicProxySerializer(
            component_name="ExceptionActionInput",
            serializers=list(dict.fromkeys(INPUTS.values())),
            resource_type_field_name=None,
        ),
        parameters=[OpenApiParameter("action", str, OpenApiParameter.PATH, enum=[a.value for a in INPUTS])],
    )
    def post(self, request: Request, pk: int, action: str) -> Response:
        exception = selectors.get_exception_for(request.user, pk)
        serializer = INPUTS[action](data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            result = services.perform(action, exception.pk, serializer.validated_data, actor=request.user)
        except ActionError as error:
            return action_error_response(error)
        code = status.HTTP_202_ACCEPTED if result.approval is not None else status.HTTP_200_OK
        return Response(result_payload(result), status=code)


class BulkActionView(APIView):
    """POST /exceptions/bulk/{claim|assign|dismiss} with ``items`` [{id, version}]."""

    permission_classes = [RolePermission]
    required_roles = {"POST": ACTORS}

    @extend_schema(
        request=s.BulkInput,
        parameters=[OpenApiParameter("action", str, OpenApiParameter.PATH, enum=["claim", "assign", "dismiss"])],
    )
    def post(self, request: Request, action: str) -> Response:
        serializer = s.BulkInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        visible = set(selectors.visible_to(request.user).filter(pk__in=[i["id"] for i in data["items"]]).values_list("pk", flat=True))
        selection = {i["id"]: i["version"] for i in data["items"] if i["id"] in visible}
        missing = sorted({i["id"] for i in data["items"]} - visible)
        if missing:
            return Response({"items": [f"No such exception: {missing[0]}."]}, status=status.HTTP_404_NOT_FOUND)
        try:
            if action == "claim":
                result = services.bulk_claim(selection, actor=request.user)
            elif action == "assign":
                if "assignee" not in data:
                    return Response({"assignee": ["This field is required."]}, status=status.HTTP_400_BAD_REQUEST)
                result = services.bulk_assign(selection, actor=request.user, assignee=data["assignee"])
            else:
                result = services.bulk_dismiss(selection, actor=request.user, reason=data.get("reason", ""))
        except ActionError as error:
            return action_error_response(error)
        return Response({"done": result.done, "stale": result.stale, "skipped": {str(k): v for k, v in result.skipped.items()}})


class ApprovalList(APIView):
    """Approval requests: approvers and finance see all, requesters their own; ``status`` filters."""

    permission_classes = [RolePermission]
    required_roles = {"GET": selectors.APPROVAL_READER_ROLES}
    renderer_classes = exports.API_RENDERERS

    def get(self, request: Request) -> Response:
        qs = selectors.approvals_visible_to(request.user)
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in {"pending", "approved", "rejected", "cancelled"}:
                return Response({"status": [f"unknown value {wanted!r}"]}, status=status.HTTP_400_BAD_REQUEST)
            qs = qs.filter(status=wanted)
        if exports.api_csv_requested(request):  # ?format=csv: every request listed
            return exports.api_export_response(request, qs.order_by("-created_at", "-pk"), export_specs.APPROVALS)
        paginator = KeysetPagination()
        page = paginator.paginate_queryset(qs.order_by("-created_at", "-pk"), request, view=self)
        return paginator.get_paginated_response(s.ApprovalSerializer(page, many=True).data)


class ApprovalDetail(APIView):
    permission_classes = [RolePermission]
    required_roles = {"GET": selectors.APPROVAL_READER_ROLES}

    def get(self, request: Request, pk: int) -> Response:
        return Response(s.ApprovalSerializer(selectors.get_approval_for(request.user, pk)).data)


class ApprovalDecision(APIView):
    """POST /approvals/{id}/approve|reject (reason required to reject); never your own."""

    permission_classes = [RolePermission]
    required_roles = {"POST": {roles.APPROVER}}

    @extend_schema(
        request=s.DecisionInput,
        parameters=[OpenApiParameter("decision", str, OpenApiParameter.PATH, enum=["approve", "reject"])],
    )
    def post(self, request: Request, pk: int, decision: str) -> Response:
        approval = selectors.get_approval_for(request.user, pk)
        serializer = s.DecisionInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        reason = serializer.validated_data["reason"]
        try:
            if decision == "approve":
                approval = approvals.approve(approval.pk, actor=request.user, reason=reason)
            else:
                approval = approvals.reject(approval.pk, actor=request.user, reason=reason)
        except ApprovalError as error:
            return approval_error_response(error)
        return Response(s.ApprovalSerializer(approval).data)
