from django.urls import path, re_path

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

# The Integrations screen: feed freshness, uploads, replays (integrations.feed_views).
from integrations import feed_views  # noqa: E402

urlpatterns += [
    path("", feed_views.overview, name="overview"),
    path("uploads/", feed_views.upload_create, name="upload_create"),
    path("uploads/<uuid:public_id>/", feed_views.upload_detail, name="upload_detail"),
    # An event type (a fixed name such as order.upserted), not a business code.
    re_path(r"^uploads/templates/(?P<event_type>[a-z_]{1,32}\.[a-z_]{1,32})\.csv$", feed_views.upload_template, name="upload_template"),
    path("replays/", feed_views.replay_plan, name="replay_plan"),
    path("replays/<uuid:public_id>/", feed_views.replay_detail, name="replay_detail"),
    path("replays/<uuid:public_id>/apply/", feed_views.replay_apply, name="replay_apply"),
    path("sources/<code:code>/cadence/", feed_views.source_cadence, name="source_cadence"),
]
