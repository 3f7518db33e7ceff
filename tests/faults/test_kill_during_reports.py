"""Faults, report delivery: proxyd SIGKILLed while the control plane has stored a batch whose answer
proxyd never got, then restarted on the same state directory. Every report arrives, none twice."""

from __future__ import annotations

import socket
import urllib.parse

import pytest

from tests.e2e.conftest import api, control_node, controlled_proxyd, wait_until  # noqa: F401 (fixtures)
from tests.peers.proxyd_proc import free_tcp_port
from tests.proxyd.metrics import scrape as metrics
from tests.peers.tcp_forward import TcpForwarder

pytestmark = [pytest.mark.peers, pytest.mark.django_db(transaction=True)]

REDELIVERY_DEADLINE_S = 45.0
SEQ_BLOCK = 10000  # proxyd reserves report seqs in blocks: a restarted proxyd starts past the old block  # proxyd's retry backoff is capped at 30 s, plus a batch delay


class AnswerSwallower(TcpForwarder):
    """Forwards proxyd's requests to the control plane; while `swallow` is set, drops the answers of
    the connections it accepts: the control plane stores the reports, proxyd never hears it did."""

    swallow = True

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.report_posts: set[socket.socket] = set()  # upstream sockets carrying a report POST

    def _forward_client(self, client: socket.socket, upstream: socket.socket) -> None:
        first = client.recv(65536)
        if first.startswith(b"POST"):  # snapshot GETs are answered: proxyd starts and polls as usual
            self.report_posts.add(upstream)
        upstream.sendall(first)
        TcpForwarder._pump(client, upstream)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:  # control plane -> proxyd
        if not self.swallow or src not in self.report_posts:
            TcpForwarder._pump(src, dst)
            return
        try:
            while src.recv(65536):
                pass
        except OSError:
            pass


def test_sigkill_with_an_unacknowledged_batch_then_restart_delivers_each_report_once(
        api, live_server, controlled_proxyd, control_node, shared_gst_origin, peer_players):  # noqa: F811
    from appliance.control.models import ReportEvent

    node, _ = control_node
    port = free_tcp_port()
    live = urllib.parse.urlsplit(live_server.url)
    with AnswerSwallower(port, (live.hostname, live.port)) as forwarder:
        metrics_port = free_tcp_port()
        proxy = controlled_proxyd(f"http://127.0.0.1:{port}", routes={"/vod": shared_gst_origin.url()},
                                  # the unanswered POST stays in flight while both sessions play:
                                  # what is cut meanwhile must not wait for it in memory only
                                  extra_args=["--metrics-listen", f"127.0.0.1:{metrics_port}",
                                              "--control-request-timeout", "300"],
                                  expect_clean_exit=False)
        for transport in ("tcp", "udp"):
            result = peer_players.ffmpeg_play(proxy.url("/vod/clip"), transport=transport)
            assert result.ok, result.describe()
        wait_until(lambda: ReportEvent.objects.filter(node=node, kind="session.started").exists(),
                   timeout=REDELIVERY_DEADLINE_S, what="reports stored by the control plane (answers swallowed)")
        # Both sessions' reports emitted and none held only in memory any more: proxyd's promise is
        # that from here (at most --control-batch-delay after an event) a SIGKILL loses nothing.
        metrics.wait_for(metrics_port, lambda m: metrics.total(m, "proxyd_sessions_ended_total") == 2
                         and metrics.value(m, "proxyd_report_queue_events") == 0,
                         timeout=REDELIVERY_DEADLINE_S, what="every report out of proxyd's memory")
        proxy.proc.kill()
        proxy.proc.wait(10)
        stored_before = set(ReportEvent.objects.filter(node=node).values_list("seq", flat=True))

        forwarder.swallow = False  # the restarted proxyd hears the answers
        again = controlled_proxyd(f"http://127.0.0.1:{port}", routes={"/vod": shared_gst_origin.url()})
        result = peer_players.ffmpeg_play(again.url("/vod/clip"), transport="tcp")
        assert result.ok, result.describe()
        restarted = ReportEvent.objects.filter(node=node, seq__gt=max(stored_before))
        wait_until(lambda: restarted.filter(kind="session.ended", seq__gt=SEQ_BLOCK).exists(),
                   timeout=REDELIVERY_DEADLINE_S, what="the restarted proxyd's session reported")
        assert again.stop() == 0

    events = ReportEvent.objects.filter(node=node)
    kinds = list(events.values_list("kind", flat=True))
    found = list(events.order_by("seq").values_list("seq", "kind"))
    assert kinds.count("session.started") == 3 and kinds.count("session.ended") == 3, found
    seqs = list(events.values_list("seq", flat=True))
    assert len(seqs) == len(set(seqs)) and stored_before <= set(seqs)
    sessions = [s for s in api.get("/api/v1/sessions/")["results"] if s["end_reason"]]
    assert len(sessions) == 3, sessions
