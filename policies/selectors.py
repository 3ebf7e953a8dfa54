"""Reads shared by views, API, tasks and the allocation engine's loader."""
from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from config import roles
from policies import schema
from policies.choices import VersionStatus
from policies.errors import NoActivePolicy
from policies.models import PolicyRule, PolicyVersion, Protection, Quota
from policies.resolution import CompiledPolicy, Dimensions, compile_document

READ_ROLES = roles.READERS
EDIT_ROLES = frozenset({roles.POLICY_ADMIN})
DECIDE_ROLES = frozenset({roles.APPROVER})


def can_read(user: Any) -> bool:
    return roles.has_role(user, READ_ROLES)


def can_edit(user: Any) -> bool:
    return roles.has_role(user, EDIT_ROLES)


def can_decide(user: Any) -> bool:
    return roles.has_role(user, DECIDE_ROLES)


def visible_versions(user: Any) -> QuerySet[PolicyVersion]:
    """Versions the user may read: every version for readers, none for others."""
    if not can_read(user):
        return PolicyVersion.objects.none()
    return PolicyVersion.objects.select_related("created_by", "submitted_by", "approved_by", "based_on")


def get_version_for(user: Any, pk: Any) -> PolicyVersion:
    """The version if it exists and the user may read it; 404 for missing and forbidden alike."""
    try:
        return visible_versions(user).get(pk=int(pk))
    except (PolicyVersion.DoesNotExist, ValueError, TypeError) as error:
        raise Http404("No such policy version.") from error


def format_datetime(value: dt.datetime) -> str:
    """ISO 8601 in UTC with a trailing Z, microseconds only when present."""
    value = value.astimezone(dt.UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def quantity_number(value: Decimal) -> int | float:
    """A stored quantity as the JSON number it was given as: whole numbers as integers."""
    return int(value) if value == value.to_integral_value() else float(value)


def canonical_scope(scope: dict[str, Any]) -> dict[str, Any]:
    """A scope with its dimensions in precedence order (PostgreSQL's jsonb does not keep key order)."""
    return {d: scope[d] for d in schema.DIMENSIONS if d in scope} | {k: v for k, v in scope.items() if k not in schema.DIMENSIONS}


def canonical_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings in catalogue order, weights in factor order, so exports are stable on every database."""
    ordered = {name: settings[name] for name in schema.SETTING_NAMES if name in settings}
    ordered |= {k: v for k, v in settings.items() if k not in ordered}
    weights = ordered.get("weights")
    if isinstance(weights, dict):
        ordered["weights"] = {f: weights[f] for f in schema.WEIGHT_FACTORS if f in weights} | {
            k: v for k, v in weights.items() if k not in schema.WEIGHT_FACTORS
        }
    return ordered


def export_document(version: PolicyVersion) -> dict[str, Any]:
    """The version as a policy document (policies-v1.md), in three queries.

    Keys exactly as the spec: name, effective_from, rules[{scope, settings}],
    protections[{sku, location, quantity, for}], quotas[{sku|item_class, for, period, quantity}].
    Object keys come out in a canonical order (dimensions by precedence, settings by catalogue).
    """
    rules = PolicyRule.objects.filter(version=version).order_by("position", "pk")
    protections = Protection.objects.filter(version=version).order_by("position", "pk")
    quotas = Quota.objects.filter(version=version).order_by("position", "pk")
    quota_docs = []
    for quota in quotas:
        target = {"sku": quota.sku} if quota.sku else {"item_class": quota.item_class}
        quota_docs.append({**target, "for": canonical_scope(quota.for_scope), "period": quota.period, "quantity": quantity_number(quota.quantity)})
    return {
        "name": version.name,
        "effective_from": format_datetime(version.effective_from),
        "rules": [{"scope": canonical_scope(rule.scope), "settings": canonical_settings(rule.settings)} for rule in rules],
        "protections": [
            {"sku": p.sku, "location": p.location, "quantity": quantity_number(p.quantity), "for": canonical_scope(p.for_scope)}
            for p in protections
        ],
        "quotas": quota_docs,
    }


_cache_lock = threading.Lock()
_compiled_cache: dict[tuple[int, dt.datetime], CompiledPolicy] = {}


def active_version() -> PolicyVersion:
    version = PolicyVersion.objects.filter(status=VersionStatus.ACTIVE).first()
    if version is None:
        raise NoActivePolicy("No policy version is active.")
    return version


def compiled_version(version: PolicyVersion) -> CompiledPolicy:
    """The compiled policy of a version, cached per (version id, updated_at)."""
    key = (version.pk, version.updated_at)
    with _cache_lock:
        cached = _compiled_cache.get(key)
    if cached is not None:
        return cached
    compiled = compile_document(export_document(version), version_id=version.pk, version_number=version.number)
    with _cache_lock:
        # Keep only a handful: the active version plus drafts being simulated or explained.
        if len(_compiled_cache) > 16:
            _compiled_cache.clear()
        _compiled_cache[key] = compiled
    return compiled


def active_compiled_policy() -> tuple[PolicyVersion, CompiledPolicy]:
    """The active version and its compiled policy (one query when the cache is warm)."""
    version = active_version()
    return version, compiled_version(version)


def dimensions_for_line(line: Any) -> Dimensions:
    """A line's scope dimensions: customer code/segment/tier, channel, order kind, item sku/class,
    location (the line's ship_from, else the customer's home location) and region."""
    order = line.order
    customer = order.customer
    location = line.ship_from if line.ship_from_id else customer.home_location
    return Dimensions(
        customer=customer.code,
        customer_segment=customer.segment,
        customer_tier=customer.tier,
        channel=order.channel,
        order_kind=order.kind,
        item=line.item.sku,
        item_class=line.item.item_class,
        location=location.code if location is not None else None,
        region=customer.region,
    )


def line_dimensions(order_number: str, line_number: Any) -> Dimensions | None:
    """Dimensions of order line ``order_number``/``line_number``, or None when there is no such line."""
    from allocation.models import OrderLine

    try:
        number = int(line_number)
    except (TypeError, ValueError):
        return None
    line = (
        OrderLine.objects.select_related("order__customer__home_location", "item", "ship_from")
        .filter(order__number=order_number, line=number)
        .first()
    )
    return dimensions_for_line(line) if line is not None else None


def rules_by_specificity(version: PolicyVersion) -> list[dict[str, Any]]:
    """The version's rules grouped by the number of dimensions they name, most specific first."""
    groups: dict[int, list[PolicyRule]] = {}
    for rule in PolicyRule.objects.filter(version=version).order_by("position", "pk"):
        groups.setdefault(len(rule.scope), []).append(rule)
    return [
        {"count": count, "label": "Global" if count == 0 else f"{count} dimension{'s' if count > 1 else ''}", "rules": groups[count]}
        for count in sorted(groups, reverse=True)
    ]


HISTORY_FIELDS = {
    "version": ("name", "status", "effective_from", "note", "approved_at", "activated_at", "retired_at", "administrative_activation"),
    "rule": ("position", "scope", "settings"),
    "protection": ("position", "sku", "location", "quantity", "for_scope"),
    "quota": ("position", "sku", "item_class", "for_scope", "period", "quantity"),
}


def version_history(version: PolicyVersion) -> list[dict[str, Any]]:
    """Every recorded change to the version and its rules, protections and quotas, newest first.

    Each entry: when, who, what (kind, record, the fields that changed old -> new), why.
    Four queries; the field changes are computed from consecutive history records.
    """
    sources = (
        ("version", PolicyVersion.history.filter(id=version.pk)),
        ("rule", PolicyRule.history.filter(version_id=version.pk)),
        ("protection", Protection.history.filter(version_id=version.pk)),
        ("quota", Quota.history.filter(version_id=version.pk)),
    )
    entries: list[dict[str, Any]] = []
    for kind, queryset in sources:
        previous: dict[int, Any] = {}
        for record in queryset.select_related("history_user").order_by("history_date", "history_id"):
            before = previous.get(record.id)
            changes = []
            for name in HISTORY_FIELDS[kind]:
                new = getattr(record, name)
                old = getattr(before, name) if before is not None else None
                if record.history_type == "-":
                    continue
                if before is None or old != new:
                    changes.append({"field": name, "old": old if before is not None else None, "new": new})
            label = kind if kind == "version" else f"{kind} #{record.id} at {record.position}"
            entries.append(
                {
                    "when": record.history_date,
                    "who": record.history_user.get_username() if record.history_user else "system",
                    "action": {"+": "created", "~": "changed", "-": "deleted"}[record.history_type],
                    "kind": kind,
                    "label": label,
                    "changes": changes,
                    "reason": record.history_change_reason or "",
                }
            )
            previous[record.id] = record
    entries.sort(key=lambda e: e["when"], reverse=True)
    return entries


def _scope_key(scope: dict[str, Any]) -> str:
    return ", ".join(f"{k}={scope[k]}" for k in sorted(scope)) or "(global)"


def _keyed(items: list[dict[str, Any]], key) -> dict[tuple[str, int], dict[str, Any]]:
    seen: dict[str, int] = {}
    keyed = {}
    for item in items:
        k = key(item)
        seen[k] = seen.get(k, 0) + 1
        keyed[(k, seen[k])] = item
    return keyed


def diff_documents(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What changed from ``old`` to ``new``: rules matched by scope, protections by sku,
    location and for, quotas by target, for and period; each as added, removed or changed."""
    keys = {
        "rules": lambda r: _scope_key(r["scope"]),
        "protections": lambda p: f"{p['sku']} @ {p['location']} for {_scope_key(p['for'])}",
        "quotas": lambda q: f"{q.get('sku') or q.get('item_class')} per {q['period']} for {_scope_key(q['for'])}",
    }
    result: dict[str, Any] = {"name": None, "effective_from": None}
    for field_name in ("name", "effective_from"):
        if old.get(field_name) != new.get(field_name):
            result[field_name] = {"old": old.get(field_name), "new": new.get(field_name)}
    for section, key in keys.items():
        before = _keyed(old.get(section, []), key)
        after = _keyed(new.get(section, []), key)
        added = [{"key": k[0], "item": after[k]} for k in after if k not in before]
        removed = [{"key": k[0], "item": before[k]} for k in before if k not in after]
        changed = []
        for k in after:
            if k in before and before[k] != after[k]:
                if section == "rules":
                    old_settings, new_settings = before[k]["settings"], after[k]["settings"]
                    names = sorted(set(old_settings) | set(new_settings))
                    details = [
                        {"field": n, "old": old_settings.get(n), "new": new_settings.get(n)}
                        for n in names
                        if old_settings.get(n) != new_settings.get(n) or (n in old_settings) != (n in new_settings)
                    ]
                else:
                    names = sorted(set(before[k]) | set(after[k]))
                    details = [{"field": n, "old": before[k].get(n), "new": after[k].get(n)} for n in names if before[k].get(n) != after[k].get(n)]
                changed.append({"key": k[0], "old": before[k], "new": after[k], "details": details})
        result[section] = {"added": added, "removed": removed, "changed": changed}
    result["unchanged"] = (
        result["name"] is None
        and result["effective_from"] is None
        and all(not any(result[s].values()) for s in keys)
    )
    return result
