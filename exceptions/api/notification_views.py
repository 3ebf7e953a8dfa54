"""GET /api/v1/notifications: the caller's notifications, newest first, keyset pages;
``?unread=true`` only the unread ones. POST /api/v1/notifications/read marks them read
(``ids``: a list, or all when absent)."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config import roles
from config.api import StrictIntegerField, StrictSerializer
from config.pagination import KeysetPagination
from config.roles import RolePermission
from exceptions import notifications
from exceptions.models import Notification

ID_MAX = 2**63 - 1


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "kind", "text", "link", "created_at", "read_at"]


class ReadInput(StrictSerializer):
    ids = serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=ID_MAX), required=False, max_length=1000,
        help_text="The notifications to mark read; all of yours when absent.",
    )


# Everyone signed in has their own notifications (a service account's runs finish too).
EVERYONE = frozenset(roles.ALL_ROLES)


class NotificationList(APIView):
    permission_classes = [RolePermission]
    required_roles = {"GET": EVERYONE}

    @extend_schema(
        parameters=[OpenApiParameter("unread", bool, description="Only unread notifications.")],
        responses=NotificationSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        qs = notifications.for_user(request.user)
        unread = request.query_params.get("unread")
        if unread is not None:
            if unread.lower() not in {"true", "false", "1", "0"}:
                return Response({"unread": ["Expected true or false."]}, status=status.HTTP_400_BAD_REQUEST)
            if unread.lower() in {"true", "1"}:
                qs = qs.filter(read_at__isnull=True)
        paginator = KeysetPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        response = paginator.get_paginated_response(NotificationSerializer(page, many=True).data)
        response.data["unread_count"] = notifications.unread_count(request.user)
        return response


class NotificationRead(APIView):
    permission_classes = [RolePermission]
    required_roles = {"POST": EVERYONE}

    @extend_schema(request=ReadInput, responses={200: dict})
    def post(self, request: Request) -> Response:
        data = ReadInput(data=request.data)
        data.is_valid(raise_exception=True)
        ids = data.validated_data.get("ids")
        marked = notifications.mark_read(request.user, ids)
        return Response({"marked": marked, "unread_count": notifications.unread_count(request.user)})
