"""deploy/: the env example documents every variable the code reads; units and configs keep their promises."""

import configparser
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
ENV_READERS = re.compile(r"env_(?:str|bool|int|list|secret|fernet_keys|rate)\(\s*\"([A-Z][A-Z0-9_]+)\"")
GUNICORN_VARS = re.compile(r"\"(APPLIANCE_WEB_[A-Z_]+)\"")
PROXYD_VARS = re.compile(r"\((PROXYD_[A-Z_]+)[;)]")


def documented() -> set[str]:
    names = set()
    for line in (DEPLOY / "appliance.env.example").read_text().splitlines():
        match = re.match(r"#?([A-Z][A-Z0-9_]+)=", line.strip())
        if match:
            names.add(match.group(1))
    return names


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(DEPLOY / "systemd" / name)
    return parser


def test_every_variable_read_by_the_code_is_in_the_env_example():
    read = set(ENV_READERS.findall((REPO / "appliance" / "settings.py").read_text()))
    read |= set(GUNICORN_VARS.findall((DEPLOY / "gunicorn.conf.py").read_text()))
    cli = REPO / "proxyd" / "cli.py"
    if cli.exists():
        read |= set(PROXYD_VARS.findall(cli.read_text()))
    assert read, "found no variables: the patterns no longer match the code"
    assert sorted(read - documented()) == []


def test_units_run_the_right_commands_and_proxyd_survives_the_web_unit():
    web = unit("appliance-web.service")["Service"]["ExecStart"]
    assert "gunicorn -c deploy/gunicorn.conf.py appliance.asgi:application" in web
    assert "celery -A appliance worker" in unit("appliance-worker.service")["Service"]["ExecStart"]
    assert "celery -A appliance beat" in unit("appliance-beat.service")["Service"]["ExecStart"]
    proxyd = unit("appliance-proxyd.service")
    assert "appliance-web.service" in proxyd["Unit"]["Wants"]
    assert "Requires" not in proxyd["Unit"] and "BindsTo" not in proxyd["Unit"]
    for name in ("appliance-web", "appliance-worker", "appliance-beat", "appliance-proxyd"):
        service = unit(f"{name}.service")["Service"]
        assert service["Restart"] == "on-failure", name
        assert service["EnvironmentFile"] == "/etc/appliance/appliance.env", name


def test_gunicorn_config_uses_the_uvicorn_worker_package_on_loopback():
    namespace: dict = {}
    exec(compile((DEPLOY / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)
    assert namespace["worker_class"] == "uvicorn_worker.UvicornWorker"
    assert namespace["bind"].startswith("127.0.0.1:")
    assert namespace["max_requests"] > 0 and namespace["max_requests_jitter"] > 0


def test_nginx_proxies_websockets_and_serves_static_over_tls():
    conf = (DEPLOY / "nginx.conf").read_text()
    assert "listen 443 ssl" in conf and "ssl_certificate " in conf
    assert "proxy_set_header Upgrade $http_upgrade" in conf and "location /ws/" in conf
    assert "location /static/" in conf


def test_upgrade_script_parses():
    result = subprocess.run(["bash", "-n", str(DEPLOY / "upgrade.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    script = (DEPLOY / "upgrade.sh").read_text()
    for step in ("pip install", "migrate --noinput", "collectstatic --noinput", "check --deploy", "systemctl restart"):
        assert step in script


@pytest.mark.skipif(not Path("/usr/bin/systemd-analyze").exists(), reason="systemd-analyze not installed")
def test_units_pass_systemd_analyze_syntax_check():
    result = subprocess.run(["systemd-analyze", "verify", *map(str, (DEPLOY / "systemd").glob("*.service"))],
                            capture_output=True, text=True)
    # Missing users/paths on a test machine are fine; syntax errors are not.
    assert "Unknown key" not in result.stderr and "Invalid" not in result.stderr, result.stderr


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The environment systemd gives the appliance from deploy/appliance.env.example (state in tmp_path)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("APPLIANCE_", "DATABASE_URL", "REDIS_URL", "DJANGO_"))}
    for line in (DEPLOY / "appliance.env.example").read_text().splitlines():
        match = re.match(r"([A-Z][A-Z0-9_]+)=(.*)$", line.strip())
        if match:
            env[match.group(1)] = match.group(2)
    env.update(APPLIANCE_VAR_DIR=str(tmp_path / "var"), APPLIANCE_STATIC_ROOT=str(tmp_path / "static"),
               PYTHONDONTWRITEBYTECODE="1", **overrides)
    return env


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_the_production_settings(tmp_path):
    result = check_deploy(production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("override,warning", [
    ({"APPLIANCE_SECURE_COOKIES": "0"}, "security.W012"),  # session cookie sent over http
    ({"APPLIANCE_HSTS_SECONDS": "0"}, "security.W004"),
    ({"APPLIANCE_BEHIND_TLS_PROXY": "0", "APPLIANCE_SECURE_COOKIES": "", "APPLIANCE_HSTS_SECONDS": ""},
     "security.W004"),
    ({"APPLIANCE_DEBUG": "1"}, "security.W018"),
])
def test_check_deploy_catches_a_weakened_production_setting(tmp_path, override, warning):
    result = check_deploy(production_env(tmp_path, **override))
    assert result.returncode != 0 and warning in result.stderr, result.stdout + result.stderr
