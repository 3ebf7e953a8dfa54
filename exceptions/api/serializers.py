"""Serializers of the exceptions API: output shapes and the input of each action."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from exceptions.choices import OverrideReason
from exceptions.models import ApprovalRequest, DecisionException, ExceptionComment


class ExceptionSerializer(serializers.ModelSerializer):
    queue = serializers.CharField(source="queue.code", default=None)
    assignee = serializers.CharField(source="assignee.username", default=None)
    order = serializers.SerializerMethodField()
    line = serializers.SerializerMethodField()
    sku = serializers.SerializerMethodField()

    class Meta:
        model = DecisionException
        fields = [
            "id", "type", "status", "severity", "message", "queue", "assignee", "order", "line", "sku",
            "jeopardy_score", "jeopardy_band", "jeopardy_reason", "value", "raised_at", "updated_at",
            "due_at", "escalated_at", "escalation_level", "resolved_at", "resolution_reason", "version",
        ]

    def get_order(self, obj: DecisionException) -> str | None:
        if obj.line_id:
            return obj.line.order.number
        return obj.order.number if obj.order_id else None

    def get_line(self, obj: DecisionException) -> int | None:
        return obj.line.line if obj.line_id else None

    def get_sku(self, obj: DecisionException) -> str | None:
        if obj.line_id:
            return obj.line.item.sku
        return obj.item.sku if obj.item_id else None


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username")

    class Meta:
        model = ExceptionComment
        fields = ["author", "body", "created_at"]


class ExceptionDetailSerializer(ExceptionSerializer):
    details = serializers.JSONField()
    comments = CommentSerializer(many=True)

    class Meta(ExceptionSerializer.Meta):
        fields = ExceptionSerializer.Meta.fields + ["details", "comments"]


class ApprovalSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.username")
    decided_by = serializers.CharField(source="decided_by.username", default=None)
    subject = serializers.SerializerMethodField()

    class Meta:
        model = ApprovalRequest
        fields = [
            "id", "kind", "status", "subject", "requested_by", "request_note", "payload",
            "decided_by", "decision_reason", "created_at", "decided_at",
        ]

    def get_subject(self, obj: ApprovalRequest) -> dict:
        return {"type": obj.subject_type.model, "id": obj.subject_id}


# ----------------------------------------------------------------------------- action inputs


class VersionInput(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)


class AssignInput(VersionInput):
    assignee = serializers.SlugRelatedField(slug_field="username", queryset=get_user_model().objects.filter(is_active=True))


class PartInput(serializers.Serializer):
    location = serializers.CharField(max_length=64)
    quantity = serializers.DecimalField(max_digits=14, decimal_places=3, min_value=0)
    supply = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    item = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")


class OverrideInput(VersionInput, PartInput):
    reason_code = serializers.ChoiceField(choices=OverrideReason.choices)
    note = serializers.CharField(max_length=500)


class SplitInput(VersionInput):
    parts = PartInput(many=True)
    reason_code = serializers.ChoiceField(choices=OverrideReason.choices)
    note = serializers.CharField(max_length=500)


class DeferInput(VersionInput):
    promised_date = serializers.DateField()
    reason = serializers.CharField(max_length=300)


class NoteInput(VersionInput):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class ReasonInput(VersionInput):
    reason = serializers.CharField(max_length=300)


class CommentInput(VersionInput):
    body = serializers.CharField(max_length=2000)


class BulkItem(serializers.Serializer):
    id = serializers.IntegerField(min_value=1)
    version = serializers.IntegerField(min_value=1)


class BulkInput(serializers.Serializer):
    items = BulkItem(many=True, allow_empty=False)
    reason = serializers.CharField(max_length=300, required=False)
    assignee = serializers.SlugRelatedField(
        slug_field="username", queryset=get_user_model().objects.filter(is_active=True), required=False
    )


class DecisionInput(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
