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
