"""Services publish live-state changes through appliance.playback.live.publish, only after commit."""
import pytest

from appliance.core import live

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    sent: list = []
    real = live._publisher()  # the dashboard's publisher, when installed, validates each payload

    def record(kind, payload):
        if real is not None:
            real(kind, payload)
        sent.append((kind, payload))

    def record_many(events):
        for kind, payload in events:
            record(kind, payload)

    monkeypatch.setattr(live, "_publisher", lambda name="publish": record if name == "publish" else record_many)
    return sent


def test_session_start_and_end_are_published_after_commit(published, make_event, post_batch,
                                                           django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        post_batch([make_event("session.started", session_id="s1", url="rtsp://p/a"),
                    make_event("session.ended", session_id="s1", end_reason="teardown")])
        assert published == []  # nothing leaves before the transaction commits
    assert callbacks
    kinds = [kind for kind, _ in published]
    assert kinds == ["session.started", "session.ended", "node.bandwidth"]
    assert published[0][1]["session_id"] == "s1"
    assert published[2][1]["node"] == "node-1"


def test_a_failing_publisher_does_not_break_ingestion(monkeypatch, make_event, post_batch):
    def explode(*args):
        raise RuntimeError("channel layer down")

    monkeypatch.setattr(live, "_publisher", lambda name="publish": explode)
    assert post_batch([make_event("session.started", session_id="s1")]).status_code == 200


def test_nothing_is_published_when_the_batch_is_rejected(published, post_batch, node_client):
    node_client.post("/internal/v1/reports", {"schema_version": 9, "events": []}, format="json")
    assert published == []

