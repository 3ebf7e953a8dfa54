"""Run screens: runs list and detail with live progress, a line's Why page, an item's shortage
board, and the policy Simulate button with its progress and result.

Function views: each checks the role, reads through ``allocation.run_selectors`` or calls a
service (``start_run``, ``start_simulation``), and renders the full page, or, for HTMX, the
partial named like the element it replaces (``run-<id>`` row, ``run-summary``,
``run-exceptions``, ``run-decisions``, ``simulation-panel``). Unfinished runs are polled
every second by their own partial; the partial of a finished run carries no trigger, so
polling stops by itself. Without JavaScript every screen is a plain page and every action a
plain form POST answered by a redirect.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from allocation import export_specs
from allocation import run_selectors as selectors
from allocation.models import AllocationRun, Item, RunStatus, RunTrigger
from allocation.services import start_run, start_simulation
from config import exports, pagination, roles
from config.forms import StorableTextForm

RUN_PAGE_SIZE = 25
DETAIL_PAGE_SIZE = 50
RUN_STARTERS = (roles.PLANNER, roles.POLICY_ADMIN)
MAX_RUN_ITEMS = 1000
SKU_SEPARATORS = re.compile(r"[\s,;]+")


class RunFilterForm(StorableTextForm):
    """Filters of the runs list; a value outside the choices is a 400 naming the field."""

    status = forms.ChoiceField(choices=[("", "Any status"), *RunStatus.choices], required=False)
    trigger = forms.ChoiceField(choices=[("", "Any trigger"), *RunTrigger.choices], required=False)


class StartRunForm(StorableTextForm):
    """Start a full run (no SKUs) or a run of the item groups of the SKUs listed."""

    scope = forms.ChoiceField(choices=[("full", "Full"), ("items", "Items")])
    skus = forms.CharField(
        required=False, label="SKUs", widget=forms.TextInput(attrs={"placeholder": "VALVE-10, PUMP-2"})
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("scope") != "items":
            data["sku_list"] = None
            return data
        wanted = sorted({sku for sku in SKU_SEPARATORS.split(data.get("skus") or "") if sku})
        if not wanted:
            self.add_error("skus", "List at least one SKU to run items.")
        elif len(wanted) > MAX_RUN_ITEMS:
            self.add_error("skus", f"At most {MAX_RUN_ITEMS} SKUs per run.")
        else:
            known = set(Item.objects.filter(sku__in=wanted).values_list("sku", flat=True))
            unknown = [sku for sku in wanted if sku not in known]
            if unknown:
                self.add_error("skus", f"Unknown SKU: {', '.join(unknown)}.")
        data["sku_list"] = wanted
        return data


def _htmx_target(request: HttpRequest) -> str | None:
    if not request.htmx or request.htmx.history_restore_request:
        return None
    return request.htmx.target


def _query_without(request: HttpRequest, *names: str) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


# --- runs --------------------------------------------------------------------------------------


def _run_list_context(request: HttpRequest, filter_form: RunFilterForm, start_form: StartRunForm | None = None) -> dict[str, Any]:
    valid = filter_form.is_valid()
    runs = selectors.run_rows(**filter_form.cleaned_data) if valid else selectors.run_rows().none()
    # Keyset pages (?cursor=): a deep page costs what the first does, and no COUNT of every run.
    page_obj = pagination.screen_page(request, runs, RUN_PAGE_SIZE)
    for run in page_obj:
        run.duration_seconds = selectors.run_duration(run)
    query = pagination.screen_query(request)
    return {
        "filter_form": filter_form,
        "page_obj": page_obj,
        "query": query,
        "filtered": bool(query),
        "can_start": roles.has_role(request.user, RUN_STARTERS),
        "start_form": start_form or StartRunForm(initial={"scope": "full"}),
    }


@require_GET
@roles.role_required(*roles.READERS)
def run_list(request: HttpRequest) -> HttpResponse:
    """Runs newest first with status, progress, counts and timings; filters by status and trigger."""
    filter_form = RunFilterForm(request.GET)
    if filter_form.is_valid() and exports.requested(request):  # ?export=csv|xlsx: every filtered run
        return exports.export_response(request, selectors.run_rows(**filter_form.cleaned_data), export_specs.RUNS)
    context = _run_list_context(request, filter_form)
    template = "allocation/runs/list.html"
    if _htmx_target(request) == "results":
        template += "#results"
    response = render(request, template, context, status=200 if filter_form.is_valid() else 400)
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


@require_POST
@roles.role_required(*RUN_STARTERS)
def run_start(request: HttpRequest) -> HttpResponse:
    """Start a full run or a run of some items (planners and policy admins); 400 naming the field."""
    form = StartRunForm(request.POST)
    if not form.is_valid():
        if request.htmx:
            return render(request, "allocation/runs/list.html#run-start", {"start_form": form, "can_start": True}, status=400)
        context = _run_list_context(request, RunFilterForm({}), start_form=form)
        return render(request, "allocation/runs/list.html", context, status=400)
    run = start_run(scope_skus=form.cleaned_data["sku_list"], trigger=RunTrigger.MANUAL, actor=request.user)
    messages.success(request, f"Run #{run.pk} started.")
    target = reverse("allocation:run_list")
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Location"] = target
        return response
    return redirect(target)


def _page(request: HttpRequest, rows: Any, section: str) -> pagination.KeysetPage:
    """One section's keyset page: each section of the run page has its own cursor
    (``exceptions_cursor``, ``decisions_cursor``), so paging one leaves the other where it is."""
    return pagination.screen_page(request, rows, DETAIL_PAGE_SIZE, param=f"{section}_cursor")


@require_GET
@roles.role_required(*roles.READERS)
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One run: status and progress (polled while unfinished), counts, phase timings, error,
    the exceptions it raised and the decisions it logged (each paginated)."""
    run = selectors.get_run(pk)
    if exports.requested(request):  # ?export=csv|xlsx&section=decisions (default) or exceptions
        if request.GET.get("section") == "exceptions":
            return exports.export_response(request, selectors.run_exceptions(run), export_specs.RUN_EXCEPTIONS)
        return exports.export_response(request, selectors.run_decisions(run), export_specs.RUN_DECISIONS)
    target = _htmx_target(request)
    if run.is_simulation and target != f"run-{run.pk}":
        return redirect("allocation:simulation_status", pk=run.pk)
    run.duration_seconds = selectors.run_duration(run)
    context: dict[str, Any] = {
        "run": run,
        "duration": run.duration_seconds,
        "phases": selectors.phase_bars(run),
    }
    template = "allocation/runs/detail.html"
    if target == f"run-{run.pk}":
        response = render(request, "allocation/runs/list.html#run-row", context)
    elif target == "run-summary":
        response = render(request, f"{template}#run-summary", context)
        if run.is_finished:
            # The sections below the summary were rendered while the run was unfinished.
            response["HX-Refresh"] = "true"
    else:
        context["exceptions_page"] = _page(request, selectors.run_exceptions(run), "exceptions")
        context["decisions_page"] = _page(request, selectors.run_decisions(run), "decisions")
        context["exceptions_query"] = _query_without(request, "exceptions_cursor", "exceptions_page")
        context["decisions_query"] = _query_without(request, "decisions_cursor", "decisions_page")
        if target in ("run-exceptions", "run-decisions"):
            template += f"#{target}"
        response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


# --- why and shortage -------------------------------------------------------------------------


def _explain_url(why: selectors.LineWhy) -> str | None:
    try:
        base = reverse("policies:explain")
    except NoReverseMatch:  # the policies screens are not installed
        return None
    query: dict[str, object] = {"order": why.line.order.number, "line": why.line.line}
    if why.log is not None and why.log.policy_version_id:
        query["version"] = why.log.policy_version_id
    # Encoded: an order number may hold "&", "#", "?", "%" or spaces.
    return f"{base}?{urlencode(query)}"


@require_GET
@roles.role_required(*roles.READERS)
def line_why(request: HttpRequest, number: str, line: int) -> HttpResponse:
    """Why a line holds what it holds: rank, score factors, settings and their rules, allocations,
    supply path, what it could not get, open exceptions and the decision history. With ``?at=``
    the decision in force at that time (allocation.audit.views.line_why_at)."""
    if "at" in request.GET:
        from allocation.audit.views import line_why_at

        return line_why_at(request, number, line)
    why = selectors.line_why(number, line)
    context = {"why": why, "line": why.line, "log": why.log, "explain_url": _explain_url(why)}
    return render(request, "allocation/why.html", context)


@require_GET
@roles.role_required(*roles.READERS)
def shortage_board(request: HttpRequest, sku: str) -> HttpResponse:
    """Every open line competing for an item in rank order, with what each holds and lacks,
    under the item's supply: on hand per location and inbound by ETA."""
    board = selectors.shortage_board(sku)
    return render(request, "allocation/shortage_board.html", {"board": board, "item": board.item})


# --- simulations ------------------------------------------------------------------------------


def _simulation_context(request: HttpRequest, run: AllocationRun) -> dict[str, Any]:
    context: dict[str, Any] = {
        "run": run, "version": run.policy_version, "can_simulate": roles.has_role(request.user, {roles.POLICY_ADMIN}),
    }
    result = getattr(run, "simulation_result", None) if run.status == RunStatus.SUCCEEDED else None
    if result is not None:
        context["result"] = selectors.simulation_view(result.payload)
    return context


@require_POST
@roles.role_required(roles.POLICY_ADMIN)
def simulate_start(request: HttpRequest, pk: int) -> HttpResponse:
    """Simulate a draft policy version against today's data (policy admins); nothing real changes.

    HTMX gets the progress panel, which polls the simulation until it ends; a plain POST is
    redirected to the simulation page. Only drafts are simulated (409 otherwise).
    """
    from policies import selectors as policy_selectors

    version = policy_selectors.get_version_for(request.user, pk)
    if not version.is_draft:
        message = f"Only drafts are simulated; v{version.number} is {version.get_status_display().lower()}."
        if request.htmx:
            return render(
                request, "allocation/simulate_button.html", {"version": version, "can_edit": True, "error": message},
                status=409,
            )
        return _conflict(request, message)
    run = start_simulation(version, actor=request.user)
    run = selectors.get_simulation(run.pk)  # a broker-less setup ran it already, on commit
    if request.htmx:
        return render(request, "allocation/simulation_result.html#simulation-panel", _simulation_context(request, run))
    return redirect("allocation:simulation_status", pk=run.pk)


def _conflict(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "allocation/simulation_result.html", {"error": message}, status=409)


@require_GET
@roles.role_required(*roles.READERS)
def simulation_status(request: HttpRequest, pk: int) -> HttpResponse:
    """A simulation: progress while it runs (polled every second), then what the draft would change."""
    run = selectors.get_simulation(pk)
    template = "allocation/simulation_result.html"
    if _htmx_target(request) == "simulation-panel":
        template += "#simulation-panel"
    response = render(request, template, _simulation_context(request, run))
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response
