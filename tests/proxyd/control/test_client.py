"""ControlClient against a real HTTP server: auth, conditional GET, error classification."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from proxyd.control.client import AuthError, ControlClient, PermanentError, TransientError


def client_for(fake, **overrides) -> ControlClient:
    values = dict(timeout=2.0)
    values.update(overrides)
    return ControlClient(fake.url, overrides.pop("token", fake.token), **values)


def test_snapshot_200_then_304_with_if_none_match(fake_api):
    client = client_for(fake_api)
    status, etag, body = client.get_snapshot(None)
    assert (status, etag, body["node"]) == (200, "etag-1", {"name": "node-1"})
    status, etag, body = client.get_snapshot("etag-1")
    assert (status, etag, body) == (304, "etag-1", None)
    _, path, headers = fake_api.requests[-1]
    assert path == "/internal/v1/snapshot"
    assert headers["if-none-match"] == '"etag-1"'
    assert headers["authorization"] == f"Bearer {fake_api.token}"


def test_base_url_may_already_name_the_api_prefix(fake_api):
    client = ControlClient(fake_api.url + "/internal/v1/", fake_api.token, timeout=2.0)
    assert client.get_snapshot(None)[0] == 200


def test_post_reports_returns_the_answer(fake_api):
    client = client_for(fake_api)
    event = {"id": "e1", "seq": 1, "at": "2026-01-01T00:00:00.000Z", "kind": "k", "data": {}}
    batch = {"schema_version": 1, "node": {"name": "node-1"}, "events": [event]}
    assert client.post_reports(batch) == {"accepted": 1, "duplicates": 0}
    assert client.post_reports(json.dumps(batch).encode()) == {"accepted": 0, "duplicates": 1}
    assert fake_api.requests[-1][2]["content-type"] == "application/json"


@pytest.mark.parametrize("status, error", [
    (500, TransientError), (503, TransientError), (408, TransientError), (429, TransientError),
    (400, PermanentError), (404, PermanentError), (413, PermanentError), (422, PermanentError),
])
def test_status_classification(fake_api, status, error):
    fake_api.report_status = status
    with pytest.raises(error) as info:
        client_for(fake_api).post_reports({"schema_version": 1, "node": {}, "events": []})
    assert info.value.status == status
    assert not isinstance(info.value, AuthError)
    assert (status >= 500 or status in (408, 429)) == (error is TransientError)


def test_wrong_token_is_an_auth_error(fake_api):
    with pytest.raises(AuthError) as info:
        ControlClient(fake_api.url, "wrong", timeout=2.0).get_snapshot(None)
    assert info.value.status == 401
    assert isinstance(info.value, PermanentError)


def test_refused_connection_is_transient(fake_api):
    client = client_for(fake_api)
    fake_api.refuse()
    with pytest.raises(TransientError):
        client.get_snapshot(None)


def test_slow_answer_times_out_as_transient(fake_api):
    fake_api.report_delay = 5.0
    with pytest.raises(TransientError):
        client_for(fake_api, timeout=0.2).post_reports({"schema_version": 1, "node": {}, "events": []})


class _OddServer(ThreadingHTTPServer):
    daemon_threads = True


def serve(status: int, body: bytes, headers: dict | None = None):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

    server = _OddServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    return server


@pytest.fixture
def odd_server():
    servers = []
    def start(*args, **kwargs) -> str:
        servers.append(serve(*args, **kwargs))
        return f"http://127.0.0.1:{servers[-1].server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_redirect_is_not_followed(odd_server):
    url = odd_server(302, b"", {"Location": "http://127.0.0.1:1/elsewhere"})
    with pytest.raises(TransientError) as info:
        ControlClient(url, "t", timeout=2.0).post_reports({"events": []})
    assert info.value.status == 302


def test_snapshot_that_is_not_json_is_transient(odd_server):
    url = odd_server(200, b"<html>proxy error</html>")
    with pytest.raises(TransientError, match="not JSON"):
        ControlClient(url, "t", timeout=2.0).get_snapshot(None)


def test_response_size_is_capped(odd_server):
    url = odd_server(200, b"[" + b"0," * 5000 + b"0]")
    with pytest.raises(TransientError, match="larger than"):
        ControlClient(url, "t", timeout=2.0, max_response_bytes=1000).get_snapshot(None)


def test_etag_falls_back_to_the_header(odd_server):
    url = odd_server(200, b'{"schema_version": 1}', {"ETag": 'W/"abc"'})
    assert ControlClient(url, "t", timeout=2.0).get_snapshot(None)[1] == "abc"


def test_accepted_batch_with_odd_answer_still_counts_as_delivered(odd_server):
    url = odd_server(202, b"not json")
    assert ControlClient(url, "t", timeout=2.0).post_reports({"events": []}) == {}


def test_connection_reset_mid_answer_is_transient():
    listener = socket.create_server(("127.0.0.1", 0))

    def accept_and_drop():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.close()

    threading.Thread(target=accept_and_drop, daemon=True).start()
    try:
        with pytest.raises(TransientError):
            url = f"http://127.0.0.1:{listener.getsockname()[1]}"
            ControlClient(url, "t", timeout=2.0).get_snapshot(None)
    finally:
        listener.close()


@pytest.mark.parametrize("url", ["ftp://x/", "127.0.0.1:8000", "http://"])
def test_bad_url_is_rejected_up_front(url):
    with pytest.raises(ValueError):
        ControlClient(url, "t", timeout=1.0)
