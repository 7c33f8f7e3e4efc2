"""Writes our values to Salesforce Accounts: sObject Collections (200 a call,
``allOrNone: false``), or one Bulk API 2.0 job above ``bulk_threshold`` records; a
result for every record; finds Accounts by Website; checks fields with describe."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, cast

from simple_salesforce import format_soql
from simple_salesforce.bulk2 import Operation

from integration_signals.config import Config, Settings
from integration_signals.store.accounts import normalize_domain
from integration_signals.syncs.contract import RecordChange, RecordResult, chunks, write_isolating
from integration_signals.syncs.exceptions import FatalSyncError, MissingFields, RetriableError
from integration_signals.syncs.matching import Found
from integration_signals.syncs.salesforce import mapping
from integration_signals.syncs.salesforce.client import SalesforceClient
from integration_signals.syncs.salesforce.settings import sync_config
from integration_signals.syncs.salesforce.shapes import (
    bulk_id,
    bulk_results,
    bulk_rows,
    query_hits,
    query_next,
    save_results,
)

DEPLOY_HINT = "deploy force-app/ with `sf project deploy start --source-dir force-app`"


def _bulk(sf: Any) -> Any:
    """simple-salesforce's Bulk API 2.0 client for Account (create, upload, close, poll)."""
    return sf.bulk2.Account._client


class SalesforceSink:
    """The Salesforce destination's sink (see ``syncs.contract.Sink``)."""

    name = "salesforce"

    def __init__(
        self,
        config: Config,
        settings: Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cfg = sync_config(config)
        self.fields = mapping.field_map(config)
        self.client = SalesforceClient(settings, config.syncs, sleep=sleep)
        self._sleep = sleep
        self.write_calls = 0
        self.bulk_jobs: list[str] = []
        # Set by the runner: remember (job id) or forget (None) an asynchronous job.
        self.checkpoint: Callable[[str | None], None] | None = None

    @property
    def api_calls(self) -> int:
        return self.client.api_calls

    def usage(self) -> dict[str, object]:
        return {
            **self.client.usage,
            "bulk_jobs": len(self.bulk_jobs),
            "relogins": self.client.relogins,
        }

    # ---------------------------------------------------------------- schema
    def check_fields(self, fields: Iterable[str]) -> None:
        describe = self.client.call(lambda sf: cast(Any, sf).Account.describe())
        by_name = {f["name"]: f for f in describe.get("fields", [])}
        missing = sorted(f for f in fields if f not in by_name)
        read_only = sorted(f for f in fields if f in by_name and not by_name[f].get("updateable"))
        if missing:
            raise MissingFields(
                f"Salesforce Account lacks the fields {', '.join(missing)}; {DEPLOY_HINT}",
                fields=missing,
                destination=self.name,
            )
        if read_only:
            raise MissingFields(
                f"Salesforce Account fields {', '.join(read_only)} are not updateable for the"
                " integration user; grant edit access in its permission set",
                fields=read_only,
                destination=self.name,
            )

    def prepare(self, fields: Iterable[str]) -> None:
        """Describe Account before writing: a missing field would fail every record."""
        self.check_fields(fields)

    def check_task_fields(self) -> None:
        describe = self.client.call(lambda sf: cast(Any, sf).Task.describe())
        names = {f["name"] for f in describe.get("fields", [])}
        if mapping.TASK_EXTERNAL_ID not in names:
            raise MissingFields(
                f"Salesforce Task lacks the field {mapping.TASK_EXTERNAL_ID} that playbook"
                f" tasks are written by; {DEPLOY_HINT}",
                fields=[mapping.TASK_EXTERNAL_ID],
                destination=self.name,
            )

    def write_tasks(self, changes: Sequence[RecordChange]) -> Iterator[list[RecordResult]]:
        """Upsert playbook tasks as Salesforce Tasks by our task id (an external id),
        so a task is never created twice, even when a run is retried after a crash.
        ``record_id`` is ``task:<id>``; every planned task is sent whole."""
        for batch in chunks(changes, self.cfg.batch_size):
            yield write_isolating(batch, self._upsert_tasks)

    def _upsert_tasks(self, batch: Sequence[RecordChange]) -> list[RecordResult]:
        records = []
        for c in batch:
            values = {f: (new or None) for f, (_old, new) in c.changes.items()}
            records.append(
                {
                    "attributes": {"type": "Task"},
                    mapping.TASK_EXTERNAL_ID: c.record_id.removeprefix("task:"),
                    **values,
                }
            )
        self.write_calls += 1
        path = f"composite/sobjects/Task/{mapping.TASK_EXTERNAL_ID}"
        saved = self.client.call(
            lambda sf: sf.restful(
                path, method="PATCH", json={"allOrNone": False, "records": records}
            )
        )
        return save_results(saved, batch, what="the Task upsert")

    # ---------------------------------------------------------------- matching
    def find_by_domain(self, domains: Sequence[str]) -> dict[str, list[str]]:
        """Accounts whose Website normalises to one of ``domains``. Salesforce compares
        raw strings, so ask for every Website containing the domain (LIKE is
        case-insensitive) and keep exact matches after normalising on our side."""
        wanted = set(domains)
        found: dict[str, set[str]] = {}
        problems: dict[str, str] = {}
        ordered = sorted(wanted)
        for start in range(0, len(ordered), self.cfg.domain_query_chunk):
            part = ordered[start : start + self.cfg.domain_query_chunk]
            where = " OR ".join(format_soql("Website LIKE '%{:like}%'", d) for d in part)
            soql = f"SELECT Id, Website FROM Account WHERE {where}"
            answer: Any = self.client.call(lambda sf, q=soql: sf.query(q))
            while True:
                hits, no_id, problem = query_hits(answer)
                for record_id, website in hits:
                    domain = normalize_domain(website) if isinstance(website, str) else None
                    if domain in wanted:
                        found.setdefault(domain, set()).add(record_id)
                for website in no_id:
                    domain = normalize_domain(website) if isinstance(website, str) else None
                    if domain in wanted:
                        problems.setdefault(domain, "Salesforce answered a record without an Id")
                next_url, more_problem = query_next(answer)
                problem = problem or more_problem
                if problem:  # which domains it concerns is unknown: none of them is trusted
                    for domain in part:
                        problems.setdefault(domain, problem)
                if next_url is None:
                    break
                answer = self.client.call(
                    lambda sf, u=next_url: sf.query_more(u, identifier_is_url=True)
                )
        return Found({d: sorted(ids) for d, ids in found.items()}, problems)

    # ---------------------------------------------------------------- writing
    def write_batches(self, changes: Sequence[RecordChange]) -> Iterator[list[RecordResult]]:
        if len(changes) > self.cfg.bulk_threshold:
            yield self._bulk(changes)
            return
        for batch in chunks(changes, self.cfg.batch_size):
            yield write_isolating(batch, self._collection)

    def _collection(self, batch: Sequence[RecordChange]) -> list[RecordResult]:
        payload = {
            "allOrNone": False,
            "records": [
                {
                    "attributes": {"type": "Account"},
                    "id": c.record_id,
                    **mapping.to_rest(c.new_values, self.fields),
                }
                for c in batch
            ],
        }
        self.write_calls += 1
        saved = self.client.call(
            lambda sf: sf.restful("composite/sobjects", method="PATCH", json=payload)
        )
        # SaveResults come back in request order; a failed one carries no id.
        return save_results(saved, batch, what="sObject Collections")

    def _csv(self, changes: Sequence[RecordChange]) -> str:
        columns = sorted({f for c in changes for f in c.changes})
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["Id", *columns])
        for c in changes:
            values = c.new_values
            writer.writerow([c.record_id, *(mapping.to_csv_cell(values.get(f)) for f in columns)])
        return out.getvalue()

    def _bulk(self, changes: Sequence[RecordChange]) -> list[RecordResult]:
        """One Bulk API 2.0 update job: create, upload CSV, close, poll, read results.
        The job id is checkpointed before the upload, so a run killed while Salesforce
        processes it lets the next run read its results instead of writing it again."""
        client = self.client
        job = client.call(lambda sf: _bulk(sf).create_job(Operation.update))
        job_id = job["id"]
        self.bulk_jobs.append(job_id)
        self.write_calls += 1
        if self.checkpoint is not None:
            self.checkpoint(job_id)
        data = self._csv(changes)
        client.call(lambda sf: _bulk(sf).upload_job_data(job_id, data))
        client.call(lambda sf: _bulk(sf).close_job(job_id))
        self._wait(job_id)
        results = self._bulk_results(job_id, changes)
        if self.checkpoint is not None:
            self.checkpoint(None)
        return results

    def _wait(self, job_id: str) -> str:
        deadline = time.monotonic() + self.cfg.bulk_timeout_seconds
        while True:
            info = self.client.call(lambda sf: _bulk(sf).get_job(job_id, False))
            state = str(info.get("state"))
            if state == "JobComplete":
                return state
            if state in ("Failed", "Aborted"):
                raise FatalSyncError(
                    f"Salesforce Bulk job {job_id} ended {state}:"
                    f" {info.get('errorMessage') or 'no message'}",
                    destination=self.name,
                )
            if state == "Open":  # never closed: the upload did not finish; drop it
                self.client.call(lambda sf: _bulk(sf).abort_job(job_id, False))
                return "Aborted"
            if time.monotonic() > deadline:
                raise RetriableError(
                    f"Salesforce Bulk job {job_id} still {state} after"
                    f" {self.cfg.bulk_timeout_seconds:.0f}s; the next run reads it",
                    destination=self.name,
                )
            self._sleep(self.cfg.bulk_poll_seconds)

    def resume(self, token: str) -> list[tuple[str, dict[str, str]]]:
        """The writes an interrupted run's Bulk job confirmed: (record id, field ->
        value) from its successful results, which echo the uploaded columns."""
        try:
            state = self._wait(token)
        except FatalSyncError:
            return []  # the job failed or was aborted: nothing was written by it
        if state != "JobComplete":
            return []
        text = self.client.call(lambda sf: _bulk(sf).get_ingest_results(token, "successfulResults"))
        confirmed = []
        rows, _problem = bulk_rows(text)  # an odd answer confirms nothing: rewritten
        for row in rows:
            record_id = bulk_id(row)
            values = {
                name: ("" if cell == "#N/A" else cell)
                for name, cell in row.items()
                if name not in ("Id", "sf__Id", "sf__Created") and cell != ""
            }
            if record_id:
                confirmed.append((record_id, values))
        return confirmed

    def _bulk_results(self, job_id: str, changes: Sequence[RecordChange]) -> list[RecordResult]:
        def text(kind: str) -> Any:
            return self.client.call(lambda sf: _bulk(sf).get_ingest_results(job_id, kind))

        return bulk_results(text("successfulResults"), text("failedResults"), changes)
