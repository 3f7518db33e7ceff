from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('nodes', '0002_node_origins'),
    ]

    operations = [
        migrations.AddField(
            model_name='proxynode',
            name='rtsp_address',
            field=models.CharField(blank=True, max_length=255),
        ),
    ]
