"""REST API tokens: only a hash is stored, the key is shown once, DRF's clear-text tokens move over."""

from __future__ import annotations

import hashlib
from io import StringIO

import pytest
from django.contrib.admin.sites import site
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import RequestFactory
from rest_framework.test import APIClient

from appliance.core.models import ApiToken, AuditLog
from tests.appliance.factories import UserFactory

URL = "/api/v1/origins/"


def create_token(username: str, *args: str) -> str:
    out = StringIO()
    call_command("api_token_create", username, *args, stdout=out)
    return out.getvalue().strip()


def token_client(key: str, address: str = "127.0.0.1") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.mark.django_db
def test_the_key_is_printed_once_and_only_its_hash_is_stored(viewer):
    key = create_token(viewer.username, "--name", "nightly export")
    assert len(key) >= 40
    token = ApiToken.objects.get(user=viewer)
    assert token.name == "nightly export" and token.key_prefix == key[:8]
    stored = [str(v) for v in ApiToken.objects.values_list(*[f.attname for f in ApiToken._meta.fields]).get()]
    assert key not in stored and token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert token_client(key).get(URL).status_code == 200
    audit = AuditLog.objects.get(action="api_token.create")
    assert audit.changes == {"user": viewer.username, "name": "nightly export", "key_prefix": key[:8]}


@pytest.mark.django_db
def test_wrong_key_and_inactive_user_get_401(viewer):
    key = create_token(viewer.username)
    response = token_client(key[:-1] + ("A" if key[-1] != "A" else "B")).get(URL)
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    viewer.is_active = False
    viewer.save()
    assert token_client(key).get(URL).status_code == 401


@pytest.mark.django_db
def test_unknown_user_is_a_command_error():
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        call_command("api_token_create", "ghost")


@pytest.mark.django_db
def test_revoking_in_the_admin_is_audited_and_ends_the_token(viewer):
    key = create_token(viewer.username)
    admin_user = UserFactory(is_superuser=True, is_staff=True)
    request = RequestFactory().post("/admin/", REMOTE_ADDR="192.0.2.9")
    request.user = admin_user
    site._registry[ApiToken].delete_model(request, ApiToken.objects.get(user=viewer))
    assert token_client(key).get(URL).status_code == 401
    audit = AuditLog.objects.get(action="api_token.revoke")
    assert (audit.actor, audit.remote_addr, audit.changes["key_prefix"]) == (admin_user, "192.0.2.9", key[:8])


@pytest.mark.django_db(transaction=True)
def test_migration_moves_drf_clear_text_tokens_hashed_and_deletes_them():
    user = UserFactory(roles=["viewer"])
    drf_key = "0123456789abcdef0123456789abcdef01234567"  # DRF's format: 40 hex digits
    executor = MigrationExecutor(connection)
    executor.migrate([("core", "0002_roles")])
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
                           "created timestamp with time zone NOT NULL, user_id integer NOT NULL)")
            cursor.execute("INSERT INTO authtoken_token VALUES (%s, '2026-01-02T03:04:05Z', %s)",
                           [drf_key, user.pk])
        executor = MigrationExecutor(connection)
        executor.migrate([("core", "0003_api_tokens")])
        token = ApiToken.objects.get(user=user)
        assert token.key_hash == hashlib.sha256(drf_key.encode()).hexdigest()
        assert token.created_at.isoformat() == "2026-01-02T03:04:05+00:00"
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM authtoken_token")
            assert cursor.fetchone()[0] == 0
        assert token_client(drf_key).get(URL).status_code == 200  # the operator's script still works
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS authtoken_token")
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db
def test_the_admin_lists_tokens_by_prefix_and_never_shows_a_hash(client, viewer):
    key = create_token(viewer.username, "--name", "backup")
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    token = ApiToken.objects.get(user=viewer)
    listing = client.get("/admin/core/apitoken/")
    detail = client.get(f"/admin/core/apitoken/{token.pk}/change/")
    assert listing.status_code == 200 and detail.status_code == 200
    assert key[:8].encode() in listing.content and b"backup" in listing.content
    for page in (listing, detail):
        assert token.key_hash.encode() not in page.content and key.encode() not in page.content
    assert client.get("/admin/core/apitoken/add/").status_code == 403  # keys come from api_token_create
