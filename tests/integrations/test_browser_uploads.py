"""In Chromium: the Integrations screen (feed freshness with sparklines; a stale source with its
case), and a CSV upload processed on the background thread while the upload page shows its
progress by itself, then the rejected rows with their row numbers."""
from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

import pytest
from django.utils import timezone

from allocation.models import Location
from config import inprocess
from integrations import freshness
from integrations.feeds_models import EventUpload, SourceActivity
from integrations.models import Source
from integrations.services import register_source

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ.get("ALLOT_SCREENSHOTS", Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"))


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def feeds(integration):
    """erp (fresh, busy), wms (silent for 2 h: stale, with its case), edi-acme (registered, nothing yet)."""
    now = timezone.now()
    erp = register_source(code="erp", name="ERP (SAP)", integration_users=[integration])
    wms = register_source(code="wms", name="WMS East", integration_users=[integration])
    register_source(code="edi-acme", name="EDI ACME")
    Source.objects.filter(pk=erp.pk).update(last_event_at=now - dt.timedelta(minutes=3))
    Source.objects.filter(pk=wms.pk).update(last_event_at=now - dt.timedelta(hours=2), stale_feed_minutes=30)
    hour = freshness.hour_of(now)
    SourceActivity.objects.bulk_create(
        [SourceActivity(source=erp, hour=hour - dt.timedelta(hours=h), events=40 + (h * 37) % 90) for h in range(24)]
        + [SourceActivity(source=wms, hour=hour - dt.timedelta(hours=h), events=20 + (h * 13) % 30) for h in range(2, 24)]
    )
    freshness.check_freshness(now=now)
    return erp


def log_in(page, live_server, user) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", f"pw-{user.username}")
    page.click("button[type=submit]")
    page.wait_for_load_state()


def locations_csv(rows: int, bad_rows: set[int]) -> bytes:
    lines = ["code,name,region,kind"]
    for index in range(2, rows + 2):  # file line numbers: the header is line 1
        lines.append(f"LOC/{index},Location {index},east,{'castle' if index in bad_rows else 'hub'}")
    return ("\n".join(lines) + "\n").encode()


def test_integrations_screen_and_an_upload_with_progress(page, live_server, feeds, integration, settings, in_process_tasks):
    settings.ALLOT_INPROCESS_BACKGROUND = True
    settings.ALLOT_MAX_BATCH_EVENTS = 400  # many chunks, so progress moves visibly
    log_in(page, live_server, integration)

    page.goto(f"{live_server.url}/integrations/")
    wms = page.locator('#feeds tr[data-key="wms"]')
    assert wms.get_attribute("data-status") == "stale" and "case" in wms.inner_text()
    assert page.locator('#feeds tr[data-key="erp"]').get_attribute("data-status") == "fresh"
    assert page.locator('#feeds tr[data-key="edi-acme"]').get_attribute("data-status") == "silent"
    assert page.locator('#feeds tr[data-key="erp"] svg.sparkline rect').count() == 24
    shot(page, "integrations-feeds")

    # Hold the background thread so the page is seen queued, then watch it move by itself.
    opened, busy = threading.Event(), threading.Event()
    inprocess.executor.submit(lambda: (busy.set(), opened.wait(30)))
    assert busy.wait(5)
    try:
        page.select_option("#upload-form select[name=source]", "erp")
        page.select_option("#upload-form select[name=event_type]", "location.upserted")
        page.set_input_files("#upload-form input[name=file]", {
            "name": "locations.csv", "mimeType": "text/csv", "buffer": locations_csv(6000, {3, 4500}),
        })
        page.click("#upload-form button[type=submit]")
        page.wait_for_selector('#upload-body[data-status="queued"]')
        assert "/integrations/uploads/" in page.url
    finally:
        opened.set()
    page.wait_for_selector('#upload-body[data-status="processing"]', timeout=20000)
    seen = {int(page.locator("#upload-progress .progress").get_attribute("aria-valuenow"))}
    shot(page, "upload-progress")
    page.wait_for_selector('#upload-body[data-status="done"]', timeout=60000)
    assert inprocess.executor.wait_idle(60)
    seen.add(int(page.locator("#upload-progress .progress").get_attribute("aria-valuenow")))
    assert 100 in seen and min(seen) < 100  # the page showed the upload part-way

    upload = EventUpload.objects.get()
    assert (upload.total_rows, upload.accepted, upload.rejected_rows) == (6000, 5998, 2)
    assert [row.get_attribute("data-row") for row in page.locator("#rejections tr[data-row]").all()] == ["3", "4500"]
    assert "must be one of warehouse, hub, store" in page.locator('#rejections tr[data-row="4500"]').inner_text()
    assert Location.objects.filter(code__startswith="LOC/").count() == 5998
    shot(page, "upload-done")
