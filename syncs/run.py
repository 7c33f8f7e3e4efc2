"""The runner: compute values, match records, plan against the ledger, guard, write in
batches and record every confirmed write at once. The only place in the syncs layer
that turns exceptions into run states."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from integration_signals.config import Config, Settings
from integration_signals.syncs import ledger
from integration_signals.syncs.contract import (
    RecordChange,
    RecordResult,
    Sink,
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
from integration_signals.syncs.matching import match_accounts
from integration_signals.syncs.registry import get_destination

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
    api_calls: int = 0
    write_calls: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    unmatched_accounts: list[dict[str, str]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    blocked: str | None = None
    error: str | None = None
    resume_after: str | None = None
    missing_fields: list[str] = field(default_factory=list)
    tasks: dict[str, int] | None = None  # Salesforce Tasks, when playbook_tasks is on
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


def _redact(text: str | None, settings: Settings) -> str | None:
    """Belt and braces: no credential value ever reaches a report or a run record."""
    if not text:
        return text
    for secret in (
        settings.salesforce_access_token,
        settings.salesforce_password,
        settings.salesforce_security_token,
        settings.hubspot_access_token,
    ):
        value = secret.get_secret_value() if secret is not None else ""
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def _change_json(change: RecordChange) -> dict[str, Any]:
    return {
        "record_id": change.record_id,
        "account_ids": list(change.account_ids),
        "fields": {f: {"old": old, "new": new} for f, (old, new) in change.changes.items()},
    }


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
) -> SyncReport:
    """Sync computed values into one destination (``salesforce`` or ``hubspot``).

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
    sink: Sink | None = None
    try:
        has_credentials = dest.has_credentials(settings)
        if not has_credentials and not dry_run:
            raise FatalSyncError(
                f"no {dest.label} credentials; {dest.credentials_hint}"
                f" (or use --dry-run to see the plan)",
                destination=destination,
            )
        field_map = dest.field_map(config)
        with engine.connect() as conn:
            accounts = ledger.load_accounts(conn, dest.id_column)
            remembered = ledger.load_matches(conn, destination)
            written = ledger.load_ledger(conn, destination)
            stale = ledger.feed_stale_open(conn)
        if stale:
            report.blocked = (
                "the event feed is stale (feed_stale signal open): no CRM writes until"
                " events flow again"
            )
            if not dry_run:
                raise SyncStopped(report.blocked, destination=destination)
        sink = dest.open_sink(config, settings) if has_credentials else None
        if sink is not None and not dry_run:
            written = _resume_pending(engine, sink, report, written, now=now)

        matches = match_accounts(
            accounts,
            remembered,
            crm=dest.label,
            id_column=dest.id_column,
            finder=sink.find_by_domain if sink is not None else None,
            canonical=dest.record_id,
        )
        report.unmatched_accounts = [
            {"account_id": a, "reason": r} for a, r in sorted(matches.unmatched.items())
        ]
        if matches.found_by_domain and not dry_run:
            with engine.begin() as conn:
                ledger.save_matches(conn, destination, matches.found_by_domain, now=now)

        by_record: dict[str, list[Any]] = {}
        for acc in accounts:
            record_id = matches.record_of.get(acc.values.account_id)
            if record_id is not None:
                by_record.setdefault(record_id, []).append(acc.values)
        records = {
            rid: (
                tuple(sorted(v.account_id for v in vals)),
                to_fields(record_values(vals), field_map),
            )
            for rid, vals in by_record.items()
        }
        plan = make_plan(records, written, band_field=field_map.get("band"), full=full)
        report.planned, report.unchanged = plan.planned, plan.unchanged
        guard = None if force else plan.band_guard(config.syncs.band_change_guard)
        if guard:
            report.blocked = guard
            if not dry_run:
                raise SyncStopped(guard, destination=destination)

        if dry_run:
            report.changes = [_change_json(c) for c in plan.changes[:CHANGES_SHOWN]]
            if sink is not None and plan.changes:
                try:
                    sink.check_fields(field_map.values())
                except FatalSyncError as exc:
                    report.missing_fields = list(getattr(exc, "fields", []))
                    report.error = exc.message
            report.status = "dry_run"
            return report

        if plan.changes:
            assert sink is not None
            sink.prepare(field_map.values())
            by_id = {c.record_id: c for c in plan.changes}
            done = 0
            for results in sink.write_batches(plan.changes):
                _record_batch(engine, destination, report, by_id, results, now=now)
                done += len(results)
                if progress is not None:
                    progress(done, len(plan.changes))
        if destination == "salesforce" and config.syncs.salesforce.playbook_tasks:
            assert sink is not None
            _sync_tasks(engine, sink, report, matches.record_of, written, now=now)
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
        report.error = _redact(report.error, settings)
        if sink is not None:
            report.api_calls = sink.api_calls
            report.write_calls = sink.write_calls
            report.usage = sink.usage()
        report.seconds = round(time.perf_counter() - started, 3)
        _finish(engine, report, now=now)
    return report


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
    sink: Any,
    report: SyncReport,
    record_of: dict[str, str],
    written: dict[str, dict[str, str | None]],
    *,
    now: datetime,
) -> None:
    """Playbook tasks as Salesforce Tasks on the matched Account: new ones created,
    changed ones (claimed, done, snoozed) updated; diffed against the ledger like fields."""
    from integration_signals.syncs.salesforce.mapping import task_values

    with engine.connect() as conn:
        tasks = ledger.load_tasks(conn, record_of)
    records = {}
    for task in tasks:
        key = f"task:{task['id']}"
        if task["status"] == "done" and key not in written:
            continue  # finished before it was ever written: nothing to show
        records[key] = ((task["account_id"],), task_values(task, record_of[task["account_id"]]))
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
    ]
    report.tasks = {"planned": len(changes), "written": 0, "failed": 0, "unchanged": plan.unchanged}
    if not changes:
        return
    sink.check_task_fields()
    by_id = {c.record_id: c for c in changes}
    for results in sink.write_tasks(changes):
        _record_batch(engine, report.destination, report, by_id, results, now=now, tasks=True)


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
    ``tasks``: the batch holds Salesforce Tasks, counted apart from records."""
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
