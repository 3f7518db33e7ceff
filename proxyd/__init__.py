"""proxyd: the standalone RTSP/RTP caching proxy daemon (no Django, no database)."""

__version__ = "0.1.0"
PRODUCT = "WMCacheProxy"
