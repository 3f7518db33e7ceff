from django.conf import settings
from django.db import migrations


def derive_players(apps, schema_editor):
    """The all-time grains o, c, s and so lose their player rows; their cells' players are kept from the day grains'
    first days from now on (rollup_sql.derive_players_sql). Backwards the rows are written again from the play
    logs and 0021's triggers come back. Both fold every pending row first, writers of play logs waiting."""
    _run(schema_editor, forwards=True)


def underive_players(apps, schema_editor):
    _run(schema_editor, forwards=False)


def _run(schema_editor, *, forwards: bool) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite (quick start): reports read the raw table
    from appliance.playback import rollup_sql

    statements = (rollup_sql.derive_players_sql if forwards else rollup_sql.underive_players_sql)(settings.TIME_ZONE)
    for statement in statements:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    """A fold writes a quarter fewer player rows: the all-time grains' distinct players come from their day grains."""

    dependencies = [
        ('playback', '0021_report_url_software_grain'),
    ]

    operations = [
        migrations.RunPython(derive_players, underive_players),
    ]
