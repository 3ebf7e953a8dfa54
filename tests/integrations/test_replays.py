"""Replay of stored events (integrations.replays): a dry run shows what would change and changes
nothing; applying re-applies the events as their own audited batch; a changed selection is refused."""
from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from allocation.models import Order
from integrations import replays
from integrations.choices import BatchVia
from integrations.feeds_models import Replay, ReplayStatus
from integrations.models import EventBatch, Source
from integrations.services import register_source
from tests.integrations.conftest import ingest_and_apply, line, order_event

pytestmark = pytest.mark.django_db
START = dt.datetime(2026, 5, 31, 0, 0, tzinfo=dt.UTC)
END = dt.datetime(2026, 6, 1, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def drifted(master, integration):
    """SO-1 applied from erp, then changed behind the feed's back (quantity 10 -> 99)."""
    register_source(code="erp", integration_users=[integration])
    ingest_and_apply([order_event("o-1", "SO-1", [line(1, quantity="10")])])
    order_line = Order.objects.get(number="SO-1").lines.get(line=1)
    order_line.quantity = 99
    order_line.save()
    return Source.objects.get(code="erp")


def test_dry_run_shows_the_change_and_changes_nothing_then_apply_restores_it(drifted, integration):
    replay = replays.plan_replay(source=drifted, start=START, end=END, actor=integration)

    assert replay.status == ReplayStatus.PLANNED and replay.event_count == 6  # 5 master events + the order
    assert replay.preview["outcomes"] == {"applied": 6}
    assert {"entity": "order line SO-1/1", "field": "quantity", "before": "99.000", "after": "10"} in replay.preview["changes"]
    assert Order.objects.get(number="SO-1").lines.get(line=1).quantity == 99  # the dry run changed nothing

    applied = replays.apply_replay(replay.pk, actor=integration)

    assert applied.status == ReplayStatus.APPLIED and applied.outcome == {"applied": 6} and applied.applied_by == integration
    order_line = Order.objects.get(number="SO-1").lines.get(line=1)
    assert order_line.quantity == 10
    latest = order_line.history.latest()
    assert latest.history_user == integration and latest.history_change_reason.startswith(f"replay {str(replay.public_id)[:8]}: event erp:o-1")
    batch = EventBatch.objects.get(pk=applied.batch_id)
    assert (batch.via, batch.actor, batch.total) == (BatchVia.REPLAY, integration, 6)
    assert [h.history_change_reason for h in Replay.history.filter(id=replay.pk).order_by("history_id")] == [
        "planned (dry run)", f"applied as batch {batch.pk}",
    ]
    with pytest.raises(replays.ReplayRefused, match="applied already"):
        replays.apply_replay(replay.pk, actor=integration)


def test_a_selection_changed_since_the_dry_run_is_refused(drifted, integration):
    replay = replays.plan_replay(source=drifted, start=START, end=END, actor=integration)
    ingest_and_apply([order_event("o-2", "SO-2", [line(1)])])

    with pytest.raises(replays.ReplayRefused, match="changed since the dry run"):
        replays.apply_replay(replay.pk, actor=integration)
    assert Order.objects.get(number="SO-1").lines.get(line=1).quantity == 99


def test_an_empty_or_backwards_range_is_refused(drifted, integration):
    with pytest.raises(replays.ReplayRefused, match="no processed events") as empty:
        replays.plan_replay(source=drifted, start=END, end=END + dt.timedelta(days=1), actor=integration)
    assert empty.value.field == "start"
    with pytest.raises(replays.ReplayRefused, match="must be after the start"):
        replays.plan_replay(source=drifted, start=END, end=START, actor=integration)


def test_the_screen_plans_then_applies(drifted, integration, planner):
    client = Client()
    client.force_login(integration)
    response = client.post("/integrations/replays/", {"source": "erp", "start": "2026-05-31T00:00", "end": "2026-06-01T00:00"})
    replay = Replay.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/integrations/replays/{replay.public_id}/"
    page = client.get(response["Location"]).content.decode()
    assert "6 would be applied" in page and "order line SO-1/1" in page and "Apply this replay" in page

    planner_client = Client()
    planner_client.force_login(planner)
    assert planner_client.post(f"/integrations/replays/{replay.public_id}/apply/").status_code == 403
    assert "Apply this replay" not in planner_client.get(response["Location"]).content.decode()

    response = client.post(f"/integrations/replays/{replay.public_id}/apply/", follow=True)
    assert "Replay applied as batch" in response.content.decode()
    assert Order.objects.get(number="SO-1").lines.get(line=1).quantity == 10
