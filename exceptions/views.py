"""Screens of the exceptions app: queues, the queue view, one exception with its actions,
the approvals inbox and the shortage workbench. Thin: forms validate, services act, one
view renders the full page or, for HTMX, the named partial."""
from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from allocation import overrides
from config import bounds, exports, pagination
from config.roles import role_required
from exceptions import (
    approvals,
    export_specs,
    queue_screen,
    routing,
    safety,
    selectors,
    services,
    workbench,
)
from exceptions.choices import (
    ExceptionAction,
    ExceptionStatus,
    ExceptionType,
    OverrideReason,
    Severity,
)
from exceptions.errors import ActionError, ApprovalError, InvalidAction, StaleAction
from exceptions.forms import (
    AssignForm,
    BulkForm,
    ClaimForm,
    CommentForm,
    DecisionForm,
    DeferForm,
    NoteForm,
    OverrideForm,
    OverridePreviewForm,
    ReasonForm,
    ReleaseToWarehouseForm,
    SavedViewForm,
    SplitForm,
    VersionForm,
    WorkbenchForm,
    WorkbenchLocationForm,
)
from exceptions.models import SavedView

READERS = tuple(selectors.READER_ROLES)
ACTORS = tuple(selectors.ACTOR_ROLES)
PAGE_SIZE = 50


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    """After a successful POST: HX-Location for HTMX, a plain redirect otherwise."""
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Location"] = url
        return response
    return HttpResponseRedirect(url)


# --------------------------------------------------------------------------- queues


@role_required(*READERS)
def queue_list(request: HttpRequest) -> HttpResponse:
    """Every queue with its counts per status and SLA (overdue / due soon)."""
    summaries = selectors.queue_summaries()
    context = {"summaries": summaries, "total": sum(s.active for s in summaries)}
    template = "exceptions/queue_list.html#queues" if request.htmx else "exceptions/queue_list.html"
    return render(request, template, context)


def _queue_part(request: HttpRequest) -> str | None:
    """The partial an HTMX request of the queue page wants: ``?part=`` (the filter form, the
    counts poll), or the rows when the pager targets them."""
    if not request.htmx or request.htmx.history_restore_request:
        return None
    return request.GET.get("part") or ("rows" if request.htmx.target == "rows" else None)


@role_required(*READERS)
def queue_detail(request: HttpRequest, code: str) -> HttpResponse:
    """One queue: filters, sort, saved views, live counts, paginated rows, bulk actions."""
    queue = selectors.get_queue_for(request.user, code)
    return _queue_page(request, queue, request.GET, part=_queue_part(request))


def _cursor_page(params: QueryDict, rows) -> pagination.KeysetPage:
    """The keyset page ``?cursor=`` names in ``params``; a bad cursor shows the first page."""
    try:
        return pagination.keyset_page(rows, params.get(pagination.CURSOR_PARAM) or None, PAGE_SIZE)
    except pagination.InvalidCursor:
        return pagination.keyset_page(rows, None, PAGE_SIZE)


def _queue_page(
    request: HttpRequest, queue, params: QueryDict, *, part: str | None = None, bulk_errors: list[str] | None = None
) -> HttpResponse:
    """The queue page (or its ``part``) for the filters, sort, group, kind tab and cursor in
    ``params`` (``?open=<id>`` shows that case in the side panel); with ``bulk_errors`` it is
    the answer to a refused bulk action: a 400 saying why. exceptions/queue_screen.py reads."""
    from exceptions import queue_views  # the side panel (it imports this module)

    now = timezone.now()
    view = queue_screen.parse_view(params)
    filters = selectors.parse_filters(queue_screen.filter_params(params, view))
    base = selectors.visible_to(request.user).filter(queue=queue)
    if part == "counts":
        counts = queue_screen.counts(base, now)
        return render(request, "exceptions/queue_detail.html#counts", {"queue": queue, "counts": counts})
    filtered = selectors.filter_exceptions(base, filters, user=request.user, now=now)
    qs = queue_screen.ordered(filtered, view)
    errors = filters.errors + view.errors
    if not errors and not bulk_errors and exports.requested(request):  # ?export=csv|xlsx: every filtered case
        return exports.export_response(request, qs, export_specs.CASES)
    # Keyset pages (?cursor=) in the sort's own order: a deep page costs what the first does and
    # nothing counts every row; a cursor of another sort (a changed filter) shows the first page.
    page = _cursor_page(params, qs)
    urls = queue_views.row_urls(queue)
    rows = queue_screen.rows_with_groups(page.object_list, filtered, view, now, urls)
    query = queue_screen.list_query(params)
    counts = queue_screen.counts(base, now) if part != "rows" else None  # the pager's rows count nothing
    context = {
        "queue": queue,
        "counts": counts,
        "filters": filters,
        "view": view,
        "errors": errors,
        "rows": rows,
        "page_obj": page,
        "query": query.urlencode(),
        "sort_links": queue_screen.sort_links(query, view),
        "tabs": [
            {"kind": kind, "label": label, "selected": kind == view.kind,
             "query": queue_screen.with_params(query, kind=None if kind == queue_screen.DEFAULT_KIND else kind)}
            for kind, label in queue_screen.KINDS.items()
        ],
        "groups": list(queue_screen.GROUP_LABELS.items()),
        "saved_views": SavedView.objects.filter(user=request.user, queue=queue),
        "can_act": selectors.can_act(request.user),
        "types": ExceptionType.choices,
        "bands": Severity.choices,
        "statuses": [("active", "Active")] + list(ExceptionStatus.choices) + [("all", "All")],
        "assignees": services.users_who_act() if selectors.can_act(request.user) else [],
        "bulk_errors": bulk_errors or [],
        "can_bulk": selectors.can_act(request.user),
        "oob": part == "rows",  # the rows answer also refreshes the filter form's hidden state
    }
    if part != "rows":
        context["panel"] = queue_views.opened_panel(request, queue, params, query)
    template = "exceptions/queue_detail.html#rows" if part == "rows" else "exceptions/queue_detail.html"
    return render(request, template, context, status=400 if errors or bulk_errors else 200)


@role_required(*ACTORS)
@require_POST
def bulk_action(request: HttpRequest, code: str) -> HttpResponse:
    """Claim, assign or dismiss the selected rows ("id:version"); reports stale and skipped rows."""
    queue = selectors.get_queue_for(request.user, code)
    # The queue's filters, re-encoded: the page's own querystring, never a header injection.
    back_params = QueryDict(bounds.storable_text(request.POST.get("back", "")[:2000]))
    back = reverse("exceptions:queue_detail", args=[queue.code]) + ("?" + back_params.urlencode() if back_params else "")
    form = BulkForm(request.POST)
    if not form.is_valid():
        # What was wrong, field by field (the cap, a malformed or repeated id, the action): a 400
        # showing the queue as it was, nothing applied.
        errors = [
            f"{form.fields[name].label}: {message}" if name in form.fields else message
            for name, field_errors in form.errors.items()
            for message in field_errors
        ]
        return _queue_page(request, queue, back_params, bulk_errors=errors)
    # The rows of this queue the user may see, in one query for the whole selection.
    wanted = form.cleaned_data["selected"]
    visible = set(selectors.visible_to(request.user).filter(queue=queue, pk__in=list(wanted)).values_list("pk", flat=True))
    selection = {pk: version for pk, version in wanted.items() if pk in visible}
    action = form.cleaned_data["action"]
    try:
        if action == "claim":
            result = services.bulk_claim(selection, actor=request.user)
        elif action == "assign":
            assignee = next((u for u in services.users_who_act() if u.username == form.cleaned_data["assignee"]), None)
            result = services.bulk_assign(selection, actor=request.user, assignee=assignee)
        else:
            result = services.bulk_dismiss(selection, actor=request.user, reason=form.cleaned_data["reason"])
    except ActionError as error:
        messages.error(request, error.message)
        return _redirect(request, back)
    summary = f"{action.capitalize()}: {len(result.done)} done"
    if result.stale:
        summary += f", {len(result.stale)} changed meanwhile (reload to see them)"
    if result.skipped:
        summary += f", {len(result.skipped)} skipped (" + "; ".join(f"#{k} {v}" for k, v in result.skipped.items()) + ")"
    messages.success(request, summary + ".")
    return _redirect(request, back)


@role_required(*READERS)
@require_POST
def saved_view_create(request: HttpRequest, code: str) -> HttpResponse:
    queue = selectors.get_queue_for(request.user, code)
    form = SavedViewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A saved view needs a name (80 characters at most).")
        return _redirect(request, reverse("exceptions:queue_detail", args=[queue.code]))
    view = services.save_view(
        actor=request.user, queue=queue, name=form.cleaned_data["name"], querystring=form.cleaned_data["querystring"]
    )
    messages.success(request, f"Saved view “{view.name}”.")
    return _redirect(request, reverse("exceptions:queue_detail", args=[queue.code]) + "?" + view.querystring)


@role_required(*READERS)
@require_POST
def saved_view_delete(request: HttpRequest, pk: int) -> HttpResponse:
    view = SavedView.objects.filter(pk=pk, user=request.user).select_related("queue").first()
    if view is None:
        raise Http404("No such saved view.")
    services.delete_view(actor=request.user, view_id=view.pk)
    messages.success(request, f"Deleted view “{view.name}”.")
    return _redirect(request, reverse("exceptions:queue_detail", args=[view.queue.code]))


# --------------------------------------------------------------------------- one exception


def _why_url(exception) -> str | None:
    if not exception.line_id:
        return None
    try:
        return reverse("allocation:line_why", args=[exception.line.order.number, exception.line.line])
    except NoReverseMatch:
        return None


def _detail_context(request: HttpRequest, exception, **extra: Any) -> dict[str, Any]:
    now = timezone.now()
    line = exception.line
    allocations = overrides.line_allocations([line.pk]).get(line.pk, []) if line else []
    options = overrides.supply_options(line) if line else []
    pending = list(approvals.pending_for(exception).select_related("requested_by"))
    history = list(
        exception.history.order_by("-history_date", "-history_id").values(
            "version", "status", "history_change_reason", "history_user__username", "history_date"
        )[:20]
    )
    context = {
        "exception": exception,
        "line": line,
        "order": line.order if line else exception.order,
        "allocations": allocations,
        "allocated": sum((a.quantity for a in allocations), Decimal(0)),
        "options": options,
        "why_url": _why_url(exception),
        "sla": routing.sla_status(exception.due_at, now),
        "age": routing.age_text(routing.age(exception.raised_at, now)),
        "pending": pending,
        "comments": exception.comments.select_related("author"),
        "history": history,
        "can_act": selectors.can_act(request.user) and exception.is_active,
        "is_mine": exception.assignee_id == request.user.pk,
        "claimed_by_other": exception.status == ExceptionStatus.CLAIMED and exception.assignee_id != request.user.pk,
        "reasons": OverrideReason.choices,
        "assignees": services.users_who_act(),
        "errors": {},
        "stale": None,
        "action": "",
        "form_data": {},
        "today": timezone.localdate(),
        "release_confirm": safety.release_confirmation(line) if line and exception.is_active else "",
    }
    context.update(extra)
    return context


@role_required(*READERS)
def exception_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An exception: its order and line, allocations, alternatives with their consequence,
    the action forms, comments and history."""
    exception = selectors.get_exception_for(request.user, pk)
    return render(request, "exceptions/exception_detail.html", _detail_context(request, exception))


@role_required(*ACTORS)
def override_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The consequence of an override before committing it (partial #consequence)."""
    exception = selectors.get_exception_for(request.user, pk)
    form = OverridePreviewForm(request.GET)
    plan, error = None, ""
    if form.is_valid():
        try:
            plan = services.preview_override(
                exception,
                [{k: form.cleaned_data[k] for k in ("location", "supply", "item", "quantity")}],
            )
        except InvalidAction as invalid:
            error = invalid.message
    else:
        error = "; ".join(f"{k}: {v[0]}" for k, v in form.errors.items() if k in {"location", "quantity", "option"})
    return render(request, "exceptions/exception_detail.html#consequence", {"plan": plan, "error": error})


FORMS = {
    ExceptionAction.CLAIM: ClaimForm,
    ExceptionAction.RELEASE: VersionForm,
    ExceptionAction.ASSIGN: AssignForm,
    ExceptionAction.ACCEPT: VersionForm,
    ExceptionAction.OVERRIDE: OverrideForm,
    ExceptionAction.SPLIT: SplitForm,
    ExceptionAction.DEFER: DeferForm,
    ExceptionAction.HOLD: NoteForm,
    ExceptionAction.RELEASE_TO_WAREHOUSE: ReleaseToWarehouseForm,
    ExceptionAction.ESCALATE: NoteForm,
    ExceptionAction.DISMISS: ReasonForm,
    ExceptionAction.COMMENT: CommentForm,
}



def _run_message(result: services.ActionResult) -> str:
    run = result.run
    if run is None:
        return ""
    if not run.is_finished:  # queued: the page follows it (allocation.templatetags.run_follow)
        return f" Recalculating the affected lines (run #{run.pk})."
    return f" Allocation run #{run.pk} {run.status}: {getattr(run, 'changed_line_count', 0)} line(s) changed."


def _following(url: str, run: Any) -> str:
    """``url`` with ``run=<id>`` when the action queued a run: the page shows its progress."""
    if run is None or run.is_finished:
        return url
    return url + ("&" if "?" in url else "?") + urlencode({"run": run.pk})


@role_required(*ACTORS)
@require_POST
def exception_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Perform one action. Success: back to the exception (or the next one in the queue for
    claim-less flows) with a message naming the run it triggered. Bad input: 400 with the
    fields named. Stale: 409 showing what changed; nothing is applied."""
    exception = selectors.get_exception_for(request.user, pk)
    if action not in FORMS:
        raise Http404("No such action.")
    form_class = FORMS[action]
    form = form_class(request.POST, assignees=services.users_who_act()) if form_class is AssignForm else form_class(request.POST)
    if not form.is_valid():
        errors = {field: [str(e) for e in errs] for field, errs in form.errors.items()}
        # The form's copy of the input: the page echoes it, and it holds no unstorable text.
        context = _detail_context(request, exception, errors=errors, action=action, form_data=form.data)
        return render(request, "exceptions/exception_detail.html", context, status=400)
    try:
        data = dict(form.cleaned_data, parts=form.parts()) if action == ExceptionAction.SPLIT else form.cleaned_data
        result = services.perform(action, exception.pk, data, actor=request.user)
    except StaleAction as stale:
        exception = selectors.get_exception_for(request.user, pk)
        context = _detail_context(request, exception, stale=stale, action=action)
        return render(request, "exceptions/exception_detail.html", context, status=409)
    except ActionError as error:
        field = error.data.get("field", "__all__")
        context = _detail_context(request, exception, errors={field: [error.message]}, action=action, form_data=form.data)
        return render(request, "exceptions/exception_detail.html", context, status=400 if error.code != "forbidden" else 403)
    messages.success(request, result.message + _run_message(result))
    return _redirect(request, _following(reverse("exceptions:exception_detail", args=[exception.pk]), result.run))


# --------------------------------------------------------------------------- approvals


INBOX_PAGE_SIZE = 50
SIDE_LIST_SIZE = 50


def _inbox_rows(approval_list: list) -> list[dict[str, Any]]:
    """Each request with the exception or order line it is about (two queries for any number)."""
    subjects = selectors.subjects_of(approval_list)
    lines = workbench.line_subjects(approval_list)
    return [
        {"approval": a, "exception": subjects.get(a.subject_id) if a.kind.startswith("exception.") else None,
         "line": lines.get(a.subject_id) if a.kind.startswith("line.") else None}
        for a in approval_list
    ]


@role_required("approver")
def approval_inbox(request: HttpRequest) -> HttpResponse:
    """Pending requests the approver may decide, oldest first, a keyset page at a time: never
    their own, and never one about a policy draft they wrote (those are listed apart: another
    approver decides them)."""
    if exports.requested(request):  # ?export=csv|xlsx: every request waiting for this approver
        return exports.export_response(request, selectors.approval_inbox(request.user), export_specs.APPROVALS)
    page = pagination.screen_page(request, selectors.approval_inbox(request.user), INBOX_PAGE_SIZE)
    context: dict[str, Any] = {"pending": _inbox_rows(page.object_list), "page_obj": page, "query": pagination.screen_query(request)}
    if request.htmx and request.htmx.target == "inbox-rows" and not request.htmx.history_restore_request:
        return render(request, "exceptions/approval_inbox.html#inbox-rows", context)
    context["decided"] = list(
        selectors.approvals_visible_to(request.user).exclude(status="pending").filter(decided_by=request.user).order_by("-decided_at")[:20]
    )
    context["mine"] = list(
        selectors.approvals_visible_to(request.user).filter(status="pending", requested_by=request.user)
        .order_by("created_at", "pk")[:SIDE_LIST_SIZE]
    )
    context["authored"] = list(selectors.approvals_awaiting_another(request.user)[:SIDE_LIST_SIZE])
    return render(request, "exceptions/approval_inbox.html", context)


@role_required("approver")
@require_POST
def approval_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Approve or reject a request (reason required to reject); the requester never decides."""
    approval = selectors.get_approval_for(request.user, pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose approve or reject.")
        return _redirect(request, reverse("exceptions:approval_inbox"))
    run = None
    try:
        if form.cleaned_data["decision"] == "approve":
            decided = approvals.approve(approval.pk, actor=request.user, reason=form.cleaned_data["reason"])
            run = getattr(decided, "run", None)  # the re-allocation the approved change queued
            messages.success(request, f"Approved request #{approval.pk}." + (f" Recalculating (run #{run.pk})." if run else ""))
        else:
            approvals.reject(approval.pk, actor=request.user, reason=form.cleaned_data["reason"])
            messages.success(request, f"Rejected request #{approval.pk}.")
    except ApprovalError as error:
        messages.error(request, error.message)
        response = render(
            request,
            "exceptions/approval_inbox.html",
            {"pending": [], "decided": [], "mine": [], "error": error.message, "error_approval": approval},
            status=403 if error.code == "self_approval" else 400,
        )
        return response
    return _redirect(request, _following(reverse("exceptions:approval_inbox"), run))


# --------------------------------------------------------------------------- shortage workbench


@role_required(*ACTORS)
@require_http_methods(["GET", "POST"])
def shortage_workbench(request: HttpRequest, sku: str) -> HttpResponse:
    """All open lines competing for one item at one location, ranked, with what each holds:
    the planner cuts low-priority lines and gives to higher ones; commit pins the result
    through the same override services and approvals. A bad location, reason code or note
    (NUL, an unpaired surrogate, too long) is a 400 naming the field; nothing is applied."""
    posted = request.method == "POST"
    shown = WorkbenchLocationForm(request.GET)
    form = WorkbenchForm(request.POST) if posted else shown
    location = shown.cleaned_data["location"] if shown.is_valid() else ""
    if posted and form.is_valid():
        location = location or form.cleaned_data["location"]
    board = workbench.load_board(sku, location)
    if board is None:
        raise Http404("No such item.")
    errors = {name: " ".join(field_errors) for name, field_errors in (*shown.errors.items(), *form.errors.items())}
    status = 400 if errors else 200
    if posted and not errors:
        try:
            targets, seen = workbench.parse_targets(request.POST, board)
            result = workbench.commit(
                actor=request.user,
                sku=board.sku,
                location_code=board.location.code,
                targets=targets,
                seen=seen,
                reason_code=form.cleaned_data["reason_code"],
                note=form.cleaned_data["note"],
            )
        except StaleAction as stale:
            errors["__all__"] = stale.message
            board = workbench.load_board(sku, board.location.code)
            status = 409
        except ActionError as error:
            errors[error.data.get("field", "__all__")] = error.message
            status = 400
        else:
            messages.success(request, result.summary + _run_message(result))  # type: ignore[arg-type]
            return _redirect(
                request, _following(
                    reverse("exceptions:shortage_workbench", args=[board.sku]) + "?" + urlencode({"location": board.location.code}),
                    result.run,
                ),
            )
    # The form's copy of what was posted: the page echoes it, and it holds no unstorable text.
    context = {"board": board, "errors": errors, "reasons": OverrideReason.choices, "form_data": form.data if posted else {}}
    return render(request, "exceptions/shortage_workbench.html", context, status=status)
