"""CLI + PROXYD_* environment -> Config, validation, exit code 2 on bad configuration."""

import dataclasses
import subprocess
import sys

import pytest

from proxyd.app.cli import build_parser, config_from_args, main
from proxyd.config import ConfigError, Limits, Route, flag


def test_contract_flags_build_routes_and_allow_list():
    cfg = config_from_args(["--listen", "0.0.0.0:9554", "--route", "/vod=rtsp://Origin.example:8600/base/",
                            "--route", "/live=rtsp://10.0.0.2", "--allow-origin", "cam.example:554",
                            "--allow-origin", "10.0.0.9:8554", "--cache-dir", "/var/cache/p"], env={})
    assert (cfg.listen_host, cfg.listen_port) == ("0.0.0.0", 9554)
    assert cfg.routes == (Route("/vod", "origin.example", 8600, "/base"), Route("/live", "10.0.0.2", 554, ""))
    assert cfg.allow_origins == {("cam.example", 554), ("10.0.0.9", 8554)}
    assert cfg.cache_dir == "/var/cache/p"


def test_tls_and_ipv6_settings_from_flags_and_environment():
    env = {"PROXYD_LISTEN": "[::]:8554", "PROXYD_LISTEN_TLS": "[::1]:8322", "PROXYD_TLS_CERT": "/etc/p/c.pem",
           "PROXYD_TLS_KEY": "/etc/p/k.pem", "PROXYD_TLS_ALLOW_UDP": "1",
           "PROXYD_ORIGIN_CA_FILE": "/etc/p/ca.pem",
           "PROXYD_ROUTE": "/s=rtsps://[2001:DB8::5]/live /p=rtsp://[::1]:8600"}
    cfg = config_from_args(["--origin-tls-no-verify"], env=env)
    assert (cfg.listen_host, cfg.listen_port) == ("::", 8554)
    assert cfg.tls.listen == ("::1", 8322)
    assert (cfg.tls.cert_file, cfg.tls.key_file) == ("/etc/p/c.pem", "/etc/p/k.pem")
    assert cfg.tls.allow_udp and cfg.tls.origin_ca_file == "/etc/p/ca.pem" and not cfg.tls.origin_verify
    secure, plain = cfg.routes
    assert (secure.origin_scheme, secure.origin_host, secure.origin_port) == ("rtsps", "2001:db8::5", 322)
    assert secure.origin_url == "rtsps://[2001:db8::5]:322/live"
    assert plain.origin_url == "rtsp://[::1]:8600"
    assert not config_from_args([], env={}).tls.listen  # off by default, origins checked by default
    assert config_from_args([], env={}).tls.origin_verify


def test_environment_is_read_and_flag_wins():
    env = {"PROXYD_LISTEN": "127.0.0.1:7000", "PROXYD_ROUTE": "/a=rtsp://h:1 /b=rtsp://h:2/x",
           "PROXYD_ALLOW_ORIGIN": "o1:10,o2:20", "PROXYD_MAX_SESSIONS": "7", "PROXYD_SESSION_TIMEOUT": "30",
           "PROXYD_LOG_LEVEL": "debug"}
    cfg = config_from_args(["--max-sessions", "9"], env=env)
    assert cfg.listen_port == 7000
    assert [r.prefix for r in cfg.routes] == ["/a", "/b"]
    assert cfg.allow_origins == {("o1", 10), ("o2", 20)}
    assert cfg.limits.max_sessions == 9  # flag beats PROXYD_MAX_SESSIONS=7
    assert cfg.limits.session_timeout == 30
    assert cfg.log_level == "DEBUG"


def test_every_limit_has_a_flag_and_an_env_variable():
    help_text = " ".join(build_parser().format_help().split())
    defaults = Limits()
    for f in dataclasses.fields(Limits):
        assert f"--{flag(f.name)}" in help_text
        assert f"PROXYD_{f.name.upper()}" in help_text.replace("- ", "-")
        if f.name.startswith("rtp_port_"):
            continue  # covered as a pair below
        value = 0.25 if f.name == "keepalive_fraction" else getattr(defaults, f.name) * 4
        cfg = config_from_args([], env={f"PROXYD_{f.name.upper()}": str(value)})
        assert getattr(cfg.limits, f.name) == value
    cfg = config_from_args([], env={"PROXYD_RTP_PORT_MIN": "20000", "PROXYD_RTP_PORT_MAX": "20100"})
    assert (cfg.limits.rtp_port_min, cfg.limits.rtp_port_max) == (20000, 20100)


def test_control_token_file_is_read(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    cfg = config_from_args(["--control-url", "http://127.0.0.1:8000", "--node-name", "n1",
                            "--state-dir", "/tmp/s"],
                           env={"PROXYD_CONTROL_TOKEN_FILE": str(token)})
    control = cfg.control
    assert (control.url, control.token, control.node_name) == ("http://127.0.0.1:8000", "s3cret", "n1")


@pytest.mark.parametrize("argv, message", [
    (["--route", "vod=rtsp://h:1"], "expected /PREFIX="),
    (["--route", "/vod=http://h:1"], "rtsp:// or rtsps:// URL"),
    (["--route", "/vod=rtsp://[::1:554/x"], "bad host or port"),
    (["--listen-tls", "127.0.0.1:8322"], "--listen-tls needs --tls-cert and --tls-key"),
    (["--tls-cert", "c.pem", "--tls-key", "k.pem"], "need --listen-tls"),
    (["--listen-tls", "[::1]"], "missing port"),
    (["--route", "/v=rtsp://h:1", "--route", "/v=rtsp://h:2"], "unique"),
    (["--listen", "nohost"], "missing port"),
    (["--listen", "h:99999"], "bad port"),
    (["--allow-origin", "h:x"], "bad port"),
    (["--max-sessions", "0"], "must be positive"),
    (["--max-sessions", "many"], "must be an integer"),
    (["--keepalive-fraction", "1.5"], "between 0 and 1"),
    (["--write-high-water", "100", "--write-drop-limit", "10"], "write-drop-limit"),
    (["--control-url", "http://x"], "needs --control-token"),
    (["--log-level", "loud"], "log-level"),
    (["--cache-tcp-flush-interval", "-0.01"], "must be >= 0"),
    (["--cache-pace-tick", "0"], "must be positive"),
])


def test_bad_configuration_is_rejected_with_a_clear_message(argv, message):
    with pytest.raises(ConfigError, match=message):
        config_from_args(argv, env={})


def test_cache_flush_intervals_may_be_zero_for_exact_pacing():
    config = config_from_args(["--cache-tcp-flush-interval", "0"], env={"PROXYD_CACHE_UDP_FLUSH_INTERVAL": "0"})
    assert (config.limits.cache_tcp_flush_interval, config.limits.cache_udp_flush_interval) == (0, 0)


def test_main_exits_2_on_bad_configuration(capsys):
    assert main(["--route", "nonsense"]) == 2
    assert "configuration error" in capsys.readouterr().err


def test_help_runs_as_module():
    out = subprocess.run([sys.executable, "-m", "proxyd", "--help"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0
    for name in ("--listen", "--route", "--cache-dir", "--allow-origin", "--control-url",
                 "--control-token-file", "--node-name", "--state-dir", "--log-level", "PROXYD_LISTEN"):
        assert name in out.stdout


def test_control_url_needs_a_state_dir():
    with pytest.raises(ConfigError, match="--state-dir"):
        config_from_args(["--control-url", "http://127.0.0.1:1", "--control-token", "t"], env={})


def test_module_exits_2_with_one_clear_line_on_bad_configuration():
    out = subprocess.run([sys.executable, "-m", "proxyd", "--route", "/vod=http://x"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "proxyd: configuration error: --route: origin must be an rtsp:// or rtsps:// URL, got 'http://x'")


def test_origin_credentials_file_attaches_credentials_to_its_routes(tmp_path):
    creds = tmp_path / "creds"
    creds.write_text("# comment\n\n/a=alice:pa:ss word\n")
    creds.chmod(0o600)
    cfg = config_from_args(["--route", "/a=rtsp://h:1", "--route", "/b=rtsp://h:2"],
                           env={"PROXYD_ORIGIN_CREDENTIALS_FILE": str(creds)})
    a, b = cfg.routes
    assert (a.credentials.username, a.credentials.password, b.credentials) == ("alice", "pa:ss word", None)
    assert "pa:ss" not in repr(cfg)


@pytest.mark.parametrize("text, message", [
    ("/a alice:x\n", "line 1: expected /PREFIX=USER:PASSWORD"),
    ("/a=alice\n", "expected /PREFIX=USER:PASSWORD"),
    ("\n/zzz=alice:x\n", "line 2: no --route with prefix /zzz"),
    ("/a=alice:x\n/a=bob:y\n", "given twice"),
])
def test_bad_origin_credentials_file_is_rejected(tmp_path, text, message):
    creds = tmp_path / "creds"
    creds.write_text(text)
    creds.chmod(0o600)
    with pytest.raises(ConfigError, match=message):
        config_from_args(["--route", "/a=rtsp://h:1", "--origin-credentials-file", str(creds)], env={})


def test_player_auth_flags_file_and_environment(tmp_path):
    from proxyd.rtsp.auth import digest_ha1

    path = tmp_path / "players"
    path.write_text(f"alice:R:{digest_ha1('SHA-256', 'alice', 'R', 'pw')}\n")
    config = config_from_args(["--route", "/vod=rtsp://o:554"], env={"PROXYD_PLAYER_AUTH_FILE": str(path)})
    assert config.player_auth.mode == "digest" and config.routes[0].player_auth is config.player_auth
    basic = config_from_args(["--player-auth", "basic", "--player-auth-file", str(path)], env={})
    assert basic.player_auth.mode == "basic"
    assert config_from_args([], env={}).player_auth is None
    for argv, message in ((["--player-auth", "digest"], "needs --player-auth-file"),
                          (["--player-auth", "open", "--player-auth-file", str(path)], "contradicts"),
                          (["--player-auth-file", str(tmp_path / "missing")], "cannot read"),
                          (["--auth-max-failures", "0"], "--auth-max-failures must be positive")):
        with pytest.raises(ConfigError, match=message):
            config_from_args(argv, env={})
    path.write_text("alice:R:nothex\n")
    with pytest.raises(ConfigError, match="neither MD5"):
        config_from_args(["--player-auth-file", str(path)], env={})
    help_text = build_parser().format_help()
    assert "PROXYD_PLAYER_AUTH_FILE" in help_text and "PROXYD_AUTH_MAX_FAILURES" in help_text
