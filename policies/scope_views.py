"""GET /policies/scope-values/<dimension>/?<dimension>=<typed>&after=<last>: the options of a
scope dimension's datalist, as the person types (``policies.scope_values.suggestions``)."""
from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from config import bounds
from config.roles import role_required
from policies import scope_values
from policies.views import READERS


@require_GET
@role_required(*READERS)
def scope_value_options(request: HttpRequest, dimension: str) -> HttpResponse:
    if dimension not in scope_values.SOURCES:
        raise Http404("No such scope dimension.")
    field = next((name for name, dim in scope_values.FIELD_DIMENSIONS.items() if dim == dimension and name in request.GET), dimension)
    typed = request.GET.get(field, "") or request.GET.get("q", "")
    after = request.GET.get("after", "")
    if bounds.text_problem(typed) is not None or bounds.text_problem(after) is not None:
        typed, after = "", ""
    found = scope_values.suggestions(dimension, typed, after=after[:64])
    return render(request, "policies/_scope_options.html", {"values": found})
