from rest_framework import serializers

from config.api import StrictSerializer
from policies.models import PolicyVersion
from policies.resolution import DIMENSIONS
from policies.schema import ORDER_KINDS


class PolicyVersionSerializer(serializers.ModelSerializer):
    based_on = serializers.SlugRelatedField(slug_field="number", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    submitted_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    scheduled = serializers.BooleanField(source="is_scheduled", read_only=True)

    class Meta:
        model = PolicyVersion
        fields = [
            "id", "number", "name", "status", "scheduled", "effective_from", "note", "based_on",
            "created_by", "submitted_by", "submitted_at", "approved_by", "approved_at", "activated_at",
            "retired_at", "administrative_activation", "created_at", "updated_at",
        ]
        read_only_fields = fields


class DecisionSerializer(StrictSerializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class SubmitSerializer(StrictSerializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class ExplainQuerySerializer(serializers.Serializer):
    version = serializers.IntegerField(required=False, min_value=1, help_text="Version id (default: the active one).")
    order = serializers.CharField(required=False, max_length=64, help_text="Take the dimensions from this order's line.")
    line = serializers.IntegerField(required=False, min_value=0)
    customer = serializers.CharField(required=False, allow_blank=True, max_length=64)
    customer_segment = serializers.CharField(required=False, allow_blank=True, max_length=64)
    customer_tier = serializers.IntegerField(required=False, min_value=1, max_value=4)
    channel = serializers.CharField(required=False, allow_blank=True, max_length=64)
    order_kind = serializers.ChoiceField(required=False, allow_blank=True, choices=ORDER_KINDS)
    item = serializers.CharField(required=False, allow_blank=True, max_length=64)
    item_class = serializers.CharField(required=False, allow_blank=True, max_length=64)
    location = serializers.CharField(required=False, allow_blank=True, max_length=64)
    region = serializers.CharField(required=False, allow_blank=True, max_length=64)

    def validate(self, attrs):
        if "order" in attrs and "line" not in attrs:
            raise serializers.ValidationError({"line": "Give the line number with the order."})
        return attrs

    def dimension_values(self) -> dict:
        return {d: self.validated_data[d] for d in DIMENSIONS if self.validated_data.get(d) not in (None, "")}
