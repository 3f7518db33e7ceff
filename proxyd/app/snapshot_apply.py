"""Apply the control-plane config snapshot to a running node.

    applier = SnapshotApplier(server.context, server.strategies.cache)
    plane.snapshot.subscribe(applier.apply)     # before plane.start(), so the on-disk copy applies too

- routes: every allowed Origin row becomes a route `route_prefix -> base_url`; a disallowed or
  deleted one disappears. Routes given on the command line stay and win over a snapshot route with
  the same prefix. The router is swapped as a whole: requests in flight keep the one they resolved.
- transport: an origin's `udp`/`tcp` preference overrides --origin-transport for its route
  (`auto` defers to the flag).
- live/split: an origin marked live is split like a `--live` prefix; its split policy `always` /
  `never` overrides `--split` for its route (`auto` defers to it; `--split never` turns splitting
  off on the node whatever the rows say).
- tls: an rtsps:// base_url makes an RTSP-over-TLS route (proxyd.net.tls); the row's tls_verify
  false turns certificate checking off for that route only (--origin-tls-no-verify: for all).
- terminate_sessions: those sessions end with end_reason "terminated"; a player connection left
  without sessions is closed so the player notices at once.
- purges: handed to the cache store (proxyd.cache.store.CacheStore.purge(url=...) or
  purge(prefix=...)) of the node's cache strategy, given to the applier; without a cache nothing is
  stored on this node, so there is nothing to remove.
- cache policies: every origin's cache_policy / cache_ttl / stale_if_error (live origins: never
  cached) go to CacheStrategy.set_origin_policies; origins not listed keep the command-line policy.
- prestuff: each request id is handed once to CacheStrategy.prestuff(url) (a fill without a
  player); one that could not start (origin down, not cacheable) is tried again with a later
  snapshot that still lists it. Without a cache there is nothing to fill into.
- cluster: the cache cluster's members (address, online) and id configure the node's
  proxyd.cluster.Membership (this node is the member named like it); off when the section says so
  or this node is not listed yet. --cluster-peer on the command line wins: the section is ignored.
- origin credentials: an origin row's username/password (either set) ride on its route (Route and
  the resolved Target carry `credentials`); every origin connection made for that route (relay,
  split, cache fill and revalidation, prestuff via Router.credentials_for, GetContentInfo) answers
  the origin's 401 with them (proxyd.origin.client.OriginClient). Command-line routes have none: a 401
  and its challenge reach the player, whose own Authorization is forwarded. Passwords are kept out
  of reprs and logs.
- player access: an origin row's `player_access` basic/digest with its realm and users' H(A1)
  hashes becomes its route's PlayerAuthPolicy (players get 401 without valid credentials); a row
  whose policy is unusable is skipped like a bad route (fail closed: its content is not served).
  Command-line routes keep --player-auth's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING

from proxyd.cluster import Peer
from proxyd.config import ConfigError, Route, parse_hostport, parse_route
from proxyd.control.schema import OriginConfig, Snapshot
from proxyd.routing import Router
from proxyd.rtsp.auth import Credentials
from proxyd.rtsp.player_auth import PlayerAuthPolicy, PolicyError, make_policy

if TYPE_CHECKING:
    from proxyd.cache.strategy import CacheStrategy
    from proxyd.serving.contracts import ServerContext

log = logging.getLogger("proxyd.snapshot")

TERMINATED = "terminated"


def snapshot_routes(origins: tuple[OriginConfig, ...]) -> tuple[list[Route], dict[str, str]]:
    """Routes of the allowed origins (with their credentials, if any) and their non-auto transport
    preferences, by prefix.

    An origin whose prefix or base URL cannot be a route is skipped with a warning, so one bad row
    cannot take the other routes down."""
    routes: dict[str, Route] = {}
    transports: dict[str, str] = {}
    for origin in origins:
        if not origin.allowed:
            continue
        try:
            route = parse_route(f"{origin.route_prefix}={origin.base_url}")
        except ConfigError as exc:
            log.warning("snapshot origin %r (id %d) ignored: %s", origin.name, origin.id, exc)
            continue
        if route.prefix in routes:
            log.warning("snapshot origin %r (id %d) ignored: prefix %s is already routed", origin.name,
                        origin.id, route.prefix)
            continue
        try:
            player_auth = origin_player_auth(origin)
        except PolicyError as exc:
            log.warning("snapshot origin %r (id %d) ignored: %s", origin.name, origin.id, exc)
            continue
        route = dataclasses.replace(route, player_auth=player_auth)
        if origin.username or origin.password:
            route = dataclasses.replace(route, credentials=Credentials(origin.username, origin.password))
        route = dataclasses.replace(route, live=origin.live,
                                    split="" if origin.split == "auto" else origin.split,
                                    tls_verify=origin.tls_verify)
        routes[route.prefix] = route
        if origin.transport != "auto":
            transports[route.prefix] = origin.transport
    return list(routes.values()), transports


def origin_player_auth(origin: OriginConfig) -> PlayerAuthPolicy | None:
    users = {u.username: {"MD5": u.md5, "SHA-256": u.sha256} for u in origin.player_users}
    return make_policy(origin.player_access, origin.player_realm, users)


def merge_routes(cli_routes: tuple[Route, ...], control_routes: list[Route]) -> tuple[Route, ...]:
    """CLI routes plus the control plane's, the CLI route winning on a shared prefix."""
    taken = {r.prefix for r in cli_routes}
    return tuple(cli_routes) + tuple(r for r in control_routes if r.prefix not in taken)


class SnapshotApplier:
    def __init__(self, context: ServerContext, cache: CacheStrategy | None) -> None:
        self.context = context
        self.cache = cache
        self.cli_config = context.config  # the command-line routes, kept for every rebuild
        self.done_purges: set[int] = set()
        self.started_prestuff: set[int] = set()
        self.prestuff_tasks: set[asyncio.Task] = set()
        self.last_routes: tuple[Route, ...] = context.config.routes

    def apply(self, snapshot: Snapshot) -> None:
        """Subscriber for SnapshotStore: runs on the event loop, never raises for bad rows."""
        self._apply_routes(snapshot)
        self._cluster(snapshot)  # before prestuff: its fills go through the owners
        self._terminate(snapshot.terminate_sessions)
        self._purge(snapshot)
        self._cache_policies(snapshot)
        self._prestuff(snapshot)

    def _apply_routes(self, snapshot: Snapshot) -> None:
        control_routes, transports = snapshot_routes(snapshot.origins)
        routes = merge_routes(self.cli_config.routes, control_routes)
        shadowed = sorted({r.prefix for r in control_routes} & {r.prefix for r in self.cli_config.routes})
        if shadowed:
            log.info("command-line routes win over control-plane routes for %s", shadowed)
        # Transport preferences only for routes that came from the control plane.
        transports = {p: t for p, t in transports.items() if p not in shadowed}
        config = dataclasses.replace(self.cli_config, routes=routes)
        self.context.router = Router(config, transports=transports)
        if routes != self.last_routes:
            log.info("routes now %s", [f"{r.prefix}={r.origin_url}" for r in routes])
            self.last_routes = routes

    def _cluster(self, snapshot: Snapshot) -> None:
        if self.cli_config.cluster_peers:
            return
        cluster, me, members = snapshot.cluster, None, []
        for node in cluster.nodes:
            try:
                host, port = parse_hostport(node.address, f"snapshot cluster node {node.name!r}", 554)
            except ConfigError as exc:
                log.warning("cluster member ignored: %s", exc)
                continue
            members.append(Peer(host, port, online=node.online))
            if node.name == snapshot.node_name:
                me = members[-1]
        membership = self.context.cluster
        before = (membership.me, membership.members)
        membership.configure(me, members, cluster.id)
        if (membership.me, membership.members) != before:
            log.info("cache cluster %s", f"{cluster.id}: self {me.address}, members "
                     f"{[(p.address, p.online) for p in membership.members]}" if membership.enabled else "off")

    def _terminate(self, session_ids: tuple[str, ...]) -> None:
        for session_id in session_ids:
            session = self.context.sessions.get(session_id)
            if session is None:
                continue  # already ended, or another node's
            log.info("session %s terminated by the control plane", session_id)
            player = session.player
            session.close(TERMINATED, "operator request")
            if not player.sessions:
                player.close_connection("session terminated by operator")

    def _purge(self, snapshot: Snapshot) -> None:
        store = self.cache.store if self.cache is not None else None
        for purge in snapshot.purges:
            if purge.id in self.done_purges:
                continue
            self.done_purges.add(purge.id)
            if store is None:
                continue  # no cache on this node: nothing of this URL is stored here
            try:
                if purge.prefix:
                    store.purge(prefix=purge.url)
                else:
                    store.purge(url=purge.url)
            except Exception:  # a cache bug must not stop routes/terminations from applying
                log.exception("purge %d of %s failed", purge.id, purge.url)
                self.done_purges.discard(purge.id)  # retried with the next snapshot
        live = {p.id for p in snapshot.purges}
        self.done_purges &= live  # bounded by the snapshot's own purge list

    def _cache_policies(self, snapshot: Snapshot) -> None:
        if self.cache is not None:
            self.cache.set_origin_policies(snapshot.origins)

    def _prestuff(self, snapshot: Snapshot) -> None:
        self.started_prestuff &= {p.id for p in snapshot.prestuff}  # bounded by the snapshot's list
        strategy = self.cache
        if strategy is None:
            return
        for request in snapshot.prestuff:
            if request.id in self.started_prestuff:
                continue
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # applied before the server runs: the next snapshot starts it
                return
            self.started_prestuff.add(request.id)
            task = loop.create_task(self._run_prestuff(strategy, request.id, request.url))
            self.prestuff_tasks.add(task)
            task.add_done_callback(self.prestuff_tasks.discard)

    async def _run_prestuff(self, strategy: CacheStrategy, request_id: int, url: str) -> None:
        try:
            started = await strategy.prestuff(url)
        except Exception:  # a cache bug must not take the applier down
            log.exception("prestuff %d of %s failed", request_id, url)
            started = False
        if not started:
            self.started_prestuff.discard(request_id)
