"""/api/v1/: the public REST API and its OpenAPI schema."""
from django.urls import include, path
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiYamlRenderer
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.routers import DefaultRouter

from appliance.content.api import CachedContentViewSet
from appliance.core.api_audit import AuditLogViewSet
from appliance.history.api import TrafficHistoryViewSet
from appliance.nodes.api import ProxyNodeViewSet
from appliance.origins.api import OriginViewSet
from appliance.playback.api.playlogs import PlayLogViewSet
from appliance.playback.api.reports import ReportViewSet
from appliance.playback.api.sessions import StreamSessionViewSet
from appliance.playback.api.splits import LiveSplitViewSet
from appliance.uplink.api import UplinkEventViewSet

router = DefaultRouter()
router.register("origins", OriginViewSet, basename="origin")
router.register("content", CachedContentViewSet, basename="content")
router.register("sessions", StreamSessionViewSet, basename="session")
router.register("splits", LiveSplitViewSet, basename="split")
router.register("playlogs", PlayLogViewSet, basename="playlog")
router.register("reports", ReportViewSet, basename="report")
router.register("nodes", ProxyNodeViewSet, basename="node")
router.register("uplink", UplinkEventViewSet, basename="uplink")
router.register("audit", AuditLogViewSet, basename="audit")
router.register("history", TrafficHistoryViewSet, basename="history")


class SchemaBrowserView(SpectacularAPIView):
    """The schema inside DRF's browsable page (Swagger UI and Redoc: schema/swagger/, schema/redoc/)."""

    renderer_classes = [BrowsableAPIRenderer, OpenApiJsonRenderer]


urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(renderer_classes=[OpenApiYamlRenderer, OpenApiJsonRenderer]),
         name="schema"),
    path("schema/ui/", SchemaBrowserView.as_view(), name="schema-ui"),
    # Their JavaScript and CSS come from drf-spectacular-sidecar's static files: no external host.
    path("schema/swagger/", SpectacularSwaggerView.as_view(url_name="schema"), name="schema-swagger"),
    path("schema/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="schema-redoc"),
    path("", include(router.urls)),
]
