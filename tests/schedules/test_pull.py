"""The SQL ingest pull: any SQLAlchemy URL plus a query, read incrementally by a
cursor column (a real PostgreSQL source on PostgreSQL runs, a SQLite file otherwise)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from integration_signals.config import Config, Settings, load_config
from integration_signals.schedules.pull import PullNotConfigured, load_state, pull_once, state_key
from integration_signals.store.models import Event, Quarantine
from tests.schedules.conftest import Source


def pull_config(
    tmp_path: Path, query: str, *, batch_size: int = 100, column: str = "occurred_at"
) -> Config:
    path = tmp_path / "pull.toml"
    path.write_text(
        f'[schedules.pull]\nquery = "{query}"\ncursor_column = "{column}"\nbatch_size = {batch_size}\n'
    )
    return load_config(path)


def settings_for(source: Source) -> Settings:
    return Settings(signals_database_url="unused", signals_pull_url=SecretStr(source.url))


def event_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Event)).scalar_one()


def test_the_pull_reads_every_row_once_and_then_only_new_ones(
    engine: Engine, source: Source, tmp_path: Path
) -> None:
    config = pull_config(tmp_path, source.query(), batch_size=70)
    settings = settings_for(source)
    source.add_generated(500)

    first = pull_once(engine, config, settings)
    assert (first.rows, first.ingest.accepted, first.ingest.duplicates) == (500, 500, 0)
    assert first.batches == 8
    assert event_count(engine) == 500

    nothing = pull_once(engine, config, settings)
    assert (nothing.rows, nothing.ingest.accepted) == (0, 0)

    source.add_generated(120, start=500)
    more = pull_once(engine, config, settings)
    assert (more.rows, more.ingest.accepted, more.ingest.duplicates) == (120, 120, 0)
    state = load_state(engine, state_key(config))
    assert (state["accepted"], state["duplicates"], state["quarantined"]) == (620, 0, 0)
    assert event_count(engine) == 620


def test_rows_sharing_the_cursor_value_across_a_batch_boundary_are_not_lost(
    engine: Engine, source: Source, tmp_path: Path
) -> None:
    config = pull_config(tmp_path, source.query(), batch_size=4)
    settings = settings_for(source)
    same = "2026-11-01T00:00:00+00:00"
    source.add(
        [
            {
                "event_id": f"t-{i}",
                "type": "sync.succeeded",
                "occurred_at": same,
                "account_id": "acme",
                "integration": "salesforce",
                "records": 1,
                "region": "eu",
            }
            for i in range(10)
        ]
    )
    assert pull_once(engine, config, settings).ingest.accepted == 10
    # A late row with the same timestamp arrives after the pull: read next time.
    source.add(
        [
            {
                "event_id": "t-late",
                "type": "sync.succeeded",
                "occurred_at": "2026-11-01T00:00:01+00:00",
                "account_id": "acme",
                "integration": "salesforce",
                "records": 1,
                "region": "eu",
            }
        ]
    )
    again = pull_once(engine, config, settings)
    assert again.ingest.accepted == 1
    assert event_count(engine) == 11


def test_extra_columns_land_in_properties_and_bad_rows_in_quarantine(
    engine: Engine, source: Source, tmp_path: Path
) -> None:
    config = pull_config(tmp_path, source.query())
    source.add(
        [
            {
                "event_id": "p-1",
                "type": "sync.succeeded",
                "occurred_at": "2026-11-01T00:00:00+00:00",
                "account_id": "acme",
                "integration": "salesforce",
                "records": 5,
                "region": "eu",
            },
            {
                "event_id": "p-2",
                "type": "sync.exploded",
                "occurred_at": "2026-11-01T00:00:01+00:00",
                "account_id": "acme",
                "integration": "salesforce",
                "records": 5,
                "region": "us",
            },
        ]
    )
    report = pull_once(engine, config, settings_for(source))
    assert (report.ingest.accepted, report.ingest.quarantined) == (1, 1)
    with engine.connect() as conn:
        props = conn.execute(select(Event.__table__.c.properties)).scalar_one()
        reason, src = conn.execute(
            select(Quarantine.__table__.c.reason, Quarantine.__table__.c.source)
        ).one()
    assert props == {"region": "eu"}
    assert reason == "type 'sync.exploded' is not a known event type"
    assert src == "pull:sql"


@pytest.mark.parametrize(
    ("query", "column", "message"),
    [
        pytest.param("", "occurred_at", "needs SIGNALS_PULL_URL", id="no-query"),
        pytest.param("{table}", "created", "no column 'created'", id="unknown-cursor-column"),
    ],
)
def test_a_misconfigured_pull_says_what_to_fix(
    engine: Engine, source: Source, tmp_path: Path, query: str, column: str, message: str
) -> None:
    config = pull_config(tmp_path, query.format(table=source.query()), column=column)
    with pytest.raises(PullNotConfigured, match=message):
        pull_once(engine, config, settings_for(source))


def test_the_pull_without_configuration_is_not_scheduled(engine: Engine) -> None:
    from integration_signals.schedules.jobs import build_jobs

    ids = [
        job.id for job in build_jobs(engine, load_config(None), Settings(signals_database_url="x"))
    ]
    assert "ingest.pull" not in ids
    assert "maintenance.prune" in ids
