from django.contrib import admin

from appliance.origins.models import Origin


@admin.register(Origin)
class OriginAdmin(admin.ModelAdmin):
    list_display = ["name", "route_prefix", "base_url", "allowed", "cache_policy", "transport"]
    list_filter = ["allowed", "cache_policy", "transport"]
    exclude = ["password_encrypted"]  # credentials are set through the API or the dashboard, never displayed
