"""Sans-IO RTSP/1.0 (RFC 2326 + MS-RTSP): no sockets, no clock reads. See docs/architecture.md."""
