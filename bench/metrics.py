"""Metrics benchmark: what scraping /metrics costs proxyd while K players play, in one run.

    .venv/bin/python -m bench.metrics --clients 20 --seconds 8 --scrape-interval 0.1

For each K: K players through a proxyd without --metrics-listen (baseline), then through one with
it while a scraper GETs /metrics every --scrape-interval seconds (far more often than Prometheus'
usual 15 s, so the cost shows). Printed per K: proxyd CPU ms per client-stream-second for both,
their ratio (scraped / baseline), the frames ratio, and scrape time median / p95 (as the bench's own
client sees it, players starting on the same cores included) with the body size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.relay import LIVE_MOUNT, ROUTE_PREFIX, live_origin, measure  # noqa: E402
from tests.peers.origin import LiveOptions  # noqa: E402
from tests.peers.proxyd_proc import ProxydProcess, free_tcp_port  # noqa: E402


class Scraper(threading.Thread):
    def __init__(self, port: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = f"http://127.0.0.1:{port}/metrics", interval
        self.times: list[float] = []
        self.size = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            started = time.perf_counter()
            with urllib.request.urlopen(self.url, timeout=5) as resp:
                self.size = len(resp.read())
            self.times.append(time.perf_counter() - started)


def run(k: int, args, origin, workdir: Path, *, scrape: bool):
    extra = []
    port = free_tcp_port()
    if scrape:
        extra = ["--metrics-listen", f"127.0.0.1:{port}"]
    proxyd = ProxydProcess(routes={ROUTE_PREFIX: origin.url("/")}, extra_args=extra,
                           log_path=workdir / f"proxyd-k{k}-{'scraped' if scrape else 'plain'}.log").start()
    scraper = Scraper(port, args.scrape_interval) if scrape else None
    try:
        if scraper:
            scraper.start()
        url = proxyd.url(f"{ROUTE_PREFIX}/{LIVE_MOUNT}")
        result = measure("scraped" if scrape else "plain", url, k, args, proxyd=proxyd, origin=origin)
    finally:
        if scraper:
            scraper.done.set()
            scraper.join()
        proxyd.stop()
    return result, scraper


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", default="20", help="comma-separated player counts")
    p.add_argument("--seconds", type=float, default=8.0, help="play time per player")
    p.add_argument("--transport", choices=("udp", "tcp", "mixed"), default="udp")
    p.add_argument("--bitrate", type=int, default=2000, help="live video bitrate, kbit/s")
    p.add_argument("--scrape-interval", type=float, default=0.1, help="seconds between scrapes")
    p.add_argument("--ramp-ms", type=float, default=20.0, help="spacing between player launches")
    p.add_argument("--gop", type=int, default=25, help="live key frame interval, frames")
    p.add_argument("--origin-port", type=int, default=0)
    p.add_argument("--verbose", action="store_true", help="print every scrape time")
    p.add_argument("--workdir", type=Path, help="keep origin/proxyd logs here (default: a temp dir)")
    args = p.parse_args(argv)
    live = LiveOptions(bitrate_kbps=args.bitrate, gop_frames=args.gop, pattern="snow")
    print(f"{'K':>4} {'plain ms/css':>12} {'scraped ms/css':>14} {'cpu ratio':>9} {'frames ratio':>12} "
          f"{'scrapes':>7} {'median ms':>9} {'p95 ms':>7} {'bytes':>7}")
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        with live_origin(args, live, workdir) as origin:
            return compare(args, live, origin, workdir)


def compare(args, live: LiveOptions, origin, workdir: Path) -> int:
    for k in (int(c) for c in args.clients.split(",")):
        plain, _ = run(k, args, origin, workdir, scrape=False)
        scraped, scraper = run(k, args, origin, workdir, scrape=True)
        for r in (plain, scraped):
            failed = [x for x in r.results if not x.ok]
            if r.error or failed or not r.video_frames:
                print(f"{r.mode} K={k}: {r.error or ''} {failed[0].describe() if failed else ''}",
                      file=sys.stderr)
                return 2
        per = [1000 * r.cpu_s / r.client_stream_seconds(live.fps) for r in (plain, scraped)]
        times = sorted(1000 * t for t in scraper.times) or [0.0]
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        print(f"{k:>4} {per[0]:>12.3f} {per[1]:>14.3f} {per[1] / per[0]:>9.3f} "
              f"{scraped.video_frames / max(1, plain.video_frames):>12.3f} {len(scraper.times):>7} "
              f"{statistics.median(times):>9.2f} {p95:>7.2f} {scraper.size:>7}")
        if args.verbose:
            print("scrape ms in order:", " ".join(f"{1000 * t:.1f}" for t in scraper.times), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
