"""Operations endpoints of the control plane: Prometheus /metrics, /healthz and /readyz for the web
process, and the Celery worker's own metrics listener (worker.py)."""
