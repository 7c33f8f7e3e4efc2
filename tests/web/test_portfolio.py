"""The portfolio page `/` over real HTTP: the view model `scoring.views.portfolio` as HTML
and as its JSON twin, every filter and sort driven through the page's own links and
form fields, pagination links, hostile search text shown as text, live cells."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from markupsafe import escape
from sqlalchemy import Engine

from integration_signals.config import Config
from integration_signals.scoring.run import score_accounts
from tests.bot.conftest import ACCOUNTS
from tests.web.conftest import NOW, USERS, Browser, seed

ROW = re.compile(r'<tr data-live-account="([^"]*)"')
SORT_LINK = re.compile(r'<a class="sort( sorted)?" href="([^"]*)">([^<]*)')


def rows_in(html: str) -> list[str]:
    """The account ids of the table's rows, top to bottom."""
    return [unescape(m) for m in ROW.findall(html)]


def sort_links(html: str) -> dict[str, tuple[bool, str]]:
    """Column label -> (is the sorted column, the header's link)."""
    return {
        label.strip(): (bool(on), unescape(href)) for on, href, label in SORT_LINK.findall(html)
    }


def query_of(href: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(href).query).items()}


def portfolio_json(b: Browser, **params: Any) -> dict[str, Any]:
    answer = b.get("/api/portfolio", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_page_and_its_json_twins_are_one_view_model(browser: Callable[..., Browser]) -> None:
    b = browser("viewer")
    page = b.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    api, same = b.get("/api/portfolio").json(), b.get("/?format=json").json()
    api.pop("as_of"), same.pop("as_of")
    assert api == same
    assert api["total"] == len(ACCOUNTS) and api["page"] == 1 and api["pages"] == 1
    assert sorted(rows_in(page.text)) == sorted(a["account_id"] for a in ACCOUNTS)
    # The rows come in the view model's order (score ascending, the default).
    assert rows_in(page.text) == [r["account_id"] for r in api["rows"]]
    text = page.text
    for r in api["rows"]:
        assert f'href="/accounts/{r["account_id"]}"' in text
        assert str(escape(r["name"])) in text
    acme = next(r for r in api["rows"] if r["account_id"] == "acme")
    assert acme["mrr"] == 8500 and "$8,500" in text
    assert acme["csm"] == "dana@example.com" and "dana@example.com" in text
    assert acme["trend_30d"] and 'class="chart chart-sparkline"' in text
    tiles = api["tiles"]
    assert tiles["accounts"] == len(ACCOUNTS) == sum(tiles["bands"].values())
    assert "Accounts by band" in text and "At-risk MRR" in text and "Broken connections" in text
    for band in ("at_risk", "watch", "healthy"):
        assert f"{tiles['bands'][band]}</span>" in text
    assert f"{len(ACCOUNTS)} accounts" in text
    assert 'aria-current="page">Portfolio</a>' in text


def test_rows_carry_the_live_cells_the_poller_patches(browser: Callable[..., Browser]) -> None:
    b = browser("viewer")
    page = b.get("/").text
    acme = next(r for r in portfolio_json(b)["rows"] if r["account_id"] == "acme")
    row = page.split('<tr data-live-account="acme">', 1)[1].split("</tr>", 1)[0]
    assert f'data-live-field="score" data-live-band-class>{acme["score"]}<' in row
    assert f'data-live-field="band" data-live-band="{acme["band"]}"' in row
    assert f'data-live-field="open_signals">{acme["open_signals"]}<' in row
    assert 'data-live-poll="' in page and 'data-live-cursor="' in page


def _acme_only(r: dict[str, Any]) -> bool:
    return r["account_id"] == "acme"


# (query parameters, which rows must remain) — each read through the page.
FILTERS = [
    pytest.param({"segment": "smb"}, lambda r: r["segment"] == "smb", id="segment"),
    pytest.param({"owner": "dana@example.com"}, _acme_only, id="owner-matches-the-csm"),
    pytest.param({"owner": "U0SALES"}, _acme_only, id="owner"),
    pytest.param({"integration": "zendesk"}, _acme_only, id="integration"),
    pytest.param({"q": "ACME"}, lambda r: "acme" in r["account_id"], id="search-name"),
    pytest.param({"q": "globex.com"}, lambda r: r["account_id"] == "globex", id="search-domain"),
    pytest.param({"q": "no such account"}, lambda r: False, id="search-nothing"),
]


@pytest.mark.parametrize(("params", "keep"), FILTERS)
def test_each_filter_keeps_exactly_the_matching_accounts(
    browser: Callable[..., Browser], params: dict[str, str], keep: Callable[..., bool]
) -> None:
    b = browser("csm")
    everyone = portfolio_json(b)["rows"]
    expected = sorted(r["account_id"] for r in everyone if keep(r))
    page = b.get("/", params=params)
    assert page.status_code == 200
    assert sorted(rows_in(page.text)) == expected
    doc = portfolio_json(b, **params)
    assert sorted(r["account_id"] for r in doc["rows"]) == expected
    assert doc["total"] == doc["tiles"]["accounts"] == len(expected)
    for key, value in params.items():
        assert doc["filters"][key] == value
        # The filter bar shows what is applied (a selected option or the search text).
        shown = f'value="{escape(value)}" selected' if key != "q" else f'value="{escape(value)}"'
        assert shown in page.text or f'value="{escape(value)}"' in page.text
    if not expected:
        assert "No accounts match" in page.text and "Show all accounts" in page.text


def test_band_and_crm_segment_filters_come_from_the_tiles(browser: Callable[..., Browser]) -> None:
    b = browser("csm")
    everyone = portfolio_json(b)["rows"]
    home = b.get("/").text
    bands = {r["band"] for r in everyone}
    assert bands - {None}, "the seed scores its accounts"
    for band in sorted(bands - {None}):
        tile = re.search(rf'class="band-count band-{band}" href="([^"]*)"', home)
        assert tile, band
        page = b.get(unescape(tile.group(1)))
        assert sorted(rows_in(page.text)) == sorted(
            r["account_id"] for r in everyone if r["band"] == band
        )
        # Clicking the selected band again clears it.
        again = re.search(rf'class="band-count band-{band} selected" href="([^"]*)"', page.text)
        assert again and "band=" not in unescape(again.group(1))
    for segment in ("at-risk", "expansion-ready"):
        doc = portfolio_json(b, crm_segment=segment)
        assert sorted(r["account_id"] for r in doc["rows"]) == sorted(
            r["account_id"] for r in everyone if segment in r["segments"]
        )


def _key(sort: str) -> Callable[[dict[str, Any]], Any]:
    rank = {"at_risk": 0, "watch": 1, "healthy": 2}
    return {
        "name": lambda r: r["name"].lower(),
        "score": lambda r: r["score"],
        "band": lambda r: rank.get(r["band"]),
        "mrr": lambda r: r["mrr"],
        "segment": lambda r: r["segment"],
        "plan": lambda r: r["plan"],
        "active_integrations": lambda r: r["active_integrations"],
        "open_signals": lambda r: r["open_signals"],
        "change": lambda r: r["change_7d"],
    }[sort]


@pytest.mark.parametrize(
    ("label", "sort"),
    [
        ("Account", "name"),
        ("Score", "score"),
        ("Band", "band"),
        ("MRR", "mrr"),
        ("Segment", "segment"),
        ("Plan", "plan"),
        ("Integr.", "active_integrations"),
        ("Signals", "open_signals"),
        ("Δ 7d", "change"),
    ],
)
def test_clicking_a_header_sorts_by_it_and_clicking_again_reverses(
    browser: Callable[..., Browser], label: str, sort: str
) -> None:
    b = browser("viewer")
    start = b.get("/", params={"segment": "", "q": "", "page_size": "3"})
    _on, href = sort_links(start.text)[label]
    first = b.get(href)
    assert first.status_code == 200
    links = sort_links(first.text)
    on, back = links[label]
    assert on and "arrow" in first.text
    order = query_of(href).get("order", "asc")
    # Every other header drops the arrow; the clicked one now points the other way.
    assert query_of(back).get("order", "asc") != order
    assert query_of(href)["page_size"] == "3" and query_of(back)["page_size"] == "3"
    # Following the page links, the rows come in that order (unknown values last).
    shown = []
    page_href: str | None = href
    while page_href:
        page = b.get(page_href)
        shown += rows_in(page.text)
        found = re.search(r'rel="next" href="([^"]*)"', page.text)
        page_href = unescape(found.group(1)) if found else None
    rows = portfolio_json(b, page_size=500)["rows"]
    key = _key(sort)
    by_id = {r["account_id"]: r for r in rows}
    values = sorted((key(r) for r in rows if key(r) is not None), reverse=order == "desc")
    values += [None] * (len(rows) - len(values))  # unknown values last, either way
    assert [key(by_id[a]) for a in shown] == values
    assert len(shown) == len(rows)


def test_header_links_keep_the_filters_and_the_default_sort_is_score_ascending(
    browser: Callable[..., Browser],
) -> None:
    b = browser("viewer")
    page = b.get("/", params={"segment": "smb", "q": "i"})
    links = sort_links(page.text)
    assert links["Score"][0], "sorted by score by default"
    assert "▲" in page.text
    for label, (_on, href) in links.items():
        query = query_of(href)
        assert query["segment"] == "smb" and query["q"] == "i", label
    assert query_of(links["Score"][1])["order"] == "desc"
    assert query_of(links["MRR"][1])["order"] == "desc", "money columns open largest first"
    assert query_of(links["Account"][1])["order"] == "asc"
    # The filter form keeps a non-default sort while filters change.
    by_mrr = b.get(links["MRR"][1]).text
    assert 'name="sort" value="mrr"' in by_mrr and 'name="order" value="desc"' in by_mrr


def test_pagination_links_walk_every_page_once_keeping_the_filters(
    browser: Callable[..., Browser],
) -> None:
    b = browser("viewer")
    page = b.get("/", params={"page_size": "2", "sort": "name", "order": "asc"})
    assert "page 1 of 3" in page.text and "1–2 of 5" in page.text
    assert 'rel="prev"' not in page.text
    seen = rows_in(page.text)
    nxt = re.search(r'rel="next" href="([^"]*)"', page.text)
    assert nxt and query_of(unescape(nxt.group(1))) == {
        "sort": "name",
        "order": "asc",
        "page_size": "2",
        "page": "2",
    }
    second = b.get(unescape(nxt.group(1)))
    assert "page 2 of 3" in second.text and 'rel="prev"' in second.text
    seen += rows_in(second.text)
    last = b.get(unescape(re.search(r'rel="next" href="([^"]*)"', second.text).group(1)))
    assert "page 3 of 3" in last.text and 'rel="next"' not in last.text
    seen += rows_in(last.text)
    assert seen == sorted((a["account_id"] for a in ACCOUNTS), key=lambda i: _name(i).lower())
    doc = portfolio_json(b, page_size=2, page=3, sort="name")
    assert (doc["page"], doc["pages"], doc["total"]) == (3, 3, 5)
    beyond = b.get("/", params={"page": "9"})
    assert beyond.status_code == 200 and "There is no page 9" in beyond.text


def _name(account_id: str) -> str:
    return next(a["name"] for a in ACCOUNTS if a["account_id"] == account_id)


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "bogus"},
        {"order": "sideways"},
        {"band": "purple"},
        {"segment": "galactic"},
        {"crm_segment": "<b>x</b>"},
        {"page": "abc"},
        {"page": "0"},
        {"page_size": "-3"},
    ],
    ids=lambda p: "-".join(p),
)
def test_a_bad_parameter_is_a_400_saying_which(
    browser: Callable[..., Browser], params: dict[str, str]
) -> None:
    b = browser("viewer")
    page = b.get("/", params=params)
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    name = next(iter(params))
    assert name in page.text and "<b>x</b>" not in page.text
    api = b.get("/api/portfolio", params=params)
    assert api.status_code == 400 and name in api.json()["error"]


HOSTILE_SEARCHES = [
    pytest.param("<script>alert(1)</script>", id="script"),
    pytest.param("\"'><img src=x onerror=alert(1)>", id="quotes"),
    pytest.param("🚀 ünïcödé 💥", id="emoji"),
    pytest.param("<b>" + "x" * 10_000 + "</b>", id="10KB"),
    pytest.param("100%_\\", id="like-wildcards"),
]


@pytest.mark.parametrize("text", HOSTILE_SEARCHES)
def test_hostile_search_text_is_shown_as_text_and_matches_nothing(
    browser: Callable[..., Browser], text: str
) -> None:
    b = browser("viewer")
    page = b.get("/", params={"q": text})
    assert page.status_code == 200
    assert "No accounts match" in page.text
    assert text not in page.text or text == escape(text)
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert f'value="{escape(text)}"' in page.text
    assert portfolio_json(b, q=text)["filters"]["q"] == text.strip()


def test_an_account_with_a_hostile_name_is_found_and_shown_as_text(
    engine: Engine, config: Config, serve_web: Callable[..., str]
) -> None:
    hostile = "<script>alert(1)</script> \"quoted\" 'single' 🚀 " + "y" * 10_000
    seed(engine, config, [*ACCOUNTS, {"account_id": "evil", "name": hostile, "segment": "smb"}])
    score_accounts(engine, config, as_of=NOW, full=True)
    b = Browser(serve_web(config), httpx.Client(timeout=30))
    b.login(USERS["viewer"])
    page = b.get("/", params={"q": "<script>"})
    assert rows_in(page.text) == ["evil"]
    assert "<script>alert(1)</script>" not in page.text
    assert str(escape(hostile))[:80] in page.text and "🚀" in page.text
    assert portfolio_json(b, q="<script>")["rows"][0]["name"] == hostile


@pytest.mark.parametrize("path", ["/", "/?band=at_risk", "/tasks", "/ops"])
def test_without_a_session_pages_redirect_to_login(
    browser: Callable[..., Browser], path: str
) -> None:
    answer = browser().get(path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=" + path.split("?")[0])


@pytest.mark.parametrize(
    "path", ["/api/portfolio", "/?format=json", "/api/tasks", "/api/ops", "/ops?format=json"]
)
def test_without_a_session_the_json_twins_answer_401(
    browser: Callable[..., Browser], path: str
) -> None:
    answer = browser().get(path)
    assert answer.status_code == 401 and answer.json() == {"error": "sign in first"}


def test_the_nav_links_every_page_and_marks_the_current_one(
    browser: Callable[..., Browser],
) -> None:
    b = browser("viewer")
    for path, label in (("/", "Portfolio"), ("/tasks", "Tasks"), ("/ops", "Ops")):
        page = b.get(path).text
        nav = page.split('<nav class="nav"', 1)[1].split("</nav>", 1)[0]
        for href in ('"/"', '"/integrations"', '"/syncs"', '"/tasks"', '"/ops"'):
            assert f"href={href}" in nav
        assert re.findall(r'aria-current="page">([^<]+)</a>', nav) == [label]
