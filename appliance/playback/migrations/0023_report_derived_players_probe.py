"""The derived-players upkeep of 0022 (ReportPlayer's first-players triggers) joined on the cells' four keys.

Its UPDATE filtered the cells on the constant all-time day; on a cell table with no statistics yet (a fresh or
just rebuilt database) the planner took that for one row and re-ran the aggregate over the transition table once
per cell: a first fold of 20,000 play logs took 42-56 s instead of 5. The triggers are installed again with the
statement of rollup_sql._derived_players_delta, which joins on the day too; what they compute is unchanged, so
backwards installs the same functions.
"""

from django.db import migrations


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite (quick start): no roll-ups
    from appliance.playback import rollup_sql

    for statement in rollup_sql.install_first_players_sql(derived=True):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("playback", "0022_report_all_time_players_derived"),
    ]

    operations = [migrations.RunPython(install, install)]
