"""Pure parts of the tasks: revalidation verdicts, backoff, beat schedule and task registration."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.conf import settings

from appliance import celery_app
from appliance.content.task_services import Entry, Probe, decide_revalidation
from appliance.uplink.task_services import backoff_seconds
from proxyd.wm.validators import Validators

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=clip\r\na=range:npt=0-3.0\r\nm=video 0 RTP/AVP 96\r\n"


def entry(**overrides) -> Entry:
    fields = dict(content_id=1, url="rtsp://o/clip", sdp=SDP, cache_control="public, max-age=60",
                  validators=Validators(etag='"v1"'), report_seq=3, policy="obey", forced_ttl=0, live=False)
    return Entry(**{**fields, **overrides})


def probe(status=200, headers=(("Cache-Control", "public, max-age=600"), ("ETag", '"v1"')), body=b"",
          method="GET_PARAMETER") -> Probe:
    return Probe(method=method, status=status, headers=tuple(headers), body=body)


def test_matching_validators_extend_by_max_age():
    verdict = decide_revalidation(entry(), probe(), now=NOW)
    assert verdict.outcome == "fresh" and verdict.expires_at == NOW + dt.timedelta(seconds=600)


def test_changed_etag_is_stale():
    assert decide_revalidation(entry(), probe(headers=[("Cache-Control", "public, max-age=600"),
                                                       ("ETag", '"v2"')]), now=NOW).outcome == "stale"


def test_describe_with_a_different_sdp_is_stale_and_the_same_sdp_is_fresh():
    other = SDP.replace("0-3.0", "0-5.0").encode()
    headers = [("Cache-Control", "public, max-age=600")]
    no_etag = entry(validators=Validators())
    changed = decide_revalidation(no_etag, probe(headers=headers, body=other, method="DESCRIBE"), now=NOW)
    same = decide_revalidation(no_etag, probe(headers=headers, body=SDP.replace("o=- 1 1", "o=- 9 9").encode(),
                                              method="DESCRIBE"), now=NOW)
    assert (changed.outcome, same.outcome) == ("stale", "fresh")


@pytest.mark.parametrize("cache_control", ["no-cache", "private, public", "max-age=600"])
def test_origin_withdrawing_permission_makes_it_stale(cache_control):
    result = decide_revalidation(entry(), probe(headers=[("Cache-Control", cache_control)]), now=NOW)
    assert result.outcome == "stale"


@pytest.mark.parametrize("status,outcome", [(404, "stale"), (410, "stale"), (401, "stale"),
                                            (500, "retry"), (503, "retry"), (None, "retry")])
def test_status_outcomes(status, outcome):
    assert decide_revalidation(entry(), probe(status=status), now=NOW).outcome == outcome


def test_force_ttl_applies_only_without_cache_control():
    forced = entry(policy="force_ttl", forced_ttl=120)
    verdict = decide_revalidation(forced, probe(headers=[("ETag", '"v1"')]), now=NOW)
    assert verdict.outcome == "fresh" and verdict.expires_at == NOW + dt.timedelta(seconds=120)


def test_backoff_grows_is_capped_and_jittered():
    rng = random.Random(7)
    delays = [backoff_seconds(n, base=5, cap=60, rng=rng) for n in range(1, 9)]
    assert 2.5 <= delays[0] <= 5
    assert all(30 <= d <= 60 for d in delays[4:])
    assert len({round(d, 6) for d in delays[4:]}) > 1  # jitter: capped attempts do not all wait the same


def test_beat_entries_name_registered_tasks_and_expire_before_the_next_run():
    celery_app.loader.import_default_modules()
    for name, entry_ in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry_["task"] in celery_app.tasks, name
        assert 0 < entry_["options"]["expires"] < entry_["schedule"], name


def test_tasks_have_time_limits():
    celery_app.loader.import_default_modules()
    ours = [t for name, t in celery_app.tasks.items() if not name.startswith("celery.")]
    assert len(ours) >= 6
    for task in ours:
        assert task.soft_time_limit and task.time_limit and task.soft_time_limit < task.time_limit, task.name
