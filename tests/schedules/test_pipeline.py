"""Ingest from the CLI rescores the accounts it touched and evaluates their signals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from integration_signals.store.models import AccountScore, Signal


def test_cli_ingest_rescores_touched_accounts_and_evaluates_their_signals(
    cli, engine: Engine, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    lines = [
        {
            "event_id": f"c-{i}",
            "type": "sync.failed" if i % 4 else "sync.succeeded",
            "occurred_at": (now - timedelta(hours=i)).isoformat(),
            "account_id": "globex",
            "integration": "zendesk",
            "connection_id": "globex-zd",
        }
        for i in range(1, 13)
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = cli("ingest", str(path), "--json")
    assert result.exit_code == 0, result.output
    after = json.loads(result.stdout)["after_ingest"]
    assert (after["accounts"], after["rescored"]) == (1, 1)
    assert "signals" in after
    with engine.connect() as conn:
        assert conn.execute(select(AccountScore.__table__.c.account_id)).scalars().all() == [
            "globex"
        ]
        kinds = set(conn.execute(select(Signal.__table__.c.kind)).scalars())
    assert "health_degradation" in kinds

    again = json.loads(cli("ingest", str(path), "--json").stdout)
    assert again["duplicates"] == 12
    assert again["after_ingest"] == {"accounts": 0, "rescored": 0}
