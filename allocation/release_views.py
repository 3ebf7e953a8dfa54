"""Release screens: every location's day, one location's Release page (capacity, preview of the
next wave, what it holds back and why, the Run button, wave history), a wave's detail, and the
queue of recommendations waiting for a planner (``execution_mode: recommend``).

Thin views over ``allocation.releases`` and ``allocation.execution_modes``. A wave runs inside
the request: it is set-based (a fixed number of queries and bulk writes), so a wave of a few
thousand lines takes well under a second and the page shows its result when the POST answers
(no background job, no progress bar needed). HTMX posts are answered with ``HX-Location``;
without JavaScript every action is a plain form POST answered by a redirect.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.db.models import Count, Max, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from allocation import execution_modes, export_specs, releases
from allocation.choices import AllocationState, WaveOutcome, WaveTrigger
from allocation.errors import WaveAlreadyRunning
from allocation.models import Allocation, Location, OrderLine, Wave, WaveLine
from config import exports, pagination, roles
from config.forms import StorableTextForm

WAVE_PAGE_SIZE = 20
LINE_PAGE_SIZE = 100
PREVIEW_LIMIT = 200
QUEUE_PAGE_SIZE = 50
RELEASERS = (roles.PLANNER,)


def _location(code: str) -> Location:
    location = Location.objects.filter(code=code).first()
    if location is None:
        raise Http404("No such location.")
    return location


def _done(request: HttpRequest, target: str) -> HttpResponse:
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Location"] = target
        return response
    return redirect(target)


@require_GET
@roles.role_required(*roles.READERS)
def release_list(request: HttpRequest) -> HttpResponse:
    """Every location's day: capacity, released so far, what is left, the cutoff, the last wave."""
    locations = list(Location.objects.order_by("code"))
    rows = []
    newest = Wave.objects.values("location_id").annotate(newest=Max("id")).values("newest")
    last = {wave.location_id: wave for wave in Wave.objects.filter(pk__in=newest).select_related("started_by")}
    used = releases.released_counts(locations)
    for location in locations:
        capacity = releases.capacity_today(location, used=used.get(location.pk))
        rows.append({"location": location, "capacity": capacity, "last": last.get(location.pk)})
    recommended = Allocation.objects.filter(state=AllocationState.RECOMMENDED).aggregate(
        lines=Count("line_id", distinct=True)
    )["lines"]
    return render(request, "allocation/release/list.html", {"rows": rows, "recommended": recommended})


@require_GET
@roles.role_required(*roles.READERS)
def release_location(request: HttpRequest, code: str) -> HttpResponse:
    """One location's Release page: today's capacity, the next wave's preview, history."""
    location = _location(code)
    plan = releases.plan_wave(location)
    page = pagination.screen_page(request, Wave.objects.filter(location=location).select_related("started_by"), WAVE_PAGE_SIZE, ["-id"])
    context: dict[str, Any] = {
        "location": location,
        "plan": plan,
        "capacity": plan.capacity,
        "to_release": plan.released[:PREVIEW_LIMIT],
        "held": plan.held[:PREVIEW_LIMIT],
        "release_count": len(plan.released),
        "held_count": len(plan.held),
        "slots": plan.slots_used,
        "preview_limit": PREVIEW_LIMIT,
        "page_obj": page,
        "query": pagination.screen_query(request),
        "can_release": roles.has_role(request.user, RELEASERS),
        "running": Wave.objects.filter(location=location, status="running").first(),
        "recommended": Allocation.objects.filter(location=location, state=AllocationState.RECOMMENDED)
        .values("line_id").distinct().count(),
    }
    template = "allocation/release/location.html"
    if request.htmx and request.htmx.target == "wave-history" and not request.htmx.history_restore_request:
        template += "#wave-history"
    return render(request, template, context)


@require_POST
@roles.role_required(*RELEASERS)
def release_run(request: HttpRequest, code: str) -> HttpResponse:
    """Run the location's wave now (planner). A wave already running there: 409, saying which."""
    location = _location(code)
    try:
        wave = releases.run_wave(location, request.user, trigger=WaveTrigger.PLANNER)
    except WaveAlreadyRunning as busy:
        messages.error(request, busy.message)
        if request.htmx:
            response = HttpResponse(busy.message, status=409)
            response["HX-Location"] = reverse("allocation:release_location", args=[location.code])
            return response
        return redirect(reverse("allocation:release_location", args=[location.code]))
    if wave.status == "failed":
        messages.error(request, f"Wave #{wave.pk} failed and released nothing: {wave.error}")
    else:
        messages.success(
            request,
            f"Wave #{wave.pk}: released {wave.released_count} of {wave.considered_count} line(s), "
            f"held back {wave.held_count - wave.approval_count}, {wave.approval_count} sent for approval "
            f"({wave.duration_ms} ms).",
        )
    return _done(request, reverse("allocation:wave_detail", args=[wave.pk]))


class WaveLineFilterForm(StorableTextForm):
    outcome = forms.ChoiceField(choices=[("", "Any outcome"), *WaveOutcome.choices], required=False)


@require_GET
@roles.role_required(*roles.READERS)
def wave_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A wave: who started it, its day, capacity and counts, and every line with its outcome."""
    wave = Wave.objects.select_related("location", "started_by").filter(pk=pk).first()
    if wave is None:
        raise Http404("No such wave.")
    form = WaveLineFilterForm(request.GET)
    lines = WaveLine.objects.filter(wave=wave).select_related("approval")
    if form.is_valid() and form.cleaned_data["outcome"]:
        lines = lines.filter(outcome=form.cleaned_data["outcome"])
    if form.is_valid() and exports.requested(request):  # ?export=csv|xlsx: every line listed
        return exports.export_response(request, lines, export_specs.WAVE_LINES)
    page = pagination.screen_page(request, lines, LINE_PAGE_SIZE, ["id"])
    context = {"wave": wave, "page_obj": page, "query": pagination.screen_query(request), "filter_form": form}
    template = "allocation/release/wave_detail.html"
    if request.htmx and request.htmx.target == "wave-lines" and not request.htmx.history_restore_request:
        template += "#wave-lines"
    return render(request, template, context, status=200 if form.is_valid() else 400)


# --------------------------------------------------------------------------- recommendations


class RecommendationFilterForm(StorableTextForm):
    location = forms.CharField(required=False, max_length=64)


@require_GET
@roles.role_required(*roles.READERS)
def recommendation_queue(request: HttpRequest) -> HttpResponse:
    """Lines whose run recommended allocations (recommend scopes), to accept one by one or in bulk."""
    form = RecommendationFilterForm(request.GET)
    code = form.cleaned_data["location"] if form.is_valid() else ""
    lines = OrderLine.objects.filter(
        pk__in=execution_modes.recommended_lines(location_code=code or None).values("pk")
    ).select_related("order__customer", "item").order_by("order__number", "line")
    page = pagination.screen_page(request, lines, QUEUE_PAGE_SIZE, ["order__number", "line"])
    recommended: dict[int, list[Allocation]] = {}
    for allocation in Allocation.objects.filter(
        line_id__in=[line.pk for line in page.object_list], state=AllocationState.RECOMMENDED
    ).select_related("location", "supply", "item").order_by("id"):
        recommended.setdefault(allocation.line_id, []).append(allocation)
    rows = [{"line": line, "allocations": recommended.get(line.pk, [])} for line in page.object_list]
    context = {
        "rows": rows, "page_obj": page, "query": pagination.screen_query(request), "filter_form": form,
        "can_accept": roles.has_role(request.user, RELEASERS),
        "locations": Location.objects.filter(
            Q(allocations__state=AllocationState.RECOMMENDED)
        ).distinct().order_by("code").values_list("code", flat=True),
    }
    template = "allocation/release/recommendations.html"
    if request.htmx and request.htmx.target == "recommendation-rows" and not request.htmx.history_restore_request:
        template += "#recommendation-rows"
    return render(request, template, context, status=200 if form.is_valid() else 400)


class AcceptForm(StorableTextForm):
    note = forms.CharField(required=False, max_length=300)


@require_POST
@roles.role_required(*RELEASERS)
def recommendation_accept(request: HttpRequest) -> HttpResponse:
    """Accept the recommendations of the lines ticked (bulk) or of the one line posted."""
    form = AcceptForm(request.POST)
    target = reverse("allocation:recommendation_queue")
    ids = []
    chosen = [request.POST["single"]] if request.POST.get("single") else request.POST.getlist("line")
    for value in chosen:
        if not value.isdigit() or len(value) > 18:
            messages.error(request, "Lines must be chosen from the list.")
            return _done(request, target)
        ids.append(int(value))
    if not form.is_valid():
        messages.error(request, "The note is too long (300 characters at most).")
        return _done(request, target)
    try:
        result = execution_modes.accept_recommendations(ids, actor=request.user, note=form.cleaned_data["note"])
    except execution_modes.RecommendationError as error:
        messages.error(request, error.message)
        return _done(request, target)
    run = result.run
    published = "published" if run is None or run.is_finished else f"run #{run.pk} publishes them"
    messages.success(
        request,
        f"Accepted {result.lines} line(s): {result.allocations} allocation(s) reserved, {published}."
        + (f" {len(result.skipped)} line(s) had no recommendation any more." if result.skipped else ""),
    )
    if run is not None and not run.is_finished:  # the page follows the run (Recalculating...)
        target += "?" + urlencode({"run": run.pk})
    return _done(request, target)
