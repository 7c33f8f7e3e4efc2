"""Backtest: score every account as of a past day T with only what was known then, and
see how well the band and the score predicted churn or non-renewal within a horizon.

Nothing is written: facts as of T come from ``scoring.facts`` (which forgets lifecycle
facts and usage after T) and are scored in memory with the pure ``scoring.score.score``,
so the current scores stay as they are. The outcome window is the horizon after the
end of T's UTC day (the last moment whose data the scores could see).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from integration_signals.config import Config
from integration_signals.scoring.facts import cutoff_of, load_facts
from integration_signals.scoring.impact import aware
from integration_signals.scoring.score import score
from integration_signals.store.models import Account
from integration_signals.store.sql import as_utc

BANDS = ("healthy", "watch", "at_risk")


@dataclass(frozen=True)
class Outcome:
    """What happened to one account within the horizon."""

    churned: bool
    not_renewed: bool

    @property
    def lost(self) -> bool:
        return self.churned or self.not_renewed


def outcomes(
    engine: Engine, *, start: datetime, end: datetime
) -> tuple[dict[str, Outcome], dict[str, int]]:
    """Accounts that were customers at ``start`` (created before, not churned before),
    with churn in [start, end) and non-renewal (renewed false, renewal date in the
    window). Also how many were left out and why."""
    t = Account.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                t.c.account_id, t.c.created_at, t.c.churned_at, t.c.renewed, t.c.renewal_date
            ).where(t.c.is_stub.is_(False))
        ).all()
    out: dict[str, Outcome] = {}
    skipped = {"created_after_as_of": 0, "churned_before_as_of": 0}
    for r in rows:
        created, churned_at = as_utc(r.created_at), as_utc(r.churned_at)
        if created is not None and created >= start:
            skipped["created_after_as_of"] += 1
            continue
        if churned_at is not None and churned_at < start:
            skipped["churned_before_as_of"] += 1
            continue
        churned = churned_at is not None and churned_at < end
        renewal: date | None = r.renewal_date
        not_renewed = (
            r.renewed is False and renewal is not None and start.date() <= renewal < end.date()
        )
        out[r.account_id] = Outcome(churned, not_renewed)
    return out, skipped


def auc(labels: np.ndarray, risk: np.ndarray) -> float | None:
    """Area under the ROC curve of ``risk`` for ``labels`` (None when one class only)."""
    if labels.all() or not labels.any():
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, risk))


def backtest(
    engine: Engine, config: Config, *, as_of: datetime, horizon_days: int, now: datetime
) -> dict[str, Any]:
    """The `signals backtest` report: churn and loss rates per band, AUC of the score."""
    day = aware(as_of).date()
    start = cutoff_of(day)
    end = start + timedelta(days=horizon_days)
    outcome_of, skipped = outcomes(engine, start=start, end=end)
    facts = load_facts(engine, config, as_of=day, account_ids=sorted(outcome_of))
    scores = {aid: score(f, config.scoring) for aid, f in facts.items()}
    ids = sorted(set(scores) & set(outcome_of))
    score_arr = np.array([scores[a].score for a in ids], dtype=float)
    churned = np.array([outcome_of[a].churned for a in ids], dtype=bool)
    lost = np.array([outcome_of[a].lost for a in ids], dtype=bool)
    band_rank = {b: n for n, b in enumerate(BANDS)}
    band_arr = np.array([band_rank.get(scores[a].band, 0) for a in ids], dtype=float)

    def rate(mask: np.ndarray, of: np.ndarray) -> float | None:
        return round(float(of[mask].mean()), 4) if mask.any() else None

    per_band: list[dict[str, Any]] = []
    for name in BANDS:
        mask = np.array([scores[a].band == name for a in ids], dtype=bool)
        per_band.append(
            {
                "band": name,
                "accounts": int(mask.sum()),
                "churned": int(churned[mask].sum()),
                "churn_rate": rate(mask, churned),
                "lost": int(lost[mask].sum()),
                "loss_rate": rate(mask, lost),
                "mean_score": round(float(score_arr[mask].mean()), 1) if mask.any() else None,
            }
        )
    per_stage = []
    for stage in sorted({scores[a].stage for a in ids}):
        mask = np.array([scores[a].stage == stage for a in ids], dtype=bool)
        per_stage.append(
            {
                "stage": stage,
                "accounts": int(mask.sum()),
                "churn_rate": rate(mask, churned),
                "loss_rate": rate(mask, lost),
            }
        )

    def rounded(x: float | None) -> float | None:
        return None if x is None else round(x, 4)

    auc_churn = auc(churned, -score_arr)
    rates = [b["churn_rate"] for b in per_band if b["churn_rate"] is not None]
    return {
        "as_of": aware(as_of),
        "as_of_day": day,
        "horizon_days": horizon_days,
        "outcome_window": [start, end],
        "complete": end <= aware(now),
        "config_version": config.version,
        "accounts": len(ids),
        "excluded": skipped,
        "churned": int(churned.sum()),
        "lost": int(lost.sum()),
        "churn_rate": round(float(churned.mean()), 4) if len(ids) else None,
        "bands": per_band,
        "stages": per_stage,
        "auc": rounded(auc_churn),
        "auc_churn": rounded(auc_churn),
        "auc_loss": rounded(auc(lost, -score_arr)),
        "auc_band": rounded(auc(churned, band_arr)),
        "band_order_holds": rates == sorted(rates),
        "reading": _reading(auc_churn, per_band),
    }


def _reading(auc_churn: float | None, per_band: list[dict[str, Any]]) -> str:
    if auc_churn is None:
        return "no churn (or only churn) in the window: nothing to measure the score against"
    by = {b["band"]: b["churn_rate"] for b in per_band}
    quality = (
        "no better than chance"
        if auc_churn < 0.55
        else "weak"
        if auc_churn < 0.65
        else "useful"
        if auc_churn < 0.75
        else "strong"
    )
    parts = [f"the score ranks churners with AUC {auc_churn:.2f} ({quality})"]
    if by.get("at_risk") is not None and by.get("healthy") is not None:
        parts.append(
            f"at_risk accounts churned at {by['at_risk'] * 100:.0f}% vs "
            f"{by['healthy'] * 100:.0f}% for healthy ones"
        )
    if quality in ("no better than chance", "weak"):
        parts.append("consider retuning the weights and backtesting again")
    return "; ".join(parts)
