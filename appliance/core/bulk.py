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
import functools
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
    return _dumps(rows)


def _dumps(rows: list[dict]) -> str:
    return json.dumps(rows, default=_json_value, ensure_ascii=False, allow_nan=False)


def _names(fields) -> list[str]:
    return [connection.ops.quote_name(f.column) for f in fields]


def _insert_fields(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


@functools.cache
def _insert_sql(model: type[models.Model], fields: tuple[models.Field, ...]) -> str:
    meta = model._meta
    columns = ", ".join(_names(fields))
    table, pk = connection.ops.quote_name(meta.db_table), connection.ops.quote_name(meta.pk.column)
    return (f"INSERT INTO {table} ({columns}) SELECT {columns} FROM json_populate_recordset(NULL::{table}, "
            f"%s::json) WITH ORDINALITY AS r ORDER BY r.ordinality RETURNING {pk}")


@functools.cache
def _update_sql(model: type[models.Model], fields: tuple[models.Field, ...]) -> str:
    meta = model._meta
    table = connection.ops.quote_name(meta.db_table)
    pk = connection.ops.quote_name(meta.pk.column)
    assignments = ", ".join(f"{name} = r.{name}" for name in _names(fields))
    return (f"UPDATE {table} AS t SET {assignments} "
            f"FROM json_populate_recordset(NULL::{table}, %s::json) AS r WHERE t.{pk} = r.{pk}")


def _insert_json(model: type[models.Model], fields: list[models.Field], rows_json: str) -> list:
    """INSERT the JSON rows (in their order) and return their primary keys in the same order."""
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(model, tuple(fields)), [rows_json])  # SQL text built once per model
        return [row[0] for row in cursor.fetchall()]


def _update_json(model: type[models.Model], fields: list[models.Field], rows_json: str) -> None:
    """UPDATE `fields` of the rows named by the primary key column of each JSON row."""
    with connection.cursor() as cursor:
        cursor.execute(_update_sql(model, tuple(fields)), [rows_json])


def insert_rows(model: type[models.Model], objs: list[models.Model]) -> None:
    """INSERT unsaved `objs` (every concrete field but the auto primary key) in one statement and set
    their primary keys, in order, as bulk_create does. Field defaults and auto_now(_add) apply."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=500)
        return
    fields = _insert_fields(model)
    for obj, pk in zip(objs, _insert_json(model, fields, _rows_json(objs, fields, add=True)), strict=True):
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
    _update_json(model, fields, _rows_json(objs, [meta.pk, *fields], add=False))


# --- rows as plain {column: value} dicts (report ingestion builds no model instance) ---------------

@functools.cache
def column_defaults(model: type[models.Model]) -> dict[str, object]:
    """{column: default} of every concrete column but the auto primary key, as an unsaved instance has
    them (callable defaults called once: the dict is shared, never mutate its values)."""
    return {f.column: f.get_default() for f in _insert_fields(model)}


@functools.cache
def _float_columns(model: type[models.Model]) -> tuple[str, ...]:
    return tuple(f.column for f in model._meta.concrete_fields if isinstance(f, models.FloatField))


def _value_rows_json(model: type[models.Model], rows: list[dict]) -> str:
    floats = _float_columns(model)
    for row in rows:  # JSON has no NaN/Infinity: float8 input syntax as text (only float columns can hold them)
        for column in floats:
            value = row.get(column)
            if isinstance(value, float) and not math.isfinite(value):
                row[column] = _cell(value)
    return _dumps(rows)


def insert_values(model: type[models.Model], rows: list[dict]) -> list:
    """INSERT `rows`, each {column: value} for every column of column_defaults(model), in one statement;
    returns their primary keys in order. No field's pre_save runs: set auto_now columns yourself."""
    if not rows:
        return []
    if connection.vendor != "postgresql":
        objs = _instances(model, rows)
        model.objects.bulk_create(objs, batch_size=500)
        return [obj.pk for obj in objs]
    return _insert_json(model, _insert_fields(model), _value_rows_json(model, rows))


def update_values(model: type[models.Model], rows: list[dict], columns: list[str]) -> None:
    """UPDATE `columns` of `rows` ({column: value}, with the primary key column) in one statement."""
    if not rows:
        return
    by_column = {f.column: f for f in model._meta.concrete_fields}
    fields = [by_column[c] for c in columns]
    if connection.vendor != "postgresql":
        model.objects.bulk_update(_instances(model, rows), [f.name for f in fields], batch_size=500)
        return
    _update_json(model, fields, _value_rows_json(model, rows))


def _instances(model: type[models.Model], rows: list[dict]) -> list[models.Model]:
    attnames = {f.column: f.attname for f in model._meta.concrete_fields}
    return [model(**{attnames[c]: v for c, v in row.items()}) for row in rows]
