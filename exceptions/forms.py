"""Forms of the exceptions screens: each validates one action's input (the API has serializers)."""
from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model

from config.forms import StorableTextForm
from exceptions import services
from exceptions.choices import OverrideReason

VERSION_MAX = 2_147_483_647  # DecisionException.version is a PositiveIntegerField
ID_MAX = 2**63 - 1  # a BigAutoField
_SELECTION = re.compile(r"^([1-9][0-9]{0,18}):([1-9][0-9]{0,9})$")


class VersionForm(StorableTextForm):
    version = forms.IntegerField(min_value=1, max_value=VERSION_MAX, widget=forms.HiddenInput)


class ClaimForm(VersionForm):
    """Claim; taking a colleague's claim over needs the ticked confirmation and a reason."""

    take_over = forms.BooleanField(required=False)
    reason = forms.CharField(max_length=300, required=False)

    def clean(self):
        data = super().clean()
        if data.get("take_over") and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why you take this claim over (your colleague is told).")
        return data


class ReleaseToWarehouseForm(VersionForm):
    """Release to warehouse: ``confirm`` is the ticked confirmation the screen asks for on a
    tier-1 customer's line or one above ``auto_release_max_value``."""

    note = forms.CharField(max_length=500, required=False)
    confirm = forms.BooleanField(required=False)


class AssignForm(VersionForm):
    assignee = forms.ModelChoiceField(queryset=get_user_model().objects.none(), to_field_name="username")

    def __init__(self, *args, assignees=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = get_user_model().objects.filter(pk__in=[u.pk for u in assignees]).order_by("username")


class OverrideForm(VersionForm):
    option = forms.CharField(required=False, widget=forms.HiddenInput)
    location = forms.CharField(max_length=64, required=False)
    supply = forms.CharField(max_length=64, required=False)
    item = forms.CharField(max_length=64, required=False)
    quantity = forms.DecimalField(max_digits=14, decimal_places=3)
    reason_code = forms.ChoiceField(choices=[("", "— reason —")] + list(OverrideReason.choices))
    note = forms.CharField(max_length=500, widget=forms.TextInput)

    def clean(self):
        data = super().clean()
        option = (data.get("option") or "").strip()
        if option:
            # "sku|location|supply" from the alternatives list fills the three fields at once.
            parts = option.split("|")
            if len(parts) != 3:
                raise forms.ValidationError({"option": "Unknown supply option."})
            data["item"], data["location"], data["supply"] = parts
        if not (data.get("location") or "").strip() or data.get("location") == "-":
            raise forms.ValidationError({"option": "Choose the supply to take from."})
        return data


class SplitForm(VersionForm):
    """Up to four parts: part-N-location / supply / quantity."""

    reason_code = forms.ChoiceField(choices=[("", "— reason —")] + list(OverrideReason.choices))
    note = forms.CharField(max_length=500, widget=forms.TextInput)
    PARTS = 4

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for index in range(self.PARTS):
            self.fields[f"part-{index}-location"] = forms.CharField(max_length=64, required=False)
            self.fields[f"part-{index}-supply"] = forms.CharField(max_length=64, required=False)
            self.fields[f"part-{index}-quantity"] = forms.DecimalField(max_digits=14, decimal_places=3, required=False)

    def parts(self) -> list[dict]:
        data = self.cleaned_data
        return [
            {
                "location": data[f"part-{i}-location"],
                "supply": data[f"part-{i}-supply"],
                "quantity": data[f"part-{i}-quantity"],
            }
            for i in range(self.PARTS)
            if data.get(f"part-{i}-location") or data.get(f"part-{i}-quantity") is not None
        ]


class DeferForm(VersionForm):
    promised_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(max_length=300)

    def clean_promised_date(self):
        value = self.cleaned_data["promised_date"]
        problem = services.promised_date_problem(value)
        if problem is not None:
            raise forms.ValidationError(problem)
        return value


class NoteForm(VersionForm):
    note = forms.CharField(max_length=500, required=False)


class ReasonForm(VersionForm):
    reason = forms.CharField(max_length=300)


class CommentForm(VersionForm):
    body = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class SelectionField(forms.Field):
    """The ticked rows of a list: every ``selected`` value of the form, as a list of strings
    (a MultipleChoiceField would check each value against choices made of the values
    themselves, quadratic in the selection, before the cap is checked)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[str]:
        if value in self.empty_values:
            return []
        if not isinstance(value, (list, tuple)):
            raise forms.ValidationError("Expected a list of id:version values.")
        return [str(v) for v in value]


class BulkForm(StorableTextForm):
    action = forms.ChoiceField(label="Action", choices=[("claim", "Claim"), ("assign", "Assign"), ("dismiss", "Dismiss")])
    selected = SelectionField(label="Selection", error_messages={"required": "Select at least one exception."})  # "id:version"
    reason = forms.CharField(label="Reason", max_length=300, required=False)
    assignee = forms.CharField(label="Assignee", max_length=150, required=False)

    def clean_selected(self) -> dict[int, int]:
        """``id:version`` pairs of positive whole numbers, each exception once, at most
        ``ALLOT_BULK_MAX_IDS`` of them."""
        values = self.cleaned_data["selected"]
        if len(values) > settings.ALLOT_BULK_MAX_IDS:
            raise forms.ValidationError(f"At most {settings.ALLOT_BULK_MAX_IDS} exceptions at once; got {len(values)}.")
        selection: dict[int, int] = {}
        for value in values:
            match = _SELECTION.match(value)
            if match is None or int(match.group(1)) > ID_MAX or int(match.group(2)) > VERSION_MAX:
                raise forms.ValidationError(f"Bad selection {value[:40]!r}: expected id:version.")
            pk, version = int(match.group(1)), int(match.group(2))
            if pk in selection:
                raise forms.ValidationError(f"Exception {pk} is selected twice.")
            selection[pk] = version
        return selection


class WorkbenchForm(StorableTextForm):
    """The shortage workbench: the location shown and, to commit, a reason code and a note
    (the new quantities are the ``line-<id>`` fields, read against the board's lines)."""

    location = forms.CharField(max_length=64, required=False)
    reason_code = forms.ChoiceField(
        choices=[("", "— reason —")] + list(OverrideReason.choices),
        error_messages={"required": "Choose a reason code from the list."},
    )
    note = forms.CharField(max_length=500, error_messages={"required": "A note is required."})


class WorkbenchLocationForm(WorkbenchForm):
    """The board's ``?location=`` alone (showing the board needs no reason nor note)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("reason_code", "note"):
            del self.fields[name]


class SavedViewForm(StorableTextForm):
    name = forms.CharField(max_length=80)
    querystring = forms.CharField(max_length=500, required=False)


class DecisionForm(StorableTextForm):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    reason = forms.CharField(max_length=1000, required=False, widget=forms.TextInput)


class OverridePreviewForm(OverrideForm):
    """The override form while it is being filled in: only supply and quantity matter."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("version", "reason_code", "note"):
            self.fields[name].required = False
