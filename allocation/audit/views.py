"""The audit and finance screens: the audit trail, credit holds, overrides and approvals,
policy changes, one approval with its evidence, and a line's Why page at a point in time.

Thin: forms validate, selectors read, services act. Every list is a keyset page of a selector
(``allocation.audit.selectors`` / ``finance``) rendered as the full page or, for HTMX, its
``results`` partial. Finance reads all of it and changes nothing: the only writes here are a
requester withdrawing their own pending request and an approver starting the simulation a
policy approval needs.
"""
from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST

from allocation import audit_export_specs as export_specs
from allocation.audit import chain, finance
from allocation.audit import selectors as trail
from allocation.audit.forms import AtForm, AuditFilterForm, WithdrawForm
from config import exports, pagination, roles

PAGE_SIZE = 50
READERS = tuple(roles.READERS)


def _render_list(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    partial = request.htmx and not request.htmx.history_restore_request and request.htmx.target == "results"
    response = render(request, f"{template}#results" if partial else template, context, status=status)
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


@require_GET
@roles.role_required(*READERS)
def audit_trail(request: HttpRequest) -> HttpResponse:
    """Every change that matters, newest first, filtered; the last verification of the chains."""
    see_roles = trail.can_see_roles(request.user)
    form = AuditFilterForm(request.GET, can_see_roles=see_roles)
    valid = form.is_valid()
    page = None
    if valid and exports.requested(request):  # ?export=csv|xlsx: every entry, read a chunk at a time
        return exports.export_response(request, trail.audit_rows(request.user, form.filters()), export_specs.AUDIT_TRAIL)
    if valid:
        try:
            page = trail.audit_page(request.user, form.filters(), request.GET.get("cursor") or None, PAGE_SIZE)
        except trail.InvalidCursor:
            page = trail.audit_page(request.user, form.filters(), None, PAGE_SIZE)
    query = pagination.screen_query(request)
    context = {
        "form": form, "page_obj": page, "query": query, "filtered": bool(query), "tab": "trail",
        "verification": chain.last_verification(), "see_roles": see_roles,
    }
    return _render_list(request, "audit/trail.html", context, status=200 if valid else 400)


@require_GET
@roles.role_required(*READERS)
def credit_holds(request: HttpRequest) -> HttpResponse:
    """Open lines on credit hold: value, since when, what they hold and what they are short of."""
    if exports.requested(request):  # ?export=csv|xlsx: every held line
        return exports.export_response(request, finance.credit_hold_rows(), export_specs.CREDIT_HOLDS)
    page = pagination.screen_page(request, finance.credit_hold_rows(), PAGE_SIZE)
    since = finance.held_since(page.object_list)
    for line in page.object_list:
        line.held_since = since.get(line.pk)
        current = getattr(line, "current_decision", None)
        line.decision = current.log if current is not None else None
    context = {"page_obj": page, "query": pagination.screen_query(request), "tab": "credit"}
    return _render_list(request, "audit/credit_holds.html", context)


@require_GET
@roles.role_required(*READERS)
def approvals(request: HttpRequest) -> HttpResponse:
    """Overrides and approvals: who asked, what, the value, who decided and why."""
    status = request.GET.get("status", "")
    kind = request.GET.get("kind", "")
    if status not in ("", "pending", "approved", "rejected", "cancelled") or len(kind) > 64:
        return _render_list(request, "audit/approvals.html", {"error": "Unknown status.", "tab": "approvals"}, status=400)
    if exports.requested(request):  # ?export=csv|xlsx: every request listed
        rows = _visible_approvals(request.user, finance.approval_rows(status=status, kind=kind))
        return exports.export_response(request, rows, export_specs.FINANCE_APPROVALS)
    page = pagination.screen_page(request, _visible_approvals(request.user, finance.approval_rows(status=status, kind=kind)), PAGE_SIZE)
    subjects = finance.approval_subjects(page.object_list)
    rows = [{"approval": a, "subject": subjects.get(a.pk), "words": trail.approval_words(a, subjects.get(a.pk))} for a in page]
    context = {"page_obj": page, "rows": rows, "query": pagination.screen_query(request), "tab": "approvals",
               "status": status, "kind": kind}
    return _render_list(request, "audit/approvals.html", context)


@require_GET
@roles.role_required(*READERS)
def policy_changes(request: HttpRequest) -> HttpResponse:
    """Policy versions: who wrote, submitted and approved each, the approver's reason, when active."""
    if exports.requested(request):  # ?export=csv|xlsx: every version
        return exports.export_response(request, finance.policy_change_rows(), export_specs.POLICY_CHANGES)
    page = pagination.screen_page(request, finance.policy_change_rows(), PAGE_SIZE)
    decisions = finance.policy_decisions(page.object_list)
    rows = [{"version": v, "decision": decisions.get(v.pk)} for v in page]
    context = {"page_obj": page, "rows": rows, "query": pagination.screen_query(request), "tab": "policy"}
    return _render_list(request, "audit/policy_changes.html", context)


# --------------------------------------------------------------------------- one approval


def _visible_approvals(user: Any, qs: Any) -> Any:
    """Approvers and finance read every request; anyone else the requests they made."""
    if roles.has_role(user, {roles.APPROVER, roles.FINANCE}):
        return qs
    return qs.filter(requested_by=user)


def _approval(user: Any, pk: int) -> Any:
    approval = _visible_approvals(user, finance.approval_rows()).filter(pk=pk).first()
    if approval is None:
        raise Http404("No such approval request.")
    return approval


@require_GET
@roles.role_required(*READERS)
def approval_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One request in words with links to what it is about, its evidence (a policy change's
    simulation against the active version), its decision and reason, and the actions the
    reader may take: decide (an approver who may), withdraw (the requester, while pending)."""
    from allocation import run_selectors
    from exceptions import approvals as approval_service

    approval = _approval(request.user, pk)
    subject = finance.approval_subjects([approval]).get(approval.pk)
    context: dict[str, Any] = {
        "approval": approval, "subject": subject, "words": trail.approval_words(approval, subject),
        "can_decide": approval_service.can_decide(approval, request.user),
        "can_withdraw": approval.status == "pending" and approval.requested_by_id == request.user.pk,
        "history": list(approval.history.select_related("history_user", "decided_by").order_by("history_date", "history_id")),
        "tab": "approvals",
    }
    if approval.kind == "policy_activation" and subject is not None:
        simulation = finance.fresh_simulation(subject, now=timezone.now())
        context["simulation"] = simulation
        result = getattr(simulation, "simulation_result", None) if simulation is not None and simulation.status == "succeeded" else None
        context["result"] = run_selectors.simulation_view(result.payload) if result is not None else None
        context["needs_simulation"] = approval.status == "pending" and context["result"] is None
        context["can_simulate"] = context["needs_simulation"] and simulation is None and (
            context["can_decide"] or roles.has_role(request.user, {roles.POLICY_ADMIN}))
    if request.htmx and request.htmx.target == "evidence" and not request.htmx.history_restore_request:
        return render(request, "audit/approval_detail.html#evidence", context)
    return render(request, "audit/approval_detail.html", context)


@require_POST
@roles.role_required(roles.APPROVER, roles.POLICY_ADMIN)
def approval_simulate(request: HttpRequest, pk: int) -> HttpResponse:
    """Start the simulation a pending policy change needs before it is approved (in the
    background; the approval page shows its progress and then the diff)."""
    from allocation.services import start_simulation
    from exceptions import approvals as approval_service

    approval = _approval(request.user, pk)
    subject = finance.approval_subjects([approval]).get(approval.pk)
    if approval.kind != "policy_activation" or subject is None or approval.status != "pending":
        return HttpResponse("Only a pending policy change is simulated.", status=409)
    if not (approval_service.can_decide(approval, request.user) or roles.has_role(request.user, {roles.POLICY_ADMIN})):
        return HttpResponse("Only an approver who may decide it, or a policy admin, starts its simulation.", status=403)
    if finance.fresh_simulation(subject, now=timezone.now()) is None:
        start_simulation(subject, actor=request.user)
    url = reverse("audit:approval_detail", args=[approval.pk])
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Location"] = url
        return response
    return HttpResponseRedirect(url)


@require_POST
@roles.role_required(*READERS)
def approval_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    """The requester withdraws a pending request (recorded; the subject leaves its waiting state)."""
    from exceptions import approvals as approval_service
    from exceptions.errors import ApprovalError

    approval = _approval(request.user, pk)
    form = WithdrawForm(request.POST)
    if not form.is_valid():
        return HttpResponse("The reason is not valid text.", status=400)
    try:
        approval_service.withdraw(approval.pk, actor=request.user, reason=form.cleaned_data["reason"])
    except ApprovalError as error:
        messages.error(request, error.message)
        return render(request, "audit/approval_detail.html", {"approval": approval, "error": error.message, "words": trail.approval_words(approval)}, status=403 if error.code in ("forbidden", "not_allowed") else 409)
    messages.success(request, f"Request #{approval.pk} withdrawn.")
    return HttpResponseRedirect(reverse("audit:approval_detail", args=[approval.pk]))


@require_GET
@roles.role_required(*READERS)
def order_timeline(request: HttpRequest, number: str) -> HttpResponse:
    """An order's timeline (its lines' decisions, cases, overrides, approvals, changes), the
    fragment the order page loads, or a page of its own."""
    from allocation.models import Order

    order = Order.objects.filter(number=number).first()
    if order is None:
        raise Http404("No such order.")
    context = {"order": order, "entries": finance.order_timeline(order, user=request.user)}
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "audit/order_timeline.html", context)
    return render(request, "audit/order_timeline_page.html", context)


# --------------------------------------------------------------------------- why at time T


@roles.role_required(*READERS)
def line_why_at(request: HttpRequest, number: str, line: int) -> HttpResponse:
    """The Why page at ``?at=``: the decision in force then, its inputs, its policy version and
    rules, and every change since (called by ``allocation.run_views.line_why``)."""
    from allocation import run_selectors

    order_line = run_selectors.get_line(number, line)
    form = AtForm(request.GET)
    if not form.is_valid():
        return render(request, "audit/why_at.html", {"line": order_line, "form": form}, status=400)
    view = finance.line_as_of(order_line, form.cleaned_data["at"], user=request.user)
    return render(request, "audit/why_at.html", {"line": order_line, "form": form, "view": view, "log": view.log})
