"""Exports: every list screen and API list downloads what it shows, filters applied.

A list screen adds a spec and two lines: after building its filtered queryset (the one it
hands to ``pagination.screen_page``), ``if exports.requested(request): return
exports.export_response(request, rows, SPEC)``. ``?export=csv`` and ``?export=xlsx`` then
answer at the screen's own URL, with its own role check in front (an export is allowed to
exactly who can see the list) and its filters applied; the cursor is ignored, every matching
row is written, in the list's keyset order. An API list view takes ``ApiExportMixin`` (or
calls ``api_export_response``) and answers ``?format=csv`` (or ``Accept: text/csv``) the same
way through ``CSVRenderer``.

Flat memory at any size:

- CSV is a ``StreamingHttpResponse`` fed by ``QuerySet.iterator(chunk_size=...)`` (a
  server-side cursor on PostgreSQL): a chunk of rows is read, written and sent before the
  next one is read. Columns that are all ORM paths are read with ``values_list`` (tuples, no
  model instances); a column computed from the row object makes it iterate instances.
- XLSX is written by XlsxWriter in ``constant_memory`` mode (each row is flushed to the
  sheet's temporary file as it is written, strings inline, no shared-string table) into an
  anonymous temporary file, which is then streamed back by ``FileResponse`` in blocks. The
  workbook is complete before its first byte is sent, so a very large XLSX takes that long to
  start; CSV starts at once. XlsxWriter rather than openpyxl's write-only mode: it is the
  faster writer, has no dependency, and refuses nothing we write (openpyxl reads the files
  back in the tests, an independent check). A sheet holds at most 1,048,576 rows (Excel's
  limit): past that the rows continue on ``Sheet2`` and so on, each with the header.

Cells: text starting with ``= + - @``, tab or carriage return is prefixed with ``'``
(OWASP's CSV-injection advice) in both formats; numbers the export formats itself (integers,
decimals) are left alone, a negative quantity is not a formula. Dates and times are ISO 8601
(times in the current time zone, with their offset); decimals are plain text without exponent
or trailing zeros (``60.000`` -> ``60``); booleans ``true``/``false``; JSON values compact
JSON with sorted keys (PostgreSQL's jsonb and SQLite store keys in different orders). In XLSX integers and decimals that a double holds exactly are numbers (so they sum),
everything else the same text as in the CSV.

Every export is recorded (``integrations.export_log``): who, which screen and path, the
filters, the format, when it started and, once the last row is written, how many rows and
whether it completed or was interrupted.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import BadRequest
from django.db.models import QuerySet
from django.http import FileResponse, HttpRequest, StreamingHttpResponse
from django.utils import timezone
from rest_framework.renderers import BaseRenderer
from rest_framework.settings import api_settings

from config import bounds, pagination

EXPORT_PARAM = "export"
API_FORMAT_PARAM = "format"
FORMATS = ("csv", "xlsx")
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Rows read per round trip of the server-side cursor, and rows per chunk sent.
CHUNK_SIZE = 2000
XLSX_MAX_ROWS = 1_048_576
# Parameters that are not filters: they are not stored with the record.
NOT_FILTERS = frozenset({EXPORT_PARAM, API_FORMAT_PARAM, pagination.CURSOR_PARAM, pagination.PAGE_SIZE_PARAM, "page", "part"})
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A double holds every integer up to 2**53 and 15 significant decimal digits exactly.
EXACT_DIGITS = 15


@dataclass(frozen=True)
class Column:
    """One column of an export: its header and where its value comes from.

    ``path`` is an ORM lookup (``"customer__code"``): read by ``values_list`` when every
    column of the spec has one, else walked on the row object (attributes, or keys of a dict
    row). ``get`` is a function of the row object for what no lookup can name."""

    header: str
    path: str | None = None
    get: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.get is None):
            raise ValueError(f"column {self.header!r} needs exactly one of path and get")

    def value_of(self, row: Any) -> Any:
        if self.get is not None:
            return self.get(row)
        value = row
        for part in self.path.split("__"):  # type: ignore[union-attr]
            if value is None:
                return None
            value = value.get(part) if isinstance(value, dict) else getattr(value, part)
        return value


@dataclass(frozen=True)
class ExportSpec:
    """What a list exports: ``screen`` names it in the export record and the file name."""

    screen: str
    columns: tuple[Column, ...]
    ordering: tuple[str, ...] | None = None
    headers: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", tuple(c.header for c in self.columns))

    @property
    def paths(self) -> tuple[str, ...] | None:
        """The ORM paths of every column, or None when one column needs the row object."""
        if any(c.path is None for c in self.columns):
            return None
        return tuple(c.path for c in self.columns)  # type: ignore[misc]


def columns(*pairs: tuple[str, str | Callable[[Any], Any]]) -> tuple[Column, ...]:
    """``columns(("Order", "number"), ("Open", lambda o: ...))``: a path or a function each."""
    return tuple(Column(header, get=source) if callable(source) else Column(header, path=source) for header, source in pairs)


# --------------------------------------------------------------------------- cells


def _decimal_text(value: Decimal) -> str:
    if not value.is_finite():
        return str(value)
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _text(value: str) -> str:
    if not value.isascii() or "\x00" in value:  # the regular expression only where it can match
        value = bounds.storable_text(value)
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def cell_text(value: Any, tz: dt.tzinfo | None = None) -> str:
    """The text of one cell (see the module docstring for each type); ``tz``: the time zone
    of times (default the current one; an export looks it up once, not per cell)."""
    kind = type(value)
    if kind is str:
        return _text(value)
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is Decimal:
        return _decimal_text(value)
    if kind is dt.datetime:
        if value.tzinfo is not None:
            value = value.astimezone(tz or timezone.get_current_timezone())
        return value.isoformat()
    if kind is dt.date or kind is dt.time:
        return value.isoformat()
    if kind is float:
        return repr(value)
    if isinstance(value, (dict, list)):
        return _text(json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True, default=str))
    if isinstance(value, str):  # a str subclass: a lazy translation, a TextChoices member
        return _text(str(value))
    return _text(str(value))


def _xlsx_number(value: Any) -> float | int | None:
    """The number an XLSX cell holds exactly for ``value``, or None to write it as text."""
    kind = type(value)
    if kind is int:
        return value if abs(value) <= 2**53 else None
    if kind is Decimal and value.is_finite():
        normalized = value.normalize()
        digits = len(normalized.as_tuple().digits)
        if digits <= EXACT_DIGITS and abs(normalized.adjusted()) < EXACT_DIGITS:
            number = float(normalized)
            return int(number) if number.is_integer() and abs(number) <= 2**53 else number
    return None


# --------------------------------------------------------------------------- rows


def ordered(queryset: QuerySet, ordering: Sequence[str] | None = None) -> QuerySet:
    """``queryset`` in its list's keyset order (the same total order its pages walk)."""
    keys = pagination.keyset_columns(queryset, ordering)
    return queryset.order_by(*(column.order() for column in keys))


def row_values(rows: QuerySet | Iterable[Any], spec: ExportSpec) -> Iterator[Sequence[Any]]:
    """The raw values of each row, a server-side cursor chunk at a time for a queryset."""
    if isinstance(rows, QuerySet):
        rows = ordered(rows, spec.ordering)
        paths = spec.paths
        if paths is not None:
            yield from rows.values_list(*paths).iterator(chunk_size=CHUNK_SIZE)
            return
        rows = rows.iterator(chunk_size=CHUNK_SIZE)
    getters = [column.value_of for column in spec.columns]
    for row in rows:
        yield [get(row) for get in getters]


# --------------------------------------------------------------------------- requests


def requested(request: HttpRequest) -> str | None:
    """The format ``?export=`` asks for (``csv``, ``xlsx``), None without one; another value
    is a 400 naming the parameter."""
    wanted = request.GET.get(EXPORT_PARAM)
    if wanted is None or wanted == "":
        return None
    if wanted not in FORMATS:
        raise BadRequest(f"{EXPORT_PARAM}: must be one of {', '.join(FORMATS)}.")
    return wanted


def api_csv_requested(request: Any) -> bool:
    """True when content negotiation chose ``CSVRenderer`` (``?format=csv`` or ``Accept: text/csv``)."""
    renderer = getattr(request, "accepted_renderer", None)
    return renderer is not None and getattr(renderer, "format", None) == "csv"


def filters_of(request: HttpRequest) -> dict[str, Any]:
    """The request's filter parameters as stored with the record (bounded, storable text)."""
    found: dict[str, Any] = {}
    for key, values in request.GET.lists():
        if key in NOT_FILTERS or len(found) >= 50:
            continue
        kept = [bounds.storable_text(value)[:500] for value in values[:20] if value != ""]
        if kept:
            found[bounds.storable_text(key)[:100]] = kept[0] if len(kept) == 1 else kept
    return found


def filename_for(spec: ExportSpec, extension: str) -> str:
    return f"{spec.screen}-{timezone.localdate().isoformat()}.{extension}"


def export_response(
    request: HttpRequest, rows: QuerySet | Iterable[Any], spec: ExportSpec, *, fmt: str | None = None, via: str = "screen"
) -> StreamingHttpResponse:
    """Every row of ``rows`` as a CSV stream or an XLSX file, recorded as an export of ``spec.screen``.

    ``fmt`` defaults to ``?export=``; ``via`` is ``screen`` or ``api`` (an API CSV has no byte
    order mark, a screen's has one so spreadsheet programs read it as UTF-8)."""
    from integrations import export_log  # the record lives in an app; config imports none at load

    fmt = fmt or requested(request) or "csv"
    record = export_log.start_export(
        actor=request.user, screen=spec.screen, path=request.path, fmt=fmt, via=via, filters=filters_of(request)
    )
    values = row_values(rows, spec)
    if fmt == "xlsx":
        return _xlsx_response(values, spec, record)
    response = StreamingHttpResponse(
        _csv_stream(values, spec, record, byte_order_mark=via == "screen"), content_type=CSV_CONTENT_TYPE
    )
    response["Content-Disposition"] = f'attachment; filename="{filename_for(spec, "csv")}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


class _Finish:
    """Closes the record once: rows written and whether the export reached its end."""

    def __init__(self, record: Any) -> None:
        self.record = record
        self.count = 0

    def __call__(self, *, completed: bool) -> None:
        from integrations import export_log

        export_log.finish_export(self.record, row_count=self.count, completed=completed)


def _csv_stream(values: Iterator[Sequence[Any]], spec: ExportSpec, record: Any, *, byte_order_mark: bool) -> Iterator[bytes]:
    finish = _Finish(record)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if byte_order_mark:
        buffer.write("\ufeff")
    writer.writerow([cell_text(header) for header in spec.headers])
    completed = False
    count = 0
    tz = timezone.get_current_timezone()
    try:
        for row in values:
            writer.writerow([cell_text(value, tz) for value in row])
            count += 1
            if count % CHUNK_SIZE == 0:
                finish.count = count
                yield buffer.getvalue().encode("utf-8", "replace")
                buffer.seek(0)
                buffer.truncate()
        finish.count = count
        yield buffer.getvalue().encode("utf-8", "replace")
        completed = True
    finally:
        finish.count = count
        finish(completed=completed)


def _xlsx_response(values: Iterator[Sequence[Any]], spec: ExportSpec, record: Any) -> FileResponse:
    import xlsxwriter

    finish = _Finish(record)
    target = tempfile.TemporaryFile(suffix=".xlsx")  # anonymous: gone when the response closes it
    completed = False
    try:
        workbook = xlsxwriter.Workbook(
            target,
            {"constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False},
        )
        bold = workbook.add_format({"bold": True})
        sheet, row_index = None, XLSX_MAX_ROWS
        count = 0
        tz = timezone.get_current_timezone()
        for row in values:
            if row_index >= XLSX_MAX_ROWS:
                sheet = workbook.add_worksheet()
                sheet.freeze_panes(1, 0)
                for column_index, header in enumerate(spec.headers):
                    sheet.write_string(0, column_index, cell_text(header), bold)
                row_index = 1
            for column_index, value in enumerate(row):
                if value is None or value == "":  # an empty cell, as in the CSV
                    continue
                number = _xlsx_number(value)
                if number is None:
                    sheet.write_string(row_index, column_index, cell_text(value, tz))  # type: ignore[union-attr]
                else:
                    sheet.write_number(row_index, column_index, number)  # type: ignore[union-attr]
            row_index += 1
            count += 1
        if sheet is None:  # no rows: the header alone
            sheet = workbook.add_worksheet()
            for column_index, header in enumerate(spec.headers):
                sheet.write_string(0, column_index, cell_text(header), bold)
        finish.count = count
        workbook.close()
        completed = True
    except BaseException:
        target.close()
        raise
    finally:
        finish(completed=completed)
    target.seek(0)
    response = FileResponse(target, as_attachment=True, filename=filename_for(spec, "xlsx"), content_type=XLSX_CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response


# --------------------------------------------------------------------------- API


class CSVRenderer(BaseRenderer):
    """``text/csv`` for the API (``?format=csv``): a list view with an export spec streams every
    filtered row (``api_export_response``) and never reaches ``render``; anything else rendered
    as CSV (a detail, an error) is its JSON flattened: one row per result, one column per key,
    nested values as compact JSON, the same cell escaping as the exports."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: dict | None = None) -> bytes:
        if data is None:
            return b""
        if isinstance(data, dict) and isinstance(data.get("results"), list):
            data = data["results"]
        rows = data if isinstance(data, list) else [data]
        rows = [row if isinstance(row, dict) else {"value": row} for row in rows]
        headers: list[str] = []
        for row in rows:
            headers.extend(key for key in row if key not in headers)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow([cell_text(str(header)) for header in headers])
        for row in rows:
            writer.writerow([cell_text(_plain(row.get(header))) for header in headers])
        return buffer.getvalue().encode("utf-8", "replace")


def _plain(value: Any) -> Any:
    """A serializer's value as a cell: nested structures (and DRF's ErrorDetail lists) as JSON."""
    if isinstance(value, (list, dict)):
        return json.loads(json.dumps(value, default=str))
    return value


API_RENDERERS = (*api_settings.DEFAULT_RENDERER_CLASSES, CSVRenderer)


def api_export_response(request: Any, rows: QuerySet | Iterable[Any], spec: ExportSpec) -> StreamingHttpResponse:
    """An API list's ``?format=csv``: every filtered row, streamed and recorded (``via="api"``)."""
    return export_response(request, rows, spec, fmt="csv", via="api")


class ApiExportMixin:
    """For a DRF list view (``ListModelMixin``): ``?format=csv`` streams ``export_spec``'s columns
    of every row of ``filter_queryset(get_queryset())`` instead of a JSON page. Put it first in
    the bases so its ``renderer_classes`` and ``list`` win."""

    renderer_classes = API_RENDERERS
    export_spec: ExportSpec

    def list(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if api_csv_requested(request):
            return api_export_response(request, self.filter_queryset(self.get_queryset()), self.export_spec)  # type: ignore[attr-defined]
        return super().list(request, *args, **kwargs)  # type: ignore[misc]
