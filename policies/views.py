"""Policy screens: version list, version page with inline editing, import, diff, explainer.

Function views; each renders its full page, or the named partial of the same template when
the request comes from HTMX. Roles are checked here (and again in the services): readers
read, policy admins edit, submit, import and roll back, approvers approve and reject.
"""
from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import select_template
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config import exports, pagination, roles
from config.roles import role_required
from exceptions import approvals
from exceptions.errors import (
    ApprovalError,
    ApprovalNotAllowed,
    ApprovalNotPending,
    SelfApprovalRefused,
)
from policies import explain as explainer
from policies import export_specs, schema, scope_values, selectors, services
from policies.choices import VersionStatus
from policies.errors import (
    PolicyError,
    PolicyPermissionError,
    PolicyStateError,
    PolicyValidationError,
)
from policies.forms import (
    SECTION_FORMS,
    DecisionForm,
    DiffForm,
    ExplainForm,
    ImportForm,
    NoteForm,
    VersionDetailsForm,
    apply_errors,
)
from policies.models import PolicyRule, PolicyVersion, Protection, Quota

PAGE = "policies/version_detail.html"
SECTION_MODELS = {"rules": PolicyRule, "protections": Protection, "quotas": Quota}
SECTION_SERVICES = {
    "rules": (services.add_rule, services.update_rule, services.delete_rule),
    "protections": (services.add_protection, services.update_protection, services.delete_protection),
    "quotas": (services.add_quota, services.update_quota, services.delete_quota),
}
SECTION_SINGULAR = {"rules": "rule", "protections": "protection", "quotas": "quota"}
READERS = tuple(roles.READERS)


def _status_for(error: Exception) -> int:
    if isinstance(error, PolicyValidationError):
        return 400
    if isinstance(error, (PolicyPermissionError, SelfApprovalRefused)):
        return 403
    if isinstance(error, ApprovalNotAllowed):
        return 400 if error.data.get("field") else 403
    if isinstance(error, (PolicyStateError, ApprovalNotPending)):
        return 409
    return 400


def _require_edit(request: HttpRequest) -> None:
    if not selectors.can_edit(request.user):
        raise PermissionDenied("Only a policy admin can do this.")


def _simulate_enabled() -> bool:
    """True once the allocation team's simulate button template exists."""
    try:
        select_template(["allocation/simulate_button.html"])
    except TemplateDoesNotExist:
        return False
    return True


def _section_context(request: HttpRequest, version: PolicyVersion, highlight: frozenset[int] = frozenset()) -> dict[str, Any]:
    groups = selectors.rules_by_specificity(version)
    protections = list(version.protections.order_by("position", "pk"))
    quotas = list(version.quotas.order_by("position", "pk"))
    # A scope value that matches nothing in the data warns beside its entry (never an error).
    scope_values.annotate_all([rule for group in groups for rule in group["rules"]], protections + quotas)
    return {
        "version": version,
        "groups": groups,
        "protections": protections,
        "quotas": quotas,
        "can_edit": selectors.can_edit(request.user) and version.is_draft,
        "highlight": highlight,
    }


def _version_context(request: HttpRequest, version: PolicyVersion, **extra: Any) -> dict[str, Any]:
    user = request.user
    approval = services.pending_approval_of(version) if version.status == VersionStatus.PENDING_APPROVAL else None
    active = PolicyVersion.objects.filter(status=VersionStatus.ACTIVE).only("pk", "number").first()
    context = {
        **_section_context(request, version),
        "approval": approval,
        "can_submit": selectors.can_edit(user) and version.is_draft,
        "can_decide": approval is not None and approvals.can_decide(approval, user),
        "is_own_request": approval is not None and approval.requested_by_id == user.pk,
        "is_approver": selectors.can_decide(user),
        "can_rollback": selectors.can_edit(user) and version.status == VersionStatus.RETIRED,
        "active": active,
        "history": selectors.version_history(version),
        "simulate_enabled": version.is_draft and _simulate_enabled(),
        "settings_catalogue": list(schema.SETTINGS.values()),
        "dimensions": schema.DIMENSIONS,
        "note_form": NoteForm(),
        "decision_form": DecisionForm(),
    }
    if context["can_edit"]:
        context["details_form"] = VersionDetailsForm(
            initial={"name": version.name, "effective_from": version.effective_from, "note": version.note}
        )
    context.update(extra)
    return context


@require_GET
@role_required(*READERS)
def policy_list(request: HttpRequest) -> HttpResponse:
    """Every version with its status, number and effective dates; filter by status."""
    status = request.GET.get("status", "")
    versions = selectors.visible_versions(request.user)
    if status in VersionStatus.values:
        versions = versions.filter(status=status)
    if exports.requested(request):  # ?export=csv|xlsx: every version listed
        return exports.export_response(request, versions.order_by("-number"), export_specs.POLICY_VERSIONS)
    # Keyset pages (?cursor=) newest number first, like every other list screen.
    page = pagination.screen_page(request, versions.order_by("-number"), 25)
    context = {
        "page_obj": page,
        "versions": page.object_list,
        "status": status,
        "statuses": VersionStatus.choices,
        "query": f"status={status}" if status else "",
        "can_edit": selectors.can_edit(request.user),
    }
    template = "policies/policy_list.html#versions" if request.htmx else "policies/policy_list.html"
    return render(request, template, context)


@require_GET
@role_required(*READERS)
def version_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A version: facts, actions, rules by specificity, protections, quotas and history."""
    version = selectors.get_version_for(request.user, pk)
    target = request.htmx.target if request.htmx else None
    if target in {"rules", "protections", "quotas"}:
        return render(request, f"{PAGE}#{target}", _section_context(request, version))
    if target == "history":
        return render(request, f"{PAGE}#history", {"history": selectors.version_history(version)})
    return render(request, PAGE, _version_context(request, version))


@require_GET
@role_required(*READERS)
def version_document(request: HttpRequest, pk: int) -> JsonResponse:
    """The version's document as a JSON download."""
    version = selectors.get_version_for(request.user, pk)
    response = JsonResponse(selectors.export_document(version), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="policy-v{version.number}.json"'
    return response


def _entry(version: PolicyVersion, section: str, entry_pk: int | None) -> Any:
    if section not in SECTION_MODELS:
        raise Http404("No such section.")
    if entry_pk is None:
        return None
    entry = SECTION_MODELS[section].objects.filter(version=version, pk=entry_pk).first()
    if entry is None:
        raise Http404("No such entry.")
    return entry


def _form_context(version: PolicyVersion, section: str, entry: Any, form: Any) -> dict[str, Any]:
    if entry is None:
        action = reverse("policies:entry_new", args=[version.pk, section])
        form_id = f"{section}-form-new"
    else:
        action = reverse("policies:entry_edit", args=[version.pk, section, entry.pk])
        form_id = f"{section}-form-{entry.pk}"
    return {
        "version": version, "section": section, "singular": SECTION_SINGULAR[section], "entry": entry,
        "form": form, "action": action, "form_id": form_id, "settings_catalogue": list(schema.SETTINGS.values()),
        "scope_lists": scope_values.lists_for(form),
    }


def _render_form(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    if request.htmx:
        response = render(request, f"{PAGE}#entry_form", context, status=status)
        if status >= 400:
            # Errors replace the form in place; success replaces the whole section.
            response["HX-Retarget"] = f"#{context['form_id']}"
            response["HX-Reswap"] = "outerHTML"
        return response
    return render(request, "policies/entry_form_page.html", context, status=status)


def _saved(request: HttpRequest, version: PolicyVersion, section: str, message: str) -> HttpResponse:
    if request.htmx:
        return render(request, f"{PAGE}#{section}", _section_context(request, version))
    messages.success(request, message)
    return redirect(reverse("policies:version_detail", args=[version.pk]) + f"#{section}")


@require_http_methods(["GET", "POST"])
@role_required(*READERS)
def entry_form(request: HttpRequest, pk: int, section: str, entry_pk: int | None = None) -> HttpResponse:
    """Add (no entry_pk) or edit a rule, protection or quota of a draft, errors shown in place."""
    version = selectors.get_version_for(request.user, pk)
    _require_edit(request)
    entry = _entry(version, section, entry_pk)
    form_class = SECTION_FORMS[section]
    if not version.is_draft:
        context = _form_context(version, section, entry, form_class())
        context["state_error"] = f"Only drafts can be edited; v{version.number} is {version.get_status_display().lower()}."
        return _render_form(request, context, status=409)
    if request.method == "GET":
        form = form_class(initial=form_class.initial_for(entry)) if entry is not None else form_class(initial={"settings": {}, "for_scope": {}})
        return _render_form(request, _form_context(version, section, entry, form))
    form = form_class(request.POST)
    if form.is_valid():
        add, update, _ = SECTION_SERVICES[section]
        try:
            if entry is None:
                add(version, actor=request.user, **form.service_kwargs())
            else:
                update(entry, actor=request.user, **form.service_kwargs())
        except PolicyValidationError as error:
            apply_errors(form, error.errors)
        except PolicyError as error:
            form.add_error(None, error.message)
            return _render_form(request, _form_context(version, section, entry, form), status=_status_for(error))
        else:
            verb = "added" if entry is None else "saved"
            kwargs = form.service_kwargs()
            scope = {**kwargs.get("scope", kwargs.get("for_scope", {})), **{
                scope_values.dimension_of(k) or k: kwargs[k] for k in ("sku", "location", "item_class") if kwargs.get(k)
            }}
            for warning in scope_values.unmatched(scope):
                messages.warning(request, warning)
            return _saved(request, version, section, f"{SECTION_SINGULAR[section].capitalize()} {verb}.")
    return _render_form(request, _form_context(version, section, entry, form), status=422)


@require_POST
@role_required(*READERS)
def entry_delete(request: HttpRequest, pk: int, section: str, entry_pk: int) -> HttpResponse:
    """Delete a rule, protection or quota of a draft (the global rule stays)."""
    version = selectors.get_version_for(request.user, pk)
    _require_edit(request)
    entry = _entry(version, section, entry_pk)
    _, _, delete = SECTION_SERVICES[section]
    try:
        delete(entry, actor=request.user)
    except (PolicyError, ApprovalError) as error:
        message = "; ".join(f"{e['field']}: {e['message']}" for e in error.errors) if isinstance(error, PolicyValidationError) else error.message
        status = 422 if isinstance(error, PolicyValidationError) else _status_for(error)
        if request.htmx:
            context = {**_section_context(request, version), "section_error": message}
            return render(request, f"{PAGE}#{section}", context, status=status)
        messages.error(request, message)
        return render(request, PAGE, _version_context(request, version), status=status)
    return _saved(request, version, section, f"{SECTION_SINGULAR[section].capitalize()} deleted.")


@require_POST
@role_required(*READERS)
def version_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a draft's name, effective date and note."""
    version = selectors.get_version_for(request.user, pk)
    _require_edit(request)
    form = VersionDetailsForm(request.POST)
    status = 422
    if form.is_valid():
        try:
            services.update_version(version, actor=request.user, **form.cleaned_data)
        except PolicyValidationError as error:
            for e in error.errors:
                form.add_error(e["field"] if e["field"] in form.fields else None, e["message"])
        except PolicyError as error:
            form.add_error(None, error.message)
            status = _status_for(error)
        else:
            messages.success(request, "Draft details saved.")
            return redirect("policies:version_detail", pk=version.pk)
    return render(request, PAGE, _version_context(request, version, details_form=form), status=status)


def _form_refused(request: HttpRequest, version: PolicyVersion, form: Any) -> HttpResponse:
    """A note or reason that cannot be taken (too long, NUL, an unpaired surrogate): a 400
    naming the field, and the version is neither submitted nor decided."""
    for name, errors in form.errors.items():
        messages.error(request, f"{name.capitalize()}: {' '.join(errors)}")
    return render(request, PAGE, _version_context(request, version), status=400)


def _action_failed(request: HttpRequest, version: PolicyVersion, error: Exception) -> HttpResponse:
    if isinstance(error, PolicyValidationError):
        message = "; ".join(f"{e['field']}: {e['message']}" for e in error.errors)
    else:
        message = getattr(error, "message", str(error))
    messages.error(request, message)
    version.refresh_from_db()
    return render(request, PAGE, _version_context(request, version), status=_status_for(error))


@require_POST
@role_required(*READERS)
def version_submit(request: HttpRequest, pk: int) -> HttpResponse:
    """Submit a draft for approval (policy admins)."""
    version = selectors.get_version_for(request.user, pk)
    _require_edit(request)
    form = NoteForm(request.POST)
    if not form.is_valid():
        return _form_refused(request, version, form)
    note = form.cleaned_data["note"]
    try:
        services.submit(version, actor=request.user, note=note)
    except (PolicyError, ApprovalError) as error:
        return _action_failed(request, version, error)
    messages.success(request, f"v{version.number} submitted for approval.")
    return redirect("policies:version_detail", pk=version.pk)


@require_POST
@role_required(*READERS)
def version_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    """Approve or reject a submitted version (approvers, never their own request)."""
    version = selectors.get_version_for(request.user, pk)
    if not selectors.can_decide(request.user):
        raise PermissionDenied("Only an approver can decide.")
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _form_refused(request, version, form)
    reason = form.cleaned_data["reason"]
    try:
        if decision == "approve":
            version = services.approve(version, actor=request.user, reason=reason)
            if version.status == VersionStatus.ACTIVE:
                run = getattr(version, "reallocation_run", None)
                messages.success(
                    request, f"v{version.number} approved and active." + (f" Re-allocating every line (run #{run.pk})." if run else "")
                )
                if run is not None and not run.is_finished:
                    return redirect(reverse("policies:version_detail", args=[version.pk]) + f"?run={run.pk}")
            else:
                messages.success(request, f"v{version.number} approved; it activates at {version.effective_from:%Y-%m-%d %H:%M} UTC.")
        else:
            services.reject(version, actor=request.user, reason=reason)
            messages.success(request, f"v{version.number} rejected; it is a draft again.")
    except (PolicyError, ApprovalError) as error:
        return _action_failed(request, version, error)
    return redirect("policies:version_detail", pk=version.pk)


@require_POST
@role_required(*READERS)
def version_rollback(request: HttpRequest, pk: int) -> HttpResponse:
    """Copy an earlier version as a new draft (to submit through the same approval)."""
    version = selectors.get_version_for(request.user, pk)
    _require_edit(request)
    try:
        copy = services.rollback(version, actor=request.user)
    except (PolicyError, ApprovalError) as error:
        return _action_failed(request, version, error)
    messages.success(request, f"v{copy.number} is a copy of v{version.number}: review it, then submit it for approval.")
    return redirect("policies:version_detail", pk=copy.pk)


@require_POST
@role_required(*READERS)
def draft_create(request: HttpRequest) -> HttpResponse:
    """Start a new draft from the active version."""
    _require_edit(request)
    try:
        version = services.create_draft(actor=request.user)
    except PolicyError as error:
        messages.error(request, error.message)
        return redirect("policies:policy_list")
    messages.success(request, f"Draft v{version.number} created from the active version.")
    return redirect("policies:version_detail", pk=version.pk)


@require_POST
@role_required(*READERS)
def draft_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Discard a draft."""
    version = selectors.get_version_for(request.user, pk)
    _require_edit(request)
    try:
        services.delete_draft(version, actor=request.user)
    except PolicyError as error:
        return _action_failed(request, version, error)
    messages.success(request, f"Draft v{version.number} deleted.")
    return redirect("policies:policy_list")


@require_http_methods(["GET", "POST"])
@role_required(*READERS)
def policy_import(request: HttpRequest) -> HttpResponse:
    """Import a document as a draft (policy admins); superusers may activate it at once."""
    _require_edit(request)
    errors: list[dict[str, str]] = []
    status = 200
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        status = 422
        if form.is_valid():
            try:
                version = services.import_document(form.cleaned_data["parsed"], actor=request.user, activate=form.cleaned_data["activate"])
            except PolicyValidationError as error:
                errors = error.errors
            except PolicyError as error:
                form.add_error("activate" if isinstance(error, PolicyPermissionError) else None, error.message)
                status = _status_for(error)
            else:
                messages.success(request, f"Imported v{version.number} ({version.name}) as {version.get_status_display().lower()}.")
                return redirect("policies:version_detail", pk=version.pk)
    else:
        form = ImportForm()
    return render(request, "policies/import.html", {"form": form, "errors": errors, "can_activate": request.user.is_superuser}, status=status)


@require_GET
@role_required(*READERS)
def version_diff(request: HttpRequest) -> HttpResponse:
    """Rules, protections and quotas added, removed or changed between two versions."""
    versions = selectors.visible_versions(request.user)
    form = DiffForm(request.GET or None)
    form.fields["a"].queryset = versions
    form.fields["b"].queryset = versions
    diff = None
    status = 200
    if request.GET:
        if form.is_valid():
            old, new = form.cleaned_data["a"], form.cleaned_data["b"]
            diff = selectors.diff_documents(selectors.export_document(old), selectors.export_document(new))
        else:
            status = 400
    context = {"form": form, "diff": diff, "a": form.cleaned_data.get("a") if diff else None, "b": form.cleaned_data.get("b") if diff else None}
    template = "policies/version_diff.html#diff" if request.htmx else "policies/version_diff.html"
    return render(request, template, context, status=status)


@require_GET
@role_required(*READERS)
def explain(request: HttpRequest) -> HttpResponse:
    """Each setting's effective value and source rule for chosen dimensions or an order line."""
    form = ExplainForm(request.GET or None)
    form.fields["version"].queryset = selectors.visible_versions(request.user)
    result = None
    status = 200
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            result = explainer.explain(version=data["version"], values=form.dimension_values(), order=data.get("order") or None, line=data.get("line"))
        except explainer.UnknownLine:
            form.add_error("order", f"No order line {data.get('order')}/{data.get('line')}.")
            status = 400
        except PolicyError as error:
            form.add_error(None, error.message)
            status = 409
        if result is not None and data.get("order"):
            # Show the dimensions the line was read as.
            form = ExplainForm(initial={**result.dimensions.as_dict(), "order": data["order"], "line": data["line"], "version": data["version"]})
            form.fields["version"].queryset = selectors.visible_versions(request.user)
    elif form.is_bound:
        status = 400
    context: dict[str, Any] = {"form": form, "result": result, "scope_lists": scope_values.lists_for(form)}
    if result is not None:
        context.update(_section_context(request, result.version, highlight=result.source_positions))
        context["can_edit"] = False
    template = "policies/explain.html#explanation" if request.htmx else "policies/explain.html"
    return render(request, template, context, status=status)
