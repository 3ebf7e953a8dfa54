"""Forms of the Integrations screen: upload a file of events, plan a replay, set a cadence."""
from __future__ import annotations

from django import forms

from integrations.choices import EventType
from integrations.models import MAX_STALE_FEED_MINUTES


def _source_choices(codes: list[str]) -> list[tuple[str, str]]:
    return [(code, code) for code in codes]


class UploadForm(forms.Form):
    """A CSV of one event type, or a JSON Lines file (event type left empty), for one source."""

    source = forms.ChoiceField()
    event_type = forms.ChoiceField(
        required=False, label="CSV of",
        choices=[("", "JSON Lines file (type in each line)")] + [(t, t) for t in EventType.values],
    )
    file = forms.FileField(allow_empty_file=False, max_length=255)

    def __init__(self, *args, sources: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = _source_choices(sources)


class ReplayForm(forms.Form):
    """Which source's stored events to replay: those that occurred in [start, end)."""

    source = forms.ChoiceField()
    start = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    end = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))

    def __init__(self, *args, sources: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = _source_choices(sources)

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            self.add_error("end", "must be after the start")
        return data


class CadenceForm(forms.Form):
    """A source's expected cadence in minutes; empty = the policy's stale_feed_minutes."""

    stale_feed_minutes = forms.IntegerField(required=False, min_value=1, max_value=MAX_STALE_FEED_MINUTES, label="Cadence (min)")
