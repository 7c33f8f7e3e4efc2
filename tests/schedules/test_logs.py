"""JSON logs: one object per line with time, level, logger, message and the job's context,
and never a secret, from a real `signals serve` and from a job run in-process."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from integration_signals.config import Settings, load_config
from integration_signals.schedules.exceptions import JobFailed
from integration_signals.schedules.jobs import JobContext, JobSpec
from integration_signals.schedules.logs import JsonFormatter, log_context
from integration_signals.schedules.scheduler import Scheduler, secrets
from integration_signals.schedules.server import log_format
from tests.schedules.conftest import TOKEN, ServeFactory, wait_for

SLACK_SECRET = "xoxb-very-secret-bot-token"


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as JSON (fails on a line that is not)."""
    records = []
    for line in text.splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pytest.fail(f"not a JSON line: {line!r}")
    return records


def test_serve_with_signals_log_format_json_writes_json_lines_with_the_job(
    serve_factory: ServeFactory,
) -> None:
    serve_factory.config_text = "[schedules]\nscore_minutes = 0.02\nshutdown_grace_seconds = 5\n"
    serve_factory.env["SIGNALS_LOG_FORMAT"] = "json"
    process = serve_factory.start(wait=False)

    def score_ran() -> bool:
        return any(
            r.get("job") == "score" and "ok in" in r["message"] for r in json_lines(process.log())
        )

    wait_for(score_ran, timeout=60, what=f"a score run in the log:\n{process.log()}", every=0.2)
    assert process.terminate() == 0
    records = json_lines(process.log())
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any("listening on http://" in r["message"] for r in records)
    run = next(r for r in records if r.get("job") == "score" and "ok in" in r["message"])
    assert run["logger"] == "signals.schedules"
    assert run["level"] == "info"
    assert isinstance(run["run_id"], int)
    assert run["time"].endswith("Z")
    assert TOKEN not in process.log()


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, Settings]]:
    """A JSON handler on the root logger writing to a string, with a Slack token and
    the ingest token as the secrets it must blank."""
    settings = Settings(
        signals_database_url="unused",
        signals_ingest_token=SecretStr(TOKEN),
        slack_bot_token=SecretStr(SLACK_SECRET),
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(secrets(settings)))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream, settings
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_job_run_logs_its_job_run_id_and_destination_and_never_a_secret(
    engine: Engine, captured: tuple[io.StringIO, Settings]
) -> None:
    stream, settings = captured
    worker = logging.getLogger("syncs")

    def leaky_sync(ctx: JobContext) -> dict[str, Any]:
        with log_context(destination="hubspot"):
            worker.warning("retrying with token %s", SLACK_SECRET)
            worker.info("account done", extra={"account": "acme"})
        return {"written": 1, "token": TOKEN}

    def leaky_failure(ctx: JobContext) -> dict[str, Any]:
        raise RuntimeError(f"refused: {TOKEN}")

    jobs = [
        JobSpec("sync.hubspot", timedelta(days=1), leaky_sync, "leaks in its log"),
        JobSpec("ingest.pull", timedelta(days=1), leaky_failure, "leaks in its error"),
    ]
    scheduler = Scheduler(engine, load_config(None), settings, jobs)
    assert scheduler.run_now("sync.hubspot") == "ok"
    with pytest.raises(JobFailed):
        scheduler.run_now("ingest.pull")

    text = stream.getvalue()
    assert SLACK_SECRET not in text and TOKEN not in text
    records = json_lines(text)
    retry = next(r for r in records if r["message"].startswith("retrying"))
    assert retry["message"] == "retrying with token ***"
    assert (retry["job"], retry["destination"], retry["level"]) == (
        "sync.hubspot",
        "hubspot",
        "warning",
    )
    assert isinstance(retry["run_id"], int)
    done = next(r for r in records if r["message"] == "account done")
    assert (done["account"], done["job"]) == ("acme", "sync.hubspot")
    finished = next(
        r for r in records if r.get("job") == "sync.hubspot" and "ok in" in r["message"]
    )
    assert "destination" not in finished, "the destination is only inside its block"
    assert '"token":"***"' in finished["message"].replace(" ", "")


def test_the_environment_overrides_the_config_file(tmp_path: Any) -> None:
    path = tmp_path / "signals.toml"
    path.write_text('[log]\nformat = "json"\n')
    config = load_config(path)
    assert log_format(config, Settings(signals_database_url="unused")) == "json"
    assert log_format(load_config(None), Settings(signals_log_format="json")) == "json"
    assert log_format(config, Settings(signals_log_format="text")) == "text"
