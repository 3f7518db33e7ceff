"""Metrics listener configuration, the exposition format, report totals and JSON log lines."""

from __future__ import annotations

import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxyd.app.cli import config_from_args
from proxyd.config import ConfigError
from proxyd.control.reports import NullSink
from proxyd.log import JsonFormatter, context
from proxyd.metrics.counters import Histogram, LabelledCounter, method_label
from proxyd.metrics.events import ReportTotals
from proxyd.metrics.exposition import from_counter, from_histogram, gauge, render


def test_metrics_listener_is_off_by_default_and_loopback_only_unless_allowed():
    assert config_from_args([], env={}).metrics_listen is None
    loopback = config_from_args(["--metrics-listen", "127.0.0.1:9100"], env={})
    assert loopback.metrics_listen == ("127.0.0.1", 9100)
    assert config_from_args([], env={"PROXYD_METRICS_LISTEN": "[::1]:9100"}).metrics_listen == ("::1", 9100)
    for public in ("0.0.0.0:9100", "10.1.2.3:9100", "metrics.example:9100"):
        with pytest.raises(ConfigError, match="--metrics-allow-public"):
            config_from_args(["--metrics-listen", public], env={})
    allowed = config_from_args(["--metrics-listen", "0.0.0.0:9100", "--metrics-allow-public"], env={})
    assert allowed.metrics_listen == ("0.0.0.0", 9100) and allowed.metrics_allow_public
    by_env = config_from_args([], env={"PROXYD_METRICS_LISTEN": "0.0.0.0:9100",
                                       "PROXYD_METRICS_ALLOW_PUBLIC": "1"})
    assert by_env.metrics_allow_public
    with pytest.raises(ConfigError, match="PROXYD_METRICS_ALLOW_PUBLIC"):
        config_from_args([], env={"PROXYD_METRICS_ALLOW_PUBLIC": "maybe"})


def test_exposition_is_parsed_by_prometheus_with_escaped_labels():
    c = LabelledCounter("x_total", "a counter\nwith a newline", ("url",))
    c.inc('rtsp://h/a "quoted" \\ back')
    c.inc('rtsp://h/a "quoted" \\ back', amount=2)
    h = Histogram("lat_seconds", "latency", ("method",), (0.1, 1.0))
    for v in (0.05, 0.5, 5.0):
        h.observe(v, "DESCRIBE")
    text = render([from_counter(c), from_histogram(h), gauge("g", "a gauge", 2.5)]).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["x"].samples[0].labels == {"url": 'rtsp://h/a "quoted" \\ back'}
    assert families["x"].samples[0].value == 3
    buckets = {s.labels["le"]: s.value for s in families["lat_seconds"].samples if s.name.endswith("_bucket")}
    assert buckets == {"0.1": 1, "1.0": 2, "+Inf": 3}
    assert families["g"].samples[0].value == 2.5


def test_method_labels_are_a_closed_set():
    assert method_label("DESCRIBE") == "DESCRIBE"
    assert method_label("X-RANDOM-1234") == "other"


def test_report_totals_keep_ended_sessions_fills_and_splits():
    totals = ReportTotals(NullSink())
    totals.emit("session.started", {"session_id": "a", "served_from": "cache"})
    totals.emit("session.ended", {"session_id": "a", "bytes_out": 100, "packets_out": 2, "bytes_in": 0,
                                  "packets_in": 0, "packets_lost": 0, "end_reason": "teardown"})
    assert totals.ended_counters["cache", "bytes_out"] == 100 and totals.served_from == {}
    totals.emit("cache.changed", {"url": "u", "state": "filling", "size_bytes": 0})
    totals.emit("cache.changed", {"url": "u", "state": "complete", "size_bytes": 500})
    totals.emit("cache.changed", {"url": "u", "state": "complete", "size_bytes": 500})  # a revalidation
    assert totals.fills == {"started": 1, "complete": 1} and totals.filled_bytes == 500
    split = {"split_id": "s", "url": "u", "state": "live", "players": 3, "reconnects": 1, "bytes_in": 10}
    totals.emit("split.changed", split)
    totals.emit("split.changed", {**split, "state": "ended", "reconnects": 2, "bytes_in": 20,
                                  "end_reason": "linger_expired"})
    assert totals.splits == {} and totals.split_reconnects == 2 and totals.split_bytes_in == 20


def test_a_malformed_report_is_logged_once_and_still_delivered(caplog):
    delivered = []

    class Sink:
        def emit(self, kind, data):
            delivered.append(kind)

    totals = ReportTotals(Sink())
    with caplog.at_level(logging.WARNING, logger="proxyd"):
        totals.emit("session.ended", {"session_id": "x"})
    assert delivered == ["session.ended"]
    assert len([r for r in caplog.records if "cannot count" in r.getMessage()]) == 1


def test_json_log_lines_carry_the_session_id():
    record = logging.LogRecord("proxyd.downstream", logging.INFO, __file__, 1, "%s PLAY %s",
                               (context("10.0.0.1:5000", 4, "ab12"), "ok"), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["session"] == "ab12" and line["peer"] == "10.0.0.1:5000" and line["cseq"] == "4"
    assert line["level"] == "INFO" and line["message"].endswith("PLAY ok")
    assert config_from_args(["--log-format", "json"], env={}).log_format == "json"


class FakePlane:
    def __init__(self, age: float | None, spooled: int) -> None:
        self.snapshot = type("Snapshot", (), {"age_seconds": lambda _self, now: age})()
        self.spool = type("Spool", (), {"bytes": spooled})()


@pytest.mark.parametrize("age, spooled, failing", [
    (5.0, 0, set()), (301.0, 0, {"snapshot"}), (None, 0, {"snapshot"}), (5.0, 33 << 20, {"spool"})])
async def test_readiness_limits(age, spooled, failing, tmp_path):
    from proxyd.config import Config, Limits
    from proxyd.metrics.health import readiness

    config = Config(cache_dir=str(tmp_path / "cache"),
                    limits=Limits(ready_max_snapshot_age=300, ready_max_spool_bytes=32 << 20))
    checks = await readiness(config, True, FakePlane(age, spooled))
    assert {name for name, c in checks.items() if not c["ok"]} == failing
    assert checks["cache_dir"]["ok"] and (tmp_path / "cache").is_dir()  # created like the store would
