"""Forms of the policy screens. They parse input; the services validate the whole document and
their field-path errors are mapped back onto these fields (``apply_errors``)."""
from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from django import forms

from config import jsonlimits
from config.forms import StorableTextForm
from policies import schema, scope_values
from policies.choices import QuotaPeriod
from policies.models import PolicyVersion

DIMENSION_LABELS = {d: d.replace("_", " ").capitalize() for d in schema.DIMENSIONS}
ORDER_KIND_CHOICES = [("", "any"), *[(kind, kind) for kind in schema.ORDER_KINDS]]


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def parse_json_text(text: str) -> Any:
    """JSON typed or uploaded into a policy screen, through the project's one JSON parser
    (config.jsonlimits: size and nesting limits), every failure a ValidationError naming it."""
    try:
        return jsonlimits.parse_json(text)
    except jsonlimits.JSONBodyError as error:
        raise forms.ValidationError(f"Not valid JSON here: {error.message}.") from error


class JSONObjectField(forms.CharField):
    """A JSON object typed in a textarea; the error names the line and column."""

    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono"})

    def to_python(self, value: Any) -> dict[str, Any]:
        text = (super().to_python(value) or "").strip() or "{}"
        parsed = parse_json_text(text)
        if not isinstance(parsed, dict):
            raise forms.ValidationError('Must be a JSON object, e.g. {"strategy": "win"}.')
        return parsed

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return json.dumps(value, indent=1 if len(value) > 3 else None)
        return value


class ScopeListsMixin:
    """Scope text inputs pick their values from the data (policies.scope_values: datalists,
    looked up as the person types for customers and items)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        scope_values.attach_lists(self)


class RuleForm(ScopeListsMixin, StorableTextForm):
    """A rule: one text box per scope dimension (blank = any) and the settings as JSON."""

    customer = forms.CharField(required=False, max_length=64)
    customer_segment = forms.CharField(required=False, max_length=64)
    customer_tier = forms.TypedChoiceField(required=False, choices=[("", "any"), *[(str(t), str(t)) for t in range(1, 5)]], coerce=int, empty_value=None)
    channel = forms.CharField(required=False, max_length=64)
    order_kind = forms.ChoiceField(required=False, choices=ORDER_KIND_CHOICES, label="Order kind")
    item = forms.CharField(required=False, max_length=64)
    item_class = forms.CharField(required=False, max_length=64)
    location = forms.CharField(required=False, max_length=64)
    region = forms.CharField(required=False, max_length=64)
    settings = JSONObjectField(required=False, help_text="A JSON object of setting to value, e.g. {\"strategy\": \"win\", \"priority_class\": 1}.")

    @classmethod
    def initial_for(cls, rule) -> dict[str, Any]:
        return {**{d: rule.scope.get(d, "") for d in schema.DIMENSIONS}, "settings": rule.settings}

    def scope(self) -> dict[str, Any]:
        return {d: self.cleaned_data[d] for d in schema.DIMENSIONS if self.cleaned_data.get(d) not in (None, "")}

    def service_kwargs(self) -> dict[str, Any]:
        return {"scope": self.scope(), "settings": self.cleaned_data["settings"]}


class ProtectionForm(ScopeListsMixin, StorableTextForm):
    sku = forms.CharField(max_length=64, required=False)
    location = forms.CharField(max_length=64, required=False)
    quantity = forms.DecimalField(min_value=None, max_digits=14, decimal_places=3)
    for_scope = JSONObjectField(required=False, label="For", help_text='Lines this protects stock for, e.g. {"customer_segment": "healthcare"}; {} = every line.')

    @classmethod
    def initial_for(cls, protection) -> dict[str, Any]:
        return {"sku": protection.sku, "location": protection.location, "quantity": _number(protection.quantity), "for_scope": protection.for_scope}

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {"sku": data["sku"], "location": data["location"], "quantity": _number(data["quantity"]), "for_scope": data["for_scope"]}


class QuotaForm(ScopeListsMixin, StorableTextForm):
    sku = forms.CharField(max_length=64, required=False, help_text="A SKU, or leave blank and give an item class.")
    item_class = forms.CharField(max_length=64, required=False)
    period = forms.ChoiceField(required=False, choices=[("", "choose…"), *QuotaPeriod.choices])
    quantity = forms.DecimalField(max_digits=14, decimal_places=3)
    for_scope = JSONObjectField(required=False, label="For", help_text='Lines the quota caps, e.g. {"channel": "ecommerce"}.')

    @classmethod
    def initial_for(cls, quota) -> dict[str, Any]:
        return {"sku": quota.sku, "item_class": quota.item_class, "period": quota.period, "quantity": _number(quota.quantity), "for_scope": quota.for_scope}

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "sku": data["sku"], "item_class": data["item_class"], "period": data["period"],
            "quantity": _number(data["quantity"]), "for_scope": data["for_scope"],
        }


SECTION_FORMS: dict[str, type[forms.Form]] = {"rules": RuleForm, "protections": ProtectionForm, "quotas": QuotaForm}
_PATH = re.compile(r"^(?P<section>rules|protections|quotas)\[\d+\]\.?(?P<rest>.*)$")


def apply_errors(form: forms.Form, errors: list[dict[str, str]]) -> None:
    """Put the service's document-path errors on the matching form fields (path kept in the text)."""
    for error in errors:
        match = _PATH.match(error["field"])
        rest = match.group("rest") if match else ""
        head, _, tail = rest.partition(".")
        target = None
        if head == "scope" and tail.split(".")[0] in form.fields:
            target = tail.split(".")[0]
        elif head == "for":
            target = "for_scope"
        elif head in form.fields:
            target = head
        form.add_error(target, f"{error['field'] or 'document'}: {error['message']}")


class VersionDetailsForm(StorableTextForm):
    name = forms.CharField(max_length=200)
    effective_from = forms.DateTimeField(
        help_text="When it becomes active once approved (in UTC unless an offset is given; past = on approval).",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_effective_from(self) -> Any:
        value = self.cleaned_data["effective_from"]
        problem = schema.effective_from_problem(value)
        if problem is not None:
            raise forms.ValidationError(problem)
        return value


class ImportForm(StorableTextForm):
    document = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "mono"}), help_text="The policy document as JSON.")
    file = forms.FileField(required=False, help_text="…or a .json file.")
    activate = forms.BooleanField(required=False, help_text="Activate at once without approval (superusers only; recorded as administrative activation).")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        text = data.get("document") or ""
        upload = data.get("file")
        if upload is not None:
            try:
                text = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                self.add_error("file", "The file is not UTF-8 text.")
                return data
        if not text.strip():
            self.add_error("document", "Paste a document or choose a file.")
            return data
        try:
            data["parsed"] = parse_json_text(text)
        except forms.ValidationError as error:
            self.add_error("file" if upload is not None else "document", error)
        return data


class DecisionForm(StorableTextForm):
    reason = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class NoteForm(StorableTextForm):
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class ExplainForm(ScopeListsMixin, StorableTextForm):
    version = forms.ModelChoiceField(queryset=PolicyVersion.objects.all(), required=False, empty_label="the active version")
    customer = forms.CharField(required=False, max_length=64)
    customer_segment = forms.CharField(required=False, max_length=64)
    customer_tier = forms.TypedChoiceField(required=False, choices=[("", "any"), *[(str(t), str(t)) for t in range(1, 5)]], coerce=int, empty_value=None)
    channel = forms.CharField(required=False, max_length=64)
    order_kind = forms.ChoiceField(required=False, choices=ORDER_KIND_CHOICES, label="Order kind")
    item = forms.CharField(required=False, max_length=64)
    item_class = forms.CharField(required=False, max_length=64)
    location = forms.CharField(required=False, max_length=64)
    region = forms.CharField(required=False, max_length=64)
    order = forms.CharField(required=False, max_length=64, help_text="Or take every dimension from an order line.")
    line = forms.IntegerField(required=False, min_value=0)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("order") and data.get("line") is None:
            self.add_error("line", "Give the line number with the order.")
        return data

    def dimension_values(self) -> dict[str, Any]:
        return {d: self.cleaned_data.get(d) for d in schema.DIMENSIONS}


class DiffForm(StorableTextForm):
    a = forms.ModelChoiceField(queryset=PolicyVersion.objects.all(), label="From", to_field_name="number")
    b = forms.ModelChoiceField(queryset=PolicyVersion.objects.all(), label="To", to_field_name="number")
