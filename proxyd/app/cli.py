"""Command line and PROXYD_* environment -> Config. A flag wins over its environment variable."""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import sys
from collections.abc import Mapping, Sequence

from proxyd.config import (
    Config,
    ConfigError,
    ControlSettings,
    Limits,
    TlsSettings,
    flag,
    parse_hostport,
    parse_redirect,
    parse_route,
    parse_route_credentials,
)
from proxyd.rtsp.player_auth import PlayerAuthPolicy, PolicyError, parse_htdigest

LIMIT_HELP = {
    "max_header_bytes": "largest RTSP header block accepted (bytes); larger gets 431/400",
    "max_headers": "most header fields per RTSP message",
    "max_body_bytes": "largest RTSP body accepted (bytes); larger gets 413",
    "max_connections": "most concurrent player connections",
    "max_connections_per_address": "most concurrent connections from one player address "
                                   "(more are closed at once; cache-cluster peers are not limited)",
    "request_timeout": "seconds a connection without a session may go without a complete request "
                       "(idle and slow-header clients are closed)",
    "max_sessions": "most concurrent proxy sessions (453 beyond)",
    "max_pipelined_requests": "most unanswered requests per player connection (queued or in progress; a "
                              "session's pipelined SelectStreams go upstream pipelined): reading pauses "
                              "there, and a request beyond it already received gets 503",
    "origin_connect_timeout": "seconds to connect to an origin before 502",
    "origin_response_timeout": "seconds to wait for an origin response before 504",
    "udp_fallback_timeout": "seconds without UDP media from the origin before re-SETUP over TCP",
    "session_timeout": "player session timeout announced in Session: ;timeout= (seconds)",
    "session_idle_margin": "seconds an idle player session is kept past its announced ;timeout= before it "
                           "is reaped ([MS-RTSP] 3.2.5.2: the Idle-Timeout is a few seconds longer)",
    "session_max_transactions": "most transactions one player session may send per --session-heartbeat; "
                                "more get 503 (a burst of per-stream SETUPs or TEARDOWNs counts as one)",
    "session_heartbeat": "seconds of the transaction-counting heartbeat of a player session",
    "max_redirects": "most 301/302/305 redirects a cache revalidation (GetContentInfo) follows, only to "
                     "origins a route or --allow-origin names",
    "keepalive_fraction": "keepalive toward the origin after this fraction of its session timeout",
    "write_high_water": "player write buffer (bytes) above which live media packets are dropped "
                        "(a replay from the cache waits for it to drain instead)",
    "write_drop_limit": "player write buffer (bytes) above which the player is disconnected",
    "max_dropped_packets": "dropped media packets after which a slow player is disconnected",
    "counters_interval": "seconds between session.counters reports",
    "shutdown_grace": "seconds to drain sessions on SIGTERM before cancelling",
    "event_spool_max_bytes": "disk spool for SendEvents a standalone proxyd (no --control-url) owes origins",
    "event_retry_interval": "seconds before a standalone proxyd retries a SendEvent its origin did not take",
    "rtp_port_min": "lowest local UDP port for RTP/RTCP pairs (0: ephemeral)",
    "rtp_port_max": "highest local UDP port for RTP/RTCP pairs (0: ephemeral)",
    "split_linger": "seconds a split's origin session stays up after its last player leaves",
    "split_reconnect_wait": "seconds split players wait for a lost origin session to come back",
    "split_backoff_max": "longest pause (seconds) between split origin reconnect attempts",
    "split_gop_max_bytes": "most bytes kept since the last key frame for late joiners of a split",
    "split_keyframe_wait": "seconds a split PLAY waits for a first key frame so the player starts decodable "
                           "(and a first SETUP for the stream's SSRC when the origin named none)",
    "split_media_timeout": "seconds without origin RTP while a split is playing before it reconnects",
    "split_tcp_flush_interval": "seconds a split gathers packets for its TCP players into one shared write "
                                "(the most latency it adds; fewer, larger writes cost less CPU)",
    "split_read_coalesce": "seconds a split's other streams (audio) may wait for its video: a UDP origin's "
                           "video packets wake the hub, which then reads every stream's socket in one pass "
                           "(audio goes out with the next video frame, at most this late; about half the "
                           "wakeups of a video+audio stream); 0: each socket wakes the hub on its own",
    "split_frame_settle": "seconds a coalescing split (--split-read-coalesce) waits for the rest of a video "
                          "frame whose first packets woke it (the origin marks frame ends): the frame's tail "
                          "is read in one more pass instead of a wakeup per burst, at most this late; 0: off",
    "cache_pace_tick": "seconds of one cache replay pacing tick: replays due in one tick are woken by one "
                       "timer and send what is due before it ends (a packet leaves at most this much early)",
    "cache_tcp_flush_interval": "grid of a cache replay's TCP wake-ups, shared by every TCP replay so their "
                                "joined writes go out back to back; each wake-up sends its grid step plus this "
                                "much media (all streams; a packet leaves at most twice this early, never late)",
    "cache_udp_flush_interval": "grid of a cache replay's UDP wake-ups while other replays play, shared by every "
                                "UDP replay so all their packets due in a grid step go out in one sendmmsg per "
                                "server port (a replay alone wakes at its own next packet and sends this much "
                                "ahead); a packet leaves at most this plus --cache-pace-tick early, never late "
                                "(0: each replay wakes in the tick of its own next packet)",
    "cache_media_keep_bytes": "bytes of recently played cache entries kept loaded after their last player, so "
                              "the next one skips reading, checking and decoding the file (0: none)",
    "metrics_request_timeout": "seconds a metrics/health client has to send its request and read the answer",
    "metrics_max_connections": "most concurrent metrics/health connections (503 beyond)",
    "ready_max_snapshot_age": "seconds since the control plane last answered a snapshot poll after which "
                              "/readyz says not ready",
    "ready_max_spool_bytes": "undelivered report bytes on disk above which /readyz says not ready",
    "auth_max_failures": "failed player authentications from one address after which its requests get 403 "
                         "unchecked until the window ends",
    "auth_failure_window": "seconds of the window in which --auth-max-failures are counted",
    "auth_nonce_lifetime": "seconds a Digest nonce stays valid after its last use (then stale=true)",
    "auth_max_nonces": "most Digest nonces remembered (least recently used dropped: stale=true)",
    "auth_max_addresses": "most player addresses whose failed authentications are counted",
    "cluster_connect_timeout": "seconds to connect to the cluster peer owning a URL before asking its next owner "
                               "(the origin when that is this node)",
    "cluster_peer_retry": "seconds a cluster peer that could not be reached is left out of URL ownership",
}


def env_name(dest: str) -> str:
    return "PROXYD_" + dest.upper()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m proxyd",
        description="Caching RTSP streaming proxy daemon. Every flag can also be set with the PROXYD_* "
        "environment variable shown; a flag given on the command line wins. List-valued variables "
        "(PROXYD_ROUTE, PROXYD_ALLOW_ORIGIN, PROXYD_REDIRECT, PROXYD_REDIRECT_PROXY, PROXYD_CLUSTER_PEER) take "
        "whitespace- or comma-separated items.",
    )
    add = p.add_argument
    add("--listen", metavar="HOST:PORT", help="RTSP listen address (PROXYD_LISTEN; default 127.0.0.1:8554)")
    add("--listen-tls", metavar="HOST:PORT",
        help="RTSPS (RTSP over TLS 1.2+) listen address for players, beside --listen; needs --tls-cert and "
        "--tls-key (PROXYD_LISTEN_TLS; off when unset)")
    add("--tls-cert", metavar="FILE", help="PEM certificate chain of --listen-tls; re-read with --tls-key on "
        "SIGHUP (PROXYD_TLS_CERT)")
    add("--tls-key", metavar="FILE", help="PEM private key of --tls-cert (PROXYD_TLS_KEY)")
    add("--tls-allow-udp", action="store_const", const="1",
        help="let players on --listen-tls take UDP media (sent in clear text); without it such a SETUP "
        "gets 461 and the player retries over TCP inside TLS (PROXYD_TLS_ALLOW_UDP=1)")
    add("--origin-ca-file", metavar="FILE",
        help="PEM CA bundle that rtsps:// origins' certificates must chain to (PROXYD_ORIGIN_CA_FILE; "
        "default: the system trust store)")
    add("--origin-tls-no-verify", action="store_const", const="1",
        help="do not check rtsps:// origins' certificates (PROXYD_ORIGIN_TLS_NO_VERIFY=1; an origin row of "
        "the control plane can turn checking off for itself only)")
    add("--route", action="append", metavar="/PREFIX=rtsp[s]://HOST:PORT[/BASE]",
        help="reverse-proxy route, repeatable; longest prefix wins (PROXYD_ROUTE)")
    add("--origin-credentials-file", metavar="FILE",
        help="credentials proxyd answers an origin's 401 with, one /PREFIX=USER:PASSWORD line per --route "
        "(relay, cache, split, SendEvent; the players' own Authorization is then not forwarded); "
        "the file must not be readable by group or others (PROXYD_ORIGIN_CREDENTIALS_FILE)")
    add("--allow-origin", action="append", metavar="HOST:PORT",
        help="origin a forward-proxy request may name, repeatable; others get 403 (PROXYD_ALLOW_ORIGIN)")
    add("--player-auth", choices=("open", "basic", "digest"),
        help="players of --route and --allow-origin content must authenticate: 401 (407 as a forward "
        "proxy) with Basic or Digest (SHA-256, MD5) challenges; needs --player-auth-file "
        "(PROXYD_PLAYER_AUTH; default digest with a file, else open)")
    add("--player-auth-file", metavar="FILE",
        help="player credentials as htdigest lines user:realm:H(A1), H(A1) = MD5 (32 hex) or SHA-256 "
        "(64 hex) of user:realm:password, one realm per file (PROXYD_PLAYER_AUTH_FILE)")
    add("--redirect", action="append", metavar="/PREFIX=rtsp://HOST[:PORT][/PATH]",
        help="DESCRIBE under PREFIX answered 302 with Location on that server (the rest of the path "
        "appended), then the connection closed; repeatable, longest prefix wins (PROXYD_REDIRECT)")
    add("--redirect-proxy", action="append", metavar="/PREFIX=rtsp://PROXY[:PORT]",
        help="DESCRIBE under PREFIX answered 305 Use Proxy naming that proxy, then the connection "
        "closed; repeatable (PROXYD_REDIRECT_PROXY)")
    add("--cache-dir", metavar="DIR", help="cache directory; caching is off without it (PROXYD_CACHE_DIR)")
    add("--cache-ttl", metavar="SECONDS", help="freshness when the origin sends no Cache-Control; 0: never "
        "cache; unset: obey the origin (PROXYD_CACHE_TTL)")
    add("--cache-max-bytes", metavar="N", help="cache size quota, LRU eviction (PROXYD_CACHE_MAX_BYTES; default 1 GiB)")
    add("--stale-if-error", metavar="SECONDS", help="serve a stale entry this long past expiry when the origin "
        "is unreachable (PROXYD_STALE_IF_ERROR; default 0)")
    add("--origin-transport", choices=("auto", "udp", "tcp"),
        help="media transport toward origins; auto tries UDP then falls back to TCP "
        "(PROXYD_ORIGIN_TRANSPORT; default auto)")
    add("--live", action="append", metavar="PREFIX",
        help="player path prefix whose content is live and may be split, repeatable (PROXYD_LIVE)")
    add("--split", choices=("auto", "always", "never"),
        help="live splitting: auto (origin's x-wms-proxy-split or --live), always, never "
        "(PROXYD_SPLIT; default auto)")
    add("--control-url", metavar="URL",
        help="control plane base URL; reports off when empty (PROXYD_CONTROL_URL)")
    add("--control-token", metavar="TOKEN", help="control plane node token (PROXYD_CONTROL_TOKEN)")
    add("--control-token-file", metavar="FILE",
        help="file holding the control plane node token (PROXYD_CONTROL_TOKEN_FILE)")
    add("--node-name", metavar="NAME", help="node name reported to the control plane (PROXYD_NODE_NAME)")
    add("--control-poll-interval", metavar="SECONDS",
        help="seconds between config snapshot polls (PROXYD_CONTROL_POLL_INTERVAL; default 10)")
    add("--control-request-timeout", metavar="SECONDS",
        help="seconds a control-plane request may take before it is retried later "
             "(PROXYD_CONTROL_REQUEST_TIMEOUT; default 5)")
    add("--state-dir", metavar="DIR", help="state directory: report spool, snapshot (PROXYD_STATE_DIR)")
    add("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR (PROXYD_LOG_LEVEL; default INFO)")
    add("--log-format", choices=("text", "json"),
        help="log lines as text or one JSON object each, with peer/cseq/session as fields "
        "(PROXYD_LOG_FORMAT; default text)")
    add("--metrics-listen", metavar="HOST:PORT",
        help="serve Prometheus /metrics, /healthz and /readyz over HTTP here; off when unset; loopback only "
        "unless --metrics-allow-public (PROXYD_METRICS_LISTEN)")
    add("--metrics-allow-public", action="store_const", const="1",
        help="allow a non-loopback --metrics-listen address (PROXYD_METRICS_ALLOW_PUBLIC=1)")
    add("--cluster-peer", action="append", metavar="HOST:PORT",
        help="RTSP address of another node of this cache cluster, repeatable: each cacheable URL is filled "
        "through the node owning it (PROXYD_CLUSTER_PEER; with --control-url the snapshot's cluster "
        "applies when unset)")
    add("--cluster-self", metavar="HOST:PORT",
        help="this node's RTSP address as its cluster peers reach it; peer connections leave from its host "
        "(PROXYD_CLUSTER_SELF; default the --listen address)")
    add("--cluster-id", metavar="ID",
        help="cluster id marking requests between peers; only this id from a peer address is trusted "
        "(PROXYD_CLUSTER_ID; default proxyd)")
    defaults = Limits()
    for f in dataclasses.fields(Limits):
        add(f"--{flag(f.name)}", dest=f.name, metavar="N",
            help=f"{LIMIT_HELP[f.name]} ({env_name(f.name)}; default {getattr(defaults, f.name)})")
    return p


def _pick(args: argparse.Namespace, env: Mapping[str, str], dest: str) -> str | None:
    value = getattr(args, dest)
    if value is not None:
        return value
    return env.get(env_name(dest)) or None


def _pick_list(args: argparse.Namespace, env: Mapping[str, str], dest: str) -> list[str]:
    value = getattr(args, dest)
    if value:
        return value
    return env.get(env_name(dest), "").replace(",", " ").split()


def _switch(args: argparse.Namespace, env: Mapping[str, str], dest: str) -> bool:
    """An on/off flag: given, or its variable set to 1/true/yes (0/false/no: off)."""
    value = (_pick(args, env, dest) or "0").lower()
    if value not in ("0", "1", "true", "false", "yes", "no"):
        raise ConfigError(f"{env_name(dest)} must be 1 or 0, got {value!r}")
    return value in ("1", "true", "yes")


def _number(text: str, kind: type, name: str) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"--{flag(name)} must be {'an integer' if kind is int else 'a number'}, "
                          f"got {text!r}") from None


def read_private_file(path: str, what: str) -> str:
    """A secret's file: refused when group or others may read it (as ssh does with keys)."""
    try:
        if os.stat(path).st_mode & 0o077:
            raise ConfigError(f"{what}: {path} is readable by group or others; chmod 600 it")
        return pathlib.Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from None


def config_from_args(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    args = build_parser().parse_args(list(argv))
    listen = _pick(args, env, "listen") or "127.0.0.1:8554"
    host, port = parse_hostport(listen, "--listen")
    player_auth = _player_auth(_pick(args, env, "player_auth"), _pick(args, env, "player_auth_file"))
    routes = tuple(dataclasses.replace(parse_route(r), player_auth=player_auth)
                   for r in _pick_list(args, env, "route"))
    credentials_file = _pick(args, env, "origin_credentials_file")
    if credentials_file:
        routes = parse_route_credentials(read_private_file(credentials_file, "--origin-credentials-file"),
                                         routes, "--origin-credentials-file")
    allow = frozenset(parse_hostport(a, "--allow-origin", 554) for a in _pick_list(args, env, "allow_origin"))
    redirects = tuple([parse_redirect(r, False) for r in _pick_list(args, env, "redirect")]
                      + [parse_redirect(r, True) for r in _pick_list(args, env, "redirect_proxy")])
    limit_values = {}
    for f in dataclasses.fields(Limits):
        raw = _pick(args, env, f.name)
        if raw is not None:
            kind = int if isinstance(getattr(Limits(), f.name), int) else float
            limit_values[f.name] = _number(raw, kind, f.name)
    token = _pick(args, env, "control_token") or ""
    token_file = _pick(args, env, "control_token_file")
    if token_file and not token:
        try:
            token = pathlib.Path(token_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"--control-token-file: cannot read {token_file}: {exc.strerror}") from None
    control = ControlSettings(url=_pick(args, env, "control_url") or "", token=token,
                              node_name=_pick(args, env, "node_name") or "",
                              state_dir=_pick(args, env, "state_dir") or "",
                              poll_interval=_number(_pick(args, env, "control_poll_interval") or "10",
                                                    float, "control_poll_interval"),
                              request_timeout=_number(_pick(args, env, "control_request_timeout") or "5",
                                                      float, "control_request_timeout"))
    if control.url and not control.token:
        raise ConfigError("--control-url needs --control-token or --control-token-file")
    if control.url and not control.state_dir:
        raise ConfigError("--control-url needs --state-dir (report spool and last-known-good snapshot)")
    peers = tuple(parse_hostport(a, "--cluster-peer", 554) for a in _pick_list(args, env, "cluster_peer"))
    cluster_self = _pick(args, env, "cluster_self")
    cluster_self = parse_hostport(cluster_self, "--cluster-self", 554) if cluster_self \
        else (host, port) if host not in ("0.0.0.0", "::") else None
    metrics_listen = _pick(args, env, "metrics_listen")
    allow_public = _switch(args, env, "metrics_allow_public")
    tls_listen = _pick(args, env, "listen_tls")
    tls = TlsSettings(listen=parse_hostport(tls_listen, "--listen-tls") if tls_listen else None,
                      cert_file=_pick(args, env, "tls_cert") or "",
                      key_file=_pick(args, env, "tls_key") or "",
                      allow_udp=_switch(args, env, "tls_allow_udp"),
                      origin_ca_file=_pick(args, env, "origin_ca_file") or "",
                      origin_verify=not _switch(args, env, "origin_tls_no_verify"))
    return Config(listen_host=host, listen_port=port, routes=routes, allow_origins=allow, redirects=redirects,
                  cache_dir=_pick(args, env, "cache_dir") or "",
                  cache_ttl=None if _pick(args, env, "cache_ttl") is None
                  else _number(_pick(args, env, "cache_ttl"), int, "cache_ttl"),
                  cache_max_bytes=_number(_pick(args, env, "cache_max_bytes") or str(1 << 30), int, "cache_max_bytes"),
                  stale_if_error=_number(_pick(args, env, "stale_if_error") or "0", int, "stale_if_error"),
                  origin_transport=_pick(args, env, "origin_transport") or "auto",
                  live_prefixes=tuple("/" + p.strip("/") if p.startswith("/") else p
                                      for p in _pick_list(args, env, "live")),
                  split_policy=_pick(args, env, "split") or "auto",
                  log_level=(_pick(args, env, "log_level") or "INFO").upper(),
                  log_format=_pick(args, env, "log_format") or "text",
                  metrics_listen=parse_hostport(metrics_listen, "--metrics-listen") if metrics_listen
                  else None,
                  metrics_allow_public=allow_public, player_auth=player_auth,
                  control=control, tls=tls, cluster_peers=peers, cluster_self=cluster_self,
                  cluster_id=_pick(args, env, "cluster_id") or "proxyd",
                  limits=Limits(**limit_values)).validate()


def _player_auth(mode: str | None, path: str | None) -> PlayerAuthPolicy | None:
    if not path:
        if mode not in (None, "open"):
            raise ConfigError(f"--player-auth {mode} needs --player-auth-file")
        return None
    if mode == "open":
        raise ConfigError("--player-auth open contradicts --player-auth-file")
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--player-auth-file: cannot read {path}: {exc}") from None
    try:
        return parse_htdigest(text, mode or "digest")
    except PolicyError as exc:
        raise ConfigError(f"--player-auth-file {path}: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = config_from_args(sys.argv[1:] if argv is None else argv)
    except ConfigError as exc:
        print(f"proxyd: configuration error: {exc}", file=sys.stderr)
        return 2
    from proxyd.app.server import run

    return run(config)
