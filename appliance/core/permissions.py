"""Roles: group "viewer" reads, group "operator" reads and writes, superusers do anything."""
from rest_framework.permissions import SAFE_METHODS, BasePermission

VIEWER_GROUP = "viewer"
OPERATOR_GROUP = "operator"


def user_roles(user) -> set[str]:
    cached = getattr(user, "_appliance_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._appliance_roles = cached
    return cached


def can_read(user) -> bool:
    return bool(user and user.is_authenticated) and (
        user.is_superuser or bool(user_roles(user) & {VIEWER_GROUP, OPERATOR_GROUP}))


def can_write(user) -> bool:
    return bool(user and user.is_authenticated) and (user.is_superuser or OPERATOR_GROUP in user_roles(user))


class RolePermission(BasePermission):
    message = "Your role does not allow this action."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return can_read(request.user)
        return can_write(request.user)
