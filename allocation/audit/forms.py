"""Filters of the audit screens: plain GET forms; a bad value is a 400 naming the field."""
from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms

from allocation.audit.selectors import KINDS, AuditFilters
from config.forms import StorableTextForm

CODE = {"max_length": 64, "required": False}


class AuditFilterForm(StorableTextForm):
    """Date range, actor, kind of change, customer, order, item, policy version, value at stake."""

    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    actor = forms.CharField(max_length=150, required=False, label="Who", widget=forms.TextInput(attrs={"placeholder": "username"}))
    kind = forms.ChoiceField(choices=[("", "Any change")], required=False, label="Kind of change")
    customer = forms.CharField(**CODE)
    order = forms.CharField(**CODE)
    item = forms.CharField(**CODE, label="Item (SKU)")
    policy = forms.IntegerField(required=False, min_value=1, max_value=2**31 - 1, label="Policy version")
    min_value = forms.DecimalField(required=False, min_value=0, max_digits=16, decimal_places=2, label="Value at stake ≥")

    def __init__(self, *args: Any, can_see_roles: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [("", "Any change")] + [
            (key, label) for key, label in KINDS.items() if key != "role" or can_see_roles
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        for name in ("since", "until"):
            value = data.get(name)
            if value is not None and not dt.date(2000, 1, 1) <= value <= dt.date(2100, 12, 31):
                self.add_error(name, "Give a date between 2000 and 2100.")
        if since and until and since > until:
            self.add_error("until", "The end is before the start.")
        return data

    def filters(self) -> AuditFilters:
        data = self.cleaned_data
        return AuditFilters(
            since=data.get("since"), until=data.get("until"), actor=(data.get("actor") or "").strip(),
            kind=data.get("kind") or "", customer=(data.get("customer") or "").strip(),
            order=(data.get("order") or "").strip(), item=(data.get("item") or "").strip(),
            policy=data.get("policy"), min_value=data.get("min_value"),
        )


class AtForm(StorableTextForm):
    """``?at=2026-06-01T10:00``: a point in time (UTC when no offset is given)."""

    at = forms.DateTimeField(input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M", "%Y-%m-%d"])

    def clean_at(self) -> dt.datetime:
        value = self.cleaned_data["at"]
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        if not dt.datetime(2000, 1, 1, tzinfo=dt.UTC) <= value <= dt.datetime(2100, 12, 31, tzinfo=dt.UTC):
            raise forms.ValidationError("Give a time between 2000 and 2100.")
        return value


class WithdrawForm(StorableTextForm):
    reason = forms.CharField(max_length=1000, required=False)
