from django.contrib import admin

from appliance.core.api_tokens import api_token_revoke
from appliance.core.audit import Actor
from appliance.core.models import ApiToken, AuditLog


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_name", "action", "object_type", "object_id", "remote_addr"]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_name", "object_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Lists and revokes tokens. Creating one is `manage.py api_token_create`, which shows the key once."""

    list_display = ["key_prefix", "name", "user", "created_at"]
    search_fields = ["user__username", "name", "key_prefix"]
    readonly_fields = ["user", "name", "key_prefix", "created_at"]
    exclude = ["key_hash"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        api_token_revoke(token=obj, actor=Actor.from_request(request))

    def delete_queryset(self, request, queryset):
        for token in queryset.select_related("user"):
            api_token_revoke(token=token, actor=Actor.from_request(request))
