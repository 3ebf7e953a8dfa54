from django.urls import path

from allocation.audit import views
from config import converters  # noqa: F401  (registers the <code:...> converter)

app_name = "audit"

urlpatterns = [
    path("", views.audit_trail, name="trail"),
    path("credit-holds/", views.credit_holds, name="credit_holds"),
    path("approvals/", views.approvals, name="approvals"),
    path("approvals/<int:pk>/", views.approval_detail, name="approval_detail"),
    path("approvals/<int:pk>/simulate/", views.approval_simulate, name="approval_simulate"),
    path("approvals/<int:pk>/withdraw/", views.approval_withdraw, name="approval_withdraw"),
    path("policy-changes/", views.policy_changes, name="policy_changes"),
    path("orders/<code:number>/timeline/", views.order_timeline, name="order_timeline"),
]
