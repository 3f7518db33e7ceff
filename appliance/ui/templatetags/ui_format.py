from django import template

register = template.Library()


@register.filter
def bps(value) -> str:
    """Bits per second in human units (kbit/s, Mbit/s, ...)."""
    try:
        rate = float(value or 0)
    except (TypeError, ValueError):
        return "-"
    for unit in ("bit/s", "kbit/s", "Mbit/s", "Gbit/s"):
        if rate < 1000 or unit == "Gbit/s":
            return f"{rate:.0f} {unit}" if unit == "bit/s" else f"{rate:.1f} {unit}"
        rate /= 1000
    return f"{rate:.1f} Gbit/s"


@register.filter
def percent(ratio) -> str:
    try:
        return f"{float(ratio) * 100:.0f}%"
    except (TypeError, ValueError):
        return "-"
