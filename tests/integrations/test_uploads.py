"""CSV and JSON Lines uploads (integrations.uploads): the same validation and ingestion as the
API, every rejected row named with its row number, field and reason, the good rows applied,
nothing invalid half-applied; hostile files refused at the edge; the screen and its roles."""
from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from allocation.models import InventoryPosition, Location, Order
from integrations import uploads
from integrations.choices import BatchVia
from integrations.feeds_models import EventUpload, UploadRejection, UploadStatus
from integrations.models import Event, EventBatch, Source
from integrations.services import process_pending, register_source

pytestmark = pytest.mark.django_db

ORDER_HEADER = "number,customer,channel,created_at,requested_date,line,sku,quantity,unit_price,unit_cost\n"


@pytest.fixture
def erp(master, integration):
    return register_source(code="erp", integration_users=[integration])


def upload(django_capture_on_commit_callbacks, source, actor, content: bytes, event_type: str = "", filename: str = "f.csv"):
    with django_capture_on_commit_callbacks(execute=True):
        created = uploads.create_upload(actor=actor, source=source, filename=filename, content=content, event_type=event_type)
    created.refresh_from_db()
    return created


def rejections(item: EventUpload) -> list[tuple[int, str, str]]:
    return [(r.row, r.field, r.message) for r in UploadRejection.objects.filter(upload=item).order_by("row", "id")]


def test_good_rows_are_applied_and_every_bad_row_is_named(erp, integration, django_capture_on_commit_callbacks):
    content = (
        ORDER_HEADER
        + "SO-1,HOSP-1,b2b_contract,2026-05-25T10:00:00Z,2026-06-02,1,VALVE-10,10,100,60\n"   # row 2
        + "SO-2,HOSP-1,b2b_contract,2026-05-25T10:00:00Z,2026-06-02,1,PUMP-2,3,150,80\n"      # row 3
        + "SO-1,HOSP-1,b2b_contract,2026-05-25T10:00:00Z,2026-06-02,2,PUMP-2,4,150,80\n"      # row 4: SO-1's second line
        + "SO-3,HOSP-1,b2b_contract,2026-05-25T10:00:00Z,2026-06-02,1,VALVE-10,5,100,60\n"    # row 5: fine, but...
        + "SO-3,HOSP-1,b2b_contract,2026-05-25T10:00:00Z,2026-06-02,2,VALVE-10,-5,100,60\n"   # row 6: ...this line is not
        + "SO-4,HOSP\x00-1,b2b_contract,2026-05-25T10:00:00Z,2026-06-02,1,VALVE-10,1,100,60\n"  # row 7: NUL
        + "SO-5,HOSP-1,b2b_contract\n"                                                          # row 8: ragged
        + "SO-6,HOSP-1,b2b_contract,2026-05-25T10:00:00Z,not-a-date,one,VALVE-10,1,100,60\n"  # row 9: two bad fields
        + "SO/7,HOSP-1,b2b_contract,2026-05-25T10:00:00Z,2026-06-02,1,VALVE-10,2,100,60\n"    # row 10: / in a code is data
    ).encode()

    done = upload(django_capture_on_commit_callbacks, erp, integration, content, "order.upserted")
    process_pending()

    assert done.status == UploadStatus.DONE and done.error == ""
    assert (done.total_rows, done.processed_rows, done.events, done.accepted, done.rejected_rows) == (9, 9, 6, 3, 5)
    assert rejections(done) == [
        (5, "", "not stored: order SO-3 is rejected as a whole (see row 6)"),
        (6, "data.lines[1].quantity", "must be >= 0"),
        (7, "data.customer", "must not contain NUL characters"),
        (8, "", "has 3 cells; the header has 10"),
        (9, "data.requested_date", "must be an ISO date (YYYY-MM-DD)"),
        (9, "data.lines[0].line", "must be a whole number"),
    ]
    assert sorted(Order.objects.values_list("number", flat=True)) == ["SO-1", "SO-2", "SO/7"]
    assert sorted(Order.objects.get(number="SO-1").lines.values_list("line", "item__sku")) == [(1, "VALVE-10"), (2, "PUMP-2")]
    batch = EventBatch.objects.get(pk=done.batch_ids[0])
    assert batch.via == BatchVia.FILE and batch.actor == integration and batch.accepted == 3


def test_the_same_file_twice_stores_nothing_twice(erp, integration, django_capture_on_commit_callbacks):
    content = (ORDER_HEADER + "SO-1,HOSP-1,b2b_contract,2026-05-25T10:00:00Z,2026-06-02,1,VALVE-10,10,100,60\n").encode()
    first = upload(django_capture_on_commit_callbacks, erp, integration, content, "order.upserted")
    second = upload(django_capture_on_commit_callbacks, erp, integration, content, "order.upserted")

    assert (first.accepted, first.duplicates) == (1, 0)
    assert (second.accepted, second.duplicates) == (0, 1)
    assert Event.objects.filter(type="order.upserted").count() == 1


def test_json_lines_go_through_the_same_validation(erp, integration, django_capture_on_commit_callbacks):
    good = {"id": "l-1", "type": "location.upserted", "occurred_at": "2026-05-31T18:00:00Z",
            "data": {"code": "DC/NORTH", "name": "North", "region": "north", "kind": "hub"}}
    other_source = dict(good, id="l-2", source="wms")
    invalid = dict(good, id="l-3", data={"code": "DC-X", "name": "x", "region": "r", "kind": "castle"})
    content = "\n".join([json.dumps(good), "{not json", json.dumps(other_source), "", json.dumps(invalid), "[1]"]).encode()

    done = upload(django_capture_on_commit_callbacks, erp, integration, content, filename="events.jsonl")
    process_pending()

    assert done.format == "jsonl" and done.accepted == 1 and done.total_rows == 5
    assert rejections(done) == [
        (2, "", "is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        (3, "source", "must be erp, the source of this upload"),
        (5, "data.kind", "must be one of warehouse, hub, store"),
        (6, "", "must be a JSON object (one event)"),
    ]
    assert Location.objects.filter(code="DC/NORTH").exists() and not Location.objects.filter(code="DC-X").exists()


def test_item_substitutes_and_booleans_are_converted(erp, integration, django_capture_on_commit_callbacks):
    content = (
        b"sku,description,item_class,uom,unit_cost,substitutes\n"
        b"VALVE-12,Valve 12,valves,EA,70,VALVE-10:1\n"
        b"VALVE-14,Valve 14,valves,EA,70,VALVE-10\n"
    )
    done = upload(django_capture_on_commit_callbacks, erp, integration, content, "item.upserted")
    process_pending()

    assert done.accepted == 1
    assert rejections(done) == [(3, "data.substitutes", "entry 1 (VALVE-10) must be SKU:priority, entries separated by ;")]


@pytest.mark.parametrize(
    ("content", "event_type", "message"),
    [
        (b"code,name,region,kind\nDC-\xe9,x,r,hub\n", "location.upserted",
         "The file is not UTF-8 text (byte 0xe9 on line 2); save it as UTF-8 and upload it again."),
        (b"code,name,region,kind,colour\n", "location.upserted",
         "Unknown column colour for location.upserted; download the template for the expected columns."),
        (b"code,name,region\n", "location.upserted", "Missing column kind for location.upserted."),
        (b"code,name,code,region,kind\n", "location.upserted", "Column code appears more than once."),
    ],
)
def test_a_file_refused_as_a_whole_stores_nothing(erp, integration, django_capture_on_commit_callbacks, content, event_type, message):
    before = Event.objects.count()
    done = upload(django_capture_on_commit_callbacks, erp, integration, content, event_type)

    assert done.status == UploadStatus.FAILED and done.error == message
    assert Event.objects.count() == before


def test_an_oversized_file_is_refused_before_it_is_stored(erp, integration, settings):
    settings.ALLOT_UPLOAD_MAX_BYTES = 10
    with pytest.raises(uploads.UploadRefused, match="at most 10 are accepted"):
        uploads.create_upload(actor=integration, source=erp, filename="big.csv", content=b"x" * 11, event_type="location.upserted")
    assert not EventUpload.objects.exists()


def test_a_utf8_bom_and_crlf_lines_are_fine(erp, integration, django_capture_on_commit_callbacks):
    content = "\ufefflocation,sku,on_hand,as_of\r\nDC-EAST,VALVE-10,12,2026-06-01T08:00:00Z\r\n".encode()
    done = upload(django_capture_on_commit_callbacks, erp, integration, content, "inventory.snapshot")
    process_pending()

    assert done.accepted == 1 and rejections(done) == []
    assert InventoryPosition.objects.get(location__code="DC-EAST", item__sku="VALVE-10").on_hand == 12


# ----------------------------------------------------------------------------- the screen


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_upload_through_the_screen_shows_progress_and_rejected_rows(erp, integration, django_capture_on_commit_callbacks):
    client = logged_in(integration)
    content = (ORDER_HEADER + "SO-1,HOSP-1,b2b_contract,2026-05-25T10:00:00Z,2026-06-02,1,VALVE-10,-1,100,60\n").encode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/integrations/uploads/", {
            "source": "erp", "event_type": "order.upserted", "file": SimpleUploadedFile("orders.csv", content, "text/csv"),
        })
    created = EventUpload.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/integrations/uploads/{created.public_id}/"

    page = client.get(response["Location"]).content.decode()
    assert '<tr data-row="2"><td class="num">2</td>' in page and "data.lines[0].quantity" in page and "must be &gt;= 0" in page
    fragment = client.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert fragment.lstrip().startswith('<div id="upload-body" data-status="done"') and "<h1>" not in fragment


def test_running_upload_polls_and_works_without_javascript(erp, integration):
    queued = EventUpload.objects.create(source=erp, actor=integration, format="csv", event_type="location.upserted",
                                        filename="x.csv", sha256="0", content=b"code\n", total_rows=200, processed_rows=50)
    html = logged_in(integration).get(f"/integrations/uploads/{queued.public_id}/").content.decode()
    assert 'hx-trigger="every 1s"' in html and '<noscript><meta http-equiv="refresh" content="2"></noscript>' in html
    assert 'aria-valuenow="25"' in html and "50 of 200 rows" in html


def test_templates_name_the_data_fields(integration):
    response = logged_in(integration).get("/integrations/uploads/templates/order.upserted.csv")
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.content.decode().splitlines()[0] == (
        "id,occurred_at,number,customer,channel,created_at,requested_date,promised_date,ship_complete,kind,expires_at,"
        "line,sku,quantity,unit_price,unit_cost,allow_substitute,ship_from"
    )
    assert logged_in(integration).get("/integrations/uploads/templates/nope.csv").status_code == 404


def test_only_integration_users_upload_and_only_for_their_sources(erp, planner, finance, integration, outsider):
    payload = {"source": "erp", "event_type": "location.upserted"}
    for user in (planner, finance):
        response = logged_in(user).post("/integrations/uploads/", {**payload, "file": SimpleUploadedFile("a.csv", b"code\n")})
        assert response.status_code == 403
    assert logged_in(outsider).get("/integrations/").status_code == 403
    register_source(code="wms")  # not bound to the integration user
    response = logged_in(integration).post(
        "/integrations/uploads/", {**payload, "source": "wms", "file": SimpleUploadedFile("a.csv", b"code\n")}
    )
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert not EventUpload.objects.exists()
    assert Source.objects.filter(code="wms").exists()


def test_beat_republishes_an_upload_whose_wake_up_was_lost(erp, integration, django_capture_on_commit_callbacks):
    import datetime as dt

    from django.utils import timezone

    from integrations.tasks import check_feed_freshness_task

    lost = EventUpload.objects.create(
        source=erp, actor=integration, format="csv", event_type="location.upserted", filename="x.csv", sha256="0",
        content=b"code,name,region,kind\nDC-LOST,Lost,east,hub\n", created_at=timezone.now() - dt.timedelta(minutes=10),
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = check_feed_freshness_task()

    lost.refresh_from_db()
    assert result["uploads_requeued"] == 1 and lost.status == UploadStatus.DONE and lost.accepted == 1
