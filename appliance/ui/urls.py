"""Dashboard pages, mounted at "/" by appliance.urls."""

from django.urls import path

from appliance.ui.views import admin_pages, auth, content, dashboard, origins, playlogs, sessions, splits

app_name = "ui"

urlpatterns = [
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
    path("", dashboard.DashboardView.as_view(), name="dashboard"),
    path("dashboard/live-state/", dashboard.LiveStateView.as_view(), name="live-state"),
    path("dashboard/charts/", dashboard.DashboardChartsView.as_view(), name="dashboard-charts"),
    path("origins/", origins.OriginListView.as_view(), name="origin-list"),
    path("origins/new/", origins.OriginFormView.as_view(), name="origin-create"),
    path("origins/<int:pk>/edit/", origins.OriginFormView.as_view(), name="origin-edit"),
    path("origins/<int:pk>/delete/", origins.OriginDeleteView.as_view(), name="origin-delete"),
    path("content/", content.ContentListView.as_view(), name="content-list"),
    path("content/prestuff/", content.ContentPrestuffView.as_view(), name="content-prestuff"),
    path("content/<int:pk>/purge/", content.ContentPurgeView.as_view(), name="content-purge"),
    path("content/<int:pk>/revalidate/", content.ContentRevalidateView.as_view(), name="content-revalidate"),
    path("sessions/", sessions.SessionListView.as_view(), name="session-list"),
    path("sessions/<int:pk>/terminate/", sessions.SessionTerminateView.as_view(), name="session-terminate"),
    path("splits/", splits.SplitListView.as_view(), name="split-list"),
    path("playlogs/", playlogs.PlayLogListView.as_view(), name="playlog-list"),
    path("reports/", playlogs.ReportView.as_view(), name="reports"),
    path("reports/qos/", playlogs.SessionQosView.as_view(), name="session-qos"),
    path("nodes/", admin_pages.NodeListView.as_view(), name="node-list"),
    path("uplink/", admin_pages.UplinkListView.as_view(), name="uplink-list"),
    path("uplink/<int:pk>/retry/", admin_pages.UplinkRetryView.as_view(), name="uplink-retry"),
    path("audit/", admin_pages.AuditListView.as_view(), name="audit-list"),
]
