"""Process-wide counters for what the runtime keeps nowhere else: RTSP responses by status, origin
request outcomes and latency, cache lookups and revalidations. Pure (no I/O, no imports from the
runtime), so every layer may count into it; one RTSP message costs one dict update, never an RTP
packet. Label values come from closed sets (methods outside KNOWN_METHODS become "other"; origins
are host:port pairs proxyd may contact: routes, the allow-list, control-plane origins) so a player
cannot grow the label space."""

from __future__ import annotations

from bisect import bisect_left

KNOWN_METHODS = frozenset({"OPTIONS", "DESCRIBE", "SETUP", "PLAY", "PAUSE", "TEARDOWN", "GET_PARAMETER",
                           "SET_PARAMETER", "ANNOUNCE", "RECORD", "REDIRECT"})


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


class LabelledCounter:
    """A Prometheus counter family: monotonically increasing values by label tuple."""

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...]) -> None:
        self.name, self.help, self.labels = name, help_text, labels
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, *label_values: str, amount: float = 1) -> None:
        self.values[label_values] = self.values.get(label_values, 0) + amount


class Histogram:
    """A Prometheus histogram family (cumulative buckets rendered at scrape time)."""

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...],
                 buckets: tuple[float, ...]) -> None:
        self.name, self.help, self.labels, self.buckets = name, help_text, labels, buckets
        self.series: dict[tuple[str, ...], list] = {}  # labels -> [per-bucket counts (+Inf last), sum]

    def observe(self, value: float, *label_values: str) -> None:
        series = self.series.get(label_values)
        if series is None:
            series = self.series[label_values] = [[0] * (len(self.buckets) + 1), 0.0]
        series[0][bisect_left(self.buckets, value)] += 1
        series[1] += value


RTSP_RESPONSES = LabelledCounter("proxyd_rtsp_responses_total", "RTSP responses sent to players",
                                 ("method", "status"))
ORIGIN_REQUEST_SECONDS = Histogram(
    "proxyd_origin_request_seconds", "time from sending an RTSP request to an origin to its response",
    ("origin", "method"), (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
ORIGIN_RESPONSES = LabelledCounter("proxyd_origin_responses_total", "RTSP responses received from origins",
                                   ("origin", "status"))
ORIGIN_ERRORS = LabelledCounter(
    "proxyd_origin_errors_total",
    "origin requests that got no response (connect_refused, connect_timeout, tls_failed, "
    "response_timeout, connection_closed, send_failed)", ("origin", "kind"))
CACHE_LOOKUPS = LabelledCounter(
    "proxyd_cache_requests_total",
    "cacheable DESCRIBEs by store lookup result: hit (fresh entry), stale (revalidated first), miss",
    ("result",))
CACHE_REVALIDATIONS = LabelledCounter(
    "proxyd_cache_revalidations_total", "revalidations of stale entries by outcome: unchanged, changed, "
    "origin_error (stale served or relayed)", ("outcome",))

CLUSTER_PEER_REQUESTS = LabelledCounter(
    "proxyd_cluster_peer_requests_total", "cache misses, revalidations and prestuffs of URLs another cluster "
    "node owns, by outcome: asked (connected to the owner), unreachable (origin asked instead, owner left out "
    "for --cluster-peer-retry), refused (the owner answered 403 or 5xx: origin asked instead)", ("outcome",))

FAMILIES = (RTSP_RESPONSES, ORIGIN_REQUEST_SECONDS, ORIGIN_RESPONSES, ORIGIN_ERRORS, CACHE_LOOKUPS,
            CACHE_REVALIDATIONS, CLUSTER_PEER_REQUESTS)
