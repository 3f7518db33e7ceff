"""SessionTimers driven by an injected clock: keepalive, counters and idle reaping deadlines."""

from proxyd.serving.timers import SessionTimers


def timers(now=100.0):
    return SessionTimers(now, keepalive_interval=30, idle_timeout=60, counters_interval=10)


def test_first_deadline_is_the_earliest_of_the_three():
    t = timers()
    assert t.deadline() == 110
    assert t.due(109.9, player_active=False, reapable=True) == []


def test_counters_and_keepalive_repeat_from_when_they_ran():
    t = timers()
    assert t.due(110, player_active=False, reapable=True) == ["counters"]
    assert t.deadline() == 120
    assert t.due(130.5, player_active=True, reapable=True) == ["keepalive", "counters"]
    assert (t.next_keepalive, t.next_counters) == (160.5, 140.5)


def test_idle_player_is_reaped_after_the_session_timeout():
    t = timers()
    assert "reap" not in t.due(159, player_active=False, reapable=True)
    assert "reap" in t.due(160, player_active=False, reapable=True)


def test_requests_and_receiver_reports_keep_the_player_alive():
    t = timers()
    t.touch(150)  # an RTSP request
    assert "reap" not in t.due(200, player_active=False, reapable=True)
    assert "reap" not in t.due(250, player_active=True, reapable=True)  # RTCP seen since last check
    assert t.last_activity == 250
    assert "reap" in t.due(310, player_active=False, reapable=True)


def test_tcp_player_that_is_playing_is_never_reaped():
    t = timers()
    for now in (160, 230, 1000, 5000):
        assert "reap" not in t.due(now, player_active=False, reapable=False)
    assert "reap" in t.due(5060, player_active=False, reapable=True)  # its connection went away
