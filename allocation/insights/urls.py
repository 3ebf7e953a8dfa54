from django.urls import path

from allocation.insights import views

app_name = "insights"

urlpatterns = [
    path("models/", views.models_screen, name="models"),
    path("recommendations/", views.recommendation_list, name="recommendations"),
    path("recommendations/<int:pk>/", views.recommendation_detail, name="recommendation_detail"),
    path("recommendations/<int:pk>/request/", views.recommendation_request, name="recommendation_request"),
]
