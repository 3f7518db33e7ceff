from django.contrib import admin

from appliance.nodes.models import ProxyNode


@admin.register(ProxyNode)
class ProxyNodeAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "listen", "rtsp_address", "last_seen", "load_sessions", "load_bandwidth_bps", "enabled"]
    readonly_fields = ["token_hash", "version", "listen", "last_seen", "load_sessions", "load_bandwidth_bps"]
