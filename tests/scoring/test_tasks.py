"""Playbook tasks move open -> claimed -> done, snooze and come back, turn overdue once,
and refuse, saying why, what would take a task from someone else."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from sqlalchemy import Engine

from integration_signals.scoring import tasks as ops
from integration_signals.scoring.signals import evaluate_signals
from integration_signals.store.models import Task
from tests.scoring.world import AS_OF, CONFIG, TODAY, World, task_events, tasks

LATER = AS_OF + timedelta(minutes=10)


@pytest.fixture
def task_id(engine: Engine) -> int:
    """A health_degradation task (due 4 hours after AS_OF), made the real way."""
    w = World(engine)
    w.account()
    w.syncs(TODAY - timedelta(days=1), ok=1, failed=5)
    w.ingest()
    evaluate_signals(engine, CONFIG, as_of=AS_OF)
    (task,) = tasks(engine)
    return int(task.id)


def history(engine: Engine, task_id: int) -> list[tuple]:
    return [(e.actor, e.action, e.from_status, e.to_status) for e in task_events(engine, task_id)]


def test_a_fired_task_starts_open_with_its_creation_in_the_history(engine: Engine, task_id: int):
    assert history(engine, task_id) == [("system", "create", None, "open")]


def test_claim_then_done_records_who_changed_what(engine: Engine, task_id: int):
    claimed = ops.claim(engine, task_id, by="lee", now=LATER)
    assert isinstance(claimed, Task)
    assert (claimed.status, claimed.claimed_by) == ("claimed", "lee")
    finished = ops.done(engine, task_id, by="lee", now=LATER + timedelta(hours=1))
    assert finished.status == "done"
    assert history(engine, task_id)[1:] == [
        ("lee", "claim", "open", "claimed"),
        ("lee", "done", "claimed", "done"),
    ]
    events = task_events(engine, task_id)
    assert events[-1].at.replace(tzinfo=UTC) == LATER + timedelta(hours=1)


def test_claiming_twice_by_the_same_person_is_a_no_op(engine: Engine, task_id: int):
    ops.claim(engine, task_id, by="lee", now=LATER)
    again = ops.claim(engine, task_id, by="lee", now=LATER + timedelta(minutes=1))
    assert again.status == "claimed" and again.updated_at == LATER
    assert len(history(engine, task_id)) == 2


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda e, t: ops.claim(e, t, by="sam", now=LATER), id="claim"),
        pytest.param(lambda e, t: ops.done(e, t, by="sam", now=LATER), id="done"),
        pytest.param(lambda e, t: ops.snooze(e, t, by="sam", now=LATER), id="snooze"),
    ],
)
def test_someone_elses_claimed_task_is_refused_with_a_clear_message(
    engine: Engine, task_id: int, operation
):
    ops.claim(engine, task_id, by="lee", now=LATER)
    with pytest.raises(ops.TaskRefused, match=f"task {task_id} is .*claimed by lee"):
        operation(engine, task_id)
    assert len(history(engine, task_id)) == 2  # nothing changed


def test_done_is_idempotent_for_its_author_and_refused_for_others(engine: Engine, task_id: int):
    ops.done(engine, task_id, by="lee", now=LATER)
    assert ops.done(engine, task_id, by="lee", now=LATER).status == "done"
    with pytest.raises(ops.TaskRefused, match="already done by lee"):
        ops.done(engine, task_id, by="sam", now=LATER)
    with pytest.raises(ops.TaskRefused, match="already done"):
        ops.claim(engine, task_id, by="lee", now=LATER)
    with pytest.raises(ops.TaskRefused, match="already done"):
        ops.snooze(engine, task_id, by="lee", now=LATER)
    assert len(history(engine, task_id)) == 2


def test_a_snoozed_task_returns_when_its_time_has_passed(engine: Engine, task_id: int):
    snoozed = ops.snooze(engine, task_id, by="lee", now=LATER, days=7)
    assert snoozed.status == "snoozed" and snoozed.snoozed_until == LATER + timedelta(days=7)
    # a double click keeps the first snooze
    assert ops.snooze(
        engine, task_id, by="lee", now=LATER + timedelta(minutes=1)
    ).snoozed_until == (LATER + timedelta(days=7))
    with pytest.raises(ops.TaskRefused, match="already snoozed by lee"):
        ops.snooze(engine, task_id, by="sam", now=LATER)
    evaluate_signals(engine, CONFIG, as_of=LATER + timedelta(days=7) - timedelta(seconds=1))
    assert tasks(engine)[0].status == "snoozed"
    back = LATER + timedelta(days=7)
    report = evaluate_signals(engine, CONFIG, as_of=back)
    assert report.tasks_reopened == 1
    (task,) = tasks(engine, "health_degradation")
    assert task.status == "open" and task.snoozed_until is None
    assert ("system", "unsnooze", "snoozed", "open") in history(engine, task_id)


def test_a_claimed_task_comes_back_from_snooze_still_claimed(engine: Engine, task_id: int):
    ops.claim(engine, task_id, by="lee", now=LATER)
    ops.snooze(engine, task_id, by="lee", now=LATER, days=1)
    with engine.begin() as conn:
        ops.sweep(conn, now=LATER + timedelta(days=1))
    (task,) = tasks(engine)
    assert (task.status, task.claimed_by) == ("claimed", "lee")


def test_an_open_task_past_due_is_marked_overdue_once(engine: Engine, task_id: int):
    due = AS_OF + timedelta(hours=4)
    with engine.begin() as conn:
        assert ops.sweep(conn, now=due) == (0, 0)
        assert ops.sweep(conn, now=due + timedelta(minutes=1)) == (0, 1)
        assert ops.sweep(conn, now=due + timedelta(hours=5)) == (0, 0)
    (task,) = tasks(engine)
    assert task.overdue_at.replace(tzinfo=UTC) == due + timedelta(minutes=1)
    assert [h for h in history(engine, task_id) if h[1] == "overdue"] == [
        ("system", "overdue", "open", "open")
    ]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda e, t: ops.claim(e, 999, by="lee", now=LATER),
            "task 999 does not exist",
            id="unknown-task",
        ),
        pytest.param(lambda e, t: ops.claim(e, t, by="  ", now=LATER), "say who", id="nobody"),
        pytest.param(
            lambda e, t: ops.snooze(e, t, by="lee", now=LATER, days=0),
            "1 to 90 days",
            id="zero-days",
        ),
        pytest.param(
            lambda e, t: ops.snooze(e, t, by="lee", now=LATER, days=91),
            "1 to 90 days",
            id="too-long",
        ),
    ],
)
def test_bad_requests_are_refused_with_what_to_do(engine: Engine, task_id: int, call, message):
    with pytest.raises(ops.TaskRefused, match=message):
        call(engine, task_id)
