from django.conf import settings
from django.db import migrations


def install_fold(apps, schema_editor):
    """playback_rollup_fold with its claimed rows analyzed before the roll-up statements (rollup_sql)."""
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite (quick start): no roll-ups
    from appliance.playback.rollup_sql import install_fold_sql

    for statement in install_fold_sql(settings.TIME_ZONE):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('playback', '0015_report_returning_and_week_grain'),
    ]

    # backwards: the faster function stays; it adds the same rows
    operations = [migrations.RunPython(install_fold, migrations.RunPython.noop)]
