"""RTP/RTCP packets, SDP and per-stream statistics. Pure functions, no I/O."""
