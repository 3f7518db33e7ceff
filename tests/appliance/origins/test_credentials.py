"""Origin passwords at rest: encrypted in the database, migrated from clear text, keys rotate."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from appliance.core.audit import Actor
from appliance.env import env_fernet_keys
from appliance.origins.credentials import CredentialsKeyError, decrypt_password, encrypt_password
from appliance.origins.models import Origin
from appliance.origins.services import origin_update
from tests.appliance.factories import OriginFactory

PASSWORD = "s3cret, with: punctuation ü"


def raw_column(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT password_encrypted FROM {Origin._meta.db_table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_the_database_holds_a_fernet_token_not_the_password():
    origin = OriginFactory(password=PASSWORD)
    stored = raw_column(origin.pk)
    assert PASSWORD not in stored and stored.startswith("gAAAAA")  # Fernet version byte 0x80
    assert decrypt_password(stored) == PASSWORD
    assert encrypt_password(PASSWORD) != stored  # fresh IV each time: equal passwords do not show


@pytest.mark.django_db
def test_setting_the_same_password_again_is_not_a_change():
    origin = OriginFactory(password=PASSWORD)
    before = raw_column(origin.pk)
    origin_update(origin=origin, actor=Actor(name="test"), password=PASSWORD)
    assert raw_column(origin.pk) == before
    origin_update(origin=origin, actor=Actor(name="test"), password="other")
    assert decrypt_password(raw_column(origin.pk)) == "other"


@pytest.mark.django_db
def test_rotation_reencrypts_under_the_new_key_and_the_old_key_can_go(settings, capsys):
    old = list(settings.APPLIANCE_ORIGIN_CREDENTIALS_KEYS)
    origin = OriginFactory(password=PASSWORD)
    OriginFactory(password="")  # nothing to rotate
    new = Fernet.generate_key().decode()
    settings.APPLIANCE_ORIGIN_CREDENTIALS_KEYS = [new, *old]
    assert decrypt_password(raw_column(origin.pk)) == PASSWORD  # old tokens still read
    call_command("origin_credentials_rotate")
    assert "re-encrypted 1 origin password(s)" in capsys.readouterr().out
    settings.APPLIANCE_ORIGIN_CREDENTIALS_KEYS = [new]
    assert decrypt_password(raw_column(origin.pk)) == PASSWORD
    settings.APPLIANCE_ORIGIN_CREDENTIALS_KEYS = old
    with pytest.raises(CredentialsKeyError):
        decrypt_password(raw_column(origin.pk))


@pytest.mark.django_db(transaction=True)
def test_migration_encrypts_clear_text_rows_and_reverses():
    executor = MigrationExecutor(connection)
    executor.migrate([("origins", "0001_initial")])
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO origins_origin (created_at, updated_at, name, base_url, route_prefix, allowed, "
                "username, password, cache_policy, cache_ttl, stale_if_error, transport, live, split) VALUES "
                "(now(), now(), 'old', 'rtsp://o/', '/o', true, 'u', %s, 'obey', 0, 0, 'auto', false, "
                "'auto'), "
                "(now(), now(), 'open', 'rtsp://p/', '/p', true, '', '', 'obey', 0, 0, 'auto', false, "
                "'auto')",
                [PASSWORD])
        executor = MigrationExecutor(connection)
        executor.migrate([("origins", "0002_password_encrypted")])
        rows = dict(Origin.objects.values_list("name", "password_encrypted"))
        assert PASSWORD not in rows["old"] and decrypt_password(rows["old"]) == PASSWORD
        assert rows["open"] == ""

        executor = MigrationExecutor(connection)
        executor.migrate([("origins", "0001_initial")])
        with connection.cursor() as cursor:
            cursor.execute("SELECT name, password FROM origins_origin ORDER BY name")
            assert cursor.fetchall() == [("old", PASSWORD), ("open", "")]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_keys_come_from_the_variable_or_its_file_newest_first(tmp_path: Path):
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    unused = tmp_path / "never-made"
    assert env_fernet_keys("K", generated_file=unused, environ={"K": f"{first}, {second}"}) == [first, second]
    key_file = tmp_path / "keys"
    key_file.write_text(f"{first}\n{second}\n")
    assert env_fernet_keys("K", generated_file=unused, environ={"K_FILE": str(key_file)}) == [first, second]
    assert not unused.exists()


def test_unset_keys_are_generated_once_and_kept_private(tmp_path: Path):
    key_file = tmp_path / "var" / "origin-credentials-key"
    generated = env_fernet_keys("K", generated_file=key_file, environ={})
    assert len(generated) == 1 and Fernet(generated[0])
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    assert env_fernet_keys("K", generated_file=key_file, environ={}) == generated
    assert [p.name for p in key_file.parent.iterdir()] == ["origin-credentials-key"]  # no draft left


@pytest.mark.parametrize("value", ["not-a-key", "short==", " , "])
def test_malformed_keys_stop_start_up(tmp_path: Path, value: str):
    with pytest.raises(ImproperlyConfigured, match="K"):
        env_fernet_keys("K", generated_file=tmp_path / "k", environ={"K": value})


@pytest.fixture
def unreadable_origin(settings):
    """An origin whose password was encrypted under a key that has since been dropped."""
    origin = OriginFactory(username="u", password=PASSWORD, base_url="rtsp://127.0.0.1:9/")
    settings.APPLIANCE_ORIGIN_CREDENTIALS_KEYS = [Fernet.generate_key().decode()]
    return origin


@pytest.mark.django_db
def test_sendevent_with_an_unreadable_password_is_retried_later_not_sent(unreadable_origin):
    from appliance.uplink.models import UplinkEvent, UplinkState
    from appliance.uplink.task_services import uplink_send_batch

    event = UplinkEvent.objects.create(origin=unreadable_origin, url="rtsp://127.0.0.1:9/a.wmv",
                                       event_type="remote-open", body="1\r\n1,28,1\r\n")
    assert uplink_send_batch(limit=5) == 1
    event.refresh_from_db()
    assert (event.state, event.attempts) == (UplinkState.PENDING, 1)  # not failed for good: keys can be fixed
    assert "cannot be decrypted" in event.last_error and PASSWORD not in event.last_error


@pytest.mark.django_db
def test_revalidation_with_an_unreadable_password_logs_one_line_and_waits(unreadable_origin, caplog):
    import logging

    from appliance.content.task_services import content_revalidate
    from tests.appliance.factories import CachedContentFactory

    row = CachedContentFactory(origin=unreadable_origin, url="rtsp://127.0.0.1:9/clip")
    with caplog.at_level(logging.ERROR, logger="appliance.content.task_services"):
        assert content_revalidate(content_id=row.pk) is None
    ours = [r for r in caplog.records if r.name == "appliance.content.task_services"]
    assert len(ours) == 1 and ours[0].exc_info is None and unreadable_origin.name in ours[0].getMessage()
