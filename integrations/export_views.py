"""The Exports screen: who exported which list, with which filters, when and how many rows
(finance and superusers). It is itself a list, exportable like the others."""
from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from config import exports, pagination, roles
from config.forms import StorableTextForm
from integrations import export_log, export_specs

EXPORT_AUDITORS = (roles.FINANCE,)  # superusers hold every role
PAGE_SIZE = 50


class ExportFilterForm(StorableTextForm):
    """Filters of the Exports screen; a bad date is a 400 naming the field."""

    username = forms.CharField(required=False, max_length=150, label="User")
    screen = forms.CharField(required=False, max_length=64)
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))


@require_GET
@roles.role_required(*EXPORT_AUDITORS)
def export_list(request: HttpRequest) -> HttpResponse:
    """Export records newest first, filterable by user, screen and date range."""
    form = ExportFilterForm(request.GET)
    valid = form.is_valid()
    criteria = form.cleaned_data if valid else {}
    records = export_log.export_records(
        username=criteria.get("username", ""), screen=criteria.get("screen", ""),
        since=criteria.get("since"), until=criteria.get("until"),
    )
    if not valid:
        records = records.none()
    elif exports.requested(request):
        return exports.export_response(request, records, export_specs.EXPORTS)
    query = pagination.screen_query(request)
    context = {
        "form": form,
        "page_obj": pagination.screen_page(request, records, PAGE_SIZE),
        "query": query,
        "filtered": bool(query),
        "valid": valid,
    }
    template = "integrations/export_list.html#export-rows" if request.htmx else "integrations/export_list.html"
    return render(request, template, context, status=200 if valid else 400)
