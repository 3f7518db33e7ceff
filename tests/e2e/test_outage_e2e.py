"""proxyd keeps serving while the control plane is unreachable, spools its reports on disk and
delivers them, exactly once, when the control plane is back at the same URL."""

import urllib.parse
from pathlib import Path

import pytest

from tests.e2e.conftest import wait_until
from tests.peers.tcp_forward import TcpForwarder
from tests.peers.proxyd_proc import free_tcp_port

pytestmark = [pytest.mark.peers, pytest.mark.django_db(transaction=True)]

# proxyd's report retry backoff is capped at 30 s (ControlConfig.retry_max), plus a batch delay.
REDELIVERY_DEADLINE_S = 45.0


def spooled_lines(state_dir: Path) -> int:
    spool = state_dir / "spool"
    return sum(len(p.read_bytes().splitlines()) for p in spool.glob("*.jsonl")) if spool.exists() else 0


def test_reports_are_spooled_while_the_control_plane_is_down_and_delivered_once(
        api, live_server, controlled_proxyd, control_node, shared_gst_origin, peer_players, tmp_path):
    from appliance.control.models import ReportEvent

    node, _ = control_node
    down_port = free_tcp_port()  # nothing listens here until the forwarder starts
    proxy = controlled_proxyd(f"http://127.0.0.1:{down_port}", routes={"/vod": shared_gst_origin.url()})
    state_dir = tmp_path / "proxyd-state"

    plays = [peer_players.ffmpeg_play(proxy.url("/vod/clip"), transport=t) for t in ("tcp", "udp")]
    for result in plays:
        assert result.ok, result.describe()  # serving does not depend on the control plane
    # started + ended per session at least; counters possibly more
    wait_until(lambda: spooled_lines(state_dir) >= 4, timeout=10, what="reports in the disk spool")
    assert ReportEvent.objects.filter(node=node).count() == 0

    live = urllib.parse.urlsplit(live_server.url)
    with TcpForwarder(down_port, (live.hostname, live.port)):
        def ended_sessions():
            rows = [s for s in api.get("/api/v1/sessions/?ordering=started_at")["results"] if s["end_reason"]]
            return rows if len(rows) >= 2 else None

        sessions = wait_until(ended_sessions, timeout=REDELIVERY_DEADLINE_S,
                              what="both sessions delivered from the spool")
        wait_until(lambda: spooled_lines(state_dir) == 0, timeout=10, what="the spool to drain")
        assert proxy.stop() == 0  # shutdown flushes nothing new: everything was delivered

    assert [s["end_reason"] for s in sessions] == ["teardown", "teardown"]
    assert [s["transports"] for s in sessions] == [["tcp", "tcp"], ["udp", "udp"]]
    assert all(s["bytes_out"] > 0 and s["packets_out"] > 0 for s in sessions)
    events = ReportEvent.objects.filter(node=node)
    kinds = list(events.values_list("kind", flat=True))
    assert kinds.count("session.started") == 2 and kinds.count("session.ended") == 2
    seqs = list(events.order_by("seq").values_list("seq", flat=True))
    # proxyd numbers its events contiguously: no duplicate and no gap means nothing lost or doubled.
    assert len(seqs) == len(set(seqs)) == seqs[-1] - seqs[0] + 1
