"""Traffic history: report batches become minute/hour/day rows once; the roll-up sets the gauges;
the API reads them."""

import datetime as dt

import pytest
from django.utils import timezone

from appliance.history import services
from appliance.history.models import TrafficBucket
from tests.appliance.factories import BASE_TIME, ProxyNodeFactory, StreamSessionFactory

pytestmark = pytest.mark.django_db

T0 = BASE_TIME  # 12:00:00 UTC


def _at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def _row(grain: str, start: dt.datetime, node=None) -> TrafficBucket:
    rows = TrafficBucket.objects.filter(grain=grain, start=start)
    return rows.get(node=node) if node else rows.get()


def _counters(make_event, sid, at, seq=None, **values):
    return make_event(
        "session.counters",
        at=at,
        seq=seq,
        session_id=sid,
        **{
            "bytes_out": 0,
            "packets_out": 0,
            "bytes_in": 0,
            "packets_in": 0,
            "packets_lost": 0,
            "jitter_ms": 0.0,
            **values,
        },
    )


def _session_batch(make_event):
    return [
        make_event(
            "session.started",
            at=_at(5),
            session_id="a",
            url="rtsp://p/vod/a",
            origin_url="rtsp://o/a",
            player_addr="10.0.0.1:5000",
            user_agent="ffmpeg",
            transports=["udp"],
            served_from="cache",
        ),
        make_event(
            "session.started",
            at=_at(6),
            session_id="b",
            url="rtsp://p/vod/b",
            origin_url="rtsp://o/b",
            player_addr="10.0.0.2:5000",
            user_agent="ffmpeg",
            transports=["udp"],
            served_from="origin",
        ),
        _counters(make_event, "a", _at(30), bytes_out=1000),
        _counters(make_event, "b", _at(30), bytes_out=3000, bytes_in=3100),
        _counters(make_event, "a", _at(70), bytes_out=2500),  # next minute: +1500
        {
            **make_event(
                "session.ended",
                at=_at(75),
                session_id="b",
                bytes_out=4000,
                packets_out=0,
                bytes_in=4200,
                packets_in=0,
                packets_lost=0,
                jitter_ms=0.0,
                end_reason="origin_error",
            )
        },
    ]


def test_a_batch_becomes_minute_hour_and_day_rows(post_batch, make_event):
    assert post_batch(_session_batch(make_event), reporter={"spool_bytes": 4096}).status_code == 200
    first, second = _row("minute", T0), _row("minute", _at(60))
    assert (
        first.requests,
        first.cache_requests,
        first.bytes_out,
        first.cache_bytes_out,
        first.origin_bytes,
        first.errors,
    ) == (2, 1, 4000, 1000, 3100, 0)
    assert (second.bytes_out, second.cache_bytes_out, second.origin_bytes, second.errors) == (
        2500,
        1500,
        1100,
        1,
    )
    for grain, start in (("hour", T0), ("day", timezone.make_aware(dt.datetime(2026, 11, 20)))):
        row = _row(grain, start)
        assert (
            row.requests,
            row.cache_requests,
            row.bytes_out,
            row.cache_bytes_out,
            row.origin_bytes,
            row.errors,
        ) == (2, 1, 6500, 2500, 4200, 1)
        assert row.spool_bytes == 4096


def test_deltas_out_of_time_order_land_in_their_own_minutes():
    deltas = services.TrafficDeltas()
    plus_two = dt.timezone(dt.timedelta(hours=2))
    for at, requests in ((_at(59), 1), (_at(60), 2), (_at(0), 4), (_at(119.999999), 8), (_at(120), 16),
                         (_at(30).astimezone(plus_two), 32), (_at(60), 64)):
        deltas.add(at, requests=requests)
    assert {minute: row["requests"] for minute, row in deltas.minutes.items()} == {
        _at(0): 1 + 4 + 32, _at(60): 2 + 8 + 64, _at(120): 16}


def test_a_redelivered_batch_adds_nothing(post_batch, make_event):
    batch = _session_batch(make_event)
    post_batch(batch)
    before = list(TrafficBucket.objects.order_by("grain", "start").values())
    assert post_batch(batch).json()["duplicates"] == len(batch)
    assert list(TrafficBucket.objects.order_by("grain", "start").values()) == before


def test_late_stale_counters_add_nothing_and_a_restart_is_not_negative(post_batch, make_event):
    post_batch(
        [
            make_event(
                "session.started",
                at=_at(1),
                session_id="a",
                served_from="origin",
                url="u",
                origin_url="o",
                player_addr="10.0.0.1:1",
                user_agent="",
                transports=[],
            ),
            _counters(make_event, "a", _at(10), seq=10, bytes_out=5000, bytes_in=5000),
        ]
    )
    post_batch([_counters(make_event, "a", _at(5), seq=5, bytes_out=2000, bytes_in=2000)])  # older snapshot
    post_batch(
        [_counters(make_event, "a", _at(20), seq=20, bytes_out=100, bytes_in=100)]
    )  # counters went back
    row = _row("minute", T0)
    assert (row.bytes_out, row.origin_bytes) == (5000, 5000)


def _split(make_event, at, state, bytes_in, end_reason=None):
    return make_event(
        "split.changed",
        at=at,
        split_id="s1",
        url="rtsp://o/live",
        player_url="rtsp://p/live",
        state=state,
        players=2,
        peak_players=2,
        reconnects=0,
        media_stalls=0,
        origin_transport="udp",
        started_at=T0.isoformat(),
        end_reason=end_reason,
        packets_in=1,
        bytes_in=bytes_in,
    )


def test_split_hub_bytes_are_origin_bytes_and_an_origin_error_counts_once(post_batch, make_event):
    post_batch([_split(make_event, _at(10), "live", 7000)])
    post_batch(
        [
            _split(make_event, _at(20), "live", 9000),
            _split(make_event, _at(30), "ended", 9500, "origin_error"),
        ]
    )
    post_batch([_split(make_event, _at(40), "ended", 9500, "origin_error")])
    row = _row("minute", T0)
    assert (row.origin_bytes, row.errors) == (9500, 1)


def _cache(make_event, at, state, size):
    return make_event(
        "cache.changed",
        at=at,
        url="rtsp://o/clip",
        state=state,
        sdp="",
        cache_control="",
        last_modified="",
        etag="",
        content_size=None,
        size_bytes=size,
        fetched_at=None,
        expires_at=None,
        hits=0,
        bytes_served=0,
    )


def test_a_completed_fill_counts_its_size_as_origin_bytes_once(post_batch, make_event):
    post_batch([_cache(make_event, _at(1), "filling", 0), _cache(make_event, _at(2), "complete", 80_000)])
    post_batch([_cache(make_event, _at(3), "complete", 80_000)])  # a later report of the same entry
    assert _row("minute", T0).origin_bytes == 80_000


def test_rollup_sets_open_sessions_and_players_and_running_it_again_changes_nothing():
    node = ProxyNodeFactory(name="n1")
    StreamSessionFactory(node=node, player_ip="10.0.0.1", started_at=_at(10), ended_at=_at(130))
    StreamSessionFactory(node=node, player_ip="10.0.0.1", started_at=_at(50), ended_at=None)
    StreamSessionFactory(node=node, player_ip="10.0.0.2", started_at=_at(65), ended_at=_at(70))
    StreamSessionFactory(node=node, player_ip="10.0.0.3", started_at=None, ended_at=_at(70))  # never started
    for _ in range(2):
        services.history_rollup(now=_at(200), lookback_minutes=5)
        gauges = {r.start: (r.sessions, r.players) for r in TrafficBucket.objects.filter(grain="minute")}
        assert gauges == {T0: (2, 1), _at(60): (3, 2), _at(120): (2, 1), _at(180): (1, 1)}
        hour = _row("hour", T0)
        assert (hour.sessions, hour.players) == (3, 2)
        assert _row("day", timezone.make_aware(dt.datetime(2026, 11, 20))).sessions == 3


def test_rollup_zeroes_a_minute_whose_sessions_turn_out_ended():
    node = ProxyNodeFactory(name="n1")
    session = StreamSessionFactory(node=node, started_at=_at(10), ended_at=None)
    services.history_rollup(now=_at(130), lookback_minutes=3)
    assert _row("minute", _at(120)).sessions == 1
    session.ended_at = _at(20)  # the session.ended report arrived late
    session.save()
    services.history_rollup(now=_at(130), lookback_minutes=3)
    assert _row("minute", _at(120)).sessions == 0


def test_prune_keeps_each_grain_for_its_retention():
    node = ProxyNodeFactory(name="n1")
    now = _at(0)
    for grain, age in (
        ("minute", dt.timedelta(hours=49)),
        ("minute", dt.timedelta(hours=47)),
        ("hour", dt.timedelta(days=36)),
        ("hour", dt.timedelta(days=34)),
        ("day", dt.timedelta(days=801)),
        ("day", dt.timedelta(days=799)),
    ):
        TrafficBucket.objects.create(node=node, grain=grain, start=now - age)
    keep = {"minute": dt.timedelta(hours=48), "hour": dt.timedelta(days=35), "day": dt.timedelta(days=800)}
    assert services.history_prune(now=now, keep=keep, limit=1000) == 3
    assert services.history_prune(now=now, keep=keep, limit=1000) == 0
    assert TrafficBucket.objects.count() == 3


def _bucket(node, start, **values):
    return TrafficBucket.objects.create(node=node, grain="minute", start=start, **values)


def test_api_sums_nodes_per_minute_with_rates_and_ratios(viewer_client):
    n1, n2 = ProxyNodeFactory(name="n1"), ProxyNodeFactory(name="n2")
    now = timezone.now().replace(second=0, microsecond=0)
    old = now - dt.timedelta(minutes=5)
    _bucket(
        n1,
        old,
        bytes_out=600_000,
        cache_bytes_out=150_000,
        origin_bytes=60_000,
        requests=4,
        cache_requests=1,
        sessions=3,
        players=2,
    )
    _bucket(n2, old, bytes_out=150_000, cache_bytes_out=0, requests=0, sessions=1, players=1)
    _bucket(n1, now - dt.timedelta(hours=2), bytes_out=1)  # outside the last hour
    body = viewer_client.get("/api/v1/history/", {"range": "1h"}).json()
    assert body["grain"] == "minute"
    [point] = body["points"]
    assert point["bytes_out"] == 750_000 and point["sessions"] == 4 and point["players"] == 3
    assert point["bandwidth_out_bps"] == pytest.approx(750_000 * 8 / 60)
    assert point["bandwidth_in_bps"] == pytest.approx(60_000 * 8 / 60)
    assert point["hit_ratio_bytes"] == pytest.approx(0.2)
    assert point["hit_ratio_requests"] == pytest.approx(0.25)
    only_n2 = viewer_client.get("/api/v1/history/", {"range": "1h", "node": n2.pk}).json()["points"]
    assert [p["bytes_out"] for p in only_n2] == [150_000] and only_n2[0]["hit_ratio_requests"] is None


def test_api_refuses_too_many_points_and_a_backwards_range(viewer_client):
    too_many = viewer_client.get("/api/v1/history/", {"range": "30d", "grain": "minute"})
    assert too_many.status_code == 400 and "grain" in too_many.json()["error"]["fields"]
    backwards = viewer_client.get(
        "/api/v1/history/", {"since": "2026-11-20T12:00:00Z", "until": "2026-11-20T11:00:00Z"}
    )
    assert backwards.status_code == 400 and "until" in backwards.json()["error"]["fields"]
    assert viewer_client.get("/api/v1/history/", {"grain": "week"}).status_code == 400


def test_api_needs_credentials(anon_client):
    assert anon_client.get("/api/v1/history/").status_code == 401


def test_beat_runs_the_rollup_and_the_prune(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"history.rollup", "history.prune", "history.probe_origins"} <= tasks


def test_the_beat_tasks_run_twice_to_the_same_rows(settings):
    from appliance.history import tasks

    node = ProxyNodeFactory(name="n1")
    now = timezone.now()
    StreamSessionFactory(node=node, started_at=now - dt.timedelta(minutes=3), ended_at=None)
    TrafficBucket.objects.create(node=node, grain="minute", start=now - dt.timedelta(hours=100))
    snapshots = []
    for _ in range(2):
        tasks.rollup.apply(throw=True)
        tasks.prune.apply(throw=True)
        snapshots.append(sorted(TrafficBucket.objects.values_list("grain", "start", "sessions", "players")))
    assert snapshots[0] == snapshots[1]
    assert {grain for grain, *_ in snapshots[0]} == {"minute", "hour", "day"}
    assert all(start > now - dt.timedelta(hours=48) for _, start, *_ in snapshots[0])
    assert max(sessions for _, _, sessions, _ in snapshots[0]) == 1


def test_the_python_roll_up_of_the_quick_start_matches_the_sql_one(monkeypatch):
    """SQLite (./quickstart) has no generate_series: the Python path must write the same gauges."""
    node, other = ProxyNodeFactory(name="n1"), ProxyNodeFactory(name="n2")
    StreamSessionFactory(node=node, player_ip="10.0.0.1", started_at=_at(-3000), ended_at=_at(130))
    StreamSessionFactory(node=node, player_ip="10.0.0.2", started_at=_at(50), ended_at=None)
    StreamSessionFactory(node=other, player_ip=None, started_at=_at(65), ended_at=_at(70))
    StreamSessionFactory(node=other, player_ip="10.0.0.3", started_at=_at(-90), ended_at=_at(-80))
    TrafficBucket.objects.create(
        node=other, grain="minute", start=_at(180), sessions=5, players=5
    )  # now stale
    TrafficBucket.objects.create(node=node, grain="hour", start=T0, spool_bytes=10, bytes_out=7)

    def snapshot():
        rows = TrafficBucket.objects.values_list(
            "node__name", "grain", "start", "sessions", "players", "spool_bytes", "bytes_out"
        )
        return sorted(rows)

    services.history_rollup(now=_at(200), lookback_minutes=6)
    in_sql = snapshot()
    TrafficBucket.objects.exclude(grain="hour", node=node).delete()  # the Python path creates them again
    TrafficBucket.objects.update(sessions=0, players=0)
    TrafficBucket.objects.create(node=other, grain="minute", start=_at(180), sessions=5, players=5)
    monkeypatch.setattr(services.connection, "vendor", "sqlite")
    services.history_rollup(now=_at(200), lookback_minutes=6)
    assert snapshot() == in_sql
    assert ("n1", "minute", T0, 2, 2, 0, 0) in in_sql and ("n2", "minute", _at(180), 0, 0, 0, 0) in in_sql
