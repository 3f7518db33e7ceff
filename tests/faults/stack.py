"""A whole appliance of its own for outage tests: a private PostgreSQL cluster and Redis server (other
ports, temp directories, so stopping them never touches the machine's shared services), migrated,
with the production web stack (gunicorn + uvicorn) and a Celery worker with beat on them."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.appliance.tasks.worker_fixtures import WORKER_SETTINGS
from tests.appliance.tasks.harness import REPO, VENV_BIN, CeleryWorker, stop_process
from tests.appliance.ui.web_server import WebServer
from tests.peers.proxyd_proc import free_tcp_port


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"PostgreSQL's {name} is not installed")
    return found[-1]


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PrivatePostgres:
    """initdb in a temp directory, a server on its own port (trust auth on loopback), stop/start at will."""

    def __init__(self) -> None:
        self.port = free_tcp_port()
        self.directory = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.data = self.directory / "data"
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        subprocess.run(_as_postgres([_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                                     "--no-sync", "-E", "UTF8"]), check=True, capture_output=True)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/appliance"

    def start(self) -> PrivatePostgres:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-o", options,
                                     "-l", str(self.directory / "server.log"), "-w", "start"]),
                       check=True, capture_output=True)
        return self

    def stop(self) -> None:
        subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
                       check=True, capture_output=True)

    def create_database(self) -> None:
        subprocess.run([_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                        "appliance"], check=True, capture_output=True)

    def remove(self) -> None:
        subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(self.directory, ignore_errors=True)


class PrivateRedis:
    """redis-server on its own port, nothing persisted; restarted on the same port."""

    def __init__(self) -> None:
        self.port = free_tcp_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        import redis

        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        for _ in range(100):
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {self.proc.returncode}") from None
                client.connection_pool.disconnect()
                time.sleep(0.1)  # a child process starting: nothing to wait on but its port
        raise RuntimeError("redis-server did not answer PING")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


class Appliance:
    """Private PostgreSQL + Redis, migrated; web (fixed port, so proxyd's --control-url stays valid)
    and Celery worker + beat as processes; each part can be stopped and started again."""

    def __init__(self, workdir: Path, credentials_keys: str) -> None:
        self.workdir = workdir
        self.postgres = PrivatePostgres()
        self.redis = PrivateRedis()
        self.web_port = free_tcp_port()
        self.env = {
            **os.environ, **WORKER_SETTINGS,
            "DJANGO_SETTINGS_MODULE": "appliance.settings",
            "DATABASE_URL": self.postgres.url,
            "REDIS_URL": self.redis.url,
            "APPLIANCE_DB_CONN_MAX_AGE": "0",
            "APPLIANCE_VAR_DIR": str(workdir / "var"),
            "APPLIANCE_ORIGIN_CREDENTIALS_KEYS": credentials_keys,
            "APPLIANCE_CELERY_QUEUE": f"faults-{uuid.uuid4().hex[:8]}",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.web: WebServer | None = None
        self.worker: CeleryWorker | None = None

    def start(self) -> Appliance:
        self.postgres.start().create_database()
        self.redis.start()
        self.manage("migrate", "--noinput")
        database = {"NAME": "appliance", "USER": "postgres", "HOST": "127.0.0.1", "PORT": self.postgres.port}
        self.web = WebServer(database=database, workdir=self.workdir, redis_url=self.redis.url)
        self.web.env.update(self.env, APPLIANCE_WEB_BIND=f"127.0.0.1:{self.web_port}", APPLIANCE_WEB_WORKERS="1",
                            APPLIANCE_SERVE_STATIC="1")
        self.web.start()
        self.worker = CeleryWorker(env=self.env, workdir=self.workdir).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def manage(self, *args: str) -> str:
        done = subprocess.run([str(VENV_BIN / "python"), "manage.py", *args], cwd=REPO, env=self.env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def query(self, sql: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.postgres.url.replace("postgres://", "postgresql://"), connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()

    def stop(self) -> None:
        for part in (self.worker, self.web):
            if part is not None:
                part.stop()
        self.redis.stop()
        self.postgres.remove()
