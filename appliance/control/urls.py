from django.urls import path

from appliance.control.views import ReportsView, SnapshotView

urlpatterns = [
    path("snapshot", SnapshotView.as_view(), name="internal-snapshot"),
    path("reports", ReportsView.as_view(), name="internal-reports"),
]
