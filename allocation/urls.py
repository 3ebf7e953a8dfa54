from django.urls import path

from allocation import views

app_name = "allocation"

urlpatterns: list = [
    path("orders/", views.order_list, name="order_list"),
    path("orders/<str:number>/", views.order_detail, name="order_detail"),
    path("inventory/", views.inventory_list, name="inventory_list"),
    path("supply/", views.supply_list, name="supply_list"),
]
