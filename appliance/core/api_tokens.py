"""REST API tokens: created (key shown once) and revoked here; `Authorization: Token <key>` checked here."""
from __future__ import annotations

import logging

from django.db import transaction
from rest_framework import authentication, exceptions

from appliance.core.audit import Actor, audit_record
from appliance.core.auth_limits import token_failed, token_retry_after
from appliance.core.models import ApiToken, hash_api_token

logger = logging.getLogger(__name__)


def api_token_create(*, user, name: str = "", actor: Actor) -> tuple[ApiToken, str]:
    """A new token for `user`. Returns the row and the clear-text key, which is stored nowhere."""
    key = ApiToken.new_key()
    with transaction.atomic():
        token = ApiToken.objects.create(user=user, name=name, key_prefix=key[:8],
                                        key_hash=hash_api_token(key))
        audit_record(actor=actor, action="api_token.create", obj=token,
                     changes={"user": user.get_username(), "name": name, "key_prefix": token.key_prefix})
    return token, key


def api_token_revoke(*, token: ApiToken, actor: Actor) -> None:
    with transaction.atomic():
        audit_record(actor=actor, action="api_token.revoke", obj=token,
                     changes={"user": token.user.get_username(), "key_prefix": token.key_prefix})
        token.delete()


class ApiTokenAuthentication(authentication.TokenAuthentication):
    """DRF's `Token <key>` scheme against hashed keys; too many bad keys from one address give 429."""

    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        wait = token_retry_after(request)
        if wait:
            raise exceptions.Throttled(wait, detail="Too many invalid API tokens from this address.")
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            if token_failed(request):
                logger.warning("API tokens from %s refused for a while: too many invalid ones",
                               request.META.get("REMOTE_ADDR"))
            raise

    def authenticate_credentials(self, key: str):
        token = ApiToken.objects.select_related("user").filter(key_hash=hash_api_token(key)).first()
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid token.")
        return token.user, token
