"""Bulk writes of model rows as one JSON parameter, expanded by PostgreSQL (json_populate_recordset).

The ORM's bulk_create/bulk_update compile and adapt every value of every row in Python (bulk_update
also builds a CASE per field); for report batch ingestion that cost more than the statements
themselves. Here the rows travel as one JSON text that PostgreSQL parses in C, typed by the table's
own row type, so the SQL text depends only on the model and the field list. Other databases (SQLite
for the quick start) get the ORM's bulk methods.
"""
from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid

from django.db import connection, models


def _json_value(value):
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()  # full precision (DjangoJSONEncoder cuts microseconds)
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a column value")


def _cell(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")  # float8 input syntax
    return value


def _rows_json(objs: list[models.Model], fields: list[models.Field], *, add: bool) -> str:
    rows = [{f.column: _cell(f.pre_save(obj, add)) for f in fields} for obj in objs]
    return json.dumps(rows, default=_json_value, ensure_ascii=False, allow_nan=False)


def _names(fields: list[models.Field]) -> list[str]:
    return [connection.ops.quote_name(f.column) for f in fields]


def insert_rows(model: type[models.Model], objs: list[models.Model]) -> None:
    """INSERT unsaved `objs` (every concrete field but the auto primary key) in one statement and set
    their primary keys, in order, as bulk_create does. Field defaults and auto_now(_add) apply."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=500)
        return
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    columns = ", ".join(_names(fields))
    table, pk = connection.ops.quote_name(meta.db_table), connection.ops.quote_name(meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM json_populate_recordset(NULL::{table}, "
            f"%s::json) WITH ORDINALITY AS r ORDER BY r.ordinality RETURNING {pk}",
            [_rows_json(objs, fields, add=True)])
        for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
            obj.pk = pk
            obj._state.adding = False


def update_rows(model: type[models.Model], objs: list[models.Model], field_names: list[str]) -> None:
    """UPDATE the saved `objs`' `field_names` in one statement (auto_now fields are set, as save() does)."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, field_names, batch_size=500)
        return
    meta = model._meta
    fields = [meta.get_field(name) for name in field_names]
    table = connection.ops.quote_name(meta.db_table)
    pk = connection.ops.quote_name(meta.pk.column)
    assignments = ", ".join(f"{name} = r.{name}" for name in _names(fields))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS t SET {assignments} "
            f"FROM json_populate_recordset(NULL::{table}, %s::json) AS r WHERE t.{pk} = r.{pk}",
            [_rows_json(objs, [meta.pk, *fields], add=False)])
