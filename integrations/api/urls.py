from django.urls import path

from config import converters  # noqa: F401  (registers the <trailing_code:...> converter)
from integrations.api import views

urlpatterns = [
    path("events", views.EventCollection.as_view(), name="integrations_events"),
    path("webhooks/<trailing_code:source>", views.webhook, name="integrations_webhook"),
]
