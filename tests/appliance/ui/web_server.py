"""The production web stack in a subprocess: gunicorn + uvicorn worker serving appliance.asgi."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

from django.conf import settings

from tests.appliance.tasks.harness import REPO, VENV_BIN, OutputWatcher, database_url_of, stop_process

LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")


class WebServer:
    def __init__(self, *, database: dict, workdir: Path, redis_url: str | None):
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "appliance.settings",
            "DATABASE_URL": database_url_of(database),
            "APPLIANCE_DB_CONN_MAX_AGE": "0",
            "APPLIANCE_WEB_BIND": "127.0.0.1:0",  # gunicorn prints the port it got
            "APPLIANCE_WEB_WORKERS": "1",
            "APPLIANCE_SERVE_STATIC": "1",
            "APPLIANCE_VAR_DIR": str(workdir / "var"),
            # Same key as the test process, which wrote the encrypted origin passwords.
            "APPLIANCE_ORIGIN_CREDENTIALS_KEYS": ",".join(settings.APPLIANCE_ORIGIN_CREDENTIALS_KEYS),
            "APPLIANCE_CHANNELS_PREFIX": f"test-web-{uuid.uuid4().hex[:8]}",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        else:
            self.env.pop("REDIS_URL", None)
        self.proc: subprocess.Popen | None = None
        self.output: OutputWatcher | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> WebServer:
        cmd = [str(VENV_BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "appliance.asgi:application"]
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        self.output = OutputWatcher(self.proc.stdout)
        self.port = int(LISTENING.search(self.output.wait_for(LISTENING.search, timeout)).group(1))
        self.output.wait_for(lambda line: "Application startup complete" in line, timeout)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=20)
            self.proc = None
