"""Prometheus text exposition format 0.0.4 (what every Prometheus-compatible scraper reads)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from proxyd.metrics.counters import Histogram, LabelledCounter

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Family:
    name: str
    kind: str  # counter | gauge | histogram
    help: str
    samples: list[tuple[str, tuple[tuple[str, str], ...], float]] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> Family:
        self.samples.append((suffix, tuple(labels.items()), value))
        return self


def gauge(name: str, help_text: str, value: float | None = None) -> Family:
    family = Family(name, "gauge", help_text)
    return family.add(value) if value is not None else family


def counter(name: str, help_text: str, values: dict[str, float] | None = None, label: str = "") -> Family:
    """A counter family; with `values` one sample per key under `label`."""
    family = Family(name, "counter", help_text)
    for key, value in sorted((values or {}).items()):
        family.add(value, **{label: key})
    return family


def from_counter(c: LabelledCounter) -> Family:
    family = Family(c.name, "counter", c.help)
    for labels, value in sorted(c.values.items()):
        family.add(value, **dict(zip(c.labels, labels, strict=True)))
    return family


def from_histogram(h: Histogram) -> Family:
    family = Family(h.name, "histogram", h.help)
    for labels, (counts, total) in sorted(h.series.items()):
        named = dict(zip(h.labels, labels, strict=True))
        running = 0
        for bound, count in zip((*h.buckets, math.inf), counts, strict=True):
            running += count
            family.add(running, "_bucket", **named, le="+Inf" if bound == math.inf else repr(float(bound)))
        family.add(total, "_sum", **named)
        family.add(running, "_count", **named)
    return family


def render(families: Iterable[Family]) -> bytes:
    lines = []
    for f in families:
        lines.append(f"# HELP {f.name} {_escape_help(f.help)}")
        lines.append(f"# TYPE {f.name} {f.kind}")
        for suffix, labels, value in f.samples:
            text = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels)
            lines.append(f"{f.name}{suffix}{{{text}}} {_number(value)}" if text else
                         f"{f.name}{suffix} {_number(value)}")
    return ("\n".join(lines) + "\n").encode()


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
