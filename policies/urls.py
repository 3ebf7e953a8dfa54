from django.urls import path

from policies import scope_views, views

app_name = "policies"

urlpatterns = [
    path("", views.policy_list, name="policy_list"),
    path("new/", views.draft_create, name="draft_create"),
    path("import/", views.policy_import, name="import"),
    path("diff/", views.version_diff, name="version_diff"),
    path("explain/", views.explain, name="explain"),
    path("scope-values/<slug:dimension>/", scope_views.scope_value_options, name="scope_values"),
    path("<int:pk>/", views.version_detail, name="version_detail"),
    path("<int:pk>/document.json", views.version_document, name="version_document"),
    path("<int:pk>/details/", views.version_edit, name="version_edit"),
    path("<int:pk>/delete/", views.draft_delete, name="draft_delete"),
    path("<int:pk>/submit/", views.version_submit, name="version_submit"),
    path("<int:pk>/approve/", views.version_decide, {"decision": "approve"}, name="version_approve"),
    path("<int:pk>/reject/", views.version_decide, {"decision": "reject"}, name="version_reject"),
    path("<int:pk>/rollback/", views.version_rollback, name="version_rollback"),
    path("<int:pk>/<str:section>/new/", views.entry_form, name="entry_new"),
    path("<int:pk>/<str:section>/<int:entry_pk>/edit/", views.entry_form, name="entry_edit"),
    path("<int:pk>/<str:section>/<int:entry_pk>/delete/", views.entry_delete, name="entry_delete"),
]
