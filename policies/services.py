"""Every write to policies: drafts and their rules, protections and quotas; submit, approve,
reject, activation, rollback, import.

Each function is atomic, takes a keyword-only ``actor`` (None = the command line, which is
trusted) and records a history change reason. Only drafts are edited, and every edit is
validated as the whole document it would produce, so a draft is always a valid document
and errors carry the document's field paths (``rules[2].settings.strategy``).

Activation protocol (one active version, even when approvals race): take the activation
advisory lock (PostgreSQL), lock the currently active row, re-reading until the locked set
equals the committed set, then lock the target; retire the old row before activating the new
one. The partial unique index on ``status='active'`` is the last guard. An activation by
approval or at its effective date queues the full re-allocation it needs (a run with trigger
``policy``, executed after commit); an administrative activation on import leaves that to
its caller (the command line runs what it needs).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, ProtectedError, Q, QuerySet
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from config import roles
from exceptions import approvals
from exceptions.models import ApprovalRequest
from policies import schema
from policies.choices import POLICY_ACTIVATION, VersionStatus
from policies.errors import PolicyPermissionError, PolicyStateError, PolicyValidationError
from policies.models import PolicyRule, PolicyVersion, Protection, Quota
from policies.selectors import export_document

SECTIONS = {"rules": PolicyRule, "protections": Protection, "quotas": Quota}
DETAILS_CHANGED = "draft details changed"


def _reason(text: str) -> str:
    return text[:100]


def _save(obj: Any, *, actor: Any, reason: str) -> None:
    obj._change_reason = _reason(reason)
    if actor is not None:
        obj._history_user = actor
    obj.save()


def _require_role(actor: Any, role: str, action: str) -> None:
    if actor is not None and not roles.has_role(actor, {role}):
        raise PolicyPermissionError(f"Only a {role.replace('_', ' ')} can {action}.")


def _lock_draft(version: PolicyVersion) -> PolicyVersion:
    locked = PolicyVersion.objects.select_for_update().get(pk=version.pk)
    if locked.status != VersionStatus.DRAFT:
        raise PolicyStateError(f"Only drafts can be edited; v{locked.number} is {locked.get_status_display().lower()}.", status=locked.status)
    return locked


def _next_number() -> int:
    return (PolicyVersion.objects.aggregate(top=Max("number"))["top"] or 0) + 1


def _quantity(value: Any) -> Decimal:
    return Decimal(str(value))


def _row(section: str, version: PolicyVersion, position: int, item: dict[str, Any]) -> Any:
    if section == "rules":
        return PolicyRule(version=version, position=position, scope=item["scope"], settings=item["settings"])
    if section == "protections":
        return Protection(
            version=version, position=position, sku=item["sku"], location=item["location"],
            quantity=_quantity(item["quantity"]), for_scope=item["for"],
        )
    return Quota(
        version=version, position=position, sku=item.get("sku", ""), item_class=item.get("item_class", ""),
        for_scope=item["for"], period=item["period"], quantity=_quantity(item["quantity"]),
    )


def _assign(row: Any, section: str, item: dict[str, Any]) -> None:
    fresh = _row(section, row.version, row.position, item)
    for name in {"rules": ("scope", "settings"), "protections": ("sku", "location", "quantity", "for_scope"),
                 "quotas": ("sku", "item_class", "for_scope", "period", "quantity")}[section]:
        setattr(row, name, getattr(fresh, name))


def _validate(document: dict[str, Any]) -> None:
    errors = schema.validate_document(document)
    if not errors:
        # Factor plugins must be registered to be weighted (a run skips, and warns about, one
        # that is unregistered later instead of failing).
        from allocation import plugins

        errors = plugins.document_errors(document)
    if errors:
        raise PolicyValidationError(errors)


def _create_from_document(
    document: dict[str, Any], *, actor: Any, reason: str, based_on: PolicyVersion | None = None,
    effective_from: dt.datetime | None = None, note: str = "",
) -> PolicyVersion:
    version = PolicyVersion(
        name=document["name"],
        number=_next_number(),
        status=VersionStatus.DRAFT,
        effective_from=effective_from or schema.parse_effective_from(document.get("effective_from")) or timezone.now(),
        note=note,
        based_on=based_on,
        created_by=actor,
    )
    _save(version, actor=actor, reason=reason)
    for section, model in SECTIONS.items():
        rows = [_row(section, version, index, item) for index, item in enumerate(document.get(section, []))]
        if rows:
            bulk_create_with_history(rows, model, default_user=actor, default_change_reason=_reason(reason))
    return version


def create_draft(
    *, actor: Any, name: str | None = None, effective_from: dt.datetime | None = None,
    copy_from: PolicyVersion | None = None, note: str = "",
) -> PolicyVersion:
    """A new draft: a copy of ``copy_from``, else of the active version, else the global rule alone.

    The draft takes the next version number; ``effective_from`` defaults to now (activation on
    approval).
    """
    _require_role(actor, roles.POLICY_ADMIN, "create a draft")
    with transaction.atomic():
        source = copy_from or PolicyVersion.objects.filter(status=VersionStatus.ACTIVE).first()
        if source is not None:
            document = export_document(source)
            reason = f"draft created from v{source.number}"
        else:
            document = {"name": "default", "rules": [{"scope": {}, "settings": {}}], "protections": [], "quotas": []}
            reason = "draft created"
        if name:
            document["name"] = name
        _validate(document)
        return _create_from_document(
            document, actor=actor, reason=reason, effective_from=effective_from or timezone.now(), note=note
        )


def update_version(version: PolicyVersion, *, actor: Any, name: str, effective_from: dt.datetime, note: str = "") -> PolicyVersion:
    """Change a draft's name, effective date and note."""
    _require_role(actor, roles.POLICY_ADMIN, "edit a policy")
    problem = schema.effective_from_problem(effective_from)
    if problem is not None:
        raise PolicyValidationError([{"field": "effective_from", "message": problem}])
    with transaction.atomic():
        locked = _lock_draft(version)
        document = export_document(locked)
        document["name"] = name
        _validate(document)
        locked.name, locked.effective_from, locked.note = name, effective_from, note
        _save(locked, actor=actor, reason=DETAILS_CHANGED)
        return locked


def _edit_section(version: PolicyVersion, section: str, *, actor: Any, row: Any | None, item: dict[str, Any] | None) -> Any:
    """Add (row None), change (row and item) or delete (item None) one entry of a draft's section."""
    _require_role(actor, roles.POLICY_ADMIN, "edit a policy")
    model = SECTIONS[section]
    with transaction.atomic():
        locked = _lock_draft(version)
        rows = list(model.objects.filter(version=locked).order_by("position", "pk"))
        document = export_document(locked)
        if row is None:
            index = len(rows)
            document[section].append(item)
        else:
            index = next((i for i, existing in enumerate(rows) if existing.pk == row.pk), None)
            if index is None:
                raise PolicyStateError("This entry is not part of the version.")
            if item is None:
                del document[section][index]
            else:
                document[section][index] = item
        _validate(document)
        singular = section[:-1]
        if row is None:
            created = _row(section, locked, index, item)  # type: ignore[arg-type]
            _save(created, actor=actor, reason=f"{singular} added at {index}")
            result = created
        elif item is None:
            target = rows[index]
            target._change_reason = _reason(f"{singular} at {index} deleted")
            if actor is not None:
                target._history_user = actor
            target.delete()
            later = rows[index + 1:]
            for moved in later:
                moved.position -= 1
            if later:
                bulk_update_with_history(
                    later, model, ["position"], default_user=actor,
                    default_change_reason=_reason(f"renumbered after {singular} {index} was deleted"),
                )
            result = None
        else:
            target = rows[index]
            _assign(target, section, item)
            _save(target, actor=actor, reason=f"{singular} at {index} changed")
            result = target
        # Bump updated_at (compiled-policy cache key) without a history row: the entry's own row has it.
        PolicyVersion.objects.filter(pk=locked.pk).update(updated_at=timezone.now())
        return result


def add_rule(version: PolicyVersion, *, actor: Any, scope: dict[str, Any], settings: dict[str, Any]) -> PolicyRule:
    """Append a rule to a draft (validated as part of the whole document)."""
    return _edit_section(version, "rules", actor=actor, row=None, item={"scope": scope, "settings": settings})


def update_rule(rule: PolicyRule, *, actor: Any, scope: dict[str, Any], settings: dict[str, Any]) -> PolicyRule:
    """Replace a draft rule's scope and settings."""
    return _edit_section(rule.version, "rules", actor=actor, row=rule, item={"scope": scope, "settings": settings})


def delete_rule(rule: PolicyRule, *, actor: Any) -> None:
    """Delete a draft rule (the global rule cannot go: the document would be invalid)."""
    _edit_section(rule.version, "rules", actor=actor, row=rule, item=None)


def protection_document(*, sku: str, location: str, quantity: Any, for_scope: dict[str, Any]) -> dict[str, Any]:
    return {"sku": sku, "location": location, "quantity": quantity, "for": for_scope}


def quota_document(*, sku: str = "", item_class: str = "", for_scope: dict[str, Any], period: Any, quantity: Any) -> dict[str, Any]:
    target: dict[str, Any] = {}
    if sku:
        target["sku"] = sku
    if item_class:
        target["item_class"] = item_class
    item = {**target, "for": for_scope, "quantity": quantity}
    if period not in (None, ""):
        item["period"] = period
    return item


def add_protection(version: PolicyVersion, *, actor: Any, sku: str, location: str, quantity: Any, for_scope: dict[str, Any]) -> Protection:
    """Append a protection to a draft."""
    item = protection_document(sku=sku, location=location, quantity=quantity, for_scope=for_scope)
    return _edit_section(version, "protections", actor=actor, row=None, item=item)


def update_protection(protection: Protection, *, actor: Any, sku: str, location: str, quantity: Any, for_scope: dict[str, Any]) -> Protection:
    """Change a draft protection."""
    item = protection_document(sku=sku, location=location, quantity=quantity, for_scope=for_scope)
    return _edit_section(protection.version, "protections", actor=actor, row=protection, item=item)


def delete_protection(protection: Protection, *, actor: Any) -> None:
    """Delete a draft protection."""
    _edit_section(protection.version, "protections", actor=actor, row=protection, item=None)


def add_quota(version: PolicyVersion, *, actor: Any, sku: str = "", item_class: str = "", for_scope: dict[str, Any], period: Any, quantity: Any) -> Quota:
    """Append a quota to a draft (exactly one of sku or item_class)."""
    item = quota_document(sku=sku, item_class=item_class, for_scope=for_scope, period=period, quantity=quantity)
    return _edit_section(version, "quotas", actor=actor, row=None, item=item)


def update_quota(quota: Quota, *, actor: Any, sku: str = "", item_class: str = "", for_scope: dict[str, Any], period: Any, quantity: Any) -> Quota:
    """Change a draft quota."""
    item = quota_document(sku=sku, item_class=item_class, for_scope=for_scope, period=period, quantity=quantity)
    return _edit_section(quota.version, "quotas", actor=actor, row=quota, item=item)


def delete_quota(quota: Quota, *, actor: Any) -> None:
    """Delete a draft quota."""
    _edit_section(quota.version, "quotas", actor=actor, row=quota, item=None)


def delete_draft(version: PolicyVersion, *, actor: Any) -> None:
    """Discard a draft that was never submitted (its history stays)."""
    _require_role(actor, roles.POLICY_ADMIN, "delete a draft")
    with transaction.atomic():
        locked = _lock_draft(version)
        if locked.copies.exists():
            raise PolicyStateError("This draft is the basis of another version.")
        for model in SECTIONS.values():
            for row in model.objects.filter(version=locked):
                row._change_reason = "draft deleted"
                if actor is not None:
                    row._history_user = actor
                row.delete()
        locked._change_reason = "draft deleted"
        if actor is not None:
            locked._history_user = actor
        try:
            with transaction.atomic():
                locked.delete()
        except ProtectedError as error:
            raise PolicyStateError("This draft is referenced (e.g. by a simulation run) and is kept.") from error


def submit(version: PolicyVersion, *, actor: Any, note: str = "") -> ApprovalRequest:
    """Submit a draft for approval (policy admins only): it becomes ``pending_approval`` and an
    approval request of kind ``policy_activation`` is opened for a different approver."""
    if actor is None:
        raise PolicyPermissionError("Submitting needs a person (the approval is four-eyes).")
    _require_role(actor, roles.POLICY_ADMIN, "submit a policy")
    with transaction.atomic():
        locked = PolicyVersion.objects.select_for_update().get(pk=version.pk)
        if locked.status != VersionStatus.DRAFT:
            raise PolicyStateError(f"Only a draft can be submitted; v{locked.number} is {locked.get_status_display().lower()}.", status=locked.status)
        _validate(export_document(locked))
        locked.status = VersionStatus.PENDING_APPROVAL
        locked.submitted_by = actor
        locked.submitted_at = timezone.now()
        locked.approved_by, locked.approved_at = None, None
        _save(locked, actor=actor, reason=f"submitted: {note}" if note else "submitted for approval")
        return approvals.request_approval(
            kind=POLICY_ACTIVATION, subject=locked, actor=actor, note=note,
            payload={"version": locked.number, "effective_from": locked.effective_from.isoformat()},
        )


def pending_approval_of(version: PolicyVersion) -> ApprovalRequest | None:
    return approvals.pending_for(version, POLICY_ACTIVATION).first()


def approve(version: PolicyVersion, *, actor: Any, reason: str = "") -> PolicyVersion:
    """Approve a submitted version through exceptions.approvals: an approver who neither
    submitted it nor wrote any of it (``authors``), else ``SelfApprovalRefused``.

    Effective now or earlier: activated at once, retiring the active version. Effective later:
    stays ``pending_approval`` with ``approved_at`` set until the beat task activates it.
    """
    approval = pending_approval_of(version)
    if approval is None:
        raise PolicyStateError(f"v{version.number} has no approval waiting.")
    decided = approvals.approve(approval.pk, actor=actor, reason=reason)
    approved = PolicyVersion.objects.get(pk=version.pk)
    approved.reallocation_run = getattr(decided, "run", None)  # queued by the activation, if any
    return approved


def reject(version: PolicyVersion, *, actor: Any, reason: str) -> PolicyVersion:
    """Reject a submitted version (a reason is required): it returns to draft."""
    approval = pending_approval_of(version)
    if approval is None:
        raise PolicyStateError(f"v{version.number} has no approval waiting.")
    approvals.reject(approval.pk, actor=actor, reason=reason)
    return PolicyVersion.objects.get(pk=version.pk)


# Any constant: the key of the PostgreSQL advisory lock that serialises activations.
ACTIVATION_LOCK_KEY = 7_140_301


def _lock_active_rows(exclude_pk: int) -> list[PolicyVersion]:
    """Serialise activations, then lock every active row.

    On PostgreSQL a transaction-scoped advisory lock comes first, so two activations queue even
    when no version is active (there is then no row to lock). The row locks are re-read until
    the locked set is the committed set: READ COMMITTED re-checks a row it waited for and drops
    it when another transaction retired it. SQLite serialises writers by itself.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ACTIVATION_LOCK_KEY])
    while True:
        locked = list(
            PolicyVersion.objects.select_for_update().filter(status=VersionStatus.ACTIVE).exclude(pk=exclude_pk).order_by("pk")
        )
        committed = list(
            PolicyVersion.objects.filter(status=VersionStatus.ACTIVE).exclude(pk=exclude_pk).order_by("pk").values_list("pk", flat=True)
        )
        if [v.pk for v in locked] == committed:
            return locked


def _activate(target_pk: int, *, actor: Any, reason: str, administrative: bool = False,
              approved_by: Any = None, expect_scheduled: bool = False) -> PolicyVersion | None:
    """Activate a version and retire the active one; the caller holds the transaction.

    Returns None when ``expect_scheduled`` and the version is no longer waiting (someone else
    activated or it was rejected meanwhile).
    """
    previous = _lock_active_rows(target_pk)
    target = PolicyVersion.objects.select_for_update().get(pk=target_pk)
    if expect_scheduled and not target.is_scheduled:
        return None
    if target.status in (VersionStatus.ACTIVE, VersionStatus.RETIRED):
        raise PolicyStateError(f"v{target.number} is already {target.status}.", status=target.status)
    now = timezone.now()
    for old in previous:
        old.status = VersionStatus.RETIRED
        old.retired_at = now
        _save(old, actor=actor, reason=f"retired: v{target.number} activated")
    if approved_by is not None:
        target.approved_by, target.approved_at = approved_by, now
    target.status = VersionStatus.ACTIVE
    target.activated_at = now
    target.administrative_activation = administrative
    _save(target, actor=actor, reason=reason)
    return target


def _on_approved(approval: ApprovalRequest, subject: Any) -> None:
    version = PolicyVersion.objects.get(pk=subject.pk)
    if version.status != VersionStatus.PENDING_APPROVAL:
        raise PolicyStateError(f"v{version.number} is {version.status}, not waiting for approval.", status=version.status)
    actor = approval.decided_by
    reason = f"approved by {actor.get_username()}" + (f": {approval.decision_reason}" if approval.decision_reason else "")
    if version.effective_from <= timezone.now():
        _activate(version.pk, actor=actor, reason=f"{reason}; activated", approved_by=actor)
        approval.run = _start_reallocation(actor)
    else:
        locked = PolicyVersion.objects.select_for_update().get(pk=version.pk)
        locked.approved_by, locked.approved_at = actor, timezone.now()
        _save(locked, actor=actor, reason=f"{reason}; scheduled for {locked.effective_from:%Y-%m-%d %H:%M}")


def _on_rejected(approval: ApprovalRequest, subject: Any) -> None:
    locked = PolicyVersion.objects.select_for_update().get(pk=subject.pk)
    locked.status = VersionStatus.DRAFT
    locked.approved_by, locked.approved_at = None, None
    verb = "withdrawn" if approval.status == "cancelled" else "rejected"  # withdrawn by its requester
    _save(locked, actor=approval.decided_by, reason=f"{verb}: {approval.decision_reason}")


def authors(version: PolicyVersion) -> set[int]:
    """Who wrote the version (four-eyes: none of them may decide its approval): its creator,
    whoever changed its details, and whoever added, changed or deleted a rule, protection or
    quota of it (from their history)."""
    written = {version.created_by_id} if version.created_by_id else set()
    written |= set(
        version.history.filter(history_change_reason=DETAILS_CHANGED, history_user__isnull=False)
        .values_list("history_user_id", flat=True)
    )
    for model in SECTIONS.values():
        written |= set(
            model.history.filter(version_id=version.pk, history_user__isnull=False)
            .values_list("history_user_id", flat=True)
            .distinct()
        )
    return written


def versions_authored_by(user: Any) -> QuerySet:
    """The ids of the versions ``user`` wrote, by the rule of ``authors`` (creator, details
    changed, a rule, protection or quota added, changed or deleted), as one subquery: lists of
    approvals exclude or mark them without asking ``authors`` once per row."""
    user_id = getattr(user, "pk", None)
    if user_id is None:
        return PolicyVersion.objects.none().values("pk")
    written = Q(created_by_id=user_id) | Q(
        pk__in=PolicyVersion.history.filter(history_change_reason=DETAILS_CHANGED, history_user_id=user_id).values("id")
    )
    for model in SECTIONS.values():
        written |= Q(pk__in=model.history.filter(history_user_id=user_id).values("version_id"))
    return PolicyVersion.objects.filter(written).values("pk")


def _approval_authors(approval: ApprovalRequest) -> set[int]:
    version = PolicyVersion.objects.filter(pk=approval.subject_id).first()
    return authors(version) if version is not None else set()


def register_approval_handlers() -> None:
    """Called from PoliciesConfig.ready: policy activation approvals run the handlers above;
    the version's authors may not decide them."""
    approvals.register(
        POLICY_ACTIVATION, on_approved=_on_approved, on_rejected=_on_rejected, authors=_approval_authors,
        authored_by=versions_authored_by,
    )


def activate_due_versions(*, now: dt.datetime | None = None) -> list[PolicyVersion]:
    """Activate approved versions whose effective date has come, oldest effective date first
    (each retires the one before, so the latest due version ends active)."""
    now = now or timezone.now()
    due = list(
        PolicyVersion.objects.filter(
            status=VersionStatus.PENDING_APPROVAL, approved_at__isnull=False, effective_from__lte=now
        ).order_by("effective_from", "number").values_list("pk", flat=True)
    )
    activated = []
    for pk in due:
        with transaction.atomic():
            version = _activate(pk, actor=None, reason="activated at its effective date", expect_scheduled=True)
            if version is not None:
                _start_reallocation(None)
        if version is not None:
            activated.append(version)
    return activated


def _start_reallocation(actor: Any) -> Any:
    """Queue the full run a newly active version needs (trigger ``policy``), executed once the
    activation commits, so it reads the new version and never lands on whoever acts next.
    Returns the run (None when allocation runs are not installed)."""
    try:
        from allocation.services import start_policy_run
    except ImportError:
        return None
    return start_policy_run(actor=actor)


def rollback(version: PolicyVersion, *, actor: Any, note: str = "") -> PolicyVersion:
    """Start a rollback to an earlier (retired) version: a draft copy with
    ``based_on`` set, which goes through the same submit and approval."""
    _require_role(actor, roles.POLICY_ADMIN, "roll back a policy")
    if version.status != VersionStatus.RETIRED:
        raise PolicyStateError("Only an earlier (retired) version can be rolled back to.", status=version.status)
    with transaction.atomic():
        document = export_document(version)
        return _create_from_document(
            document, actor=actor, reason=f"rollback copy of v{version.number}", based_on=version,
            effective_from=timezone.now(), note=note or f"Rollback to v{version.number}",
        )


def import_document(doc: Any, *, actor: Any, activate: bool = False) -> PolicyVersion:
    """Create a draft from a policy document (validated; nothing saved on error).

    The whole document is validated before the first row is written (schema.validate_document
    bounds dates, text and numbers to what the columns hold), and the rows are written in one
    transaction, so a refused import leaves no draft behind. ``activate=True`` makes it active
    at once without approval, recorded as an administrative activation; allowed from the
    command line (actor None) and for superusers only.
    """
    _require_role(actor, roles.POLICY_ADMIN, "import a policy")
    if activate and actor is not None and not actor.is_superuser:
        raise PolicyPermissionError("Only a superuser can activate on import.")
    _validate(doc)
    with transaction.atomic():
        version = _create_from_document(doc, actor=actor, reason="imported")
        if activate:
            version = _activate(version.pk, actor=actor, reason="administrative activation on import", administrative=True)  # type: ignore[assignment]
        return version
