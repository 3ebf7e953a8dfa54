"""Serializers of the exceptions API: output shapes and the input of each action.

Every input is strict (config.api): an unknown field is a 400 naming it, ids and versions are
JSON integers, a deferred promise lies within the horizon, a bulk action takes at most
``ALLOT_BULK_MAX_IDS`` exceptions, each once.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework import serializers

from config.api import CleanSlugRelatedField, StrictIntegerField, StrictSerializer
from exceptions import services
from exceptions.choices import OverrideReason
from exceptions.models import ApprovalRequest, CaseReason, DecisionException, ExceptionComment


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
            "kind", "reasons",
        ]

    reasons = serializers.ListField(source="reason_types", child=serializers.CharField(), read_only=True)

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


class CaseSerializer(serializers.ModelSerializer):
    """A case: one per line (or ship-complete order), listing its open reasons' types."""

    order = serializers.SerializerMethodField()
    line = serializers.SerializerMethodField()
    sku = serializers.SerializerMethodField()
    reasons = serializers.ListField(source="reason_types", child=serializers.CharField())
    queue = serializers.CharField(source="queue.code", default=None)
    assignee = serializers.CharField(source="assignee.username", default=None)
    value_at_stake = serializers.DecimalField(source="value", max_digits=16, decimal_places=2)

    class Meta:
        model = DecisionException
        fields = [
            "id", "order", "line", "sku", "reasons", "type", "kind", "queue", "severity", "value_at_stake",
            "status", "assignee", "message", "jeopardy_band", "jeopardy_score", "raised_at", "due_at", "version",
        ]

    get_order = ExceptionSerializer.get_order
    get_line = ExceptionSerializer.get_line
    get_sku = ExceptionSerializer.get_sku


class ReasonSerializer(serializers.ModelSerializer):
    class Meta:
        model = CaseReason
        fields = ["id", "type", "status", "message", "details", "information", "raised_at", "updated_at",
                  "resolved_at", "resolution_reason"]


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username")

    class Meta:
        model = ExceptionComment
        fields = ["author", "body", "created_at"]


class ExceptionDetailSerializer(ExceptionSerializer):
    details = serializers.JSONField()
    comments = CommentSerializer(many=True)
    reason_list = ReasonSerializer(source="reasons", many=True)

    class Meta(ExceptionSerializer.Meta):
        fields = ExceptionSerializer.Meta.fields + ["details", "comments", "reason_list"]


class CaseDetailSerializer(CaseSerializer):
    details = serializers.JSONField()
    comments = CommentSerializer(many=True)
    reason_list = ReasonSerializer(source="reasons", many=True)

    class Meta(CaseSerializer.Meta):
        fields = CaseSerializer.Meta.fields + ["details", "comments", "reason_list", "resolved_at", "resolution_reason"]


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


VERSION_MAX = 2_147_483_647  # DecisionException.version is a PositiveIntegerField


class VersionInput(StrictSerializer):
    version = StrictIntegerField(min_value=1, max_value=VERSION_MAX)


class ClaimInput(VersionInput):
    take_over = serializers.BooleanField(
        required=False, default=False, help_text="Confirms taking a colleague's claim over (recorded)."
    )
    reason = serializers.CharField(
        max_length=300, required=False, allow_blank=True, default="",
        help_text="Why you take a colleague's claim over: required with take_over (recorded, and told to them).",
    )


class AssignInput(VersionInput):
    assignee = CleanSlugRelatedField(slug_field="username", queryset=get_user_model().objects.filter(is_active=True))


class PartInput(StrictSerializer):
    location = serializers.CharField(max_length=64)
    quantity = serializers.DecimalField(max_digits=14, decimal_places=3, min_value=0)
    supply = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    item = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")


class OverrideInput(VersionInput, PartInput):
    reason_code = serializers.ChoiceField(choices=OverrideReason.choices)
    note = serializers.CharField(max_length=500)


class SplitInput(VersionInput):
    parts = PartInput(many=True, max_length=100)
    reason_code = serializers.ChoiceField(choices=OverrideReason.choices)
    note = serializers.CharField(max_length=500)


class DeferInput(VersionInput):
    promised_date = serializers.DateField()
    reason = serializers.CharField(max_length=300)

    def validate_promised_date(self, value: Any) -> Any:
        problem = services.promised_date_problem(value)
        if problem is not None:
            raise serializers.ValidationError(problem)
        return value


class NoteInput(VersionInput):
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class ReasonInput(VersionInput):
    reason = serializers.CharField(max_length=300)


class CommentInput(VersionInput):
    body = serializers.CharField(max_length=2000)


class BulkItem(StrictSerializer):
    id = StrictIntegerField(min_value=1)
    version = StrictIntegerField(min_value=1, max_value=VERSION_MAX)


class BulkInput(StrictSerializer):
    items = BulkItem(many=True, allow_empty=False)
    reason = serializers.CharField(max_length=300, required=False)
    assignee = CleanSlugRelatedField(
        slug_field="username", queryset=get_user_model().objects.filter(is_active=True), required=False
    )

    def to_internal_value(self, data: Any) -> Any:
        # Counted before each item is validated: 100,000 items are refused at once, not checked one by one.
        items = data.get("items") if isinstance(data, Mapping) else None
        if isinstance(items, list) and len(items) > settings.ALLOT_BULK_MAX_IDS:
            raise serializers.ValidationError(
                {"items": [f"At most {settings.ALLOT_BULK_MAX_IDS} exceptions at once; got {len(items)}."]}
            )
        return super().to_internal_value(data)

    def validate_items(self, items: list[dict[str, int]]) -> list[dict[str, int]]:
        ids = [item["id"] for item in items]
        if len(set(ids)) != len(ids):
            repeated = sorted(pk for pk, count in Counter(ids).items() if count > 1)
            raise serializers.ValidationError(f"Each exception once; repeated: {', '.join(map(str, repeated[:10]))}.")
        return items


class DecisionInput(StrictSerializer):
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
