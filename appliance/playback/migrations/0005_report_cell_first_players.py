from django.db import migrations, models


def install_first_players(apps, schema_editor):
    """Triggers keeping ReportCell.first_players, and its value for the existing cells."""
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite (quick start): reports read the raw table
    from appliance.playback.rollup_sql import backfill_first_players_sql, install_first_players_sql

    for statement in install_first_players_sql() + backfill_first_players_sql():
        schema_editor.execute(statement, params=None)


def uninstall_first_players(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        from appliance.playback.rollup_sql import uninstall_first_players_sql

        for statement in uninstall_first_players_sql():
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('playback', '0004_report_player_prev_day'),
    ]

    operations = [
        migrations.AddField(
            model_name='reportcell',
            name='first_players',
            field=models.BigIntegerField(db_default=0, default=0, help_text="range grains: players whose first day in this (origin, key) is this cell's day (rollup_sql.py)"),
        ),
        migrations.RunPython(install_first_players, uninstall_first_players),
        migrations.AddIndex(
            model_name='reportplayer',
            index=models.Index(condition=models.Q(('grain__in', ['do', 'cd', 'sd']), ('prev_day__isnull', False)), fields=['grain', 'day', 'prev_day'], include=('origin_id', 'key_hash'), name='reportplayer_returning'),
        ),
    ]
