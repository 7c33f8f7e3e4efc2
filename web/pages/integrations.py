"""The integration pages: `/integrations` (every integration's funnel, retention at 30 and
90 days, largest drop, broken vs idle, time-to-value; twin `/api/integrations`) and
`/integrations/{key}` (funnel bars, Kaplan-Meier retention by install cohort,
time-to-value, impact against the matched group, broken and idle connections; twin
`/api/integrations/{key}`), rendered from `scoring.views`."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from integration_signals.scoring.views import (
    UnknownIntegration,
    ViewError,
    integration_page,
    integrations_overview,
)
from integration_signals.web.charts import funnel_chart, impact_chart, retention_charts
from integration_signals.web.site import BadRequest, NotFound, Site


def register(router: APIRouter, site: Site) -> None:
    @router.get("/integrations", include_in_schema=False)
    @router.get("/api/integrations", include_in_schema=False)
    def overview(request: Request) -> Response:
        site.signed_in(request)
        view = integrations_overview(
            site.engine, site.config, as_of=site.as_of(request), retention=True
        )
        return site.page(
            request, view, "integrations.html", title="Integrations", nav="integrations"
        )

    @router.get("/integrations/{key}", include_in_schema=False)
    @router.get("/api/integrations/{key}", include_in_schema=False)
    def one(request: Request, key: str, cohort: str = "month") -> Response:
        site.signed_in(request)
        as_of = site.as_of(request)
        try:
            view = integration_page(site.engine, site.config, key, as_of=as_of, cohort=cohort)
        except UnknownIntegration as exc:
            known = integrations_overview(site.engine, site.config, as_of=as_of)
            raise NotFound(
                str(exc),
                known_integrations=[
                    {"key": r["integration"], "name": r["name"]} for r in known["integrations"]
                ],
            ) from None
        except ViewError as exc:
            raise BadRequest(str(exc)) from None
        return site.page(
            request,
            view,
            "integration.html",
            title=view["integration"]["name"] or view["integration"]["key"],
            nav="integrations",
            funnel_svg=funnel_chart(view["stages"], view["largest_drop"]),
            retention=retention_charts(view["retention"]),
            impact_svg=impact_chart(view["impact"]),
        )
