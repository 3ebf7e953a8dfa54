from django.urls import path

from policies.api import views

urlpatterns = [
    path("policies/", views.PolicyVersionList.as_view(), name="policy-list"),
    path("policies/import", views.PolicyImportView.as_view(), name="policy-import"),
    path("policies/explain", views.PolicyExplainView.as_view(), name="policy-explain"),
    path("policies/<int:pk>/", views.PolicyVersionDetail.as_view(), name="policy-detail"),
    path("policies/<int:pk>/document", views.PolicyDocumentView.as_view(), name="policy-document"),
    path("policies/<int:pk>/history", views.PolicyHistoryView.as_view(), name="policy-history"),
    path("policies/<int:pk>/submit", views.PolicySubmitView.as_view(), name="policy-submit"),
    path("policies/<int:pk>/approve", views.PolicyApproveView.as_view(), name="policy-approve"),
    path("policies/<int:pk>/reject", views.PolicyRejectView.as_view(), name="policy-reject"),
    path("policies/<int:pk>/rollback", views.PolicyRollbackView.as_view(), name="policy-rollback"),
]
