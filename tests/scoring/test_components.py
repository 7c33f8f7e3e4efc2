"""Every component maps its measure monotonically onto 0-100: at least 80 at the healthy
threshold, at most 40 at the at-risk threshold; the overall is the weighted sum."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integration_signals.config import COMPONENTS, ConfigError, load_config
from integration_signals.scoring.components import (
    activation_score,
    connection_health,
    frequency_score,
    growth_score,
    rules_for,
    sophistication_score,
    volume_score,
)
from integration_signals.scoring.score import band_of, overall

SC = load_config(None).scoring
SEGMENTS = ("smb", "mid_market", "enterprise")

counts = st.integers(min_value=0, max_value=40)
rates = st.floats(min_value=0, max_value=1, allow_nan=False)
amounts = st.floats(min_value=0, max_value=1e8, allow_nan=False)
small = st.floats(min_value=0, max_value=60, allow_nan=False)


@pytest.mark.parametrize("segment", SEGMENTS)
@given(a=counts, b=counts, c1=counts, c2=counts)
def test_activation_depth_is_monotone_in_active_count_and_categories(segment, a, b, c1, c2):
    t = rules_for(SC, segment).activation
    lo, hi = sorted((a, b))
    clo, chi = sorted((c1, c2))
    assert activation_score(lo, clo, t) <= activation_score(hi, chi, t)
    assert 0 <= activation_score(lo, clo, t) <= 100


@pytest.mark.parametrize(
    ("segment", "healthy", "at_risk"),
    [("smb", (3, 2), (1, 1)), ("mid_market", (4, 2), (1, 1)), ("enterprise", (5, 3), (2, 2))],
    ids=["smb 3+ from 2+", "mid-market 4+ from 2+", "enterprise 5+ from 3+"],
)
def test_activation_depth_thresholds_are_segment_relative(segment, healthy, at_risk):
    t = rules_for(SC, segment).activation
    assert activation_score(*healthy, t) >= 80
    assert activation_score(*at_risk, t) <= 40
    # enterprise expects far more than SMB: 3 from 2 is healthy for SMB only
    if segment == "enterprise":
        assert activation_score(3, 2, t) < 80


@given(c1=amounts, c2=amounts, r1=amounts, r2=amounts)
def test_usage_volume_is_monotone_in_calls_and_records(c1, c2, r1, r2):
    t = SC.volume
    assert volume_score(min(c1, c2), min(r1, r2), t) <= volume_score(max(c1, c2), max(r1, r2), t)


@pytest.mark.parametrize(
    ("calls", "records", "expect"),
    [
        (1000, 0, "healthy"),
        (0, 10_000, "healthy"),
        (100, 1000, "at_risk"),
        (50, 0, "at_risk"),
    ],
    ids=["1000 calls/day", "10K records/week", "100 calls/day", "below at risk"],
)
def test_usage_volume_thresholds(calls, records, expect):
    value = volume_score(calls, records, SC.volume)
    assert value >= 80 if expect == "healthy" else value <= 40


@given(s1=rates, s2=rates, e1=small, e2=small, d1=small, d2=small)
def test_health_status_improves_with_success_and_falls_with_errors_and_silence(
    s1, s2, e1, e2, d1, d2
):
    t = SC.health
    worse = connection_health(min(s1, s2), max(e1, e2), max(d1, d2), t)[0]
    better = connection_health(max(s1, s2), min(e1, e2), min(d1, d2), t)[0]
    assert worse <= better


@pytest.mark.parametrize(
    ("rate", "errors", "days", "expect"),
    [
        (0.95, 5, 0, "healthy"),
        (0.80, 0, 0, "at_risk"),
        (1.0, 0, 3, "at_risk"),
        (0.5, 30, 10, "at_risk"),
    ],
    ids=["95% and 5 errors", "80% success", "3 days since a good sync", "all bad"],
)
def test_health_status_thresholds(rate, errors, days, expect):
    value = connection_health(rate, errors, days, SC.health)[0]
    assert value >= 80 if expect == "healthy" else value <= 40


@given(g1=small, g2=small, a1=rates, a2=rates)
def test_frequency_rewards_short_gaps_and_automation(g1, g2, a1, a2):
    t = SC.frequency
    assert frequency_score(max(g1, g2) + 1, min(a1, a2), t) <= frequency_score(
        min(g1, g2) + 1, max(a1, a2), t
    )


def test_frequency_thresholds():
    t = SC.frequency
    assert frequency_score(1.0, 1.0, t) >= 80  # daily automated syncs
    assert frequency_score(1.0, 0.0, t) <= 40  # manual only
    assert frequency_score(7.0, 1.0, t) <= 40  # 7+ days between uses


@given(b1=st.integers(0, 5), b2=st.integers(0, 5), m1=rates, m2=rates)
def test_sophistication_is_monotone(b1, b2, m1, m2):
    t = SC.sophistication
    lo = sophistication_score(min(b1, b2), 5 * min(m1, m2), t)
    hi = sophistication_score(max(b1, b2), 5 * max(m1, m2), t)
    assert lo <= hi


def test_sophistication_thresholds():
    t = SC.sophistication
    assert sophistication_score(2, 2, t) >= 80  # advanced features active
    assert sophistication_score(0, 0, t) <= 40  # basic config only


@given(
    g1=st.floats(-1, 5, allow_nan=False),
    g2=st.floats(-1, 5, allow_nan=False),
    n1=st.integers(0, 5),
    n2=st.integers(0, 5),
)
def test_growth_is_monotone_in_growth_and_new_integrations(g1, g2, n1, n2):
    t = SC.growth
    assert growth_score(min(g1, g2), min(n1, n2), t) <= growth_score(max(g1, g2), max(n1, n2), t)


def test_growth_thresholds():
    assert growth_score(0.20, 0, SC.growth) >= 80  # +20% month over month
    assert growth_score(-0.05, 0, SC.growth) <= 40  # declining


def test_the_seeds_worked_example_gives_88_healthy():
    components = dict(zip(COMPONENTS, (92, 88, 78, 95, 85, 90), strict=True))
    value = overall(components, SC.weights)
    assert math.isclose(sum(SC.weights[n] * components[n] for n in COMPONENTS) / 100, 87.85)
    assert value == 88
    assert band_of(value, SC.bands) == "healthy"


@pytest.mark.parametrize(
    ("value", "band"),
    [
        (100, "healthy"),
        (75, "healthy"),
        (74, "watch"),
        (50, "watch"),
        (49, "at_risk"),
        (0, "at_risk"),
    ],
    ids=str,
)
def test_bands(value, band):
    assert band_of(value, SC.bands) == band


def test_weights_not_summing_to_100_are_refused_naming_the_key(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[scoring.weights]\nactivation_depth = 30\n")
    with pytest.raises(ConfigError, match=r"scoring\.weights: weights must sum to 100"):
        load_config(path)


def test_segment_overrides_apply_to_that_segment_only(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        "[scoring.segments.enterprise.weights]\n"
        "activation_depth = 40\nusage_volume = 20\nhealth_status = 20\n"
        "frequency = 10\nsophistication = 5\ngrowth = 5\n"
        "[scoring.segments.enterprise.bands]\nhealthy = 80\nwatch = 60\n"
    )
    sc = load_config(path).scoring
    assert rules_for(sc, "enterprise").weights["activation_depth"] == 40
    assert rules_for(sc, "enterprise").bands.healthy == 80
    assert rules_for(sc, "smb").weights["activation_depth"] == 25
    bad = tmp_path / "bad.toml"
    bad.write_text("[scoring.segments.enterprise.weights]\nactivation_depth = 40\n")
    with pytest.raises(ConfigError, match=r"scoring\.segments\.enterprise\.weights"):
        load_config(bad)
