from django.urls import path, re_path

from exceptions.api import notification_views, views
from exceptions.choices import ExceptionAction

ACTIONS = "|".join(a.value for a in ExceptionAction)

urlpatterns: list = [
    path("exceptions", views.ExceptionList.as_view(), name="api_exceptions"),
    path("exceptions/", views.ExceptionList.as_view()),
    re_path(r"^exceptions/bulk/(?P<action>claim|assign|dismiss)$", views.BulkActionView.as_view(), name="api_exception_bulk"),
    path("exceptions/<int:pk>", views.ExceptionDetail.as_view(), name="api_exception_detail"),
    path("exceptions/<int:pk>/", views.ExceptionDetail.as_view()),
    re_path(rf"^exceptions/(?P<pk>[0-9]+)/(?P<action>{ACTIONS})$", views.ExceptionActionView.as_view(), name="api_exception_action"),
    # Cases: the same records as exceptions (a case is the unit of work), shown with their reasons.
    path("cases", views.CaseList.as_view(), name="api_cases"),
    path("cases/", views.CaseList.as_view()),
    re_path(r"^cases/bulk/(?P<action>claim|assign|dismiss)$", views.BulkActionView.as_view(), name="api_case_bulk"),
    path("cases/<int:pk>", views.CaseDetail.as_view(), name="api_case_detail"),
    path("cases/<int:pk>/", views.CaseDetail.as_view()),
    re_path(rf"^cases/(?P<pk>[0-9]+)/(?P<action>{ACTIONS})$", views.ExceptionActionView.as_view(), name="api_case_action"),
    path("notifications", notification_views.NotificationList.as_view(), name="api_notifications"),
    path("notifications/", notification_views.NotificationList.as_view()),
    path("notifications/read", notification_views.NotificationRead.as_view(), name="api_notifications_read"),
    path("approvals", views.ApprovalList.as_view(), name="api_approvals"),
    path("approvals/", views.ApprovalList.as_view()),
    path("approvals/<int:pk>", views.ApprovalDetail.as_view(), name="api_approval_detail"),
    re_path(r"^approvals/(?P<pk>[0-9]+)/(?P<decision>approve|reject)$", views.ApprovalDecision.as_view(), name="api_approval_decision"),
]
