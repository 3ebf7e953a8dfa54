"""Admin: the user form records every role (group) change and (de)activation in the audit trail."""
from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from allocation.audit import roles as role_changes
from allocation.models import RoleChange

User = get_user_model()


class AuditedUserAdmin(UserAdmin):
    """Django's user admin, writing a ``RoleChange`` for each role granted or revoked and for
    each activation or deactivation, in the same transaction as the change."""

    def save_model(self, request, obj, form, change) -> None:
        was_active = User.objects.filter(pk=obj.pk).values_list("is_active", flat=True).first() if change else None
        obj._roles_before = list(obj.groups.values_list("name", flat=True)) if change else []
        super().save_model(request, obj, form, change)
        if not change:
            RoleChange.objects.create(user=obj, action=RoleChange.Action.CREATED, actor=request.user, reason="admin")
        elif was_active is not None and was_active != obj.is_active:
            action = RoleChange.Action.ACTIVATED if obj.is_active else RoleChange.Action.DEACTIVATED
            RoleChange.objects.create(user=obj, action=action, actor=request.user, reason="admin")

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        role_changes.record_change(form.instance, getattr(form.instance, "_roles_before", []), actor=request.user, reason="admin")


@admin.register(RoleChange)
class RoleChangeAdmin(admin.ModelAdmin):
    """Role changes, read-only: the record of who gave whom which role."""

    list_display = ("created_at", "user", "action", "role", "actor", "reason")
    list_filter = ("action", "role")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, AuditedUserAdmin)
