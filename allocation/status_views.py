"""The status partial of one run, polled by the "recalculating" block (``_follow.html``).

A planner action, approval or policy activation answers at once and comes back to its page with
``?run=<id>``; the block there asks this view every second. While the run is queued or running
it answers the block again (phase, progress, counts); once the run has finished it answers the
finished block and, to a poll (``poll=1``), ``HX-Refresh`` so the page reloads with the
decisions that landed (the reloaded page shows the finished block, which polls no more).
"""
from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET

from allocation.models import AllocationRun
from config import roles


@require_GET
@roles.role_required(*roles.READERS)
def run_status(request: HttpRequest, pk: int) -> HttpResponse:
    run = AllocationRun.objects.filter(pk=pk, is_simulation=False).first()
    if run is None:
        raise Http404("No such run.")
    response = render(request, "allocation/runs/_follow.html", {"run": run})
    if run.is_finished and request.GET.get("poll") == "1" and request.htmx:
        response["HX-Refresh"] = "true"
    add_never_cache_headers(response)
    return response
