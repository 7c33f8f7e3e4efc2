"""The portfolio (`/`, twin `/api/portfolio`): every account with its score, band, trend
and signals, filtered, sorted and paginated in SQL by `scoring.views.portfolio`, with
the headline tiles. The filter bar is a plain GET form; sorting and paging are links
that keep the filters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from integration_signals.scoring.views import ViewError, portfolio
from integration_signals.web.charts import trend_sparkline
from integration_signals.web.site import BadRequest, Site

# The query parameters the page understands (all optional strings).
PARAMS = ("sort", "order", "band", "segment", "crm_segment", "owner", "integration", "q")
# Columns whose natural first click is "largest first".
DESC_FIRST = {"mrr", "active_integrations", "open_signals", "change"}


@dataclass(frozen=True)
class Column:
    """A column of the portfolio table: its header and the sort it links to (if any)."""

    label: str
    sort: str | None = None
    numeric: bool = False
    title: str = ""


COLUMNS = (
    Column("Account", "name"),
    Column("Score", "score", numeric=True),
    Column("Band", "band"),
    Column("30 days", None, title="Score over the last 30 days"),
    Column("Δ 7d", "change", numeric=True, title="Change in score since a week ago"),
    Column("Segment", "segment"),
    Column("Plan", "plan"),
    Column("MRR", "mrr", numeric=True),
    Column("Integr.", "active_integrations", numeric=True, title="Active integrations"),
    Column("Signals", "open_signals", numeric=True, title="Open signals"),
    Column("CRM segments", None),
    Column("Owner / CSM", "owner"),
)


def register(router: APIRouter, site: Site) -> None:
    @router.get("/", include_in_schema=False)
    @router.get("/api/portfolio", include_in_schema=False)
    def portfolio_page(request: Request) -> Response:
        site.signed_in(request)
        query = request.query_params
        try:
            view = portfolio(
                site.engine,
                site.config,
                as_of=site.as_of(request),
                **{name: query[name] for name in PARAMS if query.get(name)},
                page=_positive(query.get("page"), "page", 1),
                page_size=_positive(query.get("page_size"), "page_size", site.config.web.page_size),
            )
        except ViewError as exc:
            raise BadRequest(str(exc)) from None
        return site.page(
            request,
            view,
            "portfolio.html",
            title="Portfolio",
            nav="portfolio",
            columns=COLUMNS,
            link=Links(view["filters"], view["page"], view["page_size"], site.config.web.page_size),
            sparkline=trend_sparkline,
        )


def _positive(text: str | None, name: str, default: int) -> int:
    if text is None or text == "":
        return default
    if not text.isdigit() or len(text) > 9 or int(text) < 1:
        raise BadRequest(f"{name} {text[:40]!r} is not a positive whole number")
    return int(text)


@dataclass(frozen=True)
class Links:
    """URLs of this page that keep the current filters and page size: sort by a column,
    go to a page, filter by a band. Every link but a page link goes to page 1."""

    filters: Mapping[str, Any]
    current: int
    page_size: int
    default_page_size: int

    def to(self, **changes: Any) -> str:
        params = {k: v for k, v in self.filters.items() if k in PARAMS}
        if self.page_size != self.default_page_size:
            params["page_size"] = self.page_size
        params.update(changes)
        if params.get("sort") == "score" and params.get("order") == "asc":
            params.pop("sort"), params.pop("order")  # the default: a clean URL
        kept = {k: v for k, v in params.items() if v not in (None, "")}
        return "/?" + urlencode(kept) if kept else "/"

    def sort(self, column: str) -> str:
        """Click a header: sort by it; click the sorted header again: reverse."""
        if self.filters.get("sort") == column:
            order = "desc" if self.filters.get("order") == "asc" else "asc"
        else:
            order = "desc" if column in DESC_FIRST else "asc"
        return self.to(sort=column, order=order)

    def page(self, number: int) -> str:
        return self.to(page=number if number > 1 else None)

    def filter(self, **changes: Any) -> str:
        return self.to(**changes)

    def json(self) -> str:
        """This very page's JSON twin."""
        return "/api/portfolio" + self.page(self.current)[1:]

    def window(self, current: int, last: int, around: int = 2) -> list[int | None]:
        """Page numbers to show: the first, the last and ``around`` either side of the
        current one; None marks a gap."""
        shown = sorted({1, last, *range(max(1, current - around), min(last, current + around) + 1)})
        out: list[int | None] = []
        for number in shown:
            if out and number - (out[-1] or 0) > 1:
                out.append(None)
            out.append(number)
        return out
