"""The Integrations screen: each source's feed freshness (last event, lag, status, events per
hour), CSV / JSON Lines upload with progress and rejected rows, and replay of stored events
with a dry run first. Thin views over ``integrations.freshness``, ``uploads`` and ``replays``."""
from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from config import exports, pagination, roles
from integrations import export_specs, freshness, replays, services, uploads
from integrations.choices import EventType
from integrations.feed_forms import CadenceForm, ReplayForm, UploadForm
from integrations.feeds_models import EventUpload, Replay
from integrations.models import Source

READERS = (roles.INTEGRATION, roles.PLANNER, roles.FINANCE)
REJECTIONS_PAGE = 100


def _writable_sources(user) -> list[str]:
    """The sources this user may upload and replay for: those bound to them (any, for superusers)."""
    bound = services.sources_bound_to(user)
    codes = Source.objects.order_by("code").values_list("code", flat=True)
    return [code for code in codes if bound is None or code in bound]


def _can_write(user) -> bool:
    return roles.has_role(user, {roles.INTEGRATION})


def _overview_context(request: HttpRequest, *, upload_form=None, replay_form=None) -> dict:
    writable = _writable_sources(request.user) if _can_write(request.user) else []
    return {
        "feeds": freshness.source_freshness(),
        "can_write": _can_write(request.user),
        "writable": writable,
        "upload_form": upload_form or UploadForm(sources=writable),
        "replay_form": replay_form or ReplayForm(sources=writable),
        "event_types": EventType.values,
        "uploads": list(EventUpload.objects.select_related("source", "actor").defer("content")[:10]),
        "replays": list(Replay.objects.select_related("source", "planned_by", "applied_by")[:10]),
        "max_bytes": uploads.settings.ALLOT_UPLOAD_MAX_BYTES,
    }


@roles.role_required(*READERS)
def overview(request: HttpRequest) -> HttpResponse:
    """Feed freshness per source, the upload form, recent uploads and replays. The HTMX request
    gets only the #feeds partial (the freshness table refreshes itself every 30 s)."""
    template = "integrations/overview.html#feeds" if request.htmx else "integrations/overview.html"
    return render(request, template, _overview_context(request))


@require_POST
@roles.role_required(roles.INTEGRATION)
def upload_create(request: HttpRequest) -> HttpResponse:
    """Store an uploaded file (processed in the background) and show its progress page."""
    form = UploadForm(request.POST, request.FILES, sources=_writable_sources(request.user))
    if form.is_valid():
        file = form.cleaned_data["file"]
        if file.size > uploads.settings.ALLOT_UPLOAD_MAX_BYTES:
            form.add_error("file", f"The file is {file.size:,} bytes; at most {uploads.settings.ALLOT_UPLOAD_MAX_BYTES:,} are accepted.")
        else:
            try:
                upload = uploads.create_upload(
                    actor=request.user, source=Source.objects.get(code=form.cleaned_data["source"]),
                    filename=file.name, content=file.read(), event_type=form.cleaned_data["event_type"],
                )
            except uploads.UploadRefused as refused:
                form.add_error(refused.field if refused.field in form.fields else "file", refused.message)
            else:
                return redirect("integrations:upload_detail", public_id=upload.public_id)
    return render(request, "integrations/overview.html", _overview_context(request, upload_form=form), status=400)


def _upload_or_404(public_id) -> EventUpload:
    upload = EventUpload.objects.select_related("source", "actor").defer("content").filter(public_id=public_id).first()
    if upload is None:
        raise Http404("No such upload.")
    return upload


@roles.role_required(*READERS)
def upload_detail(request: HttpRequest, public_id) -> HttpResponse:
    """An upload's progress (polled by HTMX while it runs: the #upload-body partial) and
    every rejected row with its row number, field and reason (keyset pages)."""
    upload = _upload_or_404(public_id)
    if exports.requested(request):  # ?export=csv|xlsx: every rejected row, to fix and send again
        return exports.export_response(request, upload.rejections.all(), export_specs.UPLOAD_REJECTIONS)
    rejections = pagination.screen_page(request, upload.rejections.all(), REJECTIONS_PAGE, ("row", "id"))
    context = {"upload": upload, "page_obj": rejections, "query": pagination.screen_query(request)}
    template = "integrations/upload_detail.html#upload-body" if request.htmx else "integrations/upload_detail.html"
    return render(request, template, context)


@roles.role_required(*READERS)
def upload_template(request: HttpRequest, event_type: str) -> HttpResponse:
    """The CSV template of one event type (header and an example row)."""
    if event_type not in uploads.COLUMNS:
        raise Http404("No such event type.")
    response = HttpResponse(uploads.template_csv(event_type), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{event_type}.csv"'
    return response


@require_POST
@roles.role_required(roles.INTEGRATION)
def replay_plan(request: HttpRequest) -> HttpResponse:
    """The dry run of a replay: what re-applying the range would change (nothing is changed)."""
    form = ReplayForm(request.POST, sources=_writable_sources(request.user))
    if form.is_valid():
        data = form.cleaned_data
        try:
            replay = replays.plan_replay(
                source=Source.objects.get(code=data["source"]), start=data["start"], end=data["end"], actor=request.user
            )
        except replays.ReplayRefused as refused:
            form.add_error(refused.field if refused.field in form.fields else None, refused.message)
        else:
            return redirect("integrations:replay_detail", public_id=replay.public_id)
    return render(request, "integrations/overview.html", _overview_context(request, replay_form=form), status=400)


def _replay_or_404(public_id) -> Replay:
    replay = Replay.objects.select_related("source", "planned_by", "applied_by", "batch").filter(public_id=public_id).first()
    if replay is None:
        raise Http404("No such replay.")
    return replay


@roles.role_required(*READERS)
def replay_detail(request: HttpRequest, public_id) -> HttpResponse:
    """A replay: its dry run (outcomes, field changes, records created) and, once applied, its result."""
    replay = _replay_or_404(public_id)
    can_apply = _can_write(request.user) and replay.source.code in _writable_sources(request.user)
    return render(request, "integrations/replay_detail.html", {"replay": replay, "can_apply": can_apply})


@require_POST
@roles.role_required(roles.INTEGRATION)
def replay_apply(request: HttpRequest, public_id) -> HttpResponse:
    """Apply a planned replay (its own batch, audited under the acting user)."""
    replay = _replay_or_404(public_id)
    if replay.source.code not in _writable_sources(request.user):
        raise Http404("No such replay.")
    try:
        replay = replays.apply_replay(replay.pk, actor=request.user)
    except replays.ReplayRefused as refused:
        messages.error(request, f"Not applied: {refused.message}.")
    else:
        counts = ", ".join(f"{n} {status}" for status, n in replay.outcome.items())
        messages.success(request, f"Replay applied as batch {replay.batch_id}: {counts}.")
    return redirect("integrations:replay_detail", public_id=replay.public_id)


@require_POST
@roles.role_required(roles.INTEGRATION)
def source_cadence(request: HttpRequest, code: str) -> HttpResponse:
    """Set (or clear) a source's expected cadence."""
    if code not in _writable_sources(request.user):
        raise Http404("No such source.")
    form = CadenceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Cadence: " + "; ".join(form.errors["stale_feed_minutes"]))
        return redirect("integrations:overview")
    source = freshness.set_cadence(code, form.cleaned_data["stale_feed_minutes"], actor=request.user)
    shown = f"{source.stale_feed_minutes} min" if source.stale_feed_minutes else "the policy's stale_feed_minutes"
    messages.success(request, f"Source {code} is now expected every {shown}.")
    return redirect("integrations:overview")
