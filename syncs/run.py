"""The runner: compute values, match records, plan against the ledger, guard, write in
batches and record every confirmed write at once. The only place in the syncs layer
that turns exceptions into run states.

A record the CRM refuses (or answers in a shape the sink cannot read) fails alone: it
is recorded in ``item_failures`` (job ``sync.<destination>``, item: the record id, or
``task:<id>`` for a playbook task) with the reason, left out of the next runs until its
backoff has passed (scheduled runs, ``hold_back=True``; a run by hand retries every
record at once), counted in the report (``failed``, ``held_back``), and alerted once at
its Nth failure in a row through ``alert``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine

from integration_signals.config import Config, Settings
from integration_signals.store import failures as item_failures
from integration_signals.syncs import ledger
from integration_signals.syncs.contract import (
    AccountValues,
    Destination,
    Plan,
    RecordChange,
    RecordResult,
    Sink,
    TaskSink,
    make_plan,
    record_values,
    to_fields,
)
from integration_signals.syncs.exceptions import (
    DailyLimitReached,
    FatalSyncError,
    SyncError,
    SyncStopped,
)
from integration_signals.syncs.ledger import SyncAccount
from integration_signals.syncs.matching import match_accounts
from integration_signals.syncs.registry import get_destination, redact

log = logging.getLogger("syncs")

CHANGES_SHOWN = 2000  # dry-run changes listed in the report (all are counted)


@dataclass
class SyncReport:
    """What one run did; ``as_json()`` is the `signals sync --json` document."""

    destination: str
    run_id: int | None = None
    status: str = "running"  # ok | failed | stopped (| dry_run)
    dry_run: bool = False
    full: bool = False
    planned: int = 0
    written: int = 0
    unchanged: int = 0
    failed: int = 0
    held_back: int = 0  # records (and tasks) still waiting out the backoff of a failure
    alerted: int = 0  # records that reached ``item_alert_after`` failures in this run
    api_calls: int = 0
    write_calls: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    unmatched_accounts: list[dict[str, str]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    blocked: str | None = None
    error: str | None = None
    resume_after: str | None = None
    missing_fields: list[str] = field(default_factory=list)
    tasks: dict[str, int] | None = None  # playbook tasks, when the destination writes them
    resumed: int = 0  # records confirmed by an interrupted run's Bulk job
    usage: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "dry_run")

    def as_json(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "run_id": self.run_id,
            "status": self.status,
            "dry_run": self.dry_run,
            "full": self.full,
            "planned": self.planned,
            "written": self.written,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "held_back": self.held_back,
            "alerted": self.alerted,
            "unmatched": len(self.unmatched_accounts),
            "api_calls": self.api_calls,
            "write_calls": self.write_calls,
            "failures": self.failures,
            "unmatched_accounts": self.unmatched_accounts,
            "changes": self.changes,
            "blocked": self.blocked,
            "error": self.error,
            "resume_after": self.resume_after,
            "missing_fields": self.missing_fields,
            "tasks": self.tasks,
            "resumed": self.resumed,
            "usage": self.usage,
            "seconds": self.seconds,
        }


def _change_json(change: RecordChange) -> dict[str, Any]:
    return {
        "record_id": change.record_id,
        "account_ids": list(change.account_ids),
        "fields": {f: {"old": old, "new": new} for f, (old, new) in change.changes.items()},
    }


@dataclass
class _Run:
    """One run as it moves through the steps of ``run_sync``."""

    engine: Engine
    config: Config
    settings: Settings
    dest: Destination
    report: SyncReport
    now: datetime
    force: bool = False
    progress: Callable[[int, int], None] | None = None
    has_credentials: bool = False
    field_map: dict[str, str] = field(default_factory=dict)
    accounts: list[SyncAccount] = field(default_factory=list)
    remembered: dict[str, str] = field(default_factory=dict)
    written: dict[str, dict[str, str | None]] = field(default_factory=dict)
    sink: Sink | None = None
    record_of: dict[str, str] = field(default_factory=dict)
    plan: Plan = field(default_factory=Plan)
    alert: Callable[[str], None] | None = None
    failing: set[str] = field(default_factory=set)  # records with failures in a row
    held: set[str] = field(default_factory=set)  # ... still waiting out their backoff

    @property
    def job(self) -> str:
        return f"sync.{self.dest.name}"

    @property
    def policy(self) -> item_failures.RetryPolicy:
        return item_failures.RetryPolicy.from_config(self.config)

    @property
    def name(self) -> str:
        return self.dest.name

    @property
    def dry_run(self) -> bool:
        return self.report.dry_run

    def stop(self, why: str) -> None:
        """A guard fired: note why; a real run stops here, a dry run goes on."""
        self.report.blocked = why
        if not self.dry_run:
            raise SyncStopped(why, destination=self.name)


def run_sync(
    engine: Engine,
    config: Config,
    settings: Settings,
    destination: str,
    *,
    dry_run: bool = False,
    full: bool = False,
    force: bool = False,
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
    alert: Callable[[str], None] | None = None,
    hold_back: bool = False,
) -> SyncReport:
    """Sync computed values into one registered destination (``salesforce``, ``hubspot``).

    Writes only what differs from the ledger; records each confirmed batch at once, so
    a run killed at any point is finished by the next one. ``dry_run`` writes nothing
    anywhere (CRM, ledger, matches) and lists the planned changes; without credentials
    it plans from the ledger and CRM ids alone.
    """
    dest = get_destination(destination)
    started = time.perf_counter()
    report = SyncReport(destination=destination, dry_run=dry_run, full=full)
    with engine.begin() as conn:
        report.run_id = ledger.start_run(conn, destination, dry_run=dry_run, full=full, now=now)
    run = _Run(
        engine, config, settings, dest, report, now, force=force, progress=progress, alert=alert
    )
    try:
        _check_credentials(run)
        _load(run, hold_back=hold_back)
        _open_sink(run)
        _match(run)
        _plan(run)
        if dry_run:
            _preview(run)
            return report
        _write(run)
        _capabilities(run)
        report.status = "ok"
    except SyncStopped as exc:
        report.status = "stopped"
        report.error = exc.message
    except DailyLimitReached as exc:
        report.status = "stopped"
        report.error = exc.message
        report.resume_after = exc.resume_after
    except SyncError as exc:
        report.status = "failed"
        report.error = exc.message
        report.missing_fields = list(getattr(exc, "fields", []))
    except Exception as exc:  # a bug or the database: record the run as failed, re-raise
        report.status = "failed"
        report.error = f"{type(exc).__name__}: {str(exc)[:300]}"
        raise
    except (KeyboardInterrupt, SystemExit):
        report.status = "interrupted"
        report.error = "interrupted; confirmed batches are in the ledger, the next run finishes"
        raise
    finally:
        _close(run, started)
    return report


def _check_credentials(run: _Run) -> None:
    """Credentials are needed for everything but a dry run."""
    dest = run.dest
    run.has_credentials = dest.has_credentials(run.settings)
    if not run.has_credentials and not run.dry_run:
        raise FatalSyncError(
            f"no {dest.label} credentials; {dest.credentials_hint}"
            f" (or use --dry-run to see the plan)",
            destination=dest.name,
        )
    run.field_map = dest.field_map(run.config)


def _load(run: _Run, *, hold_back: bool = False) -> None:
    """Accounts with their values, remembered matches and the ledger; no writes while
    the event feed is stale."""
    with run.engine.connect() as conn:
        run.accounts = ledger.load_accounts(conn, run.dest.id_key)
        run.remembered = ledger.load_matches(conn, run.name)
        run.written = ledger.load_ledger(conn, run.name)
        stale = ledger.feed_stale_open(conn)
        for row in item_failures.failing(conn, run.job):
            run.failing.add(str(row["item"]))
            next_at = row["next_attempt_at"]
            if hold_back and isinstance(next_at, datetime) and next_at > run.now:
                run.held.add(str(row["item"]))
    if stale:
        run.stop(
            "the event feed is stale (feed_stale signal open): no CRM writes until"
            " events flow again"
        )


def _open_sink(run: _Run) -> None:
    """The sink, when there are credentials; a real run first finishes the bookkeeping
    of an interrupted run's asynchronous job."""
    if not run.has_credentials:
        return
    run.sink = run.dest.open_sink(run.config, run.settings)
    if not run.dry_run:
        run.written = _resume_pending(run.engine, run.sink, run.report, run.written, now=run.now)


def _match(run: _Run) -> None:
    """Which record each account belongs to; new domain matches are remembered."""
    dest, sink = run.dest, run.sink
    matches = match_accounts(
        run.accounts,
        run.remembered,
        crm=dest.label,
        id_column=dest.id_key,
        finder=sink.find_by_domain if sink is not None else None,
        canonical=dest.record_id,
    )
    run.report.unmatched_accounts = [
        {"account_id": a, "reason": r} for a, r in sorted(matches.unmatched.items())
    ]
    if matches.found_by_domain and not run.dry_run:
        with run.engine.begin() as conn:
            ledger.save_matches(conn, run.name, matches.found_by_domain, now=run.now)
    run.record_of = matches.record_of


def _plan(run: _Run) -> None:
    """Values per record, diffed against the ledger; the band guard may stop the run."""
    by_record: dict[str, list[AccountValues]] = {}
    for acc in run.accounts:
        record_id = run.record_of.get(acc.values.account_id)
        if record_id is not None:
            by_record.setdefault(record_id, []).append(acc.values)
    records = {
        rid: (
            tuple(sorted(v.account_id for v in vals)),
            to_fields(record_values(vals), run.field_map),
        )
        for rid, vals in by_record.items()
    }
    full = run.report.full
    run.plan = make_plan(records, run.written, band_field=run.field_map.get("band"), full=full)
    if run.held and not run.dry_run:
        kept = [c for c in run.plan.changes if c.record_id not in run.held]
        run.report.held_back += len(run.plan.changes) - len(kept)
        run.plan.changes = kept
    run.report.planned, run.report.unchanged = run.plan.planned, run.plan.unchanged
    guard = None if run.force else run.plan.band_guard(run.config.syncs.band_change_guard)
    if guard:
        run.stop(guard)


def _preview(run: _Run) -> None:
    """A dry run lists the planned changes and names fields the CRM lacks."""
    report = run.report
    report.changes = [_change_json(c) for c in run.plan.changes[:CHANGES_SHOWN]]
    if run.sink is not None and run.plan.changes:
        try:
            run.sink.check_fields(run.field_map.values())
        except FatalSyncError as exc:
            report.missing_fields = list(getattr(exc, "fields", []))
            report.error = exc.message
    report.status = "dry_run"


def _write(run: _Run) -> None:
    """Write the planned changes, recording every confirmed batch at once."""
    changes = run.plan.changes
    if not changes:
        return
    sink = run.sink
    assert sink is not None
    sink.prepare(run.field_map.values())
    by_id = {c.record_id: c for c in changes}
    done = 0
    for results in sink.write_batches(changes):
        _record_batch(run.engine, run.name, run.report, by_id, results, now=run.now)
        _record_items(run, results)
        done += len(results)
        if run.progress is not None:
            run.progress(done, len(changes))


def _capabilities(run: _Run) -> None:
    """What the destination can do beyond fields, when its config switches it on."""
    tasks = run.dest.playbook_tasks
    if tasks is not None and tasks.enabled(run.config):
        assert run.sink is not None
        _sync_tasks(
            run.engine,
            cast(TaskSink, run.sink),
            run.report,
            run.record_of,
            run.written,
            values=tasks.values,
            now=run.now,
            held=run.held,
            on_results=lambda results: _record_items(run, results),
        )


def _record_items(run: _Run, results: list[RecordResult]) -> None:
    """Each failed record's failure (reason, count, backoff, one alert); each record
    that failed before and went through now is forgotten."""
    report = run.report
    for r in results:
        if r.ok:
            continue
        failed = item_failures.record_failure(
            run.engine,
            run.job,
            r.record_id,
            redact(r.error or "refused without a message", run.settings) or "",
            now=run.now,
            policy=run.policy,
        )
        if failed.alert:
            report.alerted += 1
            what = f"{run.dest.label} record {r.record_id}"
            text = failed.alert_text(what)
            if run.alert is None:
                log.error("alert: %s", text)
            else:
                try:
                    run.alert(text)
                except Exception as exc:  # an alert that cannot go out must not stop the run
                    log.error("could not send the alert (%s): %s", type(exc).__name__, text)
    recovered = [r.record_id for r in results if r.ok and r.record_id in run.failing]
    item_failures.record_successes(run.engine, run.job, recovered)


def _close(run: _Run, started: float) -> None:
    """Whatever happened: redact, count the API calls, record the run."""
    report, sink = run.report, run.sink
    report.error = redact(report.error, run.settings)
    for failure in report.failures:  # per-record messages are the vendor's own words
        failure["error"] = redact(failure.get("error"), run.settings)
    if sink is not None:
        report.api_calls = sink.api_calls
        report.write_calls = sink.write_calls
        report.usage = sink.usage()
    report.seconds = round(time.perf_counter() - started, 3)
    _finish(run.engine, report, now=run.now)


def _resume_pending(
    engine: Engine,
    sink: Sink,
    report: SyncReport,
    written: dict[str, dict[str, str | None]],
    *,
    now: datetime,
) -> dict[str, dict[str, str | None]]:
    """Finish the bookkeeping of an interrupted run's asynchronous job: what it wrote
    enters the ledger before planning, so it is not written a second time. Also arms the
    checkpoint for this run's own jobs."""
    destination = report.destination

    def checkpoint(job_id: str | None) -> None:
        with engine.begin() as conn:
            ledger.set_pending_job(conn, destination, job_id, now=now)

    sink.checkpoint = checkpoint
    with engine.connect() as conn:
        job_id = ledger.pending_job(conn, destination)
    if job_id is None:
        return written
    confirmed = sink.resume(job_id)
    with engine.begin() as conn:
        report.resumed = ledger.confirm_values(
            conn, destination, confirmed, run_id=report.run_id, now=now
        )
        ledger.set_pending_job(conn, destination, None, now=now)
    log.info("%s: %d records confirmed by interrupted job %s", destination, report.resumed, job_id)
    with engine.connect() as conn:
        return ledger.load_ledger(conn, destination)


def _sync_tasks(
    engine: Engine,
    sink: TaskSink,
    report: SyncReport,
    record_of: dict[str, str],
    written: dict[str, dict[str, str | None]],
    *,
    values: Callable[[Mapping[str, Any], str], dict[str, str]],
    now: datetime,
    held: set[str] | None = None,
    on_results: Callable[[list[RecordResult]], None] | None = None,
) -> None:
    """Playbook tasks as CRM records on the matched account (Salesforce Tasks): new ones
    created, changed ones (claimed, done, snoozed) updated; diffed against the ledger
    like fields. ``values``: the destination's task -> field values."""
    with engine.connect() as conn:
        tasks = ledger.load_tasks(conn, record_of)
    records = {}
    for task in tasks:
        key = f"task:{task['id']}"
        if task["status"] == "done" and key not in written:
            continue  # finished before it was ever written: nothing to show
        records[key] = ((task["account_id"],), values(task, record_of[task["account_id"]]))
    plan = make_plan(records, written, band_field=None)
    # An upsert may create the Task (deleted in Salesforce, or never confirmed): send it whole.
    changes = [
        RecordChange(
            c.record_id,
            c.account_ids,
            {
                f: (written.get(c.record_id, {}).get(f), v)
                for f, v in records[c.record_id][1].items()
            },
        )
        for c in plan.changes
        if not held or c.record_id not in held
    ]
    report.held_back += len(plan.changes) - len(changes)
    report.tasks = {"planned": len(changes), "written": 0, "failed": 0, "unchanged": plan.unchanged}
    if not changes:
        return
    sink.check_task_fields()
    by_id = {c.record_id: c for c in changes}
    for results in sink.write_tasks(changes):
        _record_batch(engine, report.destination, report, by_id, results, now=now, tasks=True)
        if on_results is not None:
            on_results(results)


def _record_batch(
    engine: Engine,
    destination: str,
    report: SyncReport,
    by_id: dict[str, RecordChange],
    results: list[RecordResult],
    *,
    now: datetime,
    tasks: bool = False,
) -> None:
    """Enter one confirmed batch into the ledger and the run record, in one transaction.
    ``tasks``: the batch holds playbook tasks, counted apart from records."""
    for r in results:
        if tasks and report.tasks is not None:
            report.tasks["written" if r.ok else "failed"] += 1
        elif r.ok:
            report.written += 1
        else:
            report.failed += 1
        if not r.ok:
            for account_id in by_id[r.record_id].account_ids:
                report.failures.append(
                    {"account_id": account_id, "record_id": r.record_id, "error": r.error}
                )
    with engine.begin() as conn:
        ledger.confirm_writes(conn, destination, by_id, results, run_id=report.run_id, now=now)
        assert report.run_id is not None
        ledger.update_run(conn, report.run_id, written=report.written, failed=report.failed)
    log.info(
        "%s: batch of %d confirmed (%d written so far)", destination, len(results), report.written
    )


def _finish(engine: Engine, report: SyncReport, *, now: datetime) -> None:
    if report.run_id is None:
        return
    details = {
        "failures": report.failures[:500],
        "unmatched_accounts": report.unmatched_accounts[:500],
        "write_calls": report.write_calls,
        "usage": report.usage,
        "blocked": report.blocked,
        "resume_after": report.resume_after,
        "tasks": report.tasks,
        "held_back": report.held_back,
        "alerted": report.alerted,
        "seconds": report.seconds,
    }
    with engine.begin() as conn:
        ledger.update_run(
            conn,
            report.run_id,
            finished_at=now + timedelta(seconds=report.seconds),
            status=report.status,
            planned=report.planned,
            written=report.written,
            unchanged=report.unchanged,
            failed=report.failed,
            unmatched=len(report.unmatched_accounts),
            api_calls=report.api_calls,
            error=report.error,
            details=details,
        )
