"""A proxyd without a control plane delivers the SendEvents its origins subscribed to itself, from a
disk spool, exactly once, also across a restart while the origin was down ([MS-RTSP] 2.2.7.11)."""

from __future__ import annotations

import pytest

from tests.appliance.tasks.harness import wait_until
from tests.peers.proxyd_proc import ProxydError
from tests.proxyd.cache.helpers import wait_for_log
from tests.wmorigin.fixtures import wm_origin  # noqa: F401  (fixture)
from tests.wmorigin.player import WMPlayer

DELIVERED = r"sendevent: delivered event (\w+) to "


def event_types(origin, path: str) -> list[str]:
    return sorted(e.parsed.name for e in origin.send_events if e.url.endswith(path) and e.parsed)


async def test_relayed_remote_log_reaches_the_origin_once(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/clip.wmv", seed="events", duration_ms=800, cache_control=(
        'max-age=60, no-cache, x-wms-event-subscription="remote-log"'))
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, extra_args=["--state-dir", str(tmp_path / "state")])
    result = await WMPlayer(proxy.url("/wm/clip.wmv"), transport="tcp", send_event=True).run()
    assert result.error is None, result.error
    assert result.status("SendEvent") == [200]
    # the player's SendEvent and its legacy LogPlay converted to a rendering log ([MS-WMSP] 3.2.5.11)
    lines = wait_for_log(proxy.log_path, DELIVERED, count=2)
    assert event_types(wm_origin, "/clip.wmv") == ["remote-log", "remote-log"]
    assert len({line.split()[-3] for line in lines}) == 2
    wait_for_log(proxy.log_path, r"sendevent: spool empty, 2 events delivered")
    assert list((tmp_path / "state" / "sendevents").glob("*.jsonl")) == []  # delivered: spool empty


async def test_events_spooled_while_the_origin_is_down_are_sent_after_a_restart(
        wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/clip.wmv", seed="spool", duration_ms=800)
    cache_dir = tmp_path / "cache"
    first = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=cache_dir)
    url = first.url("/wm/clip.wmv")
    assert (await WMPlayer(url, transport="tcp", send_event=True).run()).error is None  # fills
    wait_for_log(first.log_path, r"cache: committed")
    wait_for_log(first.log_path, DELIVERED, count=2)  # the relayed player's SendEvent and LogPlay
    before = len(wm_origin.send_events)
    wm_origin.take_down()
    from_cache = await WMPlayer(url, transport="tcp", send_event=True).run()
    assert from_cache.error is None, from_cache.error
    wait_for_log(first.log_path, r"sendevent: origin for \S+ unreachable")
    first.stop()
    assert len(wm_origin.send_events) == before
    wm_origin.bring_up()
    again = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=cache_dir, port=first.port)
    # proxyd's own remote-open/close for the cached play, the player's SendEvent and its LogPlay
    lines = wait_for_log(again.log_path, DELIVERED, count=4)
    sent = wm_origin.send_events[before:]  # nothing sent before the restart is sent again
    assert sorted(e.parsed.name for e in sent) == ["remote-close", "remote-log", "remote-log", "remote-open"]
    assert len(lines) == 4 and len({line.split()[-3] for line in lines}) == 4


@pytest.mark.parametrize("scheme", ["Basic", "Digest"])
async def test_an_origin_requiring_credentials_gets_them_from_the_route(
        scheme, wm_origin, proxyd_process, tmp_path):  # noqa: F811
    wm_origin.set_entry("/clip.wmv", seed="auth", duration_ms=800)
    wm_origin.require_auth("proxy-user", "s3cret:with colon", scheme=scheme)
    credentials = tmp_path / "origin-credentials"
    credentials.write_text("# prefix=user:password\n/wm=proxy-user:s3cret:with colon\n")
    credentials.chmod(0o600)
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, extra_args=[
        "--state-dir", str(tmp_path / "state"), "--origin-credentials-file", str(credentials)])
    result = await WMPlayer(proxy.url("/wm/clip.wmv"), transport="tcp", send_event=True).run()
    assert result.error is None, result.error  # the relay answered the origin's 401 too
    wait_for_log(proxy.log_path, DELIVERED, count=2)
    events = [e for e in wm_origin.send_events if e.url.endswith("/clip.wmv")]
    accepted = [e for e in events if e.authorized]
    assert sorted(e.parsed.name for e in accepted) == ["remote-log", "remote-log"]
    assert any(not e.authorized for e in events)  # challenged first: the answer came from the 401
    scheme_sent = {dict((k.lower(), v) for k, v in e.headers)["authorization"].split()[0] for e in accepted}
    assert scheme_sent == {scheme}
    assert "s3cret" not in proxy.log_path.read_text()  # the password is never logged


async def test_a_readable_credentials_file_is_refused(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    credentials = tmp_path / "origin-credentials"
    credentials.write_text("/wm=proxy-user:secret\n")
    credentials.chmod(0o644)
    with pytest.raises(ProxydError, match="readable by group or others"):
        proxyd_process(routes={"/wm": wm_origin.url("/")}, expect_clean_exit=False,
                       extra_args=["--origin-credentials-file", str(credentials)])


async def test_event_types_the_origin_did_not_subscribe_to_never_reach_it(wm_origin, proxyd_process, tmp_path):  # noqa: F811
    """[MS-RTSP] 2.2.7.11: subscribed to remote-log only, so proxyd's own remote-open/close for a play
    from its cache stay local; the players' remote-logs go up."""
    wm_origin.set_entry("/clip.wmv", seed="log-only", duration_ms=800, cache_control=(
        'max-age=600, public, x-wms-event-subscription="remote-log"'))
    proxy = proxyd_process(routes={"/wm": wm_origin.url("/")}, cache_dir=tmp_path / "cache")
    url = proxy.url("/wm/clip.wmv")
    assert (await WMPlayer(url, transport="tcp", send_event=True).run()).error is None  # fills
    wait_for_log(proxy.log_path, r"cache: committed")
    from_cache = await WMPlayer(url, transport="tcp", send_event=True).run()
    assert from_cache.error is None, from_cache.error
    wait_for_log(proxy.log_path, r"sendevent: spool empty, 4 events delivered")
    assert event_types(wm_origin, "/clip.wmv") == ["remote-log"] * 4  # each play: its SendEvent and LogPlay
    assert wm_origin.count("PLAY", "/clip.wmv") == 1  # the second play came from the cache
