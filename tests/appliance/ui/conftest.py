import pytest
from django.contrib.auth.models import Group, User

from appliance.core.permissions import OPERATOR_GROUP, VIEWER_GROUP


def _user(name: str, group: str | None) -> User:
    user = User.objects.create_user(name, password="pw-" + name)
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def viewer(db):
    return _user("vera", VIEWER_GROUP)


@pytest.fixture
def operator(db):
    return _user("otto", OPERATOR_GROUP)


@pytest.fixture
def no_role(db):
    return _user("nora", None)


@pytest.fixture
def web_server(transactional_db, tmp_path):
    """gunicorn (uvicorn worker) serving the ASGI app against the test database; Redis channel layer."""
    import os

    from django.db import connection

    from tests.appliance.ui.web_server import WebServer

    if connection.vendor != "postgresql":
        pytest.skip("the live web server tests need PostgreSQL (set DATABASE_URL=postgres://...)")
    server = WebServer(database=connection.settings_dict, workdir=tmp_path,
                       redis_url=os.environ.get("REDIS_URL")).start()
    yield server
    server.stop()
