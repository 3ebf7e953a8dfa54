"""The dashboard (each role's landing page), one KPI's page with its CSV, and the KPI API.

Thin callers of :mod:`allocation.kpis`: cards are read from stored snapshots (a fixed number
of queries at any size of book); the figures are refreshed by the hourly beat task or the
Refresh button, never inside a GET.
"""
from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from allocation import kpis
from allocation.dates import business_today
from config import broker, exports, roles
from config.roles import RolePermission, role_required

ANY_ROLE = roles.ALL_ROLES
MAX_API_DAYS = 366


@role_required(*ANY_ROLE)
def dashboard(request: HttpRequest) -> HttpResponse:
    held = roles.roles_of(request.user)
    sections = kpis.dashboard_sections(held)
    wanted = list({kpi.code: kpi for _, _, section in sections for kpi in section}.values())
    by_code = {card.kpi.code: card for card in kpis.cards(wanted)}
    context = {
        "sections": [(role, title, [by_code[k.code] for k in section]) for role, title, section in sections],
        "at_risk": kpis.at_risk_orders() if roles.CUSTOMER_SERVICE in held else None,
        "as_of": max((c.as_of for c in by_code.values() if c.as_of), default=None),
        "synthetic": any(c.synthetic for c in by_code.values()),
    }
    return render(request, "allocation/dashboard.html", context)


EXPORT_SPEC = exports.ExportSpec(
    screen="kpi",
    columns=exports.columns(
        ("KPI", "kpi"), ("Day", "day"), ("Segment", "segment"), ("Value", "value"), ("Unit", "unit"),
        ("Demo history", "synthetic"),
    ),
)


@role_required(*ANY_ROLE)
def kpi_detail(request: HttpRequest, code: str) -> HttpResponse:
    kpi = kpis.BY_CODE.get(code)
    if kpi is None or kpi not in kpis.visible_to(roles.roles_of(request.user)):
        raise Http404("No such KPI.")
    today = business_today()
    start = today - dt.timedelta(days=kpis.TREND_DAYS - 1)
    rows = kpis.series([code], start, today, segment=None).get(code, [])
    if exports.requested(request):
        return exports.export_response(request, [{**r, "kpi": code, "unit": kpi.unit} for r in rows], EXPORT_SPEC)
    [card] = kpis.cards([kpi])
    return render(request, "allocation/kpi_detail.html", {"card": card, "rows": rows, "kpi": kpi})


@require_POST
@role_required(*ANY_ROLE)
def refresh(request: HttpRequest) -> HttpResponse:
    from allocation.tasks import kpi_snapshot_task

    broker.publish(kpi_snapshot_task)
    messages.info(request, "The figures are being recalculated; reload in a moment.")
    return redirect("allocation:dashboard")


class KpiApi(APIView):
    """GET /api/v1/kpis?from=YYYY-MM-DD&to=YYYY-MM-DD&by=segment: every KPI with its definition,
    unit and daily series (the whole book; ``by=segment`` adds each segment's series)."""

    permission_classes = [RolePermission]
    required_roles = {"GET": ANY_ROLE}

    def get(self, request: Request) -> Response:
        today = business_today()
        errors: dict[str, list[str]] = {}

        def day(name: str, default: dt.date) -> dt.date:
            text = request.query_params.get(name)
            if not text:
                return default
            try:
                value = dt.date.fromisoformat(text[:10]) if len(text) <= 10 else None
            except ValueError:
                value = None
            if value is None:
                errors[name] = ["must be a date YYYY-MM-DD."]
                return default
            return value

        start = day("from", today - dt.timedelta(days=kpis.TREND_DAYS - 1))
        end = day("to", today)
        by = request.query_params.get("by", "")
        if by not in ("", "segment"):
            errors["by"] = ["must be empty or 'segment'."]
        if not errors and start > end:
            errors["from"] = ["must not be after 'to'."]
        if not errors and (end - start).days >= MAX_API_DAYS:
            errors["from"] = [f"the range may span at most {MAX_API_DAYS} days."]
        if errors:
            return Response(errors, status=status.HTTP_400_BAD_REQUEST)
        stored = kpis.series([k.code for k in kpis.KPIS], start, end, segment=None if by else "")
        return Response({
            "from": start.isoformat(), "to": end.isoformat(), "by": by or None,
            "kpis": [
                {"code": k.code, "name": k.name, "definition": k.definition, "unit": k.unit,
                 "segment_by": k.segment_by or None, "higher_is_better": k.higher_is_better,
                 "series": stored.get(k.code, [])}
                for k in kpis.KPIS
            ],
        })
