from django.urls import path

from allocation import views
from config import converters  # noqa: F401  (registers the <code:...> converter)

app_name = "allocation"

urlpatterns: list = [
    path("orders/", views.order_list, name="order_list"),
    path("orders/<code:number>/", views.order_detail, name="order_detail"),
    path("inventory/", views.inventory_list, name="inventory_list"),
    path("supply/", views.supply_list, name="supply_list"),
]

# Run screens (allocation.run_views): runs, a line's Why page, shortage board, simulations.
from allocation import run_views, status_views  # noqa: E402

urlpatterns += [
    path("runs/", run_views.run_list, name="run_list"),
    path("runs/start/", run_views.run_start, name="run_start"),
    path("runs/<int:pk>/", run_views.run_detail, name="run_detail"),
    path("runs/<int:pk>/status/", status_views.run_status, name="run_status"),
    path("orders/<code:number>/lines/<int:line>/why/", run_views.line_why, name="line_why"),
    path("items/<code:sku>/shortage/", run_views.shortage_board, name="shortage_board"),
    path("policies/versions/<int:pk>/simulate/", run_views.simulate_start, name="simulate_start"),
    path("simulations/<int:pk>/", run_views.simulation_status, name="simulation_status"),
]

# Release to the warehouse in waves, and recommendations to accept (allocation.release_views).
from allocation import release_views  # noqa: E402

urlpatterns += [
    path("release/", release_views.release_list, name="release_list"),
    path("release/recommendations/", release_views.recommendation_queue, name="recommendation_queue"),
    path("release/recommendations/accept/", release_views.recommendation_accept, name="recommendation_accept"),
    path("release/waves/<int:pk>/", release_views.wave_detail, name="wave_detail"),
    path("release/<code:code>/", release_views.release_location, name="release_location"),
    path("release/<code:code>/run/", release_views.release_run, name="release_run"),
]
