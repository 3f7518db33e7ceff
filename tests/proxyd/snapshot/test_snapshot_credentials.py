"""Origin credentials from the snapshot reach routes, resolved Targets and Router.credentials_for."""

from __future__ import annotations

import logging

from proxyd.config import Config, parse_route
from proxyd.control.schema import parse_snapshot
from proxyd.rtsp.auth import Credentials
from proxyd.app.server import ProxyServer
from proxyd.app.snapshot_apply import SnapshotApplier, snapshot_routes


def origin(id_, prefix, base, **extra):
    return {"id": id_, "name": f"o{id_}", "route_prefix": prefix, "base_url": base, **extra}


def snapshot(*origins):
    return parse_snapshot({"schema_version": 1, "etag": "e", "node": {"name": "n"}, "origins": list(origins),
                           "purges": [], "terminate_sessions": []})


def resolve(server, path):
    return server.context.router.resolve(f"rtsp://127.0.0.1:8554{path}", "127.0.0.1", 8554)


def test_rows_with_a_username_or_password_give_their_route_credentials():
    snap = snapshot(origin(1, "/a", "rtsp://a.example/base", username="u", password="p"),
                    origin(2, "/b", "rtsp://b.example", username="", password="only-a-password"),
                    origin(3, "/c", "rtsp://c.example", username="", password=""))
    routes = {r.prefix: r for r in snapshot_routes(snap.origins)[0]}
    assert routes["/a"].credentials == Credentials("u", "p")
    assert routes["/b"].credentials == Credentials("", "only-a-password")
    assert routes["/c"].credentials is None
    assert "only-a-password" not in repr(routes["/b"])


def test_targets_carry_the_routes_credentials_and_cli_routes_have_none(caplog):
    server = ProxyServer(Config(listen_port=8554, routes=(parse_route("/cli=rtsp://cli.example:554"),)))
    with caplog.at_level(logging.DEBUG, logger="proxyd"):
        SnapshotApplier(server.context, server.strategies.cache).apply(snapshot(
            origin(1, "/a", "rtsp://a.example:8600/base", username="u", password="hunter2"),
            origin(2, "/cli", "rtsp://cp.example:554", username="x", password="shadowed")))
    target = resolve(server, "/a/clip")
    assert target.origin_url == "rtsp://a.example:8600/base/clip"
    assert target.credentials == Credentials("u", "hunter2")
    assert resolve(server, "/cli/clip").credentials is None  # the command-line route wins: none
    assert "hunter2" not in caplog.text and "hunter2" not in repr(target)
    SnapshotApplier(server.context, server.strategies.cache).apply(snapshot(origin(1, "/a", "rtsp://a.example:8600/base")))
    assert resolve(server, "/a/clip").credentials is None  # removed at the control plane: gone at once


def test_credentials_for_an_origin_url_come_from_the_most_specific_route():
    server = ProxyServer(Config(listen_port=8554))
    SnapshotApplier(server.context, server.strategies.cache).apply(snapshot(
        origin(1, "/a", "rtsp://o.example:554/", username="root", password="r"),
        origin(2, "/b", "rtsp://o.example:554/deep", username="deep", password="d"),
        origin(3, "/c", "rtsp://other.example:554/", username="other", password="o")))
    router = server.context.router
    assert router.credentials_for("rtsp://o.example/deep/clip") == Credentials("deep", "d")
    assert router.credentials_for("rtsp://o.example:554/deeper/clip") == Credentials("root", "r")
    assert router.credentials_for("rtsp://other.example/x").username == "other"
    assert router.credentials_for("rtsp://o.example:8554/x") is None  # another port, another origin
    assert router.credentials_for("not a url") is None
