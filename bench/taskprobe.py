"""Run proxyd and publish its asyncio task count: `python -m bench.taskprobe <proxyd arguments>`.

Every second the count of live tasks on proxyd's event loop (read on the loop itself) is written to
the file named by $TASKPROBE_FILE. Used by bench/soak.py, which has no other view of proxyd's tasks.
"""

from __future__ import annotations

import asyncio
import os
import runpy
import sys
import threading
import time

import proxyd.app.server

PROBE_FILE = os.environ["TASKPROBE_FILE"]
loops: list[asyncio.AbstractEventLoop] = []


def recording(serve):
    """proxyd.app.server.serve, noting the loop it runs on (asyncio's or uvloop's)."""

    async def serve_and_record(config):
        loops.append(asyncio.get_running_loop())
        return await serve(config)

    return serve_and_record


def write_count(loop: asyncio.AbstractEventLoop) -> None:
    with open(PROBE_FILE + ".tmp", "w") as f:
        f.write(str(len(asyncio.all_tasks(loop))))
    os.replace(PROBE_FILE + ".tmp", PROBE_FILE)


def probe() -> None:
    while True:
        time.sleep(1.0)
        for loop in list(loops):
            if loop.is_running():
                loop.call_soon_threadsafe(write_count, loop)


proxyd.app.server.serve = recording(proxyd.app.server.serve)
threading.Thread(target=probe, name="taskprobe", daemon=True).start()
sys.argv = ["proxyd", *sys.argv[1:]]
runpy.run_module("proxyd", run_name="__main__", alter_sys=True)
