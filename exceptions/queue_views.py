"""The queue's side panel (issue 9, item 3): a case's facts, reasons, alternatives and
actions beside the list, so a planner works a queue without leaving it.

``case_panel`` answers the panel of one case (HTMX; a plain GET goes to the queue page with
``?open=<id>``, which renders the same panel). ``panel_action`` performs an action with the
same forms (``views.FORMS``) and the same service (``services.perform``) as the case's own
page, then answers the panel of the case to work next: the same case while it still waits
for the actor (claimed, released, commented), otherwise the next case in the list's order
(``queue_screen.next_case``), with the acted row and the counts swapped out of band. A
refused action answers the same case's panel with what was wrong (400), what changed (409)
or why not (403). Without JavaScript the forms post normally and come back to the queue page
with the next case open."""
from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from config import bounds
from config.roles import role_required
from exceptions import queue_screen, selectors, services, views
from exceptions.choices import ExceptionAction, ReasonStatus
from exceptions.errors import ActionError, StaleAction
from exceptions.forms import AssignForm

HISTORY_IN_PANEL = 4


def row_urls(queue) -> queue_screen.Urls:
    """The prefixes of a row's links: its case's page and its panel in this queue."""
    detail = reverse("exceptions:exception_detail", args=[0])[: -len("0/")]
    panel = reverse("exceptions:case_panel", args=[queue.code, 0])[: -len("0/")]
    return queue_screen.Urls(detail=detail, panel=panel)


def _list_params(raw: str) -> QueryDict:
    """The list's querystring a panel form carries, re-encoded (never a header injection)."""
    return queue_screen.list_query(QueryDict(bounds.storable_text(raw[:2000])))


def _queue_url(queue, query: QueryDict, open_pk: int | None = None) -> str:
    params = query.copy()
    if open_pk:
        params["open"] = str(open_pk)
    encoded = params.urlencode()
    return reverse("exceptions:queue_detail", args=[queue.code]) + ("?" + encoded if encoded else "")


def panel_context(request: HttpRequest, queue, case, query: QueryDict, **extra: Any) -> dict[str, Any]:
    """What the panel shows of ``case``: the case page's context (facts, allocations,
    alternatives, action state: ``views._detail_context``) and the panel's own."""
    context = views._detail_context(request, case, **extra)
    context["history"] = context["history"][:HISTORY_IN_PANEL]
    context.update(
        queue=queue,
        list_query=query.urlencode(),
        act=reverse("exceptions:case_panel", args=[queue.code, case.pk]),
        case_reasons=[
            {"label": queue_screen.REASON_LABELS.get(r.type, r.type), "type": r.type, "message": r.message,
             "information": r.information}
            for r in case.reasons.filter(status=ReasonStatus.OPEN)
        ],
        reason_labels=[queue_screen.REASON_LABELS.get(t, t) for t in queue_screen.reasons_of(case)],
    )
    return context


def opened_panel(request: HttpRequest, queue, params: Any, query: QueryDict) -> str:
    """The panel of ``?open=<id>`` on a full queue page (a case of this queue the user sees),
    rendered ('' without one): its context would shadow the page's."""
    raw = params.get("open") or ""
    if not raw.isdigit() or len(raw) > 18:
        return ""
    try:
        case = selectors.get_exception_for(request.user, int(raw))
    except Http404:
        return ""
    if case.queue_id != queue.pk:
        return ""
    return render_to_string("exceptions/_case_panel.html", panel_context(request, queue, case, query), request=request)


def _render_panel(request: HttpRequest, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    return render(request, "exceptions/_case_panel.html", context, status=status)


@role_required(*views.READERS)
@require_GET
def case_panel(request: HttpRequest, code: str, pk: int) -> HttpResponse:
    """The panel of one case of this queue's list (the list's querystring rides along so the
    panel's actions know which case comes next)."""
    queue = selectors.get_queue_for(request.user, code)
    case = selectors.get_exception_for(request.user, pk)
    query = queue_screen.list_query(request.GET)
    if not request.htmx:
        return HttpResponseRedirect(_queue_url(queue, query, case.pk))
    return _render_panel(request, panel_context(request, queue, case, query))


def _bound_form(action: str, data: QueryDict):
    form_class = views.FORMS[action]
    return form_class(data, assignees=services.users_who_act()) if form_class is AssignForm else form_class(data)


def _next_after(request: HttpRequest, queue, query: QueryDict, acted) -> Any:
    """The case to show after an action on ``acted``: itself while it still waits for the
    actor here, else the next one in the list (``None``: the list is done)."""
    if queue_screen.stays_with_actor(acted, request.user, queue.pk):
        return acted
    view = queue_screen.parse_view(query)
    filters = selectors.parse_filters(queue_screen.filter_params(query, view))
    base = selectors.visible_to(request.user).filter(queue=queue)
    qs = queue_screen.ordered(selectors.filter_exceptions(base, filters, user=request.user, now=timezone.now()), view)
    return queue_screen.next_case(qs, view, acted)


@role_required(*views.ACTORS)
@require_POST
def panel_action(request: HttpRequest, code: str, pk: int, action: str) -> HttpResponse:
    """Perform one action from the panel; answer the panel to work next (see the module)."""
    queue = selectors.get_queue_for(request.user, code)
    case = selectors.get_exception_for(request.user, pk)
    if action not in views.FORMS:
        raise Http404("No such action.")
    query = _list_params(request.POST.get("list", ""))
    form = _bound_form(action, request.POST)
    if not form.is_valid():
        errors = {field: [str(e) for e in errs] for field, errs in form.errors.items()}
        context = panel_context(request, queue, case, query, errors=errors, action=action, form_data=form.data)
        return _render_panel(request, context, status=400)
    try:
        data = dict(form.cleaned_data, parts=form.parts()) if action == ExceptionAction.SPLIT else form.cleaned_data
        result = services.perform(action, case.pk, data, actor=request.user)
    except StaleAction as stale:
        case = selectors.get_exception_for(request.user, pk)
        return _render_panel(request, panel_context(request, queue, case, query, stale=stale, action=action), status=409)
    except ActionError as error:
        field = error.data.get("field", "__all__")
        context = panel_context(request, queue, case, query, errors={field: [error.message]}, action=action, form_data=form.data)
        return _render_panel(request, context, status=403 if error.code == "forbidden" else 400)
    acted = queue_screen.for_keyset(case.pk)
    shown = _next_after(request, queue, query, acted)
    flash = f"#{case.pk}: {result.message}{views._run_message(result)}"
    if not request.htmx:
        messages.success(request, flash)
        return HttpResponseRedirect(_queue_url(queue, query, shown.pk if shown else None))
    now = timezone.now()
    said = {"flash": flash, "moved_on": shown is not acted}
    if shown is not None:
        context = panel_context(request, queue, selectors.get_exception_for(request.user, shown.pk), query, **said)
    else:
        context = {"queue": queue, "list_query": query.urlencode(), **said}
    context.update(
        oob_row=queue_screen.row(acted, now, row_urls(queue)),
        oob_counts=queue_screen.counts(selectors.visible_to(request.user).filter(queue=queue), now),
        can_bulk=selectors.can_act(request.user),
    )
    return _render_panel(request, context)
