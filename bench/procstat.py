"""Process CPU time and peak memory from /proc (Linux), without psutil; precise CPU time from perf."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of the process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The command name may contain spaces or parentheses: split after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), in seconds."""
    return sum(cpu_times(pid))


def peak_rss_kib(pid: int) -> int | None:
    """VmHWM (peak resident set size) in KiB, or None if the kernel does not report it."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


class TaskClock:
    """CPU time of a process and every thread it has or starts (also ones that end meanwhile), in
    nanoseconds, from `perf stat -e task-clock -p PID` (the scheduler's clock, not the 10 ms tick that
    utime/stime are counted in), with its context switches (how often it slept and was woken).
    `stop()` returns (cpu seconds, context switches), (None, None) when perf is missing or refused."""

    ATTACH_TIMEOUT_S = 5.0

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._proc: subprocess.Popen | None = None
        self._out: str | None = None

    def start(self) -> "TaskClock":
        if shutil.which("perf") is None:
            return self
        fd, self._out = tempfile.mkstemp(prefix="taskclock-", suffix=".csv")
        os.close(fd)
        self._proc = subprocess.Popen(["perf", "stat", "-x", ",", "-e", "task-clock,context-switches",
                                       "-p", str(self.pid), "-o", self._out],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + self.ATTACH_TIMEOUT_S
        while time.monotonic() < deadline and self._proc.poll() is None and not self._attached():
            time.sleep(0.01)  # a bench, not a test: polls perf's file descriptors until it counts
        return self

    def _attached(self) -> bool:
        try:
            fds = os.listdir(f"/proc/{self._proc.pid}/fd")
        except FileNotFoundError:
            return False
        for fd in fds:
            try:
                if "perf_event" in os.readlink(f"/proc/{self._proc.pid}/fd/{fd}"):
                    return True
            except OSError:
                continue
        return False

    def stop(self) -> tuple[float | None, int | None]:
        if self._proc is None:
            return None, None
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        values: dict[str, float] = {}
        try:
            with open(self._out) as f:
                for line in f:
                    fields = line.strip().split(",")
                    if len(fields) >= 3 and fields[2] in ("task-clock", "context-switches"):
                        try:
                            values[fields[2]] = float(fields[0])
                        except ValueError:  # "<not counted>" / "<not supported>"
                            pass
        finally:
            os.unlink(self._out)
        msec, switches = values.get("task-clock"), values.get("context-switches")
        return (msec / 1000 if msec is not None else None,
                int(switches) if switches is not None else None)
