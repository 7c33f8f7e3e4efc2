"""Scoring: what the data means (health score, funnel, retention, impact, signals)."""
