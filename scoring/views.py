"""View models: one plain, JSON-ready dict per screen, shared by the web pages (their
JSON twins return exactly these), the CLI's ``--json`` and Slack.

Each function reads the store through SQLAlchemy Core that runs the same on SQLite and
PostgreSQL, takes its clock as a parameter and writes nothing. Timestamps come back as
aware UTC datetimes (``store.jsonio.dumps`` writes them with ``Z``).

- ``portfolio``: every account, filtered, sorted and paginated in SQL, with headline
  tiles and the choices for the filter drop-downs;
- ``integrations_overview`` / ``integration_page``: funnel, Kaplan-Meier retention
  (with Greenwood bands), time-to-value, broken vs idle, impact;
- ``tasks_queue``: playbook tasks by owner and status;
- ``ops_view``: feed freshness, the stale-feed alarm, scheduler jobs, last runs;
- ``sync_history`` / ``sync_run``: reverse-ETL runs and one run's per-record errors.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    Engine,
    Integer,
    Text,
    and_,
    case,
    cast,
    exists,
    false,
    func,
    null,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.sql.elements import ColumnElement

from integration_signals.config import Config
from integration_signals.scoring.episodes import episodes_as_of, open_at
from integration_signals.scoring.facts import ConnectionFacts, _info, integration_catalog
from integration_signals.scoring.funnel import funnel_rows
from integration_signals.scoring.impact_cache import cached_impact, impact_cache_key
from integration_signals.scoring.retention import (
    RETAINED_AT,
    KMPoint,
    Lifetime,
    cohort_of,
    kaplan_meier,
    lifetime_of,
    quantile_day,
    retained_at,
    ttv_rows,
)
from integration_signals.scoring.rules import KINDS
from integration_signals.scoring.run import day_bounds
from integration_signals.scoring.signals import SEGMENT_ORDER, segments_for
from integration_signals.scoring.tasks import tasks_as_of
from integration_signals.store.feed import FEED_KEY
from integration_signals.store.models import (
    Account,
    AccountScore,
    Connection,
    DailyUsage,
    Integration,
    JobRun,
    KeyValue,
    Quarantine,
    ScoreHistory,
    ScoringRun,
    Signal,
    SyncRun,
)
from integration_signals.store.sql import as_utc

BANDS = ("at_risk", "watch", "healthy")
ACCOUNT_SEGMENTS = ("smb", "mid_market", "enterprise")
TASK_STATUSES = ("open", "claimed", "snoozed", "done")
OPEN_TASK_STATUSES = ("open", "claimed", "snoozed")
SORTS = (
    "score",
    "band",
    "change",
    "name",
    "domain",
    "segment",
    "plan",
    "mrr",
    "active_integrations",
    "open_signals",
    "owner",
    "csm",
    "stage",
)
MAX_PAGE_SIZE = 500
TREND_DAYS = 30
CHANGE_DAYS = 7
# Impact on the integration page: a cached `signals impact` document when there is one,
# else computed here with this many bootstrap resamples (seeded, so stable), not 1000.
WEB_BOOTSTRAP = 200
IMPACT_OUTCOME = "churned"
AT_RISK_DAYS = (0, 7, 30, 60, 90)
Z95 = 1.959963984540054


class ViewError(ValueError):
    """A parameter of a view is not one it accepts; the message says which and why."""


class UnknownIntegration(LookupError):
    """No integration has this key."""


class UnknownSyncRun(LookupError):
    """No sync run has this id."""


# ---------------------------------------------------------------- portfolio


def _has_segment(column: Any, name: str) -> ColumnElement[bool]:
    """``column`` (a JSON list written by scoring) contains the segment ``name``.

    ``name`` is one of ``SEGMENT_ORDER`` (plain ASCII, no quotes or LIKE wildcards), so
    its JSON text ``"name"`` appears in the list's text exactly when it is an element:
    a LIKE over the text, bound, runs the same (and fast) on SQLite and PostgreSQL."""
    assert name in SEGMENT_ORDER, name
    return cast(column, Text).like(f'%"{name}"%')


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _choice(name: str, value: str | None, allowed: Sequence[str]) -> str | None:
    if value is None or value == "":
        return None
    if value not in allowed:
        raise ViewError(f"{name} {value!r} is not one of: {', '.join(allowed)}")
    return value


def _scores_at(as_of: datetime, ids: Sequence[str] | None = None) -> Any:
    """Each account's score as it was at ``as_of``, in the columns of ``account_scores``
    the portfolio reads: the current row when it is not newer than ``as_of``, else the
    newest ``score_history`` row at or before it (one indexed look-up per account on
    ``ix_score_history_account_asof``); an account scored only after ``as_of`` has no
    row (unscored then). ``reason`` and ``active_integrations`` are not kept in the
    history: None for rows from it. The same rule as ``scoring.tasks.band_at``. With
    ``ids``, only those accounts (a page's rows: no look-up for the others)."""
    s, h = AccountScore.__table__, ScoreHistory.__table__
    h2 = h.alias("h_newest")
    newest = (
        select(h2.c.id)
        .where(h2.c.account_id == s.c.account_id, h2.c.as_of <= as_of)
        .order_by(h2.c.as_of.desc(), h2.c.id.desc())
        .limit(1)
        .correlate(s)
        .scalar_subquery()
    )
    current = select(
        s.c.account_id,
        s.c.score,
        s.c.band,
        s.c.stage,
        s.c.reason,
        s.c.active_integrations,
        s.c.as_of,
    ).where(s.c.as_of <= as_of)
    if ids is not None:
        current = current.where(s.c.account_id.in_(ids))
    older = (
        select(
            h.c.account_id,
            h.c.score,
            h.c.band,
            h.c.stage,
            cast(null(), Text).label("reason"),
            cast(null(), Integer).label("active_integrations"),
            h.c.as_of,
        )
        .select_from(s.join(h, h.c.id == newest))
        .where(s.c.as_of > as_of)
    )
    if ids is not None:
        older = older.where(s.c.account_id.in_(ids))
    return union_all(current, older).subquery("scores_at")


def _segment_at(
    name: str, scores: Any, account_id: Any, as_of: datetime, config: Config
) -> ColumnElement[bool]:
    """The SQL condition "the account was in segment ``name`` at ``as_of``": the rule
    of ``scoring.signals.segments_for`` over its score at ``as_of`` (``_scores_at``)
    and the episodes open then (``open_at``), so a filter or a tile of the past counts
    what the rows of the past show."""
    sig = Signal.__table__
    conds: list[ColumnElement[bool]] = []
    kinds = sorted(kind for kind, rule in KINDS.items() if rule.segment == name)
    if kinds:
        conds.append(
            exists(
                select(sig.c.id).where(
                    sig.c.account_id == account_id, sig.c.kind.in_(kinds), open_at(as_of, sig)
                )
            )
        )
    if name == "at-risk":
        conds.append(scores.c.band.in_(list(config.signals.at_risk_bands)))
    if name == "onboarding":
        conds.append(scores.c.stage == "onboarding")
    return or_(*conds) if conds else false()


def portfolio(
    engine: Engine,
    config: Config,
    *,
    as_of: datetime,
    sort: str = "score",
    order: str = "asc",
    band: str | None = None,
    segment: str | None = None,
    crm_segment: str | None = None,
    owner: str | None = None,
    integration: str | None = None,
    q: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> dict[str, Any]:
    """Every account with its score, band, 30-day trend, change since last week,
    segment, plan, MRR, active integrations, open signals, CRM segments and owner;
    filtered, sorted and paginated in SQL (never all rows into Python).

    ``band`` is healthy / watch / at_risk / unscored; ``segment`` the account segment;
    ``crm_segment`` one of the segments scoring writes (expansion-ready, at-risk,
    onboarding); ``owner`` matches the owner or the CSM; ``integration`` keeps accounts
    with a (not uninstalled) connection to it; ``q`` is a case-insensitive substring of
    the name, domain or account id. Tiles cover the filtered accounts.

    At an ``as_of`` before some account's current score (a page of the past), scores,
    bands, stages, segments, the tiles and the band / CRM-segment filters and sorts are
    those of ``as_of``: each account's newest ``score_history`` row at or before it
    (``_scores_at``) and its episodes open then, in the same queries (``past`` is true in
    the answer). Accounts, plans, MRR, owners and connection states are today's.
    """
    as_of = as_utc(as_of)  # type: ignore[assignment]
    if sort not in SORTS:
        raise ViewError(f"sort {sort!r} is not one of: {', '.join(SORTS)}")
    if order not in ("asc", "desc"):
        raise ViewError(f"order {order!r} is not asc or desc")
    band = _choice("band", band, (*BANDS, "unscored"))
    segment = _choice("segment", segment, ACCOUNT_SEGMENTS)
    crm_segment = _choice("crm_segment", crm_segment, SEGMENT_ORDER)
    page = max(1, int(page))
    page_size = min(MAX_PAGE_SIZE, max(1, int(page_size)))
    owner = owner or None
    integration = integration or None
    q = (q or "").strip() or None

    a = Account.__table__
    s: Any = AccountScore.__table__
    c = Connection.__table__
    h = ScoreHistory.__table__
    sig = Signal.__table__

    with engine.connect() as conn:
        latest = as_utc(conn.execute(select(func.max(s.c.as_of))).scalar_one())
        past = latest is not None and latest > as_of
        if past:
            s = _scores_at(as_of)

            def in_segment(name: str) -> ColumnElement[bool]:
                return _segment_at(name, s, a.c.account_id, as_of, config)
        else:

            def in_segment(name: str) -> ColumnElement[bool]:
                return _has_segment(s.c.segments, name)

        joined = a.outerjoin(s, s.c.account_id == a.c.account_id)
        where: list[ColumnElement[bool]] = []
        if band == "unscored":
            where.append(s.c.band.is_(None))
        elif band is not None:
            where.append(s.c.band == band)
        if segment is not None:
            where.append(a.c.segment == segment)
        if crm_segment is not None:
            where.append(in_segment(crm_segment))
        if owner is not None:
            where.append(or_(a.c.owner == owner, a.c.csm == owner))
        if integration is not None:
            where.append(
                a.c.account_id.in_(
                    select(c.c.account_id).where(
                        c.c.integration == integration,
                        or_(c.c.state.is_(None), c.c.state != "uninstalled"),
                    )
                )
            )
        if q is not None:
            pattern = _like_pattern(q)
            where.append(
                or_(
                    a.c.name.ilike(pattern, escape="\\"),
                    a.c.domain.ilike(pattern, escape="\\"),
                    a.c.account_id.ilike(pattern, escape="\\"),
                )
            )

        _lo, week_hi = day_bounds((as_of - timedelta(days=CHANGE_DAYS)).date())
        previous = (
            select(h.c.score)
            .where(h.c.account_id == a.c.account_id, h.c.as_of < week_hi)
            .order_by(h.c.as_of.desc(), h.c.id.desc())
            .limit(1)
            .correlate(a)
            .scalar_subquery()
        )
        change = s.c.score - previous
        open_signals = (
            select(func.count())
            .select_from(sig)
            .where(sig.c.account_id == a.c.account_id, open_at(as_of, sig))
            .correlate(a)
            .scalar_subquery()
        )
        band_rank = case(
            (s.c.band == "at_risk", 0), (s.c.band == "watch", 1), (s.c.band == "healthy", 2)
        )
        sort_expr = {
            "score": s.c.score,
            "band": band_rank,
            "change": change,
            "name": func.lower(a.c.name),
            "domain": func.lower(a.c.domain),
            "segment": a.c.segment,
            "plan": func.lower(a.c.plan),
            "mrr": a.c.mrr,
            "active_integrations": s.c.active_integrations,
            "open_signals": open_signals,
            "owner": func.lower(a.c.owner),
            "csm": func.lower(a.c.csm),
            "stage": s.c.stage,
        }[sort]
        direction = sort_expr.desc() if order == "desc" else sort_expr.asc()
        page_ids = list(
            conn.execute(
                select(a.c.account_id)
                .select_from(joined)
                .where(*where)
                .order_by(direction.nulls_last(), a.c.account_id)
                .limit(page_size)
                .offset((page - 1) * page_size)
            ).scalars()
        )

        rows_by_id: dict[str, dict[str, Any]] = {}
        if page_ids:
            # the past: the page's accounts' look-ups only, not every account's again
            ps = _scores_at(as_of, page_ids) if past else s
            page_joined = a.outerjoin(ps, ps.c.account_id == a.c.account_id)
            for r in conn.execute(
                select(
                    a.c.account_id,
                    a.c.name,
                    a.c.domain,
                    a.c.segment,
                    a.c.plan,
                    a.c.mrr,
                    a.c.owner,
                    a.c.csm,
                    a.c.is_stub,
                    ps.c.score,
                    ps.c.band,
                    ps.c.stage,
                    ps.c.reason,
                    (null() if past else ps.c.segments).label("segments"),
                    ps.c.active_integrations,
                    ps.c.as_of.label("scored_as_of"),
                    previous.label("previous_week"),
                    open_signals.label("open_signals"),
                )
                .select_from(page_joined)
                .where(a.c.account_id.in_(page_ids))
            ).mappings():
                rows_by_id[r["account_id"]] = dict(r)
            trends = _trends(conn, page_ids, as_of)
            if past:
                _segments_then(conn, config, as_of, rows_by_id)

        tiles, total = _tiles(
            conn, joined, where, integration, s, (as_of, config) if past else None
        )
        choices = _portfolio_choices(conn)

    rows = []
    for aid in page_ids:
        r = rows_by_id[aid]
        score_now = r["score"]
        prev = r.pop("previous_week")
        scored_as_of = as_utc(r.pop("scored_as_of"))
        trend = list(trends.get(aid, []))
        if score_now is not None and scored_as_of is not None:
            if not trend or trend[-1]["at"] != scored_as_of or trend[-1]["score"] != score_now:
                trend.append({"at": scored_as_of, "score": score_now})
        rows.append(
            {
                **r,
                "segments": r["segments"] or [],
                "scored_as_of": scored_as_of,
                "change_7d": None if prev is None or score_now is None else score_now - prev,
                "previous_week_score": prev,
                "trend_30d": trend,
            }
        )
    return {
        "as_of": as_of,
        "past": past,
        "filters": {
            "sort": sort,
            "order": order,
            "band": band,
            "segment": segment,
            "crm_segment": crm_segment,
            "owner": owner,
            "integration": integration,
            "q": q,
        },
        "page": page,
        "page_size": page_size,
        "total": total,
        "pages": max(1, math.ceil(total / page_size)),
        "rows": rows,
        "tiles": tiles,
        "choices": choices,
    }


def _segments_then(
    conn: Any, config: Config, as_of: datetime, rows: dict[str, dict[str, Any]]
) -> None:
    """Set each row's ``segments`` to those it had at ``as_of``: ``segments_for`` over
    its score then (the row's band and stage) and its episodes open then, as the health
    card of that moment computes them."""
    kinds: dict[str, list[str]] = defaultdict(list)
    for e in episodes_as_of(conn, as_of, account_ids=list(rows)):
        if e["status"] == "open":
            kinds[e["account_id"]].append(e["kind"])
    for aid, r in rows.items():
        if r["band"] is None:
            r["segments"] = []
            continue
        acct = SimpleNamespace(band=r["band"], stage=r["stage"], tenure_days=None)
        r["segments"] = segments_for(acct, kinds.get(aid, ()), config.signals)  # type: ignore[arg-type]


def _trends(conn: Any, ids: list[str], as_of: datetime) -> dict[str, list[dict[str, Any]]]:
    """Score points of the last 30 days per account, starting with the score in force
    when the window opened (so an unchanged score draws a flat line)."""
    h = ScoreHistory.__table__
    lo, _ = day_bounds((as_of - timedelta(days=TREND_DAYS)).date())
    _lo, hi = day_bounds(as_of.date())
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    before = (
        select(h.c.account_id, func.max(h.c.as_of).label("at"))
        .where(h.c.account_id.in_(ids), h.c.as_of < lo)
        .group_by(h.c.account_id)
        .subquery()
    )
    anchors = conn.execute(
        select(h.c.account_id, h.c.score, h.c.id)
        .select_from(
            h.join(before, and_(before.c.account_id == h.c.account_id, before.c.at == h.c.as_of))
        )
        .order_by(h.c.account_id, h.c.id)
    )
    for aid, score, _id in anchors:
        out[aid] = [{"at": lo, "score": score}]  # the last of equal timestamps wins
    for aid, at, score in conn.execute(
        select(h.c.account_id, h.c.as_of, h.c.score)
        .where(h.c.account_id.in_(ids), h.c.as_of >= lo, h.c.as_of < hi, h.c.as_of <= as_of)
        .order_by(h.c.account_id, h.c.as_of, h.c.id)
    ):
        out[aid].append({"at": as_utc(at), "score": score})
    return out


def _tiles(
    conn: Any,
    joined: Any,
    where: list[ColumnElement[bool]],
    integration: str | None,
    s: Any,
    past: tuple[datetime, Config] | None = None,
) -> tuple[dict[str, Any], int]:
    """Accounts per band, MRR at risk and expansion-ready, broken connections: one
    GROUP BY band and segment list (a handful of groups), summed here. ``s`` is
    ``account_scores`` or the scores of a past moment (``_scores_at``); for the past
    (``past``: its moment and the config) the query groups by band and two flags, at
    risk and expansion-ready then (the rule of ``_segment_at``, with the episodes open
    then read in one pass over the signals grouped by account, not a look-up per
    account), instead of the stored segment list."""
    a = Account.__table__
    c = Connection.__table__
    bands = dict.fromkeys((*BANDS, "unscored"), 0)
    totals = {"accounts": 0, "mrr": 0.0, "at_risk": [0, 0.0], "expansion-ready": [0, 0.0]}
    if past is None:
        segments_text = cast(s.c.segments, Text)
        groups = (
            select(s.c.band, segments_text, func.count(), func.sum(a.c.mrr))
            .select_from(joined)
            .where(*where)
            .group_by(s.c.band, segments_text)
        )
    else:
        as_of, config = past
        sig = Signal.__table__

        def kind_flag(segment: str) -> Any:
            kinds = sorted(kind for kind, rule in KINDS.items() if rule.segment == segment)
            return func.max(case((sig.c.kind.in_(kinds), 1), else_=0)).label(segment)

        open_then = (
            select(sig.c.account_id, kind_flag("at-risk"), kind_flag("expansion-ready"))
            .where(open_at(as_of, sig))
            .group_by(sig.c.account_id)
            .subquery("open_then")
        )
        at_risk = or_(
            s.c.band.in_(list(config.signals.at_risk_bands)),
            open_then.c["at-risk"] == 1,
        )
        flags = (
            select(
                s.c.band.label("band"),
                case((at_risk, 1), else_=0).label("at_risk"),
                case((open_then.c["expansion-ready"] == 1, 1), else_=0).label("expansion"),
                a.c.mrr.label("mrr"),
            )
            .select_from(joined.outerjoin(open_then, open_then.c.account_id == a.c.account_id))
            .where(*where)
            .subquery("flags")
        )
        groups = select(
            flags.c.band,
            flags.c.at_risk,
            flags.c.expansion,
            func.count(),
            func.sum(flags.c.mrr),
        ).group_by(flags.c.band, flags.c.at_risk, flags.c.expansion)
    for band, *seg, n, mrr in conn.execute(groups):
        mrr = float(mrr or 0)
        if past is None:
            names = set(json.loads(seg[0])) if seg[0] else set()
        else:
            names = {"at-risk"} if seg[0] else set()
            names |= {"expansion-ready"} if seg[1] else set()
        key = band if band in bands else "unscored"
        bands[key] += n
        totals["accounts"] += n
        totals["mrr"] += mrr
        for name, slot in (("at-risk", "at_risk"), ("expansion-ready", "expansion-ready")):
            if name in names:
                totals[slot][0] += n
                totals[slot][1] += mrr
    broken_q = select(func.count(), func.count(func.distinct(c.c.account_id))).where(
        c.c.state == "broken"
    )
    if where:
        broken_q = broken_q.where(
            c.c.account_id.in_(select(a.c.account_id).select_from(joined).where(*where))
        )
    if integration is not None:
        broken_q = broken_q.where(c.c.integration == integration)
    broken, broken_accounts = conn.execute(broken_q).one()
    tiles = {
        "accounts": totals["accounts"],
        "bands": bands,
        "mrr": totals["mrr"],
        "at_risk_accounts": totals["at_risk"][0],
        "at_risk_mrr": totals["at_risk"][1],
        "expansion_ready_accounts": totals["expansion-ready"][0],
        "expansion_ready_mrr": totals["expansion-ready"][1],
        "broken_connections": broken,
        "broken_accounts": broken_accounts,
    }
    return tiles, totals["accounts"]


def _portfolio_choices(conn: Any) -> dict[str, Any]:
    a = Account.__table__
    i = Integration.__table__
    people = union(
        select(a.c.owner.label("person")).where(a.c.owner.is_not(None)),
        select(a.c.csm.label("person")).where(a.c.csm.is_not(None)),
    ).subquery()
    owners = sorted(
        (p for p in conn.execute(select(people.c.person)).scalars() if p),
        key=lambda p: (p.lower(), p),
    )
    integrations = [
        {"key": key, "name": name}
        for key, name in conn.execute(select(i.c.key, i.c.name).order_by(i.c.key))
    ]
    return {
        "bands": [*BANDS, "unscored"],
        "segments": list(ACCOUNT_SEGMENTS),
        "crm_segments": list(SEGMENT_ORDER),
        "owners": owners,
        "integrations": integrations,
        "sorts": list(SORTS),
    }


# ---------------------------------------------------------------- integrations


def km_with_band(durations: Sequence[float], ended: Sequence[bool]) -> list[dict[str, Any]]:
    """Kaplan-Meier points with a 95% pointwise interval (Greenwood variance on the
    log(-log) scale, as lifelines computes it), at-risk counts and censorings."""
    curve = kaplan_meier(durations, ended)
    return band_of(curve)


def band_of(curve: Sequence[KMPoint]) -> list[dict[str, Any]]:
    out = []
    greenwood = 0.0
    for p in curve:
        if p.events and p.at_risk > p.events:
            greenwood += p.events / (p.at_risk * (p.at_risk - p.events))
        elif p.events:
            greenwood = math.inf
        lower, upper = _loglog_interval(p.retained, greenwood)
        out.append(
            {
                "day": p.day,
                "retained": p.retained,
                "lower": lower,
                "upper": upper,
                "at_risk": p.at_risk,
                "events": p.events,
                "censored": p.censored,
            }
        )
    return out


def _loglog_interval(survival: float, greenwood: float) -> tuple[float, float]:
    if survival >= 1.0 or greenwood == 0.0:
        return survival, survival
    if survival <= 0.0 or not math.isfinite(greenwood):
        return 0.0, 0.0
    log_s = math.log(survival)
    theta = math.log(-log_s)
    se = math.sqrt(greenwood) / abs(log_s)
    return math.exp(-math.exp(theta + Z95 * se)), math.exp(-math.exp(theta - Z95 * se))


def at_risk_table(curve: Sequence[dict[str, Any]], days: Iterable[int] = AT_RISK_DAYS) -> dict:
    """Connections still followed (at risk) at the start of each day in ``days``."""
    out: dict[str, int] = {}
    total = curve[0]["at_risk"] if curve else 0
    for day in days:
        remaining = total
        for p in curve:
            if p["day"] < day:
                remaining = p["at_risk"] - p["events"] - p["censored"]
            else:
                break
        out[str(day)] = remaining
    return out


def _retention(lives: Sequence[Lifetime]) -> dict[str, Any]:
    curve = kaplan_meier([x.duration for x in lives], [x.ended for x in lives])
    points = band_of(curve)
    return {
        "connections": len(lives),
        "ended": sum(1 for x in lives if x.ended),
        "censored": sum(1 for x in lives if not x.ended),
        "curve": points,
        "censor_days": sorted({x.duration for x in lives if not x.ended}),
        "retained_at": retained_at(curve),
        "median_days": quantile_day(curve, 0.5),
        "at_risk": at_risk_table(points),
    }


def _known_integrations(conn: Any, config: Config) -> dict[str, dict[str, Any]]:
    i = Integration.__table__
    known = {
        key: {"key": key, "name": spec.name, "category": spec.category}
        for key, spec in config.integrations.items()
    }
    for key, name, category in conn.execute(select(i.c.key, i.c.name, i.c.category)):
        known.setdefault(key, {"key": key, "name": name, "category": category})
    return known


def _stages(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The funnel as bars: installed -> activated -> active -> retained 30 / 90 days."""
    stages = [
        ("installed", row["installed"], None),
        ("activated", row["activated"], row["installed"]),
        ("active now", row["active"], row["activated"]),
        ("retained 30 days", row["retained_30"], row["eligible_30"]),
        ("retained 90 days", row["retained_90"], row["eligible_90"]),
    ]
    return [
        {
            "stage": name,
            "count": count,
            "of": base,
            "conversion": (count / base) if base else None,
        }
        for name, count, base in stages
    ]


def _impact_summary(doc: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "integration",
        "outcome",
        "outcome_kind",
        "unit",
        "as_of",
        "adopters",
        "controls",
        "matched_adopters",
        "adopter_mean",
        "control_mean",
        "lift",
        "lift_ci95",
        "naive_lift",
        "naive_lift_ci95",
        "band",
        "measurable",
        "verdict",
        "caveat",
        "source",
        "cached_at",
    )
    out = {k: doc.get(k) for k in keys}
    out["bootstrap"] = (doc.get("matching") or {}).get("bootstrap")
    return out


def _light_connections(
    conn: Any,
    config: Config,
    *,
    as_of: datetime,
    integration: str | None = None,
    lifetimes: bool = True,
) -> tuple[list[ConnectionFacts], list[Lifetime]]:
    """Connections with the lifecycle facts the funnel, time-to-value and retention
    need, read from the connections table (states as the last scoring run stored
    them), and the lifetimes of the activated ones from their successful days. Much
    cheaper than ``load_lifetimes`` (no usage windows, no per-account facts): one
    integration reads only its own connections' rollup rows through the covering
    ``(connection_id, day, ...)`` index."""
    c = Connection.__table__
    d = DailyUsage.__table__
    day = as_of.date()
    cutoff = day_bounds(day)[1]
    catalog = integration_catalog(conn, config)
    stmt = select(
        c.c.connection_id,
        c.c.account_id,
        c.c.integration,
        c.c.installed_at,
        c.c.setup_started_at,
        c.c.activated_at,
        c.c.uninstalled_at,
        c.c.state,
    ).where(or_(c.c.installed_at < cutoff, c.c.activated_at < cutoff))
    if integration is not None:
        stmt = stmt.where(c.c.integration == integration)
    facts: list[ConnectionFacts] = []
    for r in conn.execute(stmt):
        f = ConnectionFacts(
            connection_id=r.connection_id,
            account_id=r.account_id,
            integration=_info(catalog, r.integration),
            installed_at=_before(r.installed_at, cutoff),
            setup_started_at=_before(r.setup_started_at, cutoff),
            activated_at=_before(r.activated_at, cutoff),
            uninstalled_at=_before(r.uninstalled_at, cutoff),
        )
        f.state = r.state or ("active" if f.activated_at else "installed")
        f.stored_state = r.state
        facts.append(f)
    if not lifetimes:
        return facts, []
    days: dict[str, list[Any]] = defaultdict(list)
    usage = select(d.c.connection_id, d.c.day).where(d.c.successes > 0, d.c.day <= day)
    if integration is not None:
        usage = usage.where(
            d.c.connection_id.in_(select(c.c.connection_id).where(c.c.integration == integration))
        )
    for cid, when in conn.execute(usage.order_by(d.c.connection_id, d.c.day)):
        days[cid].append(when if not isinstance(when, str) else date.fromisoformat(when))
    lives = []
    for f in facts:
        life = lifetime_of(f, days.get(f.connection_id, []), day, None)
        if life is not None:
            lives.append(life)
    return facts, lives


def _before(value: datetime | None, cutoff: datetime) -> datetime | None:
    """A fact known by ``cutoff`` (later ones did not happen yet as of the view)."""
    at = as_utc(value)
    return at if at is not None and at < cutoff else None


def integrations_overview(
    engine: Engine, config: Config, *, as_of: datetime, retention: bool = False
) -> dict[str, Any]:
    """Every integration: funnel counts (installed -> activated -> active now) with the
    largest drop, broken vs idle, time-to-value, and a cached impact when there is one
    (never computed here). Retention needs every connection's successful days (a scan
    of all daily rollups: seconds at 10,000 accounts), so it is on the integration page,
    and here only with ``retention=True``; without it the retention keys are None."""
    as_of = as_utc(as_of)  # type: ignore[assignment]
    day = as_of.date()
    with engine.connect() as conn:
        conns, lifetimes = _light_connections(conn, config, as_of=as_of, lifetimes=retention)
    by_key: dict[str, list[Lifetime]] = defaultdict(list)
    for life in lifetimes:
        by_key[life.integration].append(life)
    ttv = {r["integration"]: r for r in ttv_rows(conns, day)}
    with engine.connect() as conn:
        known = _known_integrations(conn, config)
        impacts = {key: cached_impact(conn, key, IMPACT_OUTCOME) for key in known}
    rows = []
    for f in funnel_rows(conns, lifetimes):
        key = f["integration"]
        lives = by_key.get(key, [])
        curve = kaplan_meier([x.duration for x in lives], [x.ended for x in lives])
        cached = impacts.get(key)
        rows.append(
            {
                **f,
                "category": known.get(key, {}).get("category", "other"),
                "stages": _stages(f),
                "retention": None
                if not retention
                else {
                    "connections": len(lives),
                    "retained_at": retained_at(curve),
                    "median_days": quantile_day(curve, 0.5),
                },
                "ttv": _ttv_of(ttv.get(key)),
                "impact": None if cached is None else _impact_summary(cached),
            }
        )
    return {
        "as_of": as_of,
        "impact_outcome": IMPACT_OUTCOME,
        "with_retention": retention,
        "integrations": rows,
    }


def _ttv_of(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {"installs": 0, "activated": 0, "censored": 0, "median_days": None, "p90_days": None}
    return {k: v for k, v in row.items() if k != "integration"}


def integration_page(
    engine: Engine,
    config: Config,
    key: str,
    *,
    as_of: datetime,
    cohort: str = "month",
    outcome: str = IMPACT_OUTCOME,
    compute_impact: bool = True,
) -> dict[str, Any]:
    """One integration: funnel stages with the largest drop, Kaplan-Meier retention
    overall and by install cohort (95% Greenwood band, censoring days, numbers at risk),
    time-to-value, broken vs idle (with the broken connections), and impact on
    ``outcome`` against the matched group — the cached `signals impact` document when
    there is one, else computed with ``WEB_BOOTSTRAP`` resamples."""
    as_of = as_utc(as_of)  # type: ignore[assignment]
    day = as_of.date()
    if cohort not in ("week", "month"):
        raise ViewError(f"cohort {cohort!r} is not week or month")
    key = key.strip().lower()
    with engine.connect() as conn:
        known = _known_integrations(conn, config)
        if key not in known:
            raise UnknownIntegration(f"no integration has key {key!r}")
        cached = cached_impact(conn, key, outcome)
        problems = _problem_connections(conn, key)
        conns, lifetimes = _light_connections(conn, config, as_of=as_of, integration=key)
    rows = funnel_rows(conns, lifetimes)
    funnel = rows[0] if rows else None
    groups: dict[str, list[Lifetime]] = defaultdict(list)
    for life in lifetimes:
        groups[cohort_of(life.installed, cohort)].append(life)
    cohorts = [{"cohort": name, **_retention(groups[name])} for name in sorted(groups)]
    ttv = ttv_rows(conns, day)
    impact = cached
    if impact is None and compute_impact:
        impact = _compute_impact(engine, config, key, outcome, as_of)
    return {
        "as_of": as_of,
        "integration": known[key],
        "funnel": funnel,
        "stages": _stages(funnel) if funnel else [],
        "largest_drop": funnel["largest_drop"] if funnel else None,
        "states": {
            state: (funnel or {}).get(state, 0)
            for state in ("active", "broken", "idle", "uninstalled")
        },
        "retention": {"overall": _retention(lifetimes), "cohort_by": cohort, "cohorts": cohorts},
        "retained_at_days": list(RETAINED_AT),
        "ttv": _ttv_of(ttv[0] if ttv else None),
        "impact": None if impact is None else _impact_summary(impact),
        "broken_connections": problems["broken"],
        "idle_connections": problems["idle"],
    }


def _compute_impact(
    engine: Engine, config: Config, key: str, outcome: str, as_of: datetime
) -> dict[str, Any] | None:
    from integration_signals.scoring.impact import (
        ImpactError,
        ImpactRequest,
        analyze,
        default_as_of,
    )

    cfg = config.impact
    req = ImpactRequest.from_config(cfg, key, outcome, as_of=default_as_of(cfg, as_of))
    req = replace(req, bootstrap=min(cfg.bootstrap, WEB_BOOTSTRAP))
    try:
        doc = analyze(engine, config, req)
    except ImpactError as exc:
        return {"integration": key, "outcome": outcome, "verdict": str(exc), "source": "error"}
    return {**doc, "source": "computed"}


def _problem_connections(conn: Any, key: str, limit: int = 50) -> dict[str, list[dict]]:
    c = Connection.__table__
    a = Account.__table__
    out: dict[str, list[dict]] = {"broken": [], "idle": []}
    for state in out:
        rows = conn.execute(
            select(
                c.c.connection_id,
                c.c.account_id,
                a.c.name,
                c.c.last_error,
                c.c.last_success_at,
                c.c.last_failure_at,
                c.c.auth_expired_at,
            )
            .select_from(c.outerjoin(a, a.c.account_id == c.c.account_id))
            .where(c.c.integration == key, c.c.state == state)
            .order_by(c.c.last_success_at.desc().nulls_last(), c.c.connection_id)
            .limit(limit)
        ).mappings()
        out[state] = [
            {
                **r,
                "last_success_at": as_utc(r["last_success_at"]),
                "last_failure_at": as_utc(r["last_failure_at"]),
                "auth_expired_at": as_utc(r["auth_expired_at"]),
            }
            for r in rows
        ]
    return out


# ---------------------------------------------------------------- tasks


def task_row(r: Any, *, now: datetime) -> dict[str, Any]:
    """One task as `signals tasks --json` shows it, plus the account's name and its band
    as of the view's moment (``tasks_as_of``)."""
    due = as_utc(r.due_at)
    return {
        "id": r.id,
        "account_id": r.account_id,
        "account_name": getattr(r, "account_name", None),
        "account_band": getattr(r, "account_band", None),
        "signal_id": r.signal_id,
        "signal_kind": r.signal_kind,
        "title": r.title,
        "body": r.body,
        "owner": r.owner,
        "due_at": due,
        "status": r.status,
        "claimed_by": r.claimed_by,
        "snoozed_until": as_utc(r.snoozed_until),
        "overdue": r.status in ("open", "claimed") and due is not None and due < now,
        "overdue_at": as_utc(r.overdue_at),
        "created_at": as_utc(r.created_at),
        "updated_at": as_utc(r.updated_at),
    }


def tasks_queue(
    engine: Engine,
    *,
    as_of: datetime,
    owner: str | None = None,
    status: str | None = None,
    limit: int = 1000,
) -> dict[str, Any]:
    """Tasks grouped by owner, then status. Without ``status``: every task not done."""
    as_of = as_utc(as_of)  # type: ignore[assignment]
    status = _choice("status", status, TASK_STATUSES)
    owner = owner or None
    with engine.connect() as conn:
        every = [SimpleNamespace(**r) for r in tasks_as_of(conn, as_of=as_of, owner=owner)]
    if status:
        rows = [r for r in every if r.status == status]
    else:
        rows = [r for r in every if r.status != "done"]
    if status == "done":
        rows.sort(key=lambda r: (-r.updated_at.timestamp(), r.id))
    rows = rows[:limit]
    counts: Counter[tuple[str | None, str]] = Counter((r.owner, r.status) for r in every)
    groups: dict[str | None, dict[str, list[dict[str, Any]]]] = {}
    for r in rows:
        groups.setdefault(r.owner, {}).setdefault(r.status, []).append(task_row(r, now=as_of))
    by_owner_counts: dict[str | None, dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(TASK_STATUSES, 0)
    )
    totals = dict.fromkeys(TASK_STATUSES, 0)
    for (who, st), n in counts.items():
        by_owner_counts[who][st] = n
        totals[st] = totals.get(st, 0) + n
    owners = sorted(groups, key=lambda o: (o is None, (o or "").lower()))
    return {
        "as_of": as_of,
        "filters": {"owner": owner, "status": status},
        "counts": totals,
        "overdue": sum(1 for r in rows if task_row(r, now=as_of)["overdue"]),
        "owners": [
            {
                "owner": who,
                "counts": by_owner_counts[who],
                "statuses": [
                    {"status": st, "tasks": groups[who][st]}
                    for st in TASK_STATUSES
                    if st in groups[who]
                ],
            }
            for who in owners
        ],
        "truncated": len(rows) >= limit,
    }


# ---------------------------------------------------------------- operations


def ops_view(
    engine: Engine,
    config: Config,
    *,
    now: datetime,
    scheduler: dict[str, Any] | None = None,
    runs_per_job: int = 20,
) -> dict[str, Any]:
    """Feed freshness, the stale-feed alarm, each scheduled job's recent runs (last run,
    state, failures in a row) and the last scoring run. ``scheduler`` is the live
    scheduler's status (``Scheduler.status()``) when the caller has one: next run times
    and stale flags are merged in from it."""
    now = as_utc(now)  # type: ignore[assignment]
    kv = KeyValue.__table__
    c = Connection.__table__
    sig = Signal.__table__
    j = JobRun.__table__
    sr = ScoringRun.__table__
    with engine.connect() as conn:
        received = as_utc(
            conn.execute(select(kv.c.updated_at).where(kv.c.key == FEED_KEY)).scalar_one_or_none()
        )
        occurred = as_utc(conn.execute(select(func.max(c.c.last_event_at))).scalar_one())
        alarm = (
            conn.execute(
                select(sig.c.id, sig.c.fired_at, sig.c.details)
                .where(sig.c.kind == "feed_stale", sig.c.status == "open")
                .order_by(sig.c.fired_at.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        job_ids = sorted(conn.execute(select(j.c.job_id).distinct()).scalars())
        jobs: dict[str, Any] = {}
        for job_id in job_ids:
            runs = conn.execute(
                select(j)
                .where(j.c.job_id == job_id)
                .order_by(j.c.scheduled_at.desc(), j.c.id.desc())
                .limit(runs_per_job)
            ).all()
            jobs[job_id] = _job_summary(runs)
        last_scoring = (
            conn.execute(select(sr).order_by(sr.c.started_at.desc(), sr.c.id.desc()).limit(1))
            .mappings()
            .first()
        )
        quarantined = conn.execute(select(func.count()).select_from(Quarantine.__table__)).scalar()
    for job_id, live in (scheduler or {}).items():
        entry = jobs.setdefault(job_id, _job_summary([]))
        entry["description"] = live.get("description")
        entry["next_run_at"] = live.get("next_run_at")
        entry["stale"] = live.get("stale")
        entry["interval_seconds"] = live.get("interval_seconds")
        if live.get("running"):
            entry["running"] = live["running"]
    threshold = config.signals.feed_stale_hours

    def hours(at: datetime | None) -> float | None:
        return None if at is None else round((now - at).total_seconds() / 3600, 2)

    return {
        "now": now,
        "feed": {
            "last_received_at": received,
            "last_occurred_at": occurred,
            "hours_since_received": hours(received),
            "hours_since_occurred": hours(occurred),
            "stale_after_hours": threshold,
            "stale": alarm is not None,
            "alarm": None
            if alarm is None
            else {
                "signal_id": alarm["id"],
                "fired_at": as_utc(alarm["fired_at"]),
                "details": alarm["details"],
            },
        },
        "jobs": [{"job_id": k, **v} for k, v in sorted(jobs.items())],
        "failing_jobs": sorted(k for k, v in jobs.items() if v["failures_in_a_row"]),
        "last_scoring_run": None
        if last_scoring is None
        else {
            "id": last_scoring["id"],
            "as_of": as_utc(last_scoring["as_of"]),
            "started_at": as_utc(last_scoring["started_at"]),
            "finished_at": as_utc(last_scoring["finished_at"]),
            "full": last_scoring["full"],
            "rescored": last_scoring["rescored"],
            "changed": last_scoring["changed"],
        },
        "quarantined_lines": quarantined,
    }


def _job_summary(runs: Sequence[Any]) -> dict[str, Any]:
    """Newest first: the last run, the last success, and failures in a row."""
    finished = [r for r in runs if r.status != "running"]
    in_a_row = 0
    for r in finished:
        if r.status == "ok":
            break
        in_a_row += 1
    last = runs[0] if runs else None
    last_ok = next((r for r in finished if r.status == "ok"), None)
    last_failed = next((r for r in finished if r.status != "ok"), None)
    return {
        "description": None,
        "last_run": None
        if last is None
        else {
            "scheduled_at": as_utc(last.scheduled_at),
            "started_at": as_utc(last.started_at),
            "finished_at": as_utc(last.finished_at),
            "status": last.status,
            "host": last.host,
            "seconds": _seconds(last.started_at, last.finished_at),
            "error": last.error,
        },
        "state": None if last is None else last.status,
        "last_success_at": None if last_ok is None else as_utc(last_ok.finished_at),
        "last_error": None if last_failed is None else last_failed.error,
        "last_error_at": None if last_failed is None else as_utc(last_failed.finished_at),
        "failures_in_a_row": in_a_row,
        "recent": [{"scheduled_at": as_utc(r.scheduled_at), "status": r.status} for r in runs],
        "next_run_at": None,
        "stale": None,
        "interval_seconds": None,
        "running": None,
    }


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((as_utc(end) - as_utc(start)).total_seconds(), 3)  # type: ignore[operator]


# ---------------------------------------------------------------- syncs


def _run_row(r: Any) -> dict[str, Any]:
    details = r["details"] or {}
    return {
        "run_id": r["id"],
        "destination": r["destination"],
        "started_at": as_utc(r["started_at"]),
        "finished_at": as_utc(r["finished_at"]),
        "seconds": details.get("seconds", _seconds(r["started_at"], r["finished_at"])),
        "status": r["status"],
        "dry_run": r["dry_run"],
        "full": r["full"],
        "planned": r["planned"],
        "written": r["written"],
        "unchanged": r["unchanged"],
        "failed": r["failed"],
        "unmatched": r["unmatched"],
        "api_calls": r["api_calls"],
        "error": r["error"],
    }


def sync_history(
    engine: Engine,
    *,
    destination: str | None = None,
    limit: int = 50,
    known: Sequence[str] = (),
) -> dict[str, Any]:
    """The newest sync runs (all destinations unless one is named), newest first, with
    the destinations that have runs and each one's last run. ``known``: the registered
    destinations (the caller knows them; this layer does not); ``available`` lists them
    and any others with runs, each with its last real (not dry) run or None."""
    t = SyncRun.__table__
    limit = min(1000, max(1, int(limit)))
    stmt = select(t).order_by(t.c.id.desc()).limit(limit)
    if destination:
        stmt = stmt.where(t.c.destination == destination)
    with engine.connect() as conn:
        runs = [_run_row(r) for r in conn.execute(stmt).mappings()]
        newest = (
            select(t.c.destination, func.max(t.c.id).label("id"))
            .where(t.c.dry_run.is_(False))
            .group_by(t.c.destination)
            .subquery()
        )
        last = [
            _run_row(r)
            for r in conn.execute(
                select(t).join(newest, newest.c.id == t.c.id).order_by(t.c.destination)
            ).mappings()
        ]
    by_name = {r["destination"]: r for r in last}
    names = list(dict.fromkeys([*known, *by_name]))
    return {
        "destination": destination or None,
        "limit": limit,
        "runs": runs,
        "destinations": [r["destination"] for r in last],
        "last_runs": last,
        "available": [{"destination": n, "last_run": by_name.get(n)} for n in names],
    }


def sync_run(engine: Engine, run_id: int) -> dict[str, Any]:
    """One sync run: its counts and duration, per-record errors, unmatched accounts,
    API usage and whether a guard blocked it (from ``sync_runs.details``)."""
    t = SyncRun.__table__
    with engine.connect() as conn:
        r = conn.execute(select(t).where(t.c.id == int(run_id))).mappings().first()
    if r is None:
        raise UnknownSyncRun(f"no sync run has id {run_id!r}")
    details = r["details"] or {}
    return {
        **_run_row(r),
        "failures": details.get("failures") or [],
        "unmatched_accounts": details.get("unmatched_accounts") or [],
        "write_calls": details.get("write_calls"),
        "usage": details.get("usage"),
        "blocked": details.get("blocked"),
        "resume_after": details.get("resume_after"),
        "tasks": details.get("tasks"),
    }


__all__ = [
    "ViewError",
    "UnknownIntegration",
    "UnknownSyncRun",
    "portfolio",
    "integrations_overview",
    "integration_page",
    "tasks_queue",
    "ops_view",
    "sync_history",
    "sync_run",
    "km_with_band",
    "impact_cache_key",
]
