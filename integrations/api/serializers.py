from rest_framework import serializers

from integrations.models import Event


class EventSerializer(serializers.ModelSerializer):
    """A stored event as the API shows it: the envelope id, never the database key."""

    id = serializers.CharField(source="event_id")
    source = serializers.CharField(source="source.code")
    entity = serializers.CharField(source="entity_key")

    class Meta:
        model = Event
        fields = [
            "id",
            "source",
            "type",
            "occurred_at",
            "status",
            "errors",
            "entity",
            "parked_references",
            "attempts",
            "received_at",
            "applied_at",
        ]
