"""Server-drawn SVG charts: well-formed XML, every text escaped, no style attributes or
scripts (the Content-Security-Policy forbids both), accessible, readable when empty."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest

from integration_signals.scoring.views import km_with_band
from integration_signals.web import svg

NS = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(1)</script> & \"quotes\" 'single' \x00\x1f 🎉"


def _curve(label: str = "2026-01") -> dict:
    durations = [3, 5, 5, 8, 10, 12, 12, 15, 20, 22, 30, 31, 40]
    ended = [True, True, False, True, True, False, True, True, False, True, True, False, True]
    return {"label": label, "curve": km_with_band(durations, ended)}


CHARTS: dict[str, Callable[[str], str]] = {
    "sparkline": lambda t: svg.sparkline([40, 55, None, 61, 72], 100, 24, title=t),
    "line": lambda t: svg.line_chart(
        [{"label": t, "values": [50, 60, 70]}, {"label": "peers", "points": [(0, 40), (2, 45)]}],
        x_labels=[t, "b", "c"],
        title=t,
        thresholds=[(75, t), (50, "watch")],
    ),
    "km": lambda t: svg.step_curves(
        [_curve(t), _curve("2026-02")], at_risk_rows=[0, 7, 30], title=t
    ),
    "bars": lambda t: svg.hbars(
        [
            {"label": t, "value": 120},
            {"label": "activated", "value": 80, "note": t, "highlight": True},
            {"label": "active", "value": None},
        ],
        title=t,
    ),
    "interval": lambda t: svg.interval_chart(
        [
            {"label": t, "estimate": 4.2, "lower": 1.0, "upper": 7.5, "band": "strong"},
            {"label": "zendesk", "estimate": -0.4, "lower": -2.0, "upper": 1.1},
            {"label": "none yet", "estimate": None},
        ],
        title=t,
    ),
}
EMPTY: dict[str, Callable[[], str]] = {
    "sparkline": lambda: svg.sparkline([], 100, 24),
    "sparkline-nones": lambda: svg.sparkline([None, None], 100, 24),
    "line": lambda: svg.line_chart([], title="score history"),
    "line-empty-series": lambda: svg.line_chart([{"label": "x", "values": []}], title="t"),
    "km": lambda: svg.step_curves([], at_risk_rows=[0, 30], title="retention"),
    "km-empty-curve": lambda: svg.step_curves([{"label": "x", "curve": []}], title="r"),
    "bars": lambda: svg.hbars([], title="funnel"),
    "interval": lambda: svg.interval_chart([], title="impact"),
}


def _parse(text: str) -> ET.Element:
    root = ET.fromstring(text)
    assert root.tag == f"{NS}svg"
    return root


def _assert_safe(root: ET.Element) -> None:
    for el in root.iter():
        assert el.tag != f"{NS}script"
        assert "style" not in el.attrib
        assert not any(name.startswith("on") for name in el.attrib)
        for value in el.attrib.values():
            assert "javascript:" not in value.lower()


@pytest.mark.parametrize("kind", CHARTS)
def test_chart_is_well_formed_accessible_and_scalable(kind):
    root = _parse(CHARTS[kind]("Acme Corp"))
    assert root.get("role") == "img"
    assert root.get("viewBox", "").startswith("0 0 ")
    title = root.find(f"{NS}title")
    assert title is not None and title.text == "Acme Corp"
    assert root[0].tag == f"{NS}title", "the title comes first: it is the accessible name"
    assert root.get("font-family") == "inherit"
    _assert_safe(root)


@pytest.mark.parametrize("kind", CHARTS)
def test_hostile_text_is_escaped_text_never_markup(kind):
    text = CHARTS[kind](HOSTILE)
    assert "<script" not in text
    root = _parse(text)
    _assert_safe(root)
    texts = " ".join(t for el in root.iter() for t in (el.text or "",))
    assert "<script>" in texts, "the name is shown as text"
    assert "\x00" not in texts


@pytest.mark.parametrize("kind", EMPTY)
def test_empty_data_draws_a_readable_empty_chart(kind):
    root = _parse(EMPTY[kind]())
    _assert_safe(root)
    words = " ".join((el.text or "") for el in root.iter(f"{NS}text"))
    assert svg.EMPTY_TEXT in words or words.strip() == "–"
    assert root.find(f"{NS}title") is not None


def test_long_labels_are_shortened_on_the_chart_and_kept_whole_in_the_tooltip():
    name = "x" * 10_000
    root = _parse(svg.hbars([{"label": name, "value": 3}], title="funnel"))
    shown = [el.text for el in root.iter(f"{NS}text") if el.text and el.text.startswith("x")]
    assert shown and all(len(t) <= svg.MAX_LABEL for t in shown)
    assert any(el.text == name for el in root.iter(f"{NS}title"))


def test_sparkline_marks_the_last_point_and_a_single_value_draws_a_flat_line():
    root = _parse(svg.sparkline([10, 90], 100, 20))
    line = root.find(f"{NS}polyline")
    assert line is not None
    (x1, y1), (x2, y2) = (tuple(map(float, p.split(","))) for p in line.get("points").split())
    assert x1 < x2 and y2 < y1, "a higher score is drawn higher"
    flat = _parse(svg.sparkline([50], 100, 20)).find(f"{NS}polyline").get("points").split()
    assert len({p.split(",")[1] for p in flat}) == 1


def test_km_chart_draws_band_censor_ticks_and_the_at_risk_table():
    root = _parse(svg.step_curves([_curve()], at_risk_rows=[0, 7, 30], title="r"))
    assert root.find(f".//{NS}polygon") is not None, "the 95% band"
    ticks = [el for el in root.iter(f"{NS}line") if el.get("stroke-width") == "1.5"]
    assert len(ticks) == sum(1 for p in _curve()["curve"] if p["censored"])
    words = [el.text for el in root.iter(f"{NS}text")]
    assert "at risk" in words and "13" in words, "13 connections at risk on day 0"
    plain = _parse(svg.step_curves([_curve()], band=False, censor_ticks=False, title="r"))
    assert plain.find(f".//{NS}polygon") is None


def test_interval_chart_has_a_zero_line_and_says_na_without_an_estimate():
    root = _parse(
        svg.interval_chart(
            [{"label": "a", "estimate": 2, "lower": -1, "upper": 5}, {"label": "b"}], title="t"
        )
    )
    words = [el.text for el in root.iter(f"{NS}text")]
    assert "n/a" in words and any(w and w.startswith("+0") for w in words)
