"""Placeholder until the real-peer harness lands."""
