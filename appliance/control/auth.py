"""Bearer-token authentication for proxyd nodes (/internal/v1/ only)."""
from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission

from appliance.control.poll import SnapshotPoll, poll_authenticate
from appliance.nodes.models import ProxyNode, hash_token
from appliance.nodes.selectors import node_by_token_hash


class NodePrincipal:
    """request.user for a node: authenticated, but never a Django user and never staff."""

    is_authenticated = True
    is_anonymous = False
    is_superuser = False
    is_staff = False

    def __init__(self, node: ProxyNode, poll: SnapshotPoll | None = None):
        self.node = node
        self.poll = poll  # snapshot polls only

    def __str__(self) -> str:
        return f"node:{self.node.name}"


class ProxydTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Malformed token.") from None
        # Lookup is by a SHA-256 of the token, so timing reveals nothing about the token itself;
        # the final comparison is constant-time anyway.
        principal = self.principal(hash_token(token))
        if principal is None or not principal.node.token_matches(token):
            raise exceptions.AuthenticationFailed("Unknown node token.")
        return principal, principal.node

    def principal(self, token_hash: str) -> NodePrincipal | None:
        node = node_by_token_hash(token_hash)
        return NodePrincipal(node) if node else None

    def authenticate_header(self, request) -> str:
        return f'{self.keyword} realm="proxyd"'


class ProxydPollAuthentication(ProxydTokenAuthentication):
    """For snapshot polls: the lookup also marks the node seen and reads its cached snapshot state."""

    def principal(self, token_hash: str) -> NodePrincipal | None:
        poll = poll_authenticate(token_hash, timezone.now())
        return NodePrincipal(poll.node, poll) if poll else None


class IsProxyNode(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, ProxyNode)
