"""Offline model converters (install-time tools, not used by the workers)."""
