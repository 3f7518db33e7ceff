"""Password logins (dashboard form, admin form) refused outright while too many have failed."""
from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from appliance.core.auth_limits import client_address, login_failed, login_retry_after, login_succeeded

logger = logging.getLogger(__name__)


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if request is not None and login_retry_after(request, username):
            raise PermissionDenied  # ends authenticate() for every backend: the password is not even checked
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if request is not None:
            if user is None:
                if login_failed(request, username):
                    logger.warning("logins from %s or as %r refused for a while: too many failures",
                                   client_address(request), username)
            else:
                login_succeeded(request, username)
        return user
