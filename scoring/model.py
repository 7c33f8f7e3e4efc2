"""The outcome model: churn (and so renewal) probability from integration features.

Snapshots of every customer's integration facts are taken ``model_step_days`` apart,
each labelled with churn within the following ``horizon_days``. A logistic regression
(scikit-learn, standardised features) learns from the older snapshots and is validated
on the newest one — a time split, so it is judged on a future it did not see: AUC,
Brier score and a calibration table. Its top features and the integration pairs whose
joint adoption goes with retention (lift with support) are reported beside it.

The trained model is stored in the database (``kv`` key ``outcome_model``) as plain
numbers — feature names, scaler, coefficients — so any process that reads the store
can apply it (``churn_probabilities``) without a file or a pickle.
"""

from __future__ import annotations

import itertools
import math
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from integration_signals.config import SEGMENTS, Config
from integration_signals.scoring.backtest import auc, outcomes
from integration_signals.scoring.exceptions import ModelError
from integration_signals.scoring.facts import AccountFacts, cutoff_of, load_facts
from integration_signals.scoring.impact import adopters, aware, integration_keys
from integration_signals.store.models import KeyValue
from integration_signals.store.sql import upsert

KV_KEY = "outcome_model"


def account_features(f: AccountFacts, keys: list[str]) -> dict[str, float]:
    """Integration features of one account as of its facts' day (pure)."""
    conns = f.connections
    in_use = [c for c in conns if c.in_use]
    states = [c.state for c in conns]
    succ = sum(c.successes_30 for c in conns)
    fail = sum(c.failures_30 for c in conns)
    records = sum(c.records_30 for c in conns)
    prev = sum(c.records_prev_30 for c in conns)
    tenure_days = (f.as_of - f.tenure_start()).days
    out: dict[str, float] = {
        "active_integrations": float(states.count("active")),
        "integrations_in_use": float(len(in_use)),
        "broken_integrations": float(states.count("broken")),
        "idle_integrations": float(states.count("idle")),
        "uninstalled_integrations": float(states.count("uninstalled")),
        "never_activated": float(states.count("installed")),
        "categories_in_use": float(len({c.integration.category for c in in_use})),
        "success_rate_30d": succ / (succ + fail) if succ + fail else 0.0,
        "automated_share_30d": (sum(c.automated_30 for c in conns) / succ if succ else 0.0),
        "log_records_30d": math.log1p(records),
        "log_api_calls_30d": math.log1p(sum(c.api_calls_30 for c in conns)),
        "records_growth": math.log1p(records) - math.log1p(prev),
        "use_days_30d": (sum(c.use_days_30 for c in in_use) / len(in_use)) if in_use else 0.0,
        "tenure_years": max(0, tenure_days) / 365.0,
        "log_mrr": math.log1p(f.mrr or 0.0),
    }
    for seg in SEGMENTS:
        out[f"segment:{seg}"] = 1.0 if f.segment == seg else 0.0
    used = {c.integration.key for c in in_use}
    for key in keys:
        out[f"uses:{key}"] = 1.0 if key in used else 0.0
    return out


def snapshot(
    engine: Engine, config: Config, day: date, *, horizon_days: int, keys: list[str]
) -> tuple[list[str], list[dict[str, float]], np.ndarray]:
    """Customers at the end of ``day``, their features then, and churn in the horizon."""
    start = cutoff_of(day)
    outcome_of, _ = outcomes(engine, start=start, end=start + timedelta(days=horizon_days))
    facts = load_facts(engine, config, as_of=day, account_ids=sorted(outcome_of))
    ids = sorted(set(facts) & set(outcome_of))
    feats = [account_features(facts[a], keys) for a in ids]
    labels = np.array([outcome_of[a].churned for a in ids], dtype=bool)
    return ids, feats, labels


def _matrix(feats: list[dict[str, float]], names: list[str]) -> np.ndarray:
    return np.array([[row.get(n, 0.0) for n in names] for row in feats], dtype=float).reshape(
        len(feats), len(names)
    )


def predict(model: dict[str, Any], feats: list[dict[str, float]]) -> np.ndarray:
    """Churn probability for feature rows, from a stored model (pure numpy)."""
    x = _matrix(feats, model["features"])
    z = (x - np.asarray(model["mean"])) / np.asarray(model["scale"])
    logit = z @ np.asarray(model["coef"]) + model["intercept"]
    return 1.0 / (1.0 + np.exp(-logit))


def calibration(labels: np.ndarray, prob: np.ndarray, bins: int = 5) -> list[dict[str, Any]]:
    """Predicted vs observed churn in quantile bins of the prediction."""
    if len(prob) == 0:
        return []
    order = np.argsort(prob, kind="stable")
    out = []
    for part in np.array_split(order, min(bins, len(prob))):
        if len(part) == 0:
            continue
        out.append(
            {
                "predicted": round(float(prob[part].mean()), 4),
                "observed": round(float(labels[part].mean()), 4),
                "accounts": int(len(part)),
            }
        )
    return out


def integration_pairs(
    engine: Engine,
    keys: list[str],
    ids: list[str],
    churned: np.ndarray,
    *,
    as_of: datetime,
    min_support: int,
    adoption_days: int,
) -> list[dict[str, Any]]:
    """Pairs adopted together by at least ``min_support`` accounts, with their retention
    against everyone's (lift = retention of the pair's adopters / baseline retention)."""
    if not ids:
        return []
    pos = {a: n for n, a in enumerate(ids)}
    retained = ~churned
    baseline = float(retained.mean())
    sets: dict[str, np.ndarray] = {}
    for key in keys:
        mask = np.zeros(len(ids), dtype=bool)
        for aid in adopters(engine, key, as_of=as_of, min_days=adoption_days):
            if aid in pos:
                mask[pos[aid]] = True
        if mask.sum() >= min_support:
            sets[key] = mask
    pairs: list[dict[str, Any]] = []
    for a, b in itertools.combinations(sorted(sets), 2):
        both = sets[a] & sets[b]
        support = int(both.sum())
        if support < min_support:
            continue
        rate = float(retained[both].mean())
        pairs.append(
            {
                "pair": [a, b],
                "support": support,
                "support_share": round(support / len(ids), 4),
                "retention": round(rate, 4),
                "baseline_retention": round(baseline, 4),
                "lift": round(rate / baseline, 4) if baseline > 0 else None,
                "lift_pts": round((rate - baseline) * 100, 2),
            }
        )
    pairs.sort(key=lambda p: (-(p["lift"] or 0), -p["support"], p["pair"]))
    return pairs


def train(
    engine: Engine, config: Config, *, now: datetime, horizon_days: int | None = None
) -> dict[str, Any]:
    """Train on older snapshots, validate on the newest, store the model; its report."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    cfg = config.impact
    horizon = horizon_days or cfg.horizon_days
    keys = integration_keys(engine, config)
    newest = (aware(now) - timedelta(days=horizon)).date() - timedelta(days=1)
    days = [newest - timedelta(days=cfg.model_step_days * i) for i in range(cfg.model_snapshots)]
    snaps = [snapshot(engine, config, d, horizon_days=horizon, keys=keys) for d in days]
    test_ids, test_feats, y_test = snaps[0]
    train_feats = [row for s in snaps[1:] for row in s[1]]
    y_train = np.concatenate([s[2] for s in snaps[1:]]) if snaps[1:] else np.zeros(0, bool)
    for label, y in (("training", y_train), ("held-out", y_test)):
        if len(y) < 20 or y.all() or not y.any():
            raise ModelError(
                f"the {label} snapshots hold {len(y)} accounts with {int(y.sum())} churned; "
                "the model needs both churned and retained customers — import accounts with "
                "churned_at, or train with a shorter --horizon"
            )
    names = sorted(train_feats[0])
    scaler = StandardScaler().fit(_matrix(train_feats, names))
    clf = LogisticRegression(C=1.0, max_iter=2000)
    clf.fit(scaler.transform(_matrix(train_feats, names)), y_train)
    model: dict[str, Any] = {
        "kind": "logistic_regression",
        "target": "churned",
        "features": names,
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "coef": clf.coef_[0].tolist(),
        "intercept": float(clf.intercept_[0]),
    }
    prob = predict(model, test_feats)
    order = np.argsort(-np.abs(clf.coef_[0]), kind="stable")
    top = [
        {
            "feature": names[i],
            "coef": round(float(clf.coef_[0][i]), 4),
            "effect": "raises churn" if clf.coef_[0][i] > 0 else "lowers churn",
        }
        for i in order[:10]
    ]
    pairs = integration_pairs(
        engine,
        keys,
        test_ids,
        y_test,
        as_of=cutoff_of(days[0]),
        min_support=cfg.pair_min_support,
        adoption_days=cfg.adoption_days,
    )
    report = {
        "trained_at": aware(now).isoformat(),
        "config_version": config.version,
        "target": "churn within the horizon (renewal probability = 1 - churn probability)",
        "horizon_days": horizon,
        "train_snapshots": [d.isoformat() for d in days[1:]],
        "test_snapshot": days[0].isoformat(),
        "train_rows": int(len(y_train)),
        "train_churn_rate": round(float(y_train.mean()), 4),
        "test_rows": int(len(y_test)),
        "test_churn_rate": round(float(y_test.mean()), 4),
        "auc": round(auc(y_test, prob) or 0.0, 4),
        "brier": round(float(np.mean((prob - y_test) ** 2)), 4),
        "brier_baseline": round(float(np.mean((y_train.mean() - y_test) ** 2)), 4),
        "calibration": calibration(y_test, prob),
        "top_features": top,
        "pairs": pairs[:15],
    }
    model["report"] = report
    with engine.begin() as conn:
        upsert(
            conn,
            KeyValue.__table__,
            [{"key": KV_KEY, "value": model, "updated_at": aware(now)}],
            keys=["key"],
            update=lambda ex: {"value": ex.value, "updated_at": ex.updated_at},
        )
    return report


def load_model(engine: Engine) -> dict[str, Any] | None:
    t = KeyValue.__table__
    with engine.connect() as conn:
        return conn.execute(select(t.c.value).where(t.c.key == KV_KEY)).scalar_one_or_none()


def churn_probabilities(
    engine: Engine, config: Config, *, as_of: datetime, account_ids: list[str] | None = None
) -> dict[str, float]:
    """Each account's churn probability from the stored model and its facts as of now
    (for reports, and for a sync to write as one more field)."""
    model = load_model(engine)
    if model is None:
        raise ModelError("no outcome model is stored yet; run `signals model train` first")
    keys = [n.removeprefix("uses:") for n in model["features"] if n.startswith("uses:")]
    customers, _ = outcomes(engine, start=aware(as_of), end=aware(as_of))
    wanted = sorted(customers if account_ids is None else set(customers) & set(account_ids))
    facts = load_facts(engine, config, as_of=aware(as_of).date(), account_ids=wanted)
    ids = sorted(facts)
    prob = predict(model, [account_features(facts[a], keys) for a in ids])
    return {a: float(p) for a, p in zip(ids, prob, strict=True)}


def report(engine: Engine, config: Config, *, now: datetime, top: int = 10) -> dict[str, Any]:
    """The stored model's report plus the accounts it now rates most likely to churn."""
    model = load_model(engine)
    if model is None:
        raise ModelError("no outcome model is stored yet; run `signals model train` first")
    probs = churn_probabilities(engine, config, as_of=now)
    riskiest = sorted(probs.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return {
        **model["report"],
        "stale_config": model["report"]["config_version"] != config.version,
        "accounts_scored": len(probs),
        "highest_churn_probability": [
            {
                "account_id": a,
                "churn_probability": round(p, 4),
                "renewal_probability": round(1 - p, 4),
            }
            for a, p in riskiest
        ],
    }
