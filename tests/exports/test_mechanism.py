"""The export mechanism itself (config.exports): cell text and CSV-injection escaping, XLSX
numbers, streaming in chunks, the record of an interrupted download, XLSX sheets past
Excel's row limit."""
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections
from django.test import RequestFactory

from config import exports
from integrations.models import ExportRecord


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("=SUM(A1:A2)", "'=SUM(A1:A2)"),
        ("+1", "'+1"),
        ("-1+2", "'-1+2"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain = text", "plain = text"),
        ("", ""),
        (None, ""),
        (True, "true"),
        (False, "false"),
        (-5, "-5"),  # a number the export formats is not a formula
        (Decimal("-2.500"), "-2.5"),
        (Decimal("60.000"), "60"),
        (Decimal("1E+3"), "1000"),
        (Decimal("0.0001"), "0.0001"),
        (Decimal("-0.00"), "0"),
        (dt.date(2026, 6, 1), "2026-06-01"),
        (dt.datetime(2026, 6, 1, 10, 30, tzinfo=dt.UTC), "2026-06-01T10:30:00+00:00"),
        ({"a": [1, "=x"]}, '{"a":[1,"=x"]}'),
        (["=x"], '["=x"]'),
        ("nul\x00here", "nul\ufffdhere"),
    ],
)
def test_cell_text(value, text):
    assert exports.cell_text(value) == text


@pytest.mark.parametrize(
    ("value", "number"),
    [(5, 5), (Decimal("2.500"), 2.5), (Decimal("60.000"), 60), (Decimal("12345678901234.5"), 12345678901234.5),
     (Decimal("1234567890123456.7"), None), (2**60, None), ("5", None), (True, None), (Decimal("NaN"), None)],
)
def test_xlsx_numbers_only_where_a_double_is_exact(value, number):
    assert exports._xlsx_number(value) == number


def _request(user, query=""):
    request = RequestFactory().get(f"/somewhere/?{query}")
    request.user = user
    return request


SPEC = exports.ExportSpec("things", exports.columns(("n", "n"), ("label", lambda row: f"#{row['n']}")))


def test_csv_is_streamed_in_chunks_and_recorded_when_done(finance, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK_SIZE", 3)
    rows = [{"n": n} for n in range(7)]
    response = exports.export_response(_request(finance, "export=csv&kind=a&kind=b&cursor=x"), rows, SPEC)
    chunks = list(response.streaming_content)
    assert len(chunks) == 3  # 3 + 3 + 1 rows
    assert b"".join(chunks).decode() == "\ufeffn,label\r\n" + "".join(f"{n},#{n}\r\n" for n in range(7))
    record = ExportRecord.objects.get()
    assert (record.status, record.row_count, record.filters, record.path) == ("completed", 7, {"kind": ["a", "b"]}, "/somewhere/")


def test_a_download_cut_off_is_recorded_as_interrupted(finance, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK_SIZE", 2)
    response = exports.export_response(_request(finance, "export=csv"), [{"n": n} for n in range(10)], SPEC)
    stream = iter(response.streaming_content)
    next(stream)
    record = ExportRecord.objects.get()
    assert (record.status, record.row_count) == ("started", None)  # written before the first row
    # The client went away. (The test client's way: no connection closing inside the test's transaction.)
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)
    record.refresh_from_db()
    assert (record.status, record.row_count) == ("interrupted", 2)
    assert record.finished_at is not None


def test_xlsx_continues_on_a_new_sheet_past_the_row_limit(finance, monkeypatch):
    import openpyxl

    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 3)  # the header and two rows a sheet
    response = exports.export_response(_request(finance, "export=xlsx"), [{"n": n} for n in range(5)], SPEC)
    book = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)
    sheets = [[list(row) for row in sheet.iter_rows(values_only=True)] for sheet in book.worksheets]
    assert sheets == [
        [["n", "label"], [0, "#0"], [1, "#1"]],
        [["n", "label"], [2, "#2"], [3, "#3"]],
        [["n", "label"], [4, "#4"]],
    ]
    assert ExportRecord.objects.get().row_count == 5


def test_an_empty_export_is_the_header(finance):
    import openpyxl

    response = exports.export_response(_request(finance, "export=xlsx"), [], SPEC)
    book = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)
    assert [list(row) for row in book.active.iter_rows(values_only=True)] == [["n", "label"]]
    response = exports.export_response(_request(finance, "export=csv"), [], SPEC)
    assert b"".join(response.streaming_content) == "\ufeffn,label\r\n".encode()


def test_xlsx_text_is_never_a_formula(finance):
    import openpyxl

    spec = exports.ExportSpec("things", exports.columns(("v", "v")))
    response = exports.export_response(_request(finance, "export=xlsx"), [{"v": "=1+1"}, {"v": "http://x"}], spec)
    book = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    sheet = book.active
    assert [(cell.value, cell.data_type) for (cell,) in sheet.iter_rows(min_row=2)] == [("'=1+1", "s"), ("http://x", "s")]
    assert sheet["A2"].hyperlink is None


def test_a_queryset_export_reads_tuples_through_the_server_side_cursor(finance, distributor, django_assert_max_num_queries):
    from allocation import export_specs, selectors

    with django_assert_max_num_queries(3):  # the record, the rows (one cursor), the completion
        response = exports.export_response(_request(finance, "export=csv"), selectors.order_rows(), export_specs.ORDERS)
        body = b"".join(response.streaming_content).decode()
    assert [line.split(",")[0] for line in body.removeprefix("\ufeff").splitlines()] == ["order", "SO-1", "SO-2", "SO-3"]


def test_a_column_needs_a_path_or_a_function():
    with pytest.raises(ValueError):
        exports.Column("x")
    with pytest.raises(ValueError):
        exports.Column("x", path="a", get=lambda row: 1)
