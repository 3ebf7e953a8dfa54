"""Keyset (cursor) pagination for the read API and the list screens.

A page is the rows strictly after (or, going back, before) the ordering key of the row a
cursor names, so page 500 costs what page 1 costs: an index range scan and a ``LIMIT``,
never an ``OFFSET`` over the rows before it and never a ``COUNT`` of all of them.

The ordering comes from the queryset (or the view's ``keyset_ordering``) and is made total
by appending ``pk`` unless it already ends in a unique column of the model. Every column of
the ordering is part of the key (DRF's ``CursorPagination`` keys on the first column only
and skips ties by offset, which is an OFFSET again on columns with many equal values such
as a date, and it cannot order nullable columns). NULL sorts as the greatest value, as in a
default PostgreSQL index (ascending: last, descending: first), on every database.

A cursor is opaque: URL-safe base64 of the key values, the direction and a fingerprint of
the ordering, so a cursor of another sort or a tampered one is a 400 naming ``cursor``.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.db.models import F, Field, Model, Q, QuerySet
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from config import bounds

CURSOR_PARAM = "cursor"
PAGE_SIZE_PARAM = "page_size"
MAX_PAGE_SIZE = 200
FORWARD, BACKWARD = "n", "p"


class InvalidCursor(ValueError):
    """A cursor that cannot be decoded or belongs to another ordering."""


@dataclass(frozen=True)
class Column:
    """One column of a keyset ordering: its lookup path, direction and model field."""

    path: str
    descending: bool
    field: Field
    nullable: bool

    def order(self, reverse: bool = False):
        descending = self.descending != reverse
        expression = F(self.path)
        if not self.nullable:
            return expression.desc() if descending else expression.asc()
        # NULL is the greatest value: last ascending, first descending (PostgreSQL's default).
        return expression.desc(nulls_first=True) if descending else expression.asc(nulls_last=True)

    def value_of(self, row: Any) -> Any:
        value = row
        for part in self.path.split("__"):
            if value is None:
                return None
            value = value.pk if part == "pk" else getattr(value, part)
        return value.pk if isinstance(value, Model) else value


def _resolve_field(model: type[Model], path: str, annotations: dict) -> tuple[Field, str, bool]:
    """``(field, path, nullable)`` of an ordering name; a foreign key orders by its column."""
    if path in annotations:
        return annotations[path].output_field, path, True
    field: Field | None = None
    nullable = False
    parts = path.split("__")
    for part in parts:
        if field is not None:
            if not field.is_relation:
                raise ImproperlyConfigured(f"cannot order a keyset by {path!r}")
            model = field.related_model
        field = model._meta.pk if part == "pk" else model._meta.get_field(part)
        nullable = nullable or bool(getattr(field, "null", True))
    if field is None or field.many_to_many or field.one_to_many or not field.concrete:
        raise ImproperlyConfigured(f"cannot order a keyset by {path!r}")
    if field.is_relation:  # ordering by a foreign key orders by its column (no join, no query per row)
        parts[-1] = field.attname
        field = field.target_field
    return field, "__".join(parts), nullable


def keyset_columns(queryset: QuerySet, ordering: Sequence[str] | None = None) -> list[Column]:
    """The columns of ``ordering`` (default: the queryset's), made unique by a trailing ``pk``."""
    names = list(ordering or queryset.query.order_by or queryset.model._meta.ordering)
    model = queryset.model
    columns: list[Column] = []
    for name in names:
        if not isinstance(name, str) or name == "?":
            raise ImproperlyConfigured(f"keyset pagination needs field names in the ordering, got {name!r}")
        try:
            field, path, nullable = _resolve_field(model, name.lstrip("-"), queryset.query.annotations)
        except FieldDoesNotExist as error:
            raise ImproperlyConfigured(f"cannot order a keyset by {name!r}") from error
        if path == model._meta.pk.name:
            path = "pk"
        columns.append(Column(path, name.startswith("-"), field, nullable))
    last = columns[-1] if columns else None
    unique_last = last is not None and (
        last.path == "pk" or ("__" not in last.path and last.path not in queryset.query.annotations
                              and getattr(last.field, "unique", False) and not last.nullable)
    )
    if not unique_last:
        descending = columns[0].descending if columns else False
        columns.append(Column("pk", descending, model._meta.pk, False))
    return columns


def _fingerprint(columns: Sequence[Column]) -> str:
    spec = ",".join(("-" if c.descending else "") + c.path for c in columns)
    return hashlib.sha256(spec.encode()).hexdigest()[:8]


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def encode_cursor(columns: Sequence[Column], row: Any, direction: str) -> str:
    payload = {"o": _fingerprint(columns), "d": direction, "v": [_plain(c.value_of(row)) for c in columns]}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(columns: Sequence[Column], cursor: str) -> tuple[str, list[Any]]:
    """``(direction, key values)`` of ``cursor``; ``InvalidCursor`` when it is not one of this ordering."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        fingerprint, direction, values = payload["o"], payload["d"], payload["v"]
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError) as error:
        raise InvalidCursor("not a cursor") from error
    if fingerprint != _fingerprint(columns) or direction not in (FORWARD, BACKWARD):
        raise InvalidCursor("a cursor of another list or sort")
    if not isinstance(values, list) or len(values) != len(columns):
        raise InvalidCursor("not a cursor")
    decoded = []
    for column, value in zip(columns, values, strict=True):
        if value is None:
            if not column.nullable:
                raise InvalidCursor("not a cursor")
            decoded.append(None)
            continue
        decoded.append(_checked(column.field, value))
    return direction, decoded


def _checked(field: Field, value: Any) -> Any:
    """``value`` as ``field``'s Python type, refusing what the database could not take."""
    if not isinstance(value, (str, int, bool)):
        raise InvalidCursor("not a cursor")
    if isinstance(value, str):
        if "\x00" in value or len(value) > 1000:
            raise InvalidCursor("not a cursor")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidCursor("not a cursor") from error
    try:
        python = field.to_python(value)
        if isinstance(python, dt.datetime) and python.tzinfo is not None:
            python.astimezone(dt.UTC)
    except (ValidationError, ValueError, TypeError, OverflowError) as error:
        raise InvalidCursor("not a cursor") from error
    if isinstance(python, int) and not isinstance(python, bool) and abs(python) >= 2**63:
        raise InvalidCursor("not a cursor")
    if isinstance(python, Decimal) and not python.is_finite():
        raise InvalidCursor("not a cursor")
    return python


def _beyond(column: Column, value: Any, reverse: bool) -> Q | None:
    """Rows strictly past ``value`` in ``column``'s direction (``None``: no row can be)."""
    descending = column.descending != reverse
    path = column.path
    if value is None:  # NULL is the greatest value
        return Q(**{f"{path}__isnull": False}) if descending else None
    if descending:
        return Q(**{f"{path}__lt": value})
    after = Q(**{f"{path}__gt": value})
    return after | Q(**{f"{path}__isnull": True}) if column.nullable else after


def _equal(column: Column, value: Any) -> Q:
    return Q(**{f"{column.path}__isnull": True}) if value is None else Q(**{column.path: value})


def keyset_filter(columns: Sequence[Column], values: Sequence[Any], reverse: bool = False) -> Q:
    """Rows after the key ``values`` (before, with ``reverse``): the expanded row comparison
    ``(a > x) OR (a = x AND b > y) OR ...``, led by ``a >= x`` so an index on the columns is
    scanned as a range."""
    branches = Q(pk__in=[])
    prefix = Q()
    for column, value in zip(columns, values, strict=True):
        beyond = _beyond(column, value, reverse)
        if beyond is not None:
            branches |= prefix & beyond
        prefix &= _equal(column, value)
    first, value = columns[0], values[0]
    if value is not None and not first.nullable:
        lead = {f"{first.path}__lte" if first.descending != reverse else f"{first.path}__gte": value}
        return Q(**lead) & branches
    return branches


@dataclass
class KeysetPage:
    """One page of rows with the cursors of the pages around it (``keyset`` tells templates
    it is not a numbered Django ``Page``)."""

    object_list: list
    next_cursor: str | None
    previous_cursor: str | None
    first: bool
    keyset = True

    def __iter__(self) -> Iterator:
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)

    def __bool__(self) -> bool:
        return bool(self.object_list)

    def has_next(self) -> bool:
        return self.next_cursor is not None

    def has_previous(self) -> bool:
        return self.previous_cursor is not None

    def has_other_pages(self) -> bool:
        return self.has_next() or self.has_previous() or not self.first


def keyset_page(
    queryset: QuerySet, cursor: str | None, size: int, ordering: Sequence[str] | None = None
) -> KeysetPage:
    """The page of ``queryset`` that ``cursor`` names (the first without one): ``size`` rows in
    one query (one more row is read to know whether another page follows)."""
    columns = keyset_columns(queryset, ordering)
    direction, values = decode_cursor(columns, cursor) if cursor else (FORWARD, None)
    reverse = direction == BACKWARD
    rows_qs = queryset.order_by(*(c.order(reverse) for c in columns))
    if values is not None:
        rows_qs = rows_qs.filter(keyset_filter(columns, values, reverse))
    rows = list(rows_qs[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if reverse:
        rows.reverse()
        has_next, has_previous = True, more
    else:
        has_next, has_previous = more, values is not None
    return KeysetPage(
        object_list=rows,
        next_cursor=encode_cursor(columns, rows[-1], FORWARD) if rows and has_next else None,
        previous_cursor=encode_cursor(columns, rows[0], BACKWARD) if rows and has_previous else None,
        first=values is None,
    )


def screen_page(
    request, queryset: QuerySet, size: int, ordering: Sequence[str] | None = None, *, param: str = CURSOR_PARAM
) -> KeysetPage:
    """The page a list screen shows for ``?cursor=`` (``param``: a screen with two lists names
    each one's cursor); an invalid cursor shows the first page."""
    try:
        return keyset_page(queryset, request.GET.get(param) or None, size, ordering)
    except InvalidCursor:
        return keyset_page(queryset, None, size, ordering)


def screen_query(request) -> str:
    """The current querystring without the cursor (the pager adds its own); a value UTF-8
    cannot encode (a lone surrogate, which the filter form refuses) is echoed as U+FFFD."""
    query = request.GET.copy()
    query.pop(CURSOR_PARAM, None)
    query.pop("page", None)
    for key, values in list(query.lists()):
        query.setlist(key, [bounds.storable_text(value) for value in values])
    return query.urlencode()


class KeysetPagination(BasePagination):
    """The read API's pagination: ``{"next", "previous", "results"}`` with cursor links.

    ``?page_size=`` (1..200) changes the page size; there is no ``count`` (counting every
    matching row is a full scan per page at scale) and no page numbers."""

    page_size = settings.REST_FRAMEWORK.get("PAGE_SIZE") or 50
    max_page_size = MAX_PAGE_SIZE

    def _size(self, request: Request) -> int:
        raw = request.query_params.get(PAGE_SIZE_PARAM)
        if raw in (None, ""):
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise ApiValidationError({PAGE_SIZE_PARAM: [f"must be a whole number from 1 to {self.max_page_size}."]})
        return size

    def paginate_queryset(self, queryset: QuerySet, request: Request, view=None) -> list:
        self.request = request
        self.base_url = request.build_absolute_uri()
        ordering = getattr(view, "keyset_ordering", None)
        try:
            self.page = keyset_page(queryset, request.query_params.get(CURSOR_PARAM) or None, self._size(request), ordering)
        except InvalidCursor as error:
            raise ApiValidationError({CURSOR_PARAM: [f"Invalid cursor: {error}."]}) from error
        return self.page.object_list

    def _link(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        return replace_query_param(self.base_url, CURSOR_PARAM, cursor)

    def get_next_link(self) -> str | None:
        return self._link(self.page.next_cursor)

    def get_previous_link(self) -> str | None:
        return self._link(self.page.previous_cursor)

    def get_paginated_response(self, data) -> Response:
        return Response({"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data})

    def get_paginated_response_schema(self, schema: dict) -> dict:
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {**link, "example": f"http://api.example.org/accounts/?{CURSOR_PARAM}=eyJvIjoiMTIz"},
                "previous": {**link, "example": None},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": CURSOR_PARAM, "required": False, "in": "query",
                "description": "The page after (or before) a row: the cursor from a `next` or `previous` link.",
                "schema": {"type": "string"},
            },
            {
                "name": PAGE_SIZE_PARAM, "required": False, "in": "query",
                "description": f"Rows per page, 1 to {MAX_PAGE_SIZE} (default {self.page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
            },
        ]
