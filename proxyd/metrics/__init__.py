"""Operator metrics and health for proxyd: Prometheus `/metrics`, `/healthz`, `/readyz` on a small
HTTP listener (`--metrics-listen`). Values are gathered at scrape time from state the runtime
already keeps (sessions' counters, the cache store, the report pipeline); the only counters kept
here are those nothing else keeps (counters.py), none of them on the RTP path."""
