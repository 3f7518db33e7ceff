"""API tokens stored hashed. Keys of DRF's clear-text authtoken table (the app this replaces) move over
hashed, so scripts keep working, and the clear-text rows are deleted."""

import hashlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


DRF_TOKEN_TABLE = "authtoken_token"


def move_drf_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if DRF_TOKEN_TABLE not in connection.introspection.table_names():
        return  # installed after rest_framework.authtoken was dropped
    ApiToken = apps.get_model("core", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id, created FROM {DRF_TOKEN_TABLE}")
        rows = cursor.fetchall()
        for key, user_id, created in rows:
            token = ApiToken.objects.create(user_id=user_id, name="moved from drf_create_token",
                                            key_prefix=key[:8],
                                            key_hash=hashlib.sha256(key.encode("utf-8")).hexdigest())
            ApiToken.objects.filter(pk=token.pk).update(created_at=created)
        cursor.execute(f"DELETE FROM {DRF_TOKEN_TABLE}")


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0002_roles'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ApiToken',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(blank=True, max_length=100)),
                ('key_prefix', models.CharField(help_text='first characters of the key, to tell tokens apart', max_length=8)),
                ('key_hash', models.CharField(max_length=64, unique=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_tokens', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['user_id', 'created_at'],
            },
        ),
        # Not reversible into clear text: going back leaves the hashed tokens where they are.
        migrations.RunPython(move_drf_tokens, migrations.RunPython.noop),
    ]
