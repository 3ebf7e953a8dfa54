"""Every app's API under /api/v1/. Each app lists its own routes in <app>/api/urls.py."""
from django.urls import include, path

urlpatterns = [
    path("", include("allocation.api.urls")),
    path("", include("policies.api.urls")),
    path("", include("exceptions.api.urls")),
    path("", include("integrations.api.urls")),
]
