"""Real `signals serve` processes: several on one PostgreSQL run each job once per tick;
kill -9 mid-job and a restart lose and repeat nothing; SIGTERM leaves a consistent store."""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, func, select, text

from integration_signals.config import load_config
from integration_signals.schedules.pull import load_state
from integration_signals.store.models import Event, JobRun, Task
from tests.fakes.slack import FakeSlack
from tests.schedules.conftest import (
    TOKEN,
    ServeFactory,
    Source,
    healthz,
    needs_pg,
    posted,
    wait_for,
)

BATCH = 500


def configure(
    factory: ServeFactory, source: Source, *, pull_minutes: float, prune_minutes: float
) -> None:
    factory.config_text = (
        f"[schedules]\npull_minutes = {pull_minutes}\nprune_minutes = {prune_minutes}\n"
        "shutdown_grace_seconds = 5\n"
        f'[schedules.pull]\nquery = "{source.query()}"\nbatch_size = {BATCH}\n'
    )
    factory.env["SIGNALS_PULL_URL"] = source.url


def count(engine: Engine, model: type, *where: object) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def runs(engine: Engine) -> list[tuple[str, object, str, str | None, str | None]]:
    t = JobRun.__table__
    with engine.connect() as conn:
        return [
            (r.job_id, r.scheduled_at.replace(tzinfo=UTC), r.status, r.host, r.error)
            for r in conn.execute(select(t).order_by(t.c.job_id, t.c.scheduled_at))
        ]


def pull_totals(engine: Engine) -> dict[str, int]:
    return load_state(engine, "pull:sql")


@needs_pg
def test_two_processes_on_one_postgres_run_every_job_once_per_tick(
    engine: Engine, source: Source, serve_factory: ServeFactory
) -> None:
    configure(serve_factory, source, pull_minutes=0.05, prune_minutes=0.05)  # 3 s ticks
    source.add_generated(2000)
    first, second = serve_factory.start(), serve_factory.start()
    # Events keep arriving in the source while both processes run.
    for wave in range(4):
        source.add_generated(100, start=2000 + wave * 100)
        time.sleep(1.5)
    for process in (first, second):
        jobs = healthz(process.url)["jobs"]
        assert {"ingest.pull", "maintenance.prune"} <= set(jobs)
        assert all(job["next_run_at"] for job in jobs.values())
    wait_for(
        lambda: pull_totals(engine).get("accepted") == 2400,
        timeout=20,
        what="the pull to catch up",
    )

    def ticks_done() -> bool:
        done = Counter(jid for jid, _tick, status, *_ in runs(engine) if status == "ok")
        return min(done["ingest.pull"], done["maintenance.prune"]) >= 3

    # A busy machine starts the processes late: wait for three ticks of each job.
    wait_for(ticks_done, timeout=30, what="three ticks of each job", every=0.5)
    assert first.terminate() == 0 and second.terminate() == 0

    rows = runs(engine)
    assert {status for _, _, status, _, _ in rows} == {"ok"}, [r for r in rows if r[2] != "ok"]
    for job_id in ("ingest.pull", "maintenance.prune"):
        ticks = sorted(tick for jid, tick, *_ in rows if jid == job_id)
        assert len(ticks) >= 3
        assert len(ticks) == len(set(ticks))
        # No tick between the first and the last was lost.
        steps = {(b - a) for a, b in zip(ticks, ticks[1:], strict=False)}
        assert steps == {timedelta(seconds=3)}, steps
    # The job bodies: each tick ran in exactly one process (the logs of both).
    ran = Counter(
        found
        for process in (first, second)
        for found in re.findall(r"job (\S+) tick (\S+) ok in", process.log())
    )
    assert ran and max(ran.values()) == 1
    assert sum(ran.values()) == len(rows)
    # Every source row was ingested once, none twice.
    assert count(engine, Event) == 2400
    assert pull_totals(engine)["duplicates"] == 0


def test_kill_9_mid_job_and_restart_loses_and_repeats_nothing(
    engine: Engine, source: Source, serve_factory: ServeFactory
) -> None:
    total = 20_000
    configure(serve_factory, source, pull_minutes=0.05, prune_minutes=1440)
    source.add_generated(total)
    victim = serve_factory.start()
    wait_for(
        lambda: 0 < count(engine, Event) < total // 2,
        timeout=30,
        what="the pull to be half-way",
        every=0.01,
    )
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(timeout=10)
    landed = count(engine, Event)
    assert 0 < landed < total
    assert [r[2] for r in runs(engine) if r[0] == "ingest.pull"] == ["running"]

    survivor = serve_factory.start()
    wait_for(
        lambda: pull_totals(engine).get("accepted") == total,
        timeout=60,
        what="the restarted pull to finish",
    )
    assert survivor.terminate() == 0

    assert count(engine, Event) == total
    totals = pull_totals(engine)
    assert totals["accepted"] == total  # nothing lost, nothing counted twice
    # Cursor and batch commit together: only the rows of the last cursor value of the
    # last committed batch are read again.
    assert totals["duplicates"] <= 1
    statuses = [r[2] for r in runs(engine) if r[0] == "ingest.pull"]
    assert "running" not in statuses
    assert statuses[0] in ("ok", "abandoned")
    assert re.search(r"abandoned|resuming", survivor.log())


def test_sigterm_mid_job_stops_cleanly_and_the_next_start_continues(
    engine: Engine, source: Source, serve_factory: ServeFactory
) -> None:
    total = 20_000
    configure(serve_factory, source, pull_minutes=0.05, prune_minutes=1440)
    source.add_generated(total)
    process = serve_factory.start()
    wait_for(
        lambda: 0 < count(engine, Event) < total // 2,
        timeout=30,
        what="the pull to be half-way",
        every=0.01,
    )
    started = time.monotonic()
    assert process.terminate(timeout=30) == 0
    assert time.monotonic() - started < 15
    assert "Traceback" not in process.log()

    # Consistent: the stored events are the rows up to the saved cursor plus at most the
    # rows of the batch's last cursor value (the cursor never passes a value whose rows
    # might continue in the next batch); the next pull reads those again as duplicates.
    stored = count(engine, Event)
    totals = pull_totals(engine)
    assert 0 < stored < total
    assert totals["accepted"] == stored
    cursor = totals["cursor"]["value"]
    with source.engine.connect() as conn:
        upto = conn.execute(
            text(f"SELECT count(*) FROM {source.table} WHERE occurred_at <= :c"), {"c": cursor}
        ).scalar_one()
    boundary = stored - upto
    assert 0 <= boundary <= BATCH
    rows = [r for r in runs(engine) if r[0] == "ingest.pull"]
    assert [r[2] for r in rows] == ["abandoned"]
    assert "stopped at shutdown" in rows[0][4]

    again = serve_factory.start()
    wait_for(
        lambda: pull_totals(engine).get("accepted") == total,
        timeout=60,
        what="the next start to finish the pull",
    )
    assert again.terminate() == 0
    assert count(engine, Event) == total
    assert pull_totals(engine)["accepted"] == total
    assert pull_totals(engine)["duplicates"] == boundary


def test_serve_answers_ingest_and_health_over_http(
    engine: Engine, serve_factory: ServeFactory
) -> None:
    process = serve_factory.start()
    response = httpx.post(
        f"{process.url}/v1/events",
        json=[
            {
                "event_id": "srv-1",
                "type": "integration.installed",
                "occurred_at": "2026-11-01T00:00:00Z",
                "account_id": "acme",
                "integration": "slack",
            }
        ],
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    health = healthz(process.url)
    assert health["status"] == "ok"
    assert "maintenance.prune" in health["jobs"]
    assert TOKEN not in process.log()
    assert process.terminate() == 0


pytestmark = pytest.mark.timeout(180)


def test_an_event_breaking_a_sync_threshold_becomes_a_slack_task_within_60_seconds(
    engine: Engine, serve_factory: ServeFactory, fake_slack: FakeSlack
) -> None:
    # The default intervals, scaled down 60x (minutes become seconds).
    defaults = load_config(None).schedules
    scaled = {
        name: getattr(defaults, name) / 60
        for name in (
            "score_minutes",
            "sync_minutes",
            "task_post_minutes",
            "reminders_minutes",
            "digest_minutes",
            "prune_minutes",
        )
    }
    serve_factory.config_text = "[schedules]\n" + "".join(f"{k} = {v}\n" for k, v in scaled.items())
    serve_factory.env.update(
        {
            "SLACK_BOT_TOKEN": "xoxb-e2e",
            "SLACK_SIGNING_SECRET": "e2e-signing-secret",
            "SLACK_TASKS_CHANNEL": "C-TASKS",
            "SLACK_API_URL": fake_slack.api_url,
        }
    )
    process = serve_factory.start()
    assert "tasks.post" in healthz(process.url)["jobs"]
    now = datetime.now(UTC).replace(microsecond=0)

    def at(**delta: float) -> str:
        return (now - timedelta(**delta)).isoformat().replace("+00:00", "Z")

    group = {
        "batch": [
            {
                "type": "group",
                "groupId": "acme",
                "userId": "u-1",
                "messageId": "g-1",
                "traits": {
                    "name": "Acme Corp",
                    "segment": "enterprise",
                    "createdAt": at(days=400),
                    "csm": "U0CSM1",
                    "owner": "U0AE1",
                },
            }
        ]
    }
    assert (
        httpx.post(f"{process.url}/v1/batch", json=group, auth=(TOKEN, ""), timeout=30).status_code
        == 200
    )
    history = [
        {"event_id": "zd-install", "type": "integration.installed", "occurred_at": at(days=60)},
        *[
            {
                "event_id": f"zd-ok-{d}",
                "type": "sync.succeeded",
                "occurred_at": at(days=d),
                "records": 500,
            }
            for d in range(8, 40)
        ],
        *[
            {
                "event_id": f"zd-ok-recent-{h}",
                "type": "sync.succeeded",
                "occurred_at": at(hours=h),
                "records": 500,
            }
            for h in (30, 20)
        ],
    ]
    breaking = [
        {
            "event_id": f"zd-fail-{h}",
            "type": "sync.failed",
            "occurred_at": at(hours=h),
            "error": "TIMEOUT",
        }
        for h in (12, 10, 8, 6, 4, 2)
    ]
    common = {"account_id": "acme", "integration": "zendesk", "connection_id": "acme-zd"}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    first = httpx.post(
        f"{process.url}/v1/events",
        json=[{**e, **common} for e in history],
        headers=headers,
        timeout=60,
    )
    assert first.status_code == 200 and first.json()["accepted"] == len(history)
    early = [m for m in posted(fake_slack) if "Zendesk" in json.dumps(m)]
    assert not early, f"a Zendesk task before the failures: {early}\n{process.log()}"

    sent_at = time.monotonic()
    answer = httpx.post(
        f"{process.url}/v1/events",
        json=[{**e, **common} for e in breaking],
        headers=headers,
        timeout=60,
    ).json()
    assert answer["accepted"] == len(breaking)
    assert answer["after_ingest"] == {"accounts": 1, "queued": 1}
    try:
        tasks_in_slack = wait_for(
            lambda: [m for m in posted(fake_slack) if "Zendesk" in json.dumps(m)],
            timeout=60,
            what="the task in Slack",
        )
    except AssertionError:
        raise AssertionError(f"no task in Slack within 60 s; serve log:\n{process.log()}") from None
    elapsed = time.monotonic() - sent_at
    assert elapsed <= 60
    assert tasks_in_slack[0]["channel"] == "C-TASKS"

    def task_row() -> object:
        with engine.connect() as conn:
            row = conn.execute(
                select(Task.__table__).where(Task.__table__.c.signal_kind == "health_degradation")
            ).one_or_none()
        # The bot records the message's ts right after Slack answered.
        return row if row is not None and row.slack_ts is not None else None

    task = wait_for(task_row, timeout=10, what="the task to record its Slack message")
    assert (task.account_id, task.slack_channel) == ("acme", "C-TASKS")
    assert process.terminate() == 0
    assert "xoxb-e2e" not in process.log()
