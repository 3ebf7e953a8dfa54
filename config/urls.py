from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import health, metrics, views

urlpatterns = [
    path("", views.home, name="home"),
    # Also answered by config.health.HealthCheckMiddleware before host checks; named for reverse().
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    path("api/v1/", include("config.api_urls")),
    path("", include("allocation.urls")),
    path("policies/", include("policies.urls")),
    path("exceptions/", include("exceptions.urls")),
    path("integrations/", include("integrations.urls")),
    path("audit/", include("allocation.audit.urls")),
]
