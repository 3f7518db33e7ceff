"""StreamSession rows as plain attribute objects for report batch ingestion: locked, read and written in
one statement each, with no model instance built (model instances and ORM query compilation were a
third of a report POST's CPU). The report appliers (appliance.playback.services) work on either.
"""
from __future__ import annotations

import json

from django.db import connection
from django.utils import timezone

from appliance.core.bulk import column_defaults, insert_values, update_values
from appliance.playback.models import StreamSession

_META = StreamSession._meta
COLUMNS = tuple(f.column for f in _META.concrete_fields)  # the column is the attname for every field
_SELECT = (f"SELECT {', '.join(COLUMNS)} FROM {_META.db_table} WHERE node_id = %s AND session_id = ANY(%s) "
           "FOR UPDATE")


class SessionRow:
    """One playback_streamsession row: an attribute per column (origin_id, node_id...)."""

    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)

    @property
    def pk(self):
        return self.id

    def _set_origin(self, origin) -> None:
        self.origin_id = origin.pk if origin is not None else None

    origin = property(None, _set_origin)  # written by the appliers (started_apply); read origin_id


def session_row_new(*, node_id: int, session_id: str) -> SessionRow:
    """A row not inserted yet (id None), with the model's defaults."""
    values = dict(column_defaults(StreamSession))
    values.update(id=None, node_id=node_id, session_id=session_id, transports=[])
    return SessionRow(values)


def session_rows_locked(*, node_id: int, session_ids: set[str]) -> dict[str, SessionRow]:
    """The node's sessions among `session_ids`, locked (FOR UPDATE) for the caller's transaction."""
    if not session_ids:
        return {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_SELECT, [node_id, list(session_ids)])
            rows = cursor.fetchall()
    else:
        rows = (StreamSession.objects.select_for_update().filter(node_id=node_id, session_id__in=session_ids)
                .values_list(*COLUMNS))
    found = {}
    for values in rows:
        row = SessionRow(dict(zip(COLUMNS, values, strict=True)))
        if isinstance(row.transports, str):  # jsonb comes back as text from a raw cursor
            row.transports = json.loads(row.transports)
        found[row.session_id] = row
    return found


def session_rows_save(new: list[SessionRow], changed: list[SessionRow], fields: tuple[str, ...]) -> None:
    """INSERT `new` (setting their ids, in order) and UPDATE `fields` (column names) of `changed`, one
    statement each; updated_at is set as auto_now does."""
    now = timezone.now()
    for row in new:
        row.updated_at = now
    columns = column_defaults(StreamSession)
    ids = insert_values(StreamSession, [{c: getattr(row, c) for c in columns} for row in new])
    for row, pk in zip(new, ids, strict=True):
        row.id = pk
    for row in changed:
        row.updated_at = now
    update_values(StreamSession, [{"id": row.id, **{c: getattr(row, c) for c in fields}} for row in changed],
                  list(fields))
