from django.urls import path
from rest_framework.routers import SimpleRouter

from allocation.api import views
from config import converters  # noqa: F401  (registers the <code:...> converter)

# Read endpoints: items, locations, customers, orders, inventory, supply (by business code, through
# the <code:...> converter each viewset names in lookup_value_converter).
router = SimpleRouter(trailing_slash=False, use_regex_path=False)
router.register("items", views.ItemViewSet, basename="api-item")
router.register("locations", views.LocationViewSet, basename="api-location")
router.register("customers", views.CustomerViewSet, basename="api-customer")
router.register("orders", views.OrderViewSet, basename="api-order")
router.register("inventory", views.InventoryViewSet, basename="api-inventory")
router.register("supply", views.SupplyViewSet, basename="api-supply")

urlpatterns: list = [*router.urls]

# Allocation runs, allocations and line decisions (allocation/api/runs.py).
from allocation.api import runs as _runs  # noqa: E402

urlpatterns += [
    path("allocations", _runs.AllocationList.as_view(), name="api_allocations"),
    path("lines/<code:order>/<int:line>/decision", _runs.LineDecision.as_view(), name="api_line_decision"),
    path("runs", _runs.RunList.as_view(), name="api_runs"),
    path("runs/<int:run_id>", _runs.RunDetail.as_view(), name="api_run_detail"),
]

# Release waves and recommendations (allocation/api/waves.py).
from allocation.api import waves as _waves  # noqa: E402

urlpatterns += [
    path("waves", _waves.WaveList.as_view(), name="api_waves"),
    path("waves/<int:wave_id>", _waves.WaveDetail.as_view(), name="api_wave_detail"),
    path("recommendations/accept", _waves.AcceptRecommendations.as_view(), name="api_recommendations_accept"),
]
