from django.db import migrations, models


class Migration(migrations.Migration):
    """The url-prefix covering index also holds logged_at (a key: a range is bounded inside the index scan) and
    origin (reports with a url prefix and a range, an origin, or grouped by origin or day read no heap page).
    Built under a new name before the old one is dropped: writes to the play logs wait during the build, reads
    only for the drop at the end."""

    dependencies = [
        ('playback', '0018_report_cell_url_day_sums'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='playlog',
            index=models.Index(condition=models.Q(('kind', 'logplay')), fields=['url', 'logged_at'], include=('origin', 'c_hostexe', 'c_playerversion', 'c_playerid', 'x_duration', 'avgbandwidth', 'c_pkts_received', 'c_pkts_lost_client', 'c_buffercount', 'c_totalbuffertime'), name='playlog_report_url_range', opclasses=['varchar_pattern_ops', 'timestamptz_ops']),
        ),
        migrations.RemoveIndex(
            model_name='playlog',
            name='playlog_report_url_prefix',
        ),
    ]
