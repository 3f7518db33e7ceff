"""Drop the three ReportPlayer indexes no statement reads any more.

reportplayer_range (0004), reportplayer_returning (0005) and reportplayer_origin_returning (0014) served
range reports that counted player rows; since migration 0015 those reports read the cells' first_players
and ReportReturning instead, which the triggers keep. No report used them in 73 queries x 8 runs over 10M
play logs (pg_stat_user_indexes.idx_scan 0), while every player row a fold writes in a range grain updated
them: 1.9 GB at 10M play logs, and 11-18 % of the fold's backend CPU (docs/scaling.md).
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("playback", "0022_report_all_time_players_derived"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="reportplayer", name="reportplayer_range"),
        migrations.RemoveIndex(model_name="reportplayer", name="reportplayer_returning"),
        migrations.RemoveIndex(model_name="reportplayer", name="reportplayer_origin_returning"),
    ]
