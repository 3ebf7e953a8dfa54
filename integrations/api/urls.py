from django.urls import path

from integrations.api import views

urlpatterns = [
    path("events", views.EventCollection.as_view(), name="integrations_events"),
    path("webhooks/<str:source>", views.webhook, name="integrations_webhook"),
]
