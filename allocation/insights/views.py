"""Decision support screens (thin): the Models screen and transfer recommendations."""
from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from allocation.insights import transfers
from allocation.models import ModelVersion, SupplyEstimate
from config import roles
from config.roles import role_required
from exceptions.choices import ACTIVE_STATUSES, ExceptionType
from exceptions.errors import ApprovalError
from exceptions.models import ApprovalRequest, DecisionException

VIEWERS = (roles.PLANNER, roles.POLICY_ADMIN, roles.APPROVER)
LIST_SIZE = 100
RECOMMENDATION_TYPES = (ExceptionType.TRANSFER_RECOMMENDED, ExceptionType.EXPEDITE_RECOMMENDED, ExceptionType.STOCKOUT_RISK)


@role_required(*VIEWERS)
def models_screen(request: HttpRequest) -> HttpResponse:
    """Every model's latest version (inputs, quality, status and reason) and its history; read-only."""
    versions = list(ModelVersion.objects.order_by("name", "-version")[:50])
    latest: dict[str, ModelVersion] = {}
    for version in versions:
        latest.setdefault(version.name, version)
    estimates = list(
        SupplyEstimate.objects.select_related("supply__item", "supply__location")
        .exclude(on_time_probability=None).order_by("on_time_probability", "supply__ref")[:25]
    )
    counts = {source: SupplyEstimate.objects.filter(confidence_source=source).count() for source in ("model", "sent")}
    return render(request, "allocation/insights/models.html", {
        "latest": list(latest.values()), "versions": versions, "estimates": estimates, "counts": counts,
    })


@role_required(*VIEWERS)
def recommendation_list(request: HttpRequest) -> HttpResponse:
    """Open transfer recommendations (most value at stake first), then stockout risks (soonest first)."""
    active = DecisionException.objects.filter(status__in=[str(s) for s in ACTIVE_STATUSES])
    transfers_open = active.filter(type=ExceptionType.TRANSFER_RECOMMENDED)
    stockouts = active.filter(type=ExceptionType.STOCKOUT_RISK)
    expedites = active.filter(type=ExceptionType.EXPEDITE_RECOMMENDED)
    return render(request, "allocation/insights/recommendations.html", {
        "sections": [
            ("Transfers", transfers_open.count(), list(transfers_open.order_by("-value", "pk")[:LIST_SIZE])),
            ("Expedites", expedites.count(), list(expedites.order_by("-value", "pk")[:LIST_SIZE])),
            ("Stockout risk", stockouts.count(), list(stockouts.order_by("severity", "pk")[:LIST_SIZE])),  # high (runs out now) first
        ],
        "list_size": LIST_SIZE,
    })


@role_required(*VIEWERS)
def recommendation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    case = get_object_or_404(DecisionException, pk=pk, type__in=RECOMMENDATION_TYPES)
    approvals = list(
        ApprovalRequest.objects.filter(kind__in=list(transfers.APPROVAL_KINDS.values()), subject_id=case.pk)
        .select_related("requested_by", "decided_by").order_by("-created_at")
    )
    return render(request, "allocation/insights/recommendation_detail.html", {
        "case": case, "approvals": approvals, "can_request": roles.has_role(request.user, {roles.PLANNER})
        and case.type in transfers.APPROVAL_KINDS and case.status in ("open", "claimed"),
    })


@role_required(roles.PLANNER)
@require_POST
def recommendation_request(request: HttpRequest, pk: int) -> HttpResponse:
    note = request.POST.get("note", "")[:500].replace("\x00", "")
    try:
        approval = transfers.request(pk, actor=request.user, note=note)
        messages.success(request, f"Asked for approval (request #{approval.pk}): another approver decides it.")
    except (transfers.TransferError, ApprovalError) as error:
        messages.error(request, error.message)
    return redirect("insights:recommendation_detail", pk=pk)
