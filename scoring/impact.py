"""Impact analysis: does adopting an integration change an outcome, against a matched
comparison group (SPEC section 4, seed 002)?

Adoption is not impact. Adopters are accounts whose connection to the integration had
successful syncs on at least ``adoption_days`` distinct UTC days on or before ``as_of``
(installs alone never count); the outcome is measured after ``as_of``. Each adopter is
matched to non-adopters exactly on categorical covariates and by nearest neighbour on
standardised numeric ones (with replacement, optional caliper). The lift is the mean
adopter-minus-matched-control difference (the effect on adopters), with a 95% interval
from a bootstrap that resamples adopters and non-adopters and matches again each time,
so reusing a control is paid for in the interval. The naive difference against all
non-adopters is reported beside it, with covariate balance before and after matching.

I/O lives in ``load_population``; ``estimate`` is pure numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select

from integration_signals.config import Config, ImpactConfig
from integration_signals.scoring.exceptions import ImpactError
from integration_signals.store.models import Account, Connection, DailyUsage, Integration
from integration_signals.store.sql import as_utc

BOOLEAN_FIELDS = ("renewed",)
NUMERIC_FIELDS = ("mrr", "employees", "api_limit_daily", "expansion_mrr", "tenure")
TEXT_FIELDS = ("segment", "plan", "industry", "csm", "owner", "domain")
# Outcomes where a lower value is the better one (ranking in --all, wording).
LOWER_IS_BETTER = frozenset({"churned"})
CAVEAT = (
    "Correlational, not causal: adopters were compared with non-adopters matched on {covs}. "
    "Customers who adopt may differ in ways not measured here (engagement, intent, "
    "budget), so read the lift as an association that survives matching, not a proven effect."
)
NO_EFFECT = "no measurable effect: question continued investment"


def aware(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (a naive one is taken to be UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ---------------------------------------------------------------- the population


@dataclass
class Population:
    """Accounts that were customers at ``as_of``, with their facts as of then."""

    as_of: datetime
    ids: list[str]
    columns: dict[str, list[Any]]  # field or trait -> value per account
    churned_before: int = 0
    not_yet_customers: int = 0

    def kind(self, name: str) -> str:
        """``bool``, ``number`` or ``text`` for a field or trait; ImpactError if unknown."""
        if name not in self.columns:
            known = sorted(self.columns)
            raise ImpactError(
                f"{name!r} is not an account field or trait; use one of: {', '.join(known)}"
            )
        if name == "churned" or name in BOOLEAN_FIELDS:
            return "bool"
        if name in NUMERIC_FIELDS:
            return "number"
        if name in TEXT_FIELDS:
            return "text"
        values = [v for v in self.columns[name] if v is not None]
        if values and all(isinstance(v, bool) for v in values):
            return "bool"
        if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return "number"
        return "text"


def load_population(engine: Engine, *, as_of: datetime) -> Population:
    """Every imported account that existed at ``as_of`` and had not churned by then.

    ``churned`` is True when the account churned after ``as_of``; ``tenure`` is the days
    from ``created_at`` to ``as_of``; traits appear as columns of their own.
    """
    as_of = aware(as_of)
    t = Account.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                t.c.account_id,
                t.c.segment,
                t.c.plan,
                t.c.industry,
                t.c.csm,
                t.c.owner,
                t.c.domain,
                t.c.mrr,
                t.c.employees,
                t.c.api_limit_daily,
                t.c.expansion_mrr,
                t.c.renewed,
                t.c.created_at,
                t.c.churned_at,
                t.c.traits,
            )
            .where(t.c.is_stub.is_(False))
            .order_by(t.c.account_id)
        ).all()
    pop = Population(as_of=as_of, ids=[], columns={})
    kept: list[Any] = []
    for r in rows:
        created, churned_at = as_utc(r.created_at), as_utc(r.churned_at)
        if created is not None and created > as_of:
            pop.not_yet_customers += 1
            continue
        if churned_at is not None and churned_at <= as_of:
            pop.churned_before += 1
            continue
        kept.append(r)
    pop.ids = [r.account_id for r in kept]
    cols = pop.columns
    for name in TEXT_FIELDS + ("mrr", "employees", "api_limit_daily", "expansion_mrr"):
        cols[name] = [getattr(r, name) for r in kept]
    cols["renewed"] = [r.renewed for r in kept]
    cols["churned"] = [as_utc(r.churned_at) is not None for r in kept]
    cols["tenure"] = [
        (as_of - aware(r.created_at)).total_seconds() / 86400 if r.created_at else None
        for r in kept
    ]
    trait_names = sorted({k for r in kept for k in (r.traits or {})} - set(cols))
    for name in trait_names:
        cols[name] = [(r.traits or {}).get(name) for r in kept]
    return pop


def adopters(engine: Engine, integration: str, *, as_of: datetime, min_days: int = 3) -> set[str]:
    """Accounts with a connection to ``integration`` that synced successfully on at least
    ``min_days`` distinct UTC days on or before ``as_of``."""
    t = DailyUsage.__table__
    per_connection = (
        select(t.c.account_id)
        .where(
            t.c.integration == integration,
            t.c.successes > 0,
            t.c.first_success_at <= aware(as_of),
        )
        .group_by(t.c.connection_id, t.c.account_id)
        .having(func.count() >= min_days)
    )
    with engine.connect() as conn:
        return set(conn.execute(per_connection).scalars())


def installed_accounts(engine: Engine, integration: str, *, as_of: datetime) -> set[str]:
    """Accounts with any connection to ``integration`` installed by ``as_of``."""
    t = Connection.__table__
    with engine.connect() as conn:
        return set(
            conn.execute(
                select(t.c.account_id).where(
                    t.c.integration == integration, t.c.installed_at <= aware(as_of)
                )
            ).scalars()
        )


def integration_keys(engine: Engine, config: Config) -> list[str]:
    """The catalog plus integrations seen in events, sorted."""
    with engine.connect() as conn:
        seen = set(conn.execute(select(Integration.__table__.c.key)).scalars())
    return sorted(seen | set(config.integrations))


# ---------------------------------------------------------------- the estimator


@dataclass(frozen=True)
class Design:
    """What to compare: arrays aligned on the analysable accounts."""

    treated: np.ndarray  # bool
    y: np.ndarray  # float (0/1 for rates)
    cells: np.ndarray  # int code of the exact-covariate combination
    near: np.ndarray  # standardised numeric covariates, n x d
    exact_values: dict[str, np.ndarray]  # covariate -> str values (for balance)
    near_raw: dict[str, np.ndarray]  # covariate -> float values (for balance)


@dataclass
class Estimate:
    adopters: int
    matched_adopters: int
    controls: int
    unmatched_adopters: int
    adopter_mean: float
    control_mean: float
    lift: float
    lift_ci: tuple[float, float]
    naive_adopter_mean: float
    naive_control_mean: float
    naive_lift: float
    naive_ci: tuple[float, float]
    balance: list[dict[str, Any]] = field(default_factory=list)


def _rankings(design: Design, caliper: float, width: int) -> tuple[np.ndarray, np.ndarray]:
    """For each adopter, non-adopters of its exact cell ordered by distance (ties by
    position), cut at the caliper; -1 pads. Returns (adopter positions, ranking)."""
    t_idx = np.flatnonzero(design.treated)
    c_idx = np.flatnonzero(~design.treated)
    by_cell: dict[int, np.ndarray] = {}
    for cell in np.unique(design.cells[c_idx]):
        by_cell[int(cell)] = c_idx[design.cells[c_idx] == cell]
    rank = np.full((len(t_idx), width), -1, dtype=np.int64)
    for row, i in enumerate(t_idx):
        pool = by_cell.get(int(design.cells[i]))
        if pool is None or len(pool) == 0:
            continue
        if design.near.shape[1]:
            dist = np.sqrt(((design.near[pool] - design.near[i]) ** 2).sum(axis=1))
        else:
            dist = np.zeros(len(pool))
        order = np.lexsort((pool, dist))[:width]
        chosen = pool[order]
        if caliper > 0:
            chosen = chosen[dist[order] <= caliper]
        rank[row, : len(chosen)] = chosen
    return t_idx, rank


def _match(rank: np.ndarray, present: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` present controls in each ranking row: (selection mask, count)."""
    valid = rank >= 0
    avail = valid & present[np.where(valid, rank, 0)]
    sel = avail & (np.cumsum(avail, axis=1) <= k)
    return sel, sel.sum(axis=1)


def _smd(a: np.ndarray, wa: np.ndarray, b: np.ndarray, wb: np.ndarray, sd: float) -> float:
    if sd <= 0 or wa.sum() == 0 or wb.sum() == 0:
        return 0.0
    return float((np.average(a, weights=wa) - np.average(b, weights=wb)) / sd)


def _balance(
    design: Design, t_idx: np.ndarray, t_w: np.ndarray, c_w: np.ndarray
) -> list[dict[str, Any]]:
    """Standardised mean differences per covariate, before (all adopters vs all
    non-adopters) and after (matched adopters vs their weighted controls), both over the
    pre-matching pooled standard deviation. Categorical covariates report the level with
    the largest difference before matching."""
    treated, control = design.treated, ~design.treated
    ones_t, ones_c = np.ones(treated.sum()), np.ones(control.sum())
    out: list[dict[str, Any]] = []

    def pooled(x: np.ndarray) -> float:
        if not treated.any() or not control.any():
            return 0.0
        return float(np.sqrt((x[treated].var() + x[control].var()) / 2))

    for name, raw in design.exact_values.items():
        best: dict[str, Any] | None = None
        for level in np.unique(raw):
            x = (raw == level).astype(float)
            sd = pooled(x)
            before = _smd(x[treated], ones_t, x[control], ones_c, sd)
            after = _smd(x[t_idx], t_w, x, c_w, sd)
            if best is None or abs(before) > abs(best["smd_before"]):
                best = {"covariate": name, "level": str(level), "smd_before": before}
                best["smd_after"] = after
        if best is not None:
            out.append(best)
    for name, x in design.near_raw.items():
        sd = pooled(x)
        out.append(
            {
                "covariate": name,
                "smd_before": _smd(x[treated], ones_t, x[control], ones_c, sd),
                "smd_after": _smd(x[t_idx], t_w, x, c_w, sd),
            }
        )
    for item in out:
        item["smd_before"] = round(item["smd_before"], 4)
        item["smd_after"] = round(item["smd_after"], 4)
    return out


def estimate(
    design: Design,
    *,
    neighbors: int = 1,
    caliper: float = 0.0,
    bootstrap: int = 1000,
    seed: int = 0,
) -> Estimate:
    """Matched lift with a re-matching bootstrap interval, and the naive difference."""
    y, treated = design.y, design.treated
    n = len(y)
    # Candidates kept per adopter: a resample draws each control with probability ~0.63,
    # so fewer than ``neighbors`` of the nearest 8 * neighbors (at least 24) being drawn
    # is a ~1e-8 event; the ranking need not be longer.
    width = max(neighbors, min(max(24, 8 * neighbors), int((~treated).sum()) or 1))
    t_idx, rank = _rankings(design, caliper, width)
    c_mask = ~treated
    y_t = y[t_idx]
    y_rank = y[np.where(rank >= 0, rank, 0)]

    def matched_lift(t_weight: np.ndarray, present: np.ndarray) -> tuple[float, float, int]:
        sel, count = _match(rank, present, neighbors)
        w = t_weight * (count > 0)
        if w.sum() == 0:
            return float("nan"), float("nan"), 0
        ctrl = (sel * y_rank).sum(axis=1) / np.maximum(count, 1)
        return (
            float(np.average(y_t, weights=w)),
            float(np.average(ctrl, weights=w)),
            int((w > 0).sum()),
        )

    all_present = c_mask.copy()
    a_mean, c_mean, n_matched = matched_lift(np.ones(len(t_idx)), all_present)
    sel, count = _match(rank, all_present, neighbors)
    matched_rows = count > 0
    c_weight = np.zeros(n)
    per_match = np.broadcast_to((1.0 / np.maximum(count, 1))[:, None], rank.shape)
    np.add.at(c_weight, rank[sel], per_match[sel])
    balance = _balance(design, t_idx, matched_rows.astype(float), c_weight)

    rng = np.random.default_rng(seed)
    c_idx = np.flatnonzero(c_mask)
    n1, n0 = len(t_idx), len(c_idx)
    lifts, naive = [], []
    for _ in range(bootstrap if n1 and n0 else 0):
        tw = np.bincount(rng.integers(0, n1, n1), minlength=n1).astype(float)
        cw = np.bincount(rng.integers(0, n0, n0), minlength=n0).astype(float)
        present = np.zeros(n, dtype=bool)
        present[c_idx[cw > 0]] = True
        ba, bc, _ = matched_lift(tw, present)
        lifts.append(ba - bc)
        naive.append(np.average(y_t, weights=tw) - np.average(y[c_idx], weights=cw))

    def ci(values: list[float]) -> tuple[float, float]:
        arr = np.asarray([v for v in values if np.isfinite(v)])
        if len(arr) == 0:
            return (float("nan"), float("nan"))
        lo, hi = np.percentile(arr, [2.5, 97.5])
        return (float(lo), float(hi))

    naive_a = float(y_t.mean()) if n1 else float("nan")
    naive_c = float(y[c_idx].mean()) if n0 else float("nan")
    return Estimate(
        adopters=n1,
        matched_adopters=n_matched,
        controls=int((c_weight > 0).sum()),
        unmatched_adopters=n1 - n_matched,
        adopter_mean=a_mean,
        control_mean=c_mean,
        lift=a_mean - c_mean,
        lift_ci=ci(lifts),
        naive_adopter_mean=naive_a,
        naive_control_mean=naive_c,
        naive_lift=naive_a - naive_c,
        naive_ci=ci(naive),
        balance=balance,
    )


# ---------------------------------------------------------------- interpretation


def band_for(points: float) -> str:
    """The seed's interpretation band for a lift in points (sign ignored)."""
    size = abs(points)
    if size < 1:
        return "negligible"
    if size <= 3:
        return "modest"
    if size <= 8:
        return "strong"
    return "critical"


@dataclass(frozen=True)
class ImpactRequest:
    """One analysis: which integration, which outcome, matched how, as of when."""

    integration: str
    outcome: str
    as_of: datetime
    exact: tuple[str, ...]
    near: tuple[str, ...]
    seed: int = 0
    neighbors: int = 1
    caliper: float = 0.0
    bootstrap: int = 1000
    adoption_days: int = 3
    min_adopters: int = 10

    @classmethod
    def from_config(
        cls,
        cfg: ImpactConfig,
        integration: str,
        outcome: str,
        *,
        as_of: datetime,
        exact: Sequence[str] | None = None,
        near: Sequence[str] | None = None,
        seed: int | None = None,
        caliper: float | None = None,
    ) -> ImpactRequest:
        return cls(
            integration=integration,
            outcome=outcome,
            as_of=aware(as_of),
            exact=tuple(cfg.exact if exact is None else exact),
            near=tuple(cfg.near if near is None else near),
            seed=cfg.seed if seed is None else seed,
            neighbors=cfg.neighbors,
            caliper=cfg.caliper if caliper is None else caliper,
            bootstrap=cfg.bootstrap,
            adoption_days=cfg.adoption_days,
            min_adopters=cfg.min_adopters,
        )


def default_as_of(cfg: ImpactConfig, now: datetime) -> datetime:
    """Without --as-of: adoption up to ``outcome_window_days`` ago, outcomes since."""
    return aware(now) - timedelta(days=cfg.outcome_window_days)


def build_design(
    pop: Population, adopter_ids: set[str], req: ImpactRequest
) -> tuple[Design, dict[str, int]]:
    """Arrays for ``estimate``: accounts with a known outcome and known numeric
    covariates (a missing category is a category of its own). Also the exclusions."""
    kind = pop.kind(req.outcome)
    if kind == "text":
        raise ImpactError(
            f"outcome {req.outcome!r} is text; use renewed, churned, expansion_mrr or a "
            "numeric or true/false field or trait"
        )
    for name in req.near:
        if pop.kind(name) == "text":
            raise ImpactError(
                f"--near {name!r} is text; match on it with --exact, or pick a numeric covariate"
            )
    for name in req.exact:
        pop.kind(name)
    if req.outcome in req.exact or req.outcome in req.near:
        raise ImpactError(f"{req.outcome!r} cannot be both the outcome and a covariate")
    y_raw = pop.columns[req.outcome]
    keep: list[int] = []
    missing_outcome = missing_cov = 0
    for i in range(len(pop.ids)):
        if y_raw[i] is None:
            missing_outcome += 1
        elif any(pop.columns[c][i] is None for c in req.near):
            missing_cov += 1
        else:
            keep.append(i)
    idx = np.asarray(keep, dtype=np.int64)
    treated = np.array([pop.ids[i] in adopter_ids for i in keep], dtype=bool)
    y = np.array([float(y_raw[i]) for i in keep], dtype=float)
    exact_values = {
        c: np.array(["" if pop.columns[c][i] is None else str(pop.columns[c][i]) for i in keep])
        for c in req.exact
    }
    if req.exact and len(keep):
        joined = np.array(["\x1f".join(vals) for vals in zip(*exact_values.values(), strict=True)])
        _, cells = np.unique(joined, return_inverse=True)
    else:
        cells = np.zeros(len(keep), dtype=np.int64)
    near_raw = {c: np.array([float(pop.columns[c][i]) for i in keep]) for c in req.near}
    cols = []
    for x in near_raw.values():
        sd = x.std() if len(x) else 0.0
        cols.append((x - x.mean()) / sd if sd > 0 else np.zeros_like(x))
    near = np.column_stack(cols) if cols else np.zeros((len(idx), 0))
    design = Design(treated, y, cells.astype(np.int64), near, exact_values, near_raw)
    return design, {"missing_outcome": missing_outcome, "missing_covariate": missing_cov}


def analyze(
    engine: Engine, config: Config, req: ImpactRequest, *, population: Population | None = None
) -> dict[str, Any]:
    """The impact report of one integration on one outcome (the `signals impact` JSON)."""
    known = integration_keys(engine, config)
    if req.integration not in known:
        raise ImpactError(f"unknown integration {req.integration!r}; known: {', '.join(known)}")
    pop = population or load_population(engine, as_of=req.as_of)
    adopted = adopters(engine, req.integration, as_of=req.as_of, min_days=req.adoption_days)
    installed = installed_accounts(engine, req.integration, as_of=req.as_of)
    design, excluded = build_design(pop, adopted, req)
    est = estimate(
        design,
        neighbors=req.neighbors,
        caliper=req.caliper,
        bootstrap=req.bootstrap,
        seed=req.seed,
    )
    is_rate = pop.kind(req.outcome) == "bool"
    return _report(req, pop, est, is_rate, excluded, installed - adopted, config)


def _report(
    req: ImpactRequest,
    pop: Population,
    est: Estimate,
    is_rate: bool,
    excluded: dict[str, int],
    installed_only: set[str],
    config: Config,
) -> dict[str, Any]:
    scale = 100.0 if is_rate else 1.0
    enough = est.matched_adopters >= req.min_adopters and np.isfinite(est.lift)

    def num(x: float, digits: int = 4) -> float | None:
        return round(float(x), digits) if np.isfinite(x) else None

    lift = num(est.lift * scale, 2) if enough else None
    ci = [num(v * scale, 2) for v in est.lift_ci] if enough else [None, None]
    lo, hi = ci
    measurable = bool(enough and lo is not None and hi is not None and (lo > 0 or hi < 0))
    if is_rate:
        basis = "percentage points"
        points = est.lift * 100
    else:
        basis = "percent of the control mean"
        base = abs(est.control_mean) if np.isfinite(est.control_mean) else 0.0
        points = 100 * est.lift / base if base > 0 else (0.0 if est.lift == 0 else np.inf)
    point_band = band_for(points) if enough else None
    band = (point_band if measurable else "negligible") if enough else None
    covs = ", ".join(list(req.exact) + list(req.near)) or "nothing"
    name = (
        config.integrations[req.integration].name
        if req.integration in config.integrations
        else req.integration
    )
    return {
        "integration": req.integration,
        "integration_name": name,
        "outcome": req.outcome,
        "outcome_kind": "rate" if is_rate else "number",
        "unit": "pts" if is_rate else "outcome units",
        "as_of": req.as_of,
        "population": len(pop.ids),
        "adopters": est.adopters,
        "controls": est.controls,
        "matched_adopters": est.matched_adopters,
        "unmatched_adopters": est.unmatched_adopters,
        "installed_not_adopted": len(installed_only & set(pop.ids)),
        "excluded": {
            **excluded,
            "churned_before_as_of": pop.churned_before,
            "created_after_as_of": pop.not_yet_customers,
        },
        "adopter_mean": num(est.adopter_mean),
        "control_mean": num(est.control_mean),
        "lift": lift,
        "lift_ci95": ci,
        "naive_adopter_mean": num(est.naive_adopter_mean),
        "naive_control_mean": num(est.naive_control_mean),
        "naive_lift": num(est.naive_lift * scale, 2),
        "naive_lift_ci95": [num(v * scale, 2) for v in est.naive_ci],
        "band": band,
        "point_band": point_band,
        "band_basis": basis,
        "measurable": measurable,
        "verdict": _verdict(req, est, is_rate, enough, measurable, band, name),
        "balance": est.balance,
        "matching": {
            "exact": list(req.exact),
            "near": list(req.near),
            "neighbors": req.neighbors,
            "caliper": req.caliper or None,
            "replacement": True,
            "bootstrap": req.bootstrap,
            "seed": req.seed,
            "adoption_days": req.adoption_days,
        },
        "caveat": CAVEAT.format(covs=covs),
    }


def _verdict(
    req: ImpactRequest,
    est: Estimate,
    is_rate: bool,
    enough: bool,
    measurable: bool,
    band: str | None,
    name: str,
) -> str:
    if not enough:
        return (
            f"too few matched adopters ({est.matched_adopters} < {req.min_adopters}) to "
            "measure an effect"
        )
    if not measurable:
        return f"{name}: {NO_EFFECT} (the 95% interval includes zero)"
    unit = " pts" if is_rate else ""
    scale = 100 if is_rate else 1
    direction = "higher" if est.lift > 0 else "lower"
    what = f"{req.outcome} rate" if is_rate else req.outcome
    return (
        f"{name} adopters: {what} {abs(est.lift) * scale:.1f}{unit} {direction} than "
        f"matched non-adopters ({band})"
    )


def analyze_all(
    engine: Engine,
    config: Config,
    req: ImpactRequest,
    *,
    each: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Every integration's lift on one outcome, best first; an interval that includes
    zero is flagged as no measurable effect. ``each`` receives every integration's full
    report (what `analyze` returns), e.g. to cache it."""
    pop = load_population(engine, as_of=req.as_of)
    items: list[dict[str, Any]] = []
    for key in integration_keys(engine, config):
        one = replace(req, integration=key)
        items.append(analyze(engine, config, one, population=pop))
        if each is not None:
            each(items[-1])
    lower = req.outcome in LOWER_IS_BETTER

    def order(item: dict[str, Any]) -> tuple[int, float]:
        if item["lift"] is None:
            return (1, 0.0)
        return (0, item["lift"] if lower else -item["lift"])

    items.sort(key=order)
    rows = [
        {
            "rank": n,
            "integration": it["integration"],
            "integration_name": it["integration_name"],
            "adopters": it["adopters"],
            "controls": it["controls"],
            "adopter_mean": it["adopter_mean"],
            "control_mean": it["control_mean"],
            "lift": it["lift"],
            "lift_ci95": it["lift_ci95"],
            "naive_lift": it["naive_lift"],
            "band": it["band"],
            "no_measurable_effect": it["lift"] is not None and not it["measurable"],
            "flag": NO_EFFECT if it["lift"] is not None and not it["measurable"] else None,
            "verdict": it["verdict"],
        }
        for n, it in enumerate(items, 1)
    ]
    return {
        "outcome": req.outcome,
        "as_of": req.as_of,
        "ranked_by": "lift, lowest first" if lower else "lift, highest first",
        "integrations": rows,
        "flag_meaning": NO_EFFECT + " (the 95% interval includes zero)",
        "multiple_comparisons": (
            f"{sum(r['lift'] is not None for r in rows)} integrations were tested: at 95% "
            "about one in twenty can show an interval clear of zero by chance alone."
        ),
        "caveat": items[0]["caveat"] if items else CAVEAT.format(covs="nothing"),
    }
