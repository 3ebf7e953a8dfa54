from django import forms

from integrations.choices import EventStatus, EventType, OutboxStatus, OutboxType
from integrations.models import Source


class EventFilterForm(forms.Form):
    """Filters of the Events screen (GET): source, status, type and an id/entity search."""

    source = forms.ChoiceField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "any")] + list(EventStatus.choices))
    type = forms.ChoiceField(required=False, choices=[("", "any")] + list(EventType.choices))
    q = forms.CharField(required=False, max_length=200, label="Search", widget=forms.TextInput(attrs={"type": "search", "placeholder": "event id or code"}))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = [("", "any")] + [(c, c) for c in Source.objects.order_by("code").values_list("code", flat=True)]


class OutboxFilterForm(forms.Form):
    """Filters of the Outbox screen (GET): status, type and a message id/order search."""

    status = forms.ChoiceField(required=False, choices=[("", "any")] + list(OutboxStatus.choices))
    type = forms.ChoiceField(required=False, choices=[("", "any")] + list(OutboxType.choices))
    q = forms.CharField(required=False, max_length=200, label="Search", widget=forms.TextInput(attrs={"type": "search", "placeholder": "message id or order"}))
