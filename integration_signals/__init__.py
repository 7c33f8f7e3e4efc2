"""Integration Signals: the entry package (settings and the `signals` CLI)."""

__version__ = "0.1.0"
