"""The one write path for users' roles: grant, revoke, set, create, (de)activate, each recorded.

Roles are Django groups (``config.roles``). Every change writes a ``RoleChange`` in the same
transaction (who, what, before and after, why), which the audit trail shows and the hash
chain seals; the admin's user form and the demo users go through these functions.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from allocation.models import RoleChange
from config import roles


def _roles(user: Any) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


def _forget_cached_roles(user: Any) -> None:
    if hasattr(user, "_allot_roles"):
        del user._allot_roles


def set_roles(user: Any, wanted: Iterable[str], *, actor: Any, reason: str = "") -> list[RoleChange]:
    """Give ``user`` exactly the roles ``wanted``: one ``RoleChange`` per role granted or revoked."""
    wanted_set = {name for name in wanted if name}
    unknown = wanted_set - set(roles.ALL_ROLES)
    if unknown:
        raise ValueError(f"Unknown role: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        before = _roles(user)
        changes = []
        after = sorted(wanted_set)
        for name in sorted(wanted_set - set(before)):
            user.groups.add(Group.objects.get_or_create(name=name)[0])
            changes.append(RoleChange(user=user, action=RoleChange.Action.GRANTED, role=name, before=before, after=after,
                                      reason=reason[:300], actor=actor))
        for name in sorted(set(before) - wanted_set):
            user.groups.remove(Group.objects.get(name=name))
            changes.append(RoleChange(user=user, action=RoleChange.Action.REVOKED, role=name, before=before, after=after,
                                      reason=reason[:300], actor=actor))
        RoleChange.objects.bulk_create(changes)
        _forget_cached_roles(user)
        return changes


def grant_role(user: Any, role: str, *, actor: Any, reason: str = "") -> list[RoleChange]:
    return set_roles(user, {*_roles(user), role}, actor=actor, reason=reason)


def revoke_role(user: Any, role: str, *, actor: Any, reason: str = "") -> list[RoleChange]:
    return set_roles(user, set(_roles(user)) - {role}, actor=actor, reason=reason)


def create_user(username: str, *, password: str | None, role_names: Iterable[str] = (), actor: Any, reason: str = "") -> Any:
    """Create a user with roles; recorded as ``created`` plus one ``granted`` per role."""
    with transaction.atomic():
        user = get_user_model().objects.create_user(username=username, password=password)
        RoleChange.objects.create(user=user, action=RoleChange.Action.CREATED, reason=reason[:300], actor=actor)
        set_roles(user, role_names, actor=actor, reason=reason)
        return user


def set_active(user: Any, active: bool, *, actor: Any, reason: str = "") -> RoleChange | None:
    """Activate or deactivate a user (recorded); nothing when it is already so."""
    if user.is_active == active:
        return None
    with transaction.atomic():
        user.is_active = active
        user.save(update_fields=["is_active"])
        action = RoleChange.Action.ACTIVATED if active else RoleChange.Action.DEACTIVATED
        current = _roles(user)
        return RoleChange.objects.create(user=user, action=action, before=current, after=current, reason=reason[:300], actor=actor)


def record_change(user: Any, before: Iterable[str], *, actor: Any, reason: str = "") -> list[RoleChange]:
    """Record what changed in ``user``'s roles since ``before`` (for writers that set the groups
    themselves, such as the admin's user form, in their transaction)."""
    before_list = sorted(before)
    after = _roles(user)
    changes = [
        RoleChange(user=user, action=RoleChange.Action.GRANTED, role=name, before=before_list, after=after,
                   reason=reason[:300], actor=actor)
        for name in sorted(set(after) - set(before_list))
    ] + [
        RoleChange(user=user, action=RoleChange.Action.REVOKED, role=name, before=before_list, after=after,
                   reason=reason[:300], actor=actor)
        for name in sorted(set(before_list) - set(after))
    ]
    RoleChange.objects.bulk_create(changes)
    _forget_cached_roles(user)
    return changes
