"""Bulk writes with history, fast on PostgreSQL (COPY), portable elsewhere.

``create`` and ``update`` write model rows and their simple-history rows in bulk: on
PostgreSQL primary keys are drawn from the table's sequence in one query and rows go in with
``COPY`` (updates through a temporary table and one ``UPDATE ... FROM``); on other databases
they use simple-history's ``bulk_create_with_history`` / ``bulk_update_with_history``. Each
object's ``_change_reason`` and ``_history_user`` are honoured, as simple-history does.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import JSONField, Model
from django.utils import timezone
from psycopg.types.json import Jsonb
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

BATCH = 1000


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """COPY plain rows (already in column order; text for JSON columns) into ``table``."""
    _copy(table, columns, rows)


def _copy(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    # The raw psycopg cursor bypasses Django's error translation: restore it (IntegrityError...).
    with connection.cursor() as cursor, connection.wrap_database_errors:
        with cursor.cursor.copy(f"COPY {connection.ops.quote_name(table)} ({quoted}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _value(field: Any, obj: Model) -> Any:
    value = getattr(obj, field.attname)
    if isinstance(field, JSONField) and value is not None:
        return Jsonb(value)
    return value


def copy_insert(model: type[Model], objs: Sequence[Model], *, with_pk: bool = False) -> None:
    """COPY ``objs`` into ``model``'s table (PostgreSQL); ``with_pk`` includes the id column."""
    fields = [f for f in model._meta.concrete_fields if with_pk or not f.primary_key]
    _copy(model._meta.db_table, [f.column for f in fields], ([_value(f, o) for f in fields] for o in objs))


def _history_rows(model: type[Model], objs: Sequence[Model], history_type: str) -> None:
    history = model.history.model  # type: ignore[attr-defined]
    tracked = {f.attname for f in model._meta.concrete_fields}
    now = timezone.now()
    fields = [f for f in history._meta.concrete_fields if not f.primary_key]
    columns = [f.column for f in fields]

    def row(obj: Model) -> list[Any]:
        user = getattr(obj, "_history_user", None)
        special = {
            "history_date": getattr(obj, "_history_date", now),
            "history_change_reason": getattr(obj, "_change_reason", None),
            "history_type": history_type,
            "history_user_id": getattr(user, "pk", None),
        }
        return [_value(f, obj) if f.attname in tracked else special.get(f.attname) for f in fields]

    _copy(history._meta.db_table, columns, (row(o) for o in objs))


def create(model: type[Model], objs: list[Model], *, history: bool = True) -> None:
    """Insert ``objs`` (assigning their primary keys) and, with ``history``, their "+" history rows."""
    if not objs:
        return
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="bulk_create")  # resolve FKs to objects created earlier
    if not is_postgres():
        if history:
            bulk_create_with_history(objs, model, batch_size=BATCH)
        else:
            model._default_manager.bulk_create(objs, batch_size=BATCH)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, model._meta.pk.column, len(objs)],
        )
        ids = [r[0] for r in cursor.fetchall()]
    for obj, pk in zip(objs, ids):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias
    copy_insert(model, objs, with_pk=True)
    if history:
        _history_rows(model, objs, "+")


def update(model: type[Model], objs: list[Model], fields: list[str], *, history: bool = True) -> None:
    """Update ``fields`` of ``objs`` and, with ``history``, write their "~" history rows."""
    if not objs:
        return
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="bulk_update", fields=[model._meta.get_field(f) for f in fields])
    if not is_postgres():
        if history:
            bulk_update_with_history(objs, model, fields, batch_size=BATCH // 2)
        else:
            model._default_manager.bulk_update(objs, fields, batch_size=BATCH // 2)
        return
    table = model._meta.db_table
    concrete = [model._meta.get_field(f) for f in fields]
    columns = [model._meta.pk.column] + [f.column for f in concrete]
    quote = connection.ops.quote_name
    temporary = f"incoming_{table}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE {quote(temporary)} AS SELECT {', '.join(quote(c) for c in columns)} FROM {quote(table)} WITH NO DATA"
        )
    # On an error the caller's transaction rolls back, and the temporary table with it.
    _copy(temporary, columns, ([obj.pk] + [_value(f, obj) for f in concrete] for obj in objs))
    assignments = ", ".join(f"{quote(c)} = incoming.{quote(c)}" for c in columns[1:])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(table)} AS target SET {assignments} FROM {quote(temporary)} AS incoming "
            f"WHERE target.{quote(columns[0])} = incoming.{quote(columns[0])}"
        )
        cursor.execute(f"DROP TABLE {quote(temporary)}")
    if history:
        _history_rows(model, objs, "~")
