from django.urls import path, re_path

from config import converters  # noqa: F401  (registers the <code:...> converter)
from exceptions import notification_views, queue_views, views
from exceptions.choices import ExceptionAction

app_name = "exceptions"

ACTIONS = "|".join(a.value for a in ExceptionAction)

urlpatterns: list = [
    path("", views.queue_list, name="queue_list"),
    path("queues/<slug:code>/", views.queue_detail, name="queue_detail"),
    path("queues/<slug:code>/bulk/", views.bulk_action, name="bulk_action"),
    path("queues/<slug:code>/views/", views.saved_view_create, name="saved_view_create"),
    path("queues/<slug:code>/cases/<int:pk>/", queue_views.case_panel, name="case_panel"),
    re_path(rf"^queues/(?P<code>[-a-zA-Z0-9_]+)/cases/(?P<pk>[0-9]+)/(?P<action>{ACTIONS})/$", queue_views.panel_action, name="panel_action"),
    path("views/<int:pk>/delete/", views.saved_view_delete, name="saved_view_delete"),
    path("<int:pk>/", views.exception_detail, name="exception_detail"),
    path("<int:pk>/preview/", views.override_preview, name="override_preview"),
    re_path(rf"^(?P<pk>[0-9]+)/(?P<action>{ACTIONS})/$", views.exception_action, name="exception_action"),
    path("approvals/", views.approval_inbox, name="approval_inbox"),
    path("approvals/<int:pk>/decide/", views.approval_decide, name="approval_decide"),
    path("workbench/<code:sku>/", views.shortage_workbench, name="shortage_workbench"),
    path("notifications/", notification_views.notification_list, name="notifications"),
    path("notifications/bell/", notification_views.bell, name="notification_bell"),
    path("notifications/read/", notification_views.notification_read_all, name="notification_read_all"),
    path("notifications/<int:pk>/", notification_views.notification_open, name="notification_open"),
    path("preferences/date-format/", notification_views.date_format_save, name="date_format_save"),
]
