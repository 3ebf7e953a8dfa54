from django.contrib import admin

from integrations.export_models import ExportRecord


@admin.register(ExportRecord)
class ExportRecordAdmin(admin.ModelAdmin):
    """Export records, read-only: nobody edits or deletes who exported what."""

    list_display = ("started_at", "username", "screen", "format", "via", "row_count", "status")
    list_filter = ("screen", "format", "via", "status")
    search_fields = ("username", "screen", "path")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
