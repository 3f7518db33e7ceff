import pytest

from appliance.content import services
from appliance.content.models import CachedContent, PrestuffRequest, PurgeRequest
from appliance.core.models import AuditLog
from tests.appliance.factories import CachedContentFactory, ProxyNodeFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/content/"


def test_permissions(anon_client, norole_client, viewer_client):
    item = CachedContentFactory()
    assert anon_client.get(URL).status_code == 401
    assert norole_client.get(URL).status_code == 403
    assert viewer_client.get(f"{URL}{item.id}/").json()["url"] == item.url
    for path in (f"{URL}{item.id}/purge/", f"{URL}{item.id}/revalidate/", f"{URL}purge/", f"{URL}prestuff/"):
        assert viewer_client.post(path, {}, format="json").status_code == 403
        assert anon_client.post(path, {}, format="json").status_code == 401


def test_list_filters_by_state_url_and_node(viewer_client):
    node = ProxyNodeFactory(name="edge")
    CachedContentFactory(url="rtsp://o/a", state="complete", node=node)
    CachedContentFactory(url="rtsp://o/b", state="stale")
    CachedContentFactory(url="rtsp://o/bb", state="filling")
    def urls(**params):
        return sorted(item["url"] for item in viewer_client.get(URL, params).json()["results"])
    assert urls(state="stale") == ["rtsp://o/b"]
    assert urls(url="o/b") == ["rtsp://o/b", "rtsp://o/bb"]
    assert urls(node=node.id) == ["rtsp://o/a"]
    assert viewer_client.get(URL, {"state": "bogus"}).status_code == 400


def test_purge_one_item_marks_it_purging_and_reaches_the_snapshot(operator_client, node_client, node):
    item = CachedContentFactory(node=node, url="rtsp://o/clip")
    response = operator_client.post(f"{URL}{item.id}/purge/")
    assert response.status_code == 202
    assert response.json()["state"] == "pending"
    item.refresh_from_db()
    assert item.state == "purging"
    purges = node_client.get("/internal/v1/snapshot").json()["purges"]
    assert purges == [{"id": response.json()["id"], "url": "rtsp://o/clip", "prefix": False}]
    assert AuditLog.objects.filter(action="content.purge").count() == 1


def test_purge_by_prefix(operator_client):
    inside = CachedContentFactory(url="rtsp://o/vod/a")
    outside = CachedContentFactory(url="rtsp://o/live/a")
    response = operator_client.post(f"{URL}purge/", {"url": "rtsp://o/vod/", "prefix": True}, format="json")
    assert response.status_code == 202
    assert PurgeRequest.objects.get().prefix is True
    assert CachedContent.objects.get(pk=inside.pk).state == "purging"
    assert CachedContent.objects.get(pk=outside.pk).state == "complete"


def test_purge_input_errors(operator_client):
    response = operator_client.post(f"{URL}purge/", {"url": "relative/path"}, format="json")
    assert response.status_code == 400
    assert "url" in response.json()["error"]["fields"]
    assert operator_client.post(f"{URL}purge/", {}, format="json").status_code == 400


def test_purging_an_already_purged_item_is_a_conflict(operator_client):
    item = CachedContentFactory(state="purged")
    response = operator_client.post(f"{URL}{item.id}/purge/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_purged"


def test_unknown_ids_are_404(operator_client):
    assert operator_client.get(f"{URL}424242/").status_code == 404
    assert operator_client.post(f"{URL}424242/purge/").status_code == 404
    assert operator_client.post(f"{URL}424242/revalidate/").status_code == 404


def test_revalidate_enqueues_the_task_after_commit(operator_client, monkeypatch, django_capture_on_commit_callbacks):
    queued = []

    class FakeTask:
        @staticmethod
        def delay(content_id):
            queued.append(content_id)

    monkeypatch.setattr(services, "_revalidate_task", lambda: FakeTask)
    item = CachedContentFactory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = operator_client.post(f"{URL}{item.id}/revalidate/")
        assert queued == []  # nothing is sent before the transaction commits
    assert response.status_code == 202 and response.json() == {"queued": True}
    for callback in callbacks:
        callback()
    assert queued == [item.id]
    assert AuditLog.objects.filter(action="content.revalidate", object_id=str(item.id)).exists()


def test_revalidate_without_task_runner_reports_not_queued(operator_client, monkeypatch):
    monkeypatch.setattr(services, "_revalidate_task", lambda: None)
    item = CachedContentFactory()
    assert operator_client.post(f"{URL}{item.id}/revalidate/").json() == {"queued": False}


def test_prestuff_is_recorded_and_carried_to_the_right_nodes(operator_client, node, node_client):
    other = ProxyNodeFactory(name="other")
    everywhere = operator_client.post(f"{URL}prestuff/", {"url": "rtsp://o/new"}, format="json")
    elsewhere = operator_client.post(f"{URL}prestuff/", {"url": "rtsp://o/x", "node": other.name}, format="json")
    assert everywhere.status_code == elsewhere.status_code == 202
    assert PrestuffRequest.objects.count() == 2
    snapshot = node_client.get("/internal/v1/snapshot").json()
    assert snapshot["prestuff"] == [{"id": everywhere.json()["id"], "url": "rtsp://o/new"}]
    bad = operator_client.post(f"{URL}prestuff/", {"url": "rtsp://o/y", "node": "nope"}, format="json")
    assert bad.status_code == 400 and "node" in bad.json()["error"]["fields"]


def test_list_query_count_is_constant(viewer_client, assert_list_queries_constant):
    assert_list_queries_constant(viewer_client, URL, CachedContentFactory.create_batch)


def test_prestuff_and_purge_match_reported_urls_by_identity(operator_client, node, node_client):
    reported = CachedContentFactory(node=node, url="rtsp://o/vod/a")  # nodes report the normal form
    response = operator_client.post(f"{URL}purge/", {"url": "rtsp://O:554/vod/a/"}, format="json")
    assert response.status_code == 202
    assert CachedContent.objects.get(pk=reported.pk).state == "purging"
    operator_client.post(f"{URL}prestuff/", {"url": "rtsp://O:554/vod/new/"}, format="json")
    assert PrestuffRequest.objects.get().url == "rtsp://o/vod/new"  # what the node will report complete
