from django.db import models

from appliance.playback.wmlog_fields import playlog_wmlog_fields

# Abstract base holding one typed column per [MS-WMLOG] field, generated from the field table.
WmlogColumns = type("WmlogColumns", (models.Model,), {
    "__module__": __name__,
    "Meta": type("Meta", (), {"abstract": True}),
    **dict(playlog_wmlog_fields()),
})


class ServedFrom(models.TextChoices):
    ORIGIN = "origin", "Origin"
    CACHE = "cache", "Cache"
    SPLIT = "split", "Live split"


class EndReason(models.TextChoices):
    TEARDOWN = "teardown", "Teardown"
    TIMEOUT = "timeout", "Timeout"
    CONNECTION_LOST = "connection_lost", "Connection lost"
    ORIGIN_ERROR = "origin_error", "Origin error"
    TERMINATED = "terminated", "Terminated by an operator"
    SHUTDOWN = "shutdown", "proxyd shutdown"
    NODE_LOST = "node_lost", "Node stopped reporting"


class StreamSession(models.Model):
    """A player's RTSP session on a node. Built from report events in whatever order they arrive."""

    node = models.ForeignKey("nodes.ProxyNode", on_delete=models.CASCADE, related_name="sessions")
    session_id = models.CharField(max_length=128)
    origin = models.ForeignKey("origins.Origin", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="sessions")
    url = models.CharField(max_length=2000, blank=True)
    origin_url = models.CharField(max_length=2000, blank=True)
    player_addr = models.CharField(max_length=64, blank=True)
    player_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    transports = models.JSONField(default=list, blank=True)
    served_from = models.CharField(max_length=8, choices=ServedFrom.choices, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=16, choices=EndReason.choices, blank=True)
    bytes_out = models.BigIntegerField(default=0)
    packets_out = models.BigIntegerField(default=0)
    bytes_in = models.BigIntegerField(default=0)
    packets_in = models.BigIntegerField(default=0)
    packets_lost = models.BigIntegerField(default=0)
    jitter_ms = models.FloatField(default=0.0)
    counters_seq = models.BigIntegerField(default=-1, help_text="seq of the newest applied counters")
    terminate_requested_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["node", "session_id"], name="session_unique_node_sid")]
        indexes = [
            models.Index(fields=["ended_at", "started_at"]),
            models.Index(fields=["started_at"]),
            models.Index(fields=["player_ip"]),
        ]

    def __str__(self) -> str:
        return f"{self.node_id}:{self.session_id}"

    @property
    def live(self) -> bool:
        return self.ended_at is None


class SplitState(models.TextChoices):
    STARTING = "starting", "Starting"
    LIVE = "live", "Live"
    RECONNECTING = "reconnecting", "Reconnecting"
    ENDED = "ended", "Ended"


class SplitEndReason(models.TextChoices):
    LINGER_EXPIRED = "linger_expired", "No players left (linger expired)"
    NO_PLAYERS = "no_players", "No players left"
    ORIGIN_ERROR = "origin_error", "Origin unavailable"
    SHUTDOWN = "shutdown", "proxyd shutdown"
    NODE_LOST = "node_lost", "Node stopped reporting"


class OriginTransport(models.TextChoices):
    UDP = "udp", "UDP"
    TCP = "tcp", "TCP"


class LiveSplit(models.Model):
    """A node's live split: one origin session shared by every player of a live URL (MS-RTSP 4.6.2).
    Each split.changed report carries the whole status; the newest by seq is kept."""

    node = models.ForeignKey("nodes.ProxyNode", on_delete=models.CASCADE, related_name="splits")
    split_id = models.CharField(max_length=64)
    origin = models.ForeignKey("origins.Origin", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="splits")
    url = models.CharField(max_length=2000, help_text="origin URL (its sessions' origin_url)")
    player_url = models.CharField(max_length=2000, blank=True, help_text="player-facing URL")
    state = models.CharField(max_length=16, choices=SplitState.choices)
    players = models.IntegerField(default=0)
    peak_players = models.IntegerField(default=0)
    reconnects = models.IntegerField(default=0, help_text="times the origin session was lost")
    media_stalls = models.IntegerField(default=0, help_text="origin sessions that stopped sending media")
    origin_transport = models.CharField(max_length=8, choices=OriginTransport.choices, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=16, choices=SplitEndReason.choices, blank=True)
    packets_in = models.BigIntegerField(default=0)
    bytes_in = models.BigIntegerField(default=0)
    report_seq = models.BigIntegerField(default=-1, help_text="seq of the applied split.changed")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["node", "split_id"], name="livesplit_unique_node_split")]
        indexes = [models.Index(fields=["state", "started_at"]), models.Index(fields=["started_at"])]

    def __str__(self) -> str:
        return f"{self.node_id}:{self.split_id}"

    @property
    def live(self) -> bool:
        return self.state != SplitState.ENDED


REPORT_COLUMNS = ["c_playerid", "x_duration", "avgbandwidth", "c_pkts_received", "c_pkts_lost_client",
                  "c_buffercount", "c_totalbuffertime"]


class PlayLog(WmlogColumns):
    """One LogPlay/LogConnect (or forwarded rendering log): every [MS-WMLOG] field typed, plus the raw XML."""

    node = models.ForeignKey("nodes.ProxyNode", on_delete=models.CASCADE, related_name="playlogs")
    session = models.ForeignKey(StreamSession, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="playlogs")
    origin = models.ForeignKey("origins.Origin", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="playlogs")
    received_at = models.DateTimeField(help_text="when proxyd received the log")
    logged_at = models.DateTimeField(help_text="the log's date+time if valid, else received_at")
    kind = models.CharField(max_length=16)
    log_type = models.CharField(max_length=16)
    url = models.CharField(max_length=2000, blank=True, help_text="player-facing URL")
    player_addr = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=512, blank=True, help_text="RTSP User-Agent header")
    raw = models.TextField(blank=True)
    parse_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-logged_at", "-id"]
        indexes = [
            models.Index(fields=["logged_at"]),
            models.Index(fields=["url", "logged_at"]),
            models.Index(fields=["origin", "logged_at"]),
            models.Index(fields=["c_playerid"]),
            models.Index(fields=["c_ip"]),
            # The url and player filters: prefix LIKE needs pattern ops (the default collation is not C).
            models.Index(fields=["url"], opclasses=["varchar_pattern_ops"], name="playlog_url_prefix"),
            models.Index(fields=["player_addr"], opclasses=["varchar_pattern_ops"], name="playlog_player_prefix"),
            models.Index(fields=["cs_uri_stem"], name="playlog_uri_stem"),
            # the list's other orderings (PlayLogViewSet.ordering_fields): the first page reads the index, not
            # a sort of every matching row (logged_at and c_ip have theirs above)
            *(models.Index(fields=[column], name=f"playlog_order_{column}")
              for column in ("received_at", "x_duration", "avgbandwidth")),
            # Reports (appliance.playback.reports) read only these columns of LogPlay rows: covering
            # partial indexes turn their aggregates into index-only scans.
            *(models.Index(fields=keys, include=REPORT_COLUMNS, condition=models.Q(kind="logplay"), name=name)
              for name, keys in (("playlog_report_url", ["url"]), ("playlog_report_origin", ["origin"]),
                                 ("playlog_report_software", ["c_hostexe", "c_playerversion"]))),
            # a time window the roll-ups cannot answer (not at local midnight): every group key too, so each
            # group's report is an index-only scan of the window, not a heap read per row (rows arrive in
            # logged_at order only roughly: a day's rows lie on most heap pages)
            models.Index(fields=["logged_at"], condition=models.Q(kind="logplay"), name="playlog_report_window",
                         include=["url", "origin", "node", "c_hostexe", "c_playerversion", *REPORT_COLUMNS]),
            # url prefix reports without a roll-up grain (rollup_reports._url_prefix_raw_report): with logged_at
            # and origin too, a range, the origin filter and the by-origin/by-day groups read no heap page;
            # logged_at as a key, a range's other days are skipped inside the index scan (not a filter per row)
            models.Index(fields=["url", "logged_at"], opclasses=["varchar_pattern_ops", "timestamptz_ops"],
                         condition=models.Q(kind="logplay"), name="playlog_report_url_range",
                         include=["origin", "c_hostexe", "c_playerversion", *REPORT_COLUMNS]),
        ]



NODE_GRAINS_Q = models.Q(grain__in=["dn", "on", "cn", "sn"])  # rollup_sql.NODE_GRAINS
ORIGIN_DAY_GRAINS_Q = models.Q(grain__in=["oc", "os"])  # rollup_sql.RANGE_GRAINS added by migration 0014


CELL_SUMS = ["plays", "duration_sum", "bw_sum", "bw_n", "received_sum", "lost_sum", "buffer_count", "buffer_seconds"]


class ReportCell(models.Model):
    """Report roll-up: LogPlay sums of one group of one grain (rollup_sql.py), kept by triggers + the fold."""

    grain = models.CharField(max_length=2)
    day = models.DateField()
    origin_id = models.IntegerField(help_text="0: no origin, or not a key of this grain")
    key_hash = models.UUIDField(help_text="md5 of key_a, key_b (and node_id in node grains; keeps the unique "
                                "index small)")
    node_id = models.IntegerField(default=0, db_default=0, help_text="node grains: the node (in key_hash too)")
    key_a = models.TextField(blank=True)
    key_b = models.TextField(blank=True)
    plays = models.BigIntegerField()
    players = models.BigIntegerField(help_text="distinct non-empty c_playerid in this cell")
    first_players = models.BigIntegerField(default=0, db_default=0, help_text="range grains: players whose "
                                           "first day in this (origin, key) is this cell's day (rollup_sql.py)")
    duration_sum = models.DecimalField(max_digits=40, decimal_places=0)
    bw_sum = models.DecimalField(max_digits=40, decimal_places=0)
    bw_n = models.BigIntegerField()
    received_sum = models.DecimalField(max_digits=40, decimal_places=0)
    lost_sum = models.DecimalField(max_digits=40, decimal_places=0)
    buffer_count = models.DecimalField(max_digits=40, decimal_places=0)
    buffer_seconds = models.DecimalField(max_digits=40, decimal_places=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["grain", "day", "origin_id", "key_hash"],
                                               name="reportcell_unique_key")]
        indexes = [
            # url filter on the roll-ups: prefix match over the url cells (rollup_reports._grain)
            models.Index(fields=["key_a"], opclasses=["text_pattern_ops"], condition=models.Q(grain="c"),
                         name="reportcell_url_prefix"),
            # url filter over days: the cells of the matching urls, not every url's, with the sums a url prefix's
            # by-day report reads (index-only: rollup_reports ranks and sums in one pass)
            models.Index(fields=["key_hash", "day"], include=[*CELL_SUMS, "players"], condition=models.Q(grain="cd"),
                         name="reportcell_url_day_sums"),
            # url prefix on by-player-software: the url x software cells of the prefix, summed per software
            # index-only (rollup_reports._url_software_report); key_hash for their player rows
            models.Index(fields=["key_a"], opclasses=["text_pattern_ops"],
                         include=["key_b", "key_hash", *CELL_SUMS, "players"],
                         condition=models.Q(grain="cs"), name="reportcell_url_software"),
            # node filter: one node's cells
            models.Index(fields=["grain", "node_id"], condition=NODE_GRAINS_Q, name="reportcell_node"),
            # origin with a day range: one origin's cells of the range, ranked index-only
            models.Index(fields=["grain", "origin_id", "day"], include=["key_hash", "plays", "key_a", "key_b"],
                         condition=ORIGIN_DAY_GRAINS_Q, name="reportcell_origin_days"),
            # by-content over a day range without filters: url x day and url x week cells of a range, ranked
            # index-only (rollup_reports.UnionRanking)
            models.Index(fields=["grain", "day"], include=["key_hash", "plays", "key_a"],
                         condition=models.Q(grain__in=["cd", "cw"]), name="reportcell_content_days"),
        ]


RANGE_GRAINS_Q = models.Q(grain__in=["do", "cd", "sd"])  # rollup_sql.RANGE_GRAINS of migrations 0003-0013
URL_OVERLAP_GRAINS_Q = models.Q(grain__in=["cd", "co", "cs"])  # rollup_sql.OVERLAP_GRAINS


class ReportPlayer(models.Model):
    """Plays per (cell key, player): exact distinct-player counts under inserts and deletes."""

    grain = models.CharField(max_length=2)
    day = models.DateField()
    origin_id = models.IntegerField()
    key_hash = models.UUIDField()
    player = models.CharField(max_length=64)
    n = models.BigIntegerField()
    prev_day = models.DateField(null=True, help_text="the player's previous day in this (origin, key); "
                                "kept for the range grains only (rollup_sql.RANGE_GRAINS)")
    prev_url_overlap = models.SmallIntegerField(
        null=True, help_text="leading characters this url shares with the player's previous url (\"C\" order) in "
        "the same day, origin and key_b; NULL for its first; url grains only (rollup_sql.OVERLAP_GRAINS)")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["grain", "day", "origin_id", "key_hash", "player"],
                                               name="reportplayer_unique_key")]
        indexes = [
            # range reports: count(*) of first-in-range rows, index-only
            models.Index(fields=["grain", "day", "prev_day"], include=["origin_id", "key_hash"],
                         condition=RANGE_GRAINS_Q, name="reportplayer_range"),
            # prev_day upkeep: all days of the (origin, key, player) pairs a statement touches
            models.Index(fields=["grain", "origin_id", "key_hash", "player", "day"], condition=RANGE_GRAINS_Q,
                         name="reportplayer_pair_days"),
            # range reports: players back after a gap, added to the cells' first_players
            models.Index(fields=["grain", "day", "prev_day"], include=["origin_id", "key_hash"],
                         condition=RANGE_GRAINS_Q & models.Q(prev_day__isnull=False), name="reportplayer_returning"),
            # url prefix on by-day/by-origin: the matching urls' rows that repeat a player (a probe per url)
            models.Index(fields=["key_hash", "grain", "prev_url_overlap"], include=["origin_id", "day"],
                         condition=URL_OVERLAP_GRAINS_Q & models.Q(prev_url_overlap__isnull=False),
                         name="reportplayer_url_repeats"),
            # prev_url_overlap upkeep: a player's rows of a day / origin
            models.Index(fields=["grain", "player", "day", "origin_id"], include=["key_hash"],
                         condition=URL_OVERLAP_GRAINS_Q, name="reportplayer_url_partition"),
            # the same two for the origin x day grains (origin leading: a range reads one origin's rows)
            models.Index(fields=["grain", "origin_id", "key_hash", "player", "day"], condition=ORIGIN_DAY_GRAINS_Q,
                         name="reportplayer_origin_pair_days"),
            models.Index(fields=["grain", "origin_id", "day", "prev_day"], include=["key_hash"],
                         condition=ORIGIN_DAY_GRAINS_Q & models.Q(prev_day__isnull=False),
                         name="reportplayer_origin_returning"),
        ]


class ReportReturning(models.Model):
    """Per range-grain cell and earlier day: how many of the cell's players last played its (origin, key) on
    prev_day (ReportPlayer rows with that prev_day), kept by triggers on ReportPlayer (rollup_sql.py). A day
    range's players back after a gap are a sum over a few rows per cell, not a count of player rows."""

    grain = models.CharField(max_length=2)
    origin_id = models.IntegerField()
    key_hash = models.UUIDField()
    day = models.DateField()
    prev_day = models.DateField()
    n = models.BigIntegerField()

    class Meta:
        # key first: a report page's keys are probed, each reading its days of the range (index-only)
        constraints = [models.UniqueConstraint(fields=["grain", "origin_id", "key_hash", "day", "prev_day"],
                                               include=["n"], name="reportreturning_unique_key")]


class RollupPending(models.Model):
    """A LogPlay row not yet added to the roll-ups (rollup_sql.py, deferred mode): written by the
    PlayLog INSERT trigger, claimed and deleted by the fold (appliance.playback.rollups)."""

    playlog_id = models.BigIntegerField(primary_key=True)

    class Meta:
        db_table = "playback_rollup_pending"
