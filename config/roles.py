"""Roles are Django groups. This module is the one place that names them and checks them.

Views use ``role_required``; API views use ``RolePermission`` with an explicit map of
HTTP method to the roles allowed. Superusers hold every role.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

PLANNER = "planner"
CUSTOMER_SERVICE = "customer_service"
POLICY_ADMIN = "policy_admin"
APPROVER = "approver"
FINANCE = "finance"
INTEGRATION = "integration"

ALL_ROLES = (PLANNER, CUSTOMER_SERVICE, POLICY_ADMIN, APPROVER, FINANCE, INTEGRATION)
# People who read the operational screens (orders, inventory, supply, runs).
READERS = frozenset({PLANNER, CUSTOMER_SERVICE, POLICY_ADMIN, APPROVER, FINANCE})


def roles_of(user: Any) -> frozenset[str]:
    """The role names a user holds (cached on the user object for the request)."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_allot_roles", None)
    if cached is None:
        if user.is_superuser:
            cached = frozenset(ALL_ROLES)
        else:
            cached = frozenset(user.groups.values_list("name", flat=True))
        user._allot_roles = cached
    return cached


def has_role(user: Any, roles: Iterable[str]) -> bool:
    return bool(roles_of(user) & frozenset(roles))


def role_required(*roles: str) -> Callable:
    """View decorator: login required, then one of ``roles``; otherwise 403."""
    allowed = frozenset(roles)

    def decorator(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, allowed):
                raise PermissionDenied("Your role does not allow this.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class RolePermission(BasePermission):
    """DRF permission driven by ``view.required_roles``: {"GET": {...}, "POST": {...}}.

    A method missing from the map is denied. ``"*"`` applies to every method not listed.
    """

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        mapping: dict[str, Iterable[str]] = getattr(view, "required_roles", {})
        method = "GET" if request.method in {"HEAD", "OPTIONS"} else request.method
        allowed = mapping.get(method, mapping.get("*"))
        if allowed is None:
            return False
        return has_role(request.user, allowed)
