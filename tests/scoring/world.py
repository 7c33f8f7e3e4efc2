"""Test data for the signal rules, built through the real paths: account import and
event ingest (``Ingestor(...).ingest(read_objects(events))``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, select

from integration_signals.config import Config, load_config
from integration_signals.store.accounts import import_account_objects
from integration_signals.store.ingest import Ingestor, read_objects
from integration_signals.store.models import AccountScore, Signal, Task, TaskEvent

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TODAY = AS_OF.date()
CONFIG = load_config(None)


def at(day: date, hour: float = 6.0) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC) + timedelta(hours=hour)


class World:
    """Accounts and events for one test; ``ingest`` sends the pending events."""

    def __init__(self, engine: Engine, config: Config = CONFIG) -> None:
        self.engine = engine
        self.config = config
        self.pending: list[dict[str, Any]] = []
        self._n = 0

    def account(
        self,
        account_id: str = "acme",
        *,
        name: str | None = None,
        created_days_ago: int = 400,
        csm: str | None = "dana@example.com",
        owner: str | None = "alex@example.com",
        api_limit_daily: int | None = None,
        now: datetime = AS_OF,
    ) -> str:
        row: dict[str, Any] = {
            "account_id": account_id,
            "name": name or account_id.title(),
            "segment": "mid_market",
            "created_at": (now - timedelta(days=created_days_ago)).isoformat(),
        }
        if csm:
            row["csm"] = csm
        if owner:
            row["owner"] = owner
        if api_limit_daily is not None:
            row["api_limit_daily"] = api_limit_daily
        import_account_objects(self.engine, [row], source="test", now=now)
        return account_id

    def event(
        self,
        etype: str,
        when: datetime,
        account: str = "acme",
        integration: str = "salesforce",
        **fields: Any,
    ) -> None:
        self._n += 1
        self.pending.append(
            {
                "event_id": f"t-{self._n}-{when.timestamp()}",
                "type": etype,
                "occurred_at": when.isoformat().replace("+00:00", "Z"),
                "account_id": account,
                "integration": integration,
                "connection_id": f"{account}-{integration}",
                **fields,
            }
        )

    def syncs(
        self,
        day: date,
        *,
        ok: int = 1,
        failed: int = 0,
        account: str = "acme",
        integration: str = "salesforce",
        api_calls: int = 0,
    ) -> None:
        """``ok`` successful and ``failed`` failed syncs spread over ``day``."""
        total = ok + failed
        for k in range(total):
            hour = 0.5 + 22 * k / max(1, total)
            if k < ok:
                self.event(
                    "sync.succeeded",
                    at(day, hour),
                    account,
                    integration,
                    records=100,
                    api_calls=api_calls if k == 0 else 0,
                    trigger="scheduled",
                )
            else:
                self.event("sync.failed", at(day, hour), account, integration, error="TIMEOUT")

    def api_calls(
        self, day: date, calls: int, *, account: str = "acme", integration: str = "salesforce"
    ) -> None:
        self.event("api.calls", at(day, 3.0), account, integration, api_calls=calls)

    def ingest(self, now: datetime = AS_OF) -> None:
        events, self.pending = self.pending, []
        report = Ingestor(self.engine, self.config, now=now).ingest(
            read_objects(events), source="test"
        )
        assert report.quarantined == 0, report.quarantine_samples

    def heartbeat(self, now: datetime) -> None:
        """Some other account's event arriving at ``now``: the feed is flowing."""
        self.event("api.calls", now - timedelta(minutes=5), "zz-heartbeat", "segment", api_calls=1)
        self.ingest(now=now)

    def score_row(
        self,
        account_id: str,
        *,
        band: str = "healthy",
        stage: str = "scored",
        now: datetime = AS_OF,
    ) -> None:
        """The row scoring writes for an account (segments start empty)."""
        with self.engine.begin() as conn:
            conn.execute(
                AccountScore.__table__.insert().values(
                    account_id=account_id,
                    as_of=now,
                    scored_at=now,
                    score=60,
                    band=band,
                    stage=stage,
                    components={},
                    segments=[],
                    active_integrations=0,
                )
            )


def signals(engine: Engine, kind: str | None = None) -> list[Any]:
    s = Signal.__table__
    q = select(s).order_by(s.c.id)
    if kind:
        q = q.where(s.c.kind == kind)
    with engine.connect() as conn:
        return list(conn.execute(q))


def tasks(engine: Engine, kind: str | None = None) -> list[Any]:
    t = Task.__table__
    q = select(t).order_by(t.c.id)
    if kind:
        q = q.where(t.c.signal_kind == kind)
    with engine.connect() as conn:
        return list(conn.execute(q))


def task_events(engine: Engine, task_id: int) -> list[Any]:
    e = TaskEvent.__table__
    with engine.connect() as conn:
        return list(conn.execute(select(e).where(e.c.task_id == task_id).order_by(e.c.id)))


def segments(engine: Engine, account_id: str) -> list[str] | None:
    sc = AccountScore.__table__
    with engine.connect() as conn:
        return conn.execute(
            select(sc.c.segments).where(sc.c.account_id == account_id)
        ).scalar_one_or_none()
