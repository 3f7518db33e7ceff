from django.urls import path

from appliance.control.views import ReportsView, SnapshotView, own_thread

urlpatterns = [
    path("snapshot", own_thread(SnapshotView), name="internal-snapshot"),
    path("reports", own_thread(ReportsView), name="internal-reports"),
]
