from django.conf import settings
from django.db import migrations, models

NEW_GRAINS = ("cs",)


def add_url_software_grain(apps, schema_editor):
    """The url x software grain built in bulk (writers of play logs wait meanwhile: every pending row is folded
    first), then the triggers and the fold keeping it (rollup_sql.add_grains_sql, as migrations 0014 and 0015).
    Backwards the cs rows go and the triggers keep 0015's grains."""
    _run(schema_editor, forwards=True)


def drop_url_software_grain(apps, schema_editor):
    _run(schema_editor, forwards=False)


def _run(schema_editor, *, forwards: bool) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite (quick start): reports read the raw table
    from appliance.playback import rollup_sql

    statements = (rollup_sql.add_grains_sql(settings.TIME_ZONE, NEW_GRAINS, rollup_sql.GRAINS_0021, overlaps=True)
                  if forwards else
                  rollup_sql.drop_grains_sql(settings.TIME_ZONE, NEW_GRAINS, rollup_sql.GRAINS_0015, overlaps=True))
    for statement in statements:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    """by-player-software with a url prefix from the roll-ups: url x software cells and their player rows (grain
    cs), and the index reading a prefix's cells with every sum (index-only), built after the rows."""

    dependencies = [
        ('playback', '0020_report_player_url_overlap'),
    ]

    operations = [
        migrations.RunPython(add_url_software_grain, drop_url_software_grain),
        migrations.AddIndex(
            model_name='reportcell',
            index=models.Index(condition=models.Q(('grain', 'cs')), fields=['key_a'], include=('key_b', 'key_hash', 'plays', 'duration_sum', 'bw_sum', 'bw_n', 'received_sum', 'lost_sum', 'buffer_count', 'buffer_seconds', 'players'), name='reportcell_url_software', opclasses=['text_pattern_ops']),
        ),
        # the url overlap indexes (0020) over the cs player rows too: its repeats and the fold's partitions
        migrations.RemoveIndex(
            model_name='reportplayer',
            name='reportplayer_url_repeats',
        ),
        migrations.AddIndex(
            model_name='reportplayer',
            index=models.Index(condition=models.Q(('grain__in', ['cd', 'co', 'cs']), ('prev_url_overlap__isnull', False)), fields=['key_hash', 'grain', 'prev_url_overlap'], include=('origin_id', 'day'), name='reportplayer_url_repeats'),
        ),
        migrations.RemoveIndex(
            model_name='reportplayer',
            name='reportplayer_url_partition',
        ),
        migrations.AddIndex(
            model_name='reportplayer',
            index=models.Index(condition=models.Q(('grain__in', ['cd', 'co', 'cs'])), fields=['grain', 'player', 'day', 'origin_id'], include=('key_hash',), name='reportplayer_url_partition'),
        ),
    ]
