"""Fixtures for the serve layer: a live app on an ephemeral port (real sockets), real
`signals serve` subprocesses, SQL sources for the pull, and a fake Slack Web API."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from integration_signals.schedules.server import bind
from tests.fakes.slack import FakeSlack

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-ingest-token-5f3a"


def is_pg(url: str) -> bool:
    return url.startswith("postgres")


needs_pg = pytest.mark.skipif(
    not is_pg(os.environ.get("SIGNALS_TEST_DATABASE_URL", "sqlite")),
    reason="several serve processes need PostgreSQL (SQLite allows one)",
)


# ---------------------------------------------------------------- live app in a thread


@pytest.fixture
def live_app() -> Iterator[Callable[[Any], str]]:
    """Serve an ASGI app on 127.0.0.1 with a free port; returns its base URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Any) -> str:
        sock = bind("127.0.0.1", 0)
        server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=15)


# ---------------------------------------------------------------- serve subprocesses


@dataclass
class ServeProcess:
    proc: subprocess.Popen[str]
    log_path: Path
    url: str = ""

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def terminate(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@dataclass
class ServeFactory:
    db_url: str
    tmp_path: Path
    config_text: str = ""
    env: dict[str, str] = field(default_factory=dict)
    started: list[ServeProcess] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        config = self.tmp_path / "signals.toml"
        config.write_text(self.config_text, "utf-8")
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SIGNALS_", "SALESFORCE_", "HUBSPOT_", "SLACK_"))
        }
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "SIGNALS_DATABASE_URL": self.db_url,
                "SIGNALS_CONFIG": str(config),
                "SIGNALS_INGEST_TOKEN": TOKEN,
            }
        )
        env.update(self.env)
        return env

    def start(self, *, wait: bool = True) -> ServeProcess:
        log_path = self.tmp_path / f"serve-{uuid.uuid4().hex[:6]}.log"
        handle = log_path.open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "integration_signals", "serve", "--port", "0"],
            cwd=self.tmp_path,
            env=self.environment(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
        )
        handle.close()
        process = ServeProcess(proc, log_path)
        self.started.append(process)
        if wait:
            deadline = time.monotonic() + 30
            while True:
                found = re.search(r"listening on (http://\S+)", process.log())
                if found and "Application startup complete" in process.log():
                    process.url = found.group(1)
                    break
                assert proc.poll() is None, f"serve exited early:\n{process.log()}"
                assert time.monotonic() < deadline, f"serve did not start:\n{process.log()}"
                time.sleep(0.05)
        return process


@pytest.fixture
def serve_factory(db_url: str, tmp_path: Path) -> Iterator[ServeFactory]:
    """Start real `signals serve` processes; every one is stopped after the test."""
    factory = ServeFactory(db_url, tmp_path)
    yield factory
    for process in factory.started:
        process.kill()


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def healthz(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/healthz", timeout=10).json()


# ---------------------------------------------------------------- SQL sources for the pull


@dataclass
class Source:
    """A table of events in a real database that the pull reads."""

    url: str
    table: str
    engine: Engine

    def query(self) -> str:
        return f"SELECT * FROM {self.table}"

    def add(self, rows: list[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    f"INSERT INTO {self.table} (event_id, type, occurred_at, account_id,"
                    " integration, records, region) VALUES (:event_id, :type, :occurred_at,"
                    " :account_id, :integration, :records, :region)"
                ),
                rows,
            )

    def add_generated(self, count: int, *, start: int = 0) -> None:
        """``count`` sync.succeeded rows with ids e-<start>.., one second apart."""
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        f"INSERT INTO {self.table} SELECT 'e-' || i, 'sync.succeeded',"
                        " TIMESTAMPTZ '2026-11-01T00:00:00Z' + i * INTERVAL '1 second',"
                        " 'acct-' || (i % 50), 'salesforce', 10, 'eu'"
                        " FROM generate_series(CAST(:a AS integer), CAST(:b AS integer)) AS i"
                    ),
                    {"a": start, "b": start + count - 1},
                )
            return
        base = 1793491200  # 2026-11-01T00:00:00Z
        rows = []
        from datetime import UTC, datetime

        for i in range(start, start + count):
            rows.append(
                {
                    "event_id": f"e-{i}",
                    "type": "sync.succeeded",
                    "occurred_at": datetime.fromtimestamp(base + i, UTC).isoformat(),
                    "account_id": f"acct-{i % 50}",
                    "integration": "salesforce",
                    "records": 10,
                    "region": "eu",
                }
            )
        self.add(rows)


@pytest.fixture
def source(db_url: str, tmp_path: Path) -> Iterator[Source]:
    """On PostgreSQL a table in the test database; on SQLite a separate database file."""
    if is_pg(db_url):
        url = db_url
        engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
        ts_type = "TIMESTAMPTZ"
    else:
        url = f"sqlite:///{tmp_path / 'warehouse.db'}"
        engine = create_engine(url)
        ts_type = "TEXT"
    table = f"warehouse_events_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE TABLE {table} (event_id TEXT, type TEXT, occurred_at {ts_type},"
                " account_id TEXT, integration TEXT, records BIGINT, region TEXT)"
            )
        )
    yield Source(url, table, engine)
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


# ---------------------------------------------------------------- fake Slack Web API


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """The project's fake Slack Web API (tests/fakes/slack.py) on an ephemeral port."""
    fake = FakeSlack().start()
    yield fake
    fake.stop()
    assert not fake.rejected, f"Slack would have refused: {fake.rejected}"


def posted(fake: FakeSlack) -> list[dict[str, Any]]:
    """The bodies of every chat.postMessage the fake received."""
    return [r.body for r in fake.calls("chat.postMessage")]
