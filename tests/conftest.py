"""Suite-wide fixtures. Real-peer fixtures (GStreamer origin, ffmpeg players) live in tests.peers."""

pytest_plugins = ["tests.peers.fixtures"]
