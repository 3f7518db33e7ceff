"""Origin passwords move from clear text to Fernet tokens (appliance.origins.credentials)."""

from django.db import migrations, models


def encrypt_existing(apps, schema_editor):
    from appliance.origins.credentials import encrypt_password

    Origin = apps.get_model("origins", "Origin")
    for origin in Origin.objects.exclude(password="").only("pk", "password"):
        Origin.objects.filter(pk=origin.pk).update(password_encrypted=encrypt_password(origin.password),
                                                   password="")


def decrypt_existing(apps, schema_editor):
    from appliance.origins.credentials import decrypt_password

    Origin = apps.get_model("origins", "Origin")
    for origin in Origin.objects.exclude(password_encrypted="").only("pk", "password_encrypted"):
        Origin.objects.filter(pk=origin.pk).update(password=decrypt_password(origin.password_encrypted))


class Migration(migrations.Migration):

    dependencies = [
        ("origins", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="origin",
            name="password_encrypted",
            field=models.TextField(blank=True),
        ),
        migrations.RunPython(encrypt_existing, decrypt_existing),
        migrations.RemoveField(
            model_name="origin",
            name="password",
        ),
    ]
