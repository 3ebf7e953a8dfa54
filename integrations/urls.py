from django.urls import path

from integrations import views

app_name = "integrations"

urlpatterns = [
    path("events/", views.event_list, name="event_list"),
    path("events/<int:pk>/", views.event_detail, name="event_detail"),
    path("events/<int:pk>/retry/", views.event_retry, name="event_retry"),
    path("outbox/", views.outbox_list, name="outbox_list"),
    path("outbox/<int:pk>/replay/", views.outbox_replay, name="outbox_replay"),
]

# Who exported which list, when (integrations.export_views; finance).
from integrations import export_views  # noqa: E402

urlpatterns += [path("exports/", export_views.export_list, name="export_list")]
