"""In the browser: the download links follow the filters HTMX applies in place, and a click
downloads the CSV of what the list shows."""
import csv
import io

import pytest
from django.urls import reverse

SHOTS = "/tmp/shots/export"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_filtered_orders_download_as_csv(page, live_server, finance, distributor):
    import os

    os.makedirs(SHOTS, exist_ok=True)
    page.goto(live_server.url + reverse("login"))
    page.fill("input[name=username]", finance.username)
    page.fill("input[name=password]", "pw-" + finance.username)
    page.click("button[type=submit]")
    page.goto(live_server.url + reverse("allocation:order_list"))
    page.select_option("select[name=channel]", "ecommerce")
    page.wait_for_function("document.querySelectorAll('#results tr[data-key]').length === 1")
    link = page.locator("#results a[data-export=csv]")
    href = link.get_attribute("href")  # the form's fields as HTMX sent them, empty ones included
    assert "channel=ecommerce" in href and href.endswith("&export=csv")
    page.screenshot(path=f"{SHOTS}/orders_filtered.png", full_page=True)

    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename.startswith("orders-") and download.suggested_filename.endswith(".csv")
    text = open(download.path(), encoding="utf-8-sig").read()
    rows = list(csv.reader(io.StringIO(text)))
    assert [row[0] for row in rows] == ["order", "SO-2"]

    page.goto(live_server.url + reverse("integrations:export_list"))
    assert page.locator("#export-rows tr[data-key]").count() == 1
    assert "channel=ecommerce" in page.locator("#export-rows").inner_text()
    page.screenshot(path=f"{SHOTS}/exports_screen.png", full_page=True)
