from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("origins", "0002_password_encrypted")]

    operations = [
        migrations.AddField(
            model_name="origin",
            name="tls_verify",
            field=models.BooleanField(
                default=True, verbose_name="Verify TLS certificate",
                help_text="rtsps:// origins: check the origin's certificate and host name (turn off only for "
                          "an origin with a self-signed certificate on a trusted network)"),
        ),
    ]
