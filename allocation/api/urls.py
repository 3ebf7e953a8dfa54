from django.urls import path
from rest_framework.routers import SimpleRouter

from allocation.api import views

# Read endpoints: items, locations, customers, orders, inventory, supply (by business code).
router = SimpleRouter(trailing_slash=False)
router.register("items", views.ItemViewSet, basename="api-item")
router.register("locations", views.LocationViewSet, basename="api-location")
router.register("customers", views.CustomerViewSet, basename="api-customer")
router.register("orders", views.OrderViewSet, basename="api-order")
router.register("inventory", views.InventoryViewSet, basename="api-inventory")
router.register("supply", views.SupplyViewSet, basename="api-supply")

urlpatterns: list = [*router.urls]
