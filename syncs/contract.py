"""The contract every destination shares: computed values per CRM record, the plan
(a diff against what this tool last confirmed writing), batching, and the result a sink
returns for every record. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import BaseSettings

from integration_signals.config import (
    Config,
    ConfigError,
    Settings,
    deep_merge,
    error_line,
    register_secret_model,
)
from integration_signals.syncs.exceptions import BatchRejected

REASON_MAX = 255
SectionModel = TypeVar("SectionModel", bound=BaseModel)
BAND_ORDER = {"healthy": 0, "watch": 1, "at_risk": 2}


@dataclass(frozen=True, slots=True)
class AccountValues:
    """One product account's current results, as scoring and signals left them."""

    account_id: str
    score: int
    band: str
    segments: tuple[str, ...] = ()
    active_integrations: int = 0
    reason: str | None = None
    scored_at: datetime | None = None
    mrr: float | None = None


@lru_cache(maxsize=4096)
def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _weighted_score(accounts: Sequence[AccountValues]) -> int:
    weights = [max(a.mrr or 0.0, 0.0) for a in accounts]
    total = sum(weights)
    if total <= 0:
        weights, total = [1.0] * len(accounts), float(len(accounts))
    value = sum(a.score * w for a, w in zip(accounts, weights, strict=True)) / total
    return max(0, min(100, int(value + 0.5)))


def _reason(text: str | None) -> str:
    if not text:
        return ""
    return text.replace("\r", " ").replace("\n", " ")[:REASON_MAX]


def record_values(accounts: Sequence[AccountValues]) -> dict[str, str]:
    """The values one CRM record gets, as canonical strings (the ledger's format).

    Several product accounts (workspaces of one customer) may share a record; they get
    one value each so they never overwrite each other: the MRR-weighted score, the
    worst band, the union of segments, the sum of active integrations, the reason of
    the weakest account and the latest scoring time.
    """
    if not accounts:
        raise ValueError("a record needs at least one account")
    if len(accounts) == 1:  # the common case, without the aggregation
        a = accounts[0]
        segments = sorted(set(a.segments))
        return {
            "score": str(max(0, min(100, a.score))),
            "band": a.band,
            "segments": ";".join(segments),
            "expansion_ready": "true" if "expansion-ready" in segments else "false",
            "active_integrations": str(max(a.active_integrations, 0)),
            "reason": _reason(a.reason),
            "scored_at": _iso(a.scored_at),
        }
    ordered = sorted(accounts, key=lambda a: (a.score, a.account_id))
    band = max((a.band for a in accounts), key=lambda b: BAND_ORDER.get(b, 3))
    segments = sorted({s for a in accounts for s in a.segments})
    reason = next((a.reason for a in ordered if a.reason), None) or ""
    scored = [a.scored_at for a in accounts if a.scored_at is not None]
    return {
        "score": str(_weighted_score(accounts)),
        "band": band,
        "segments": ";".join(segments),
        "expansion_ready": "true" if "expansion-ready" in segments else "false",
        "active_integrations": str(sum(max(a.active_integrations, 0) for a in accounts)),
        "reason": _reason(reason),
        "scored_at": _iso(max(scored) if scored else None),
    }


def to_fields(values: Mapping[str, str], field_map: Mapping[str, str]) -> dict[str, str]:
    """Value names -> the destination's field names; a value mapped to "" is left out."""
    return {name: values[key] for key, name in field_map.items() if name and key in values}


@dataclass(frozen=True)
class RecordChange:
    """What one record gets in this run: the fields that differ from the ledger."""

    record_id: str
    account_ids: tuple[str, ...]
    changes: dict[str, tuple[str | None, str]]  # field -> (last written or None, new)

    @property
    def new_values(self) -> dict[str, str]:
        return {f: new for f, (_old, new) in self.changes.items()}


@dataclass(frozen=True)
class RecordResult:
    """The outcome of writing one record: confirmed, or refused with the CRM's message."""

    record_id: str
    ok: bool
    error: str | None = None


@dataclass
class Plan:
    """The diff between computed values and the ledger."""

    changes: list[RecordChange] = field(default_factory=list)
    unchanged: int = 0
    band_changes: int = 0  # records whose band differs from the band last written there
    band_known: int = 0  # records with a band in the ledger

    @property
    def planned(self) -> int:
        return len(self.changes)

    def band_guard(self, threshold: float) -> str | None:
        """Why the run must stop (too many band changes), or None. A destination's first
        sync (no band in the ledger yet) is exempt."""
        if self.band_known == 0:
            return None
        share = self.band_changes / self.band_known
        if share > threshold:
            return (
                f"{self.band_changes} of {self.band_known} records ({share:.0%}) would change"
                f" band, more than the {threshold:.0%} guard (syncs.band_change_guard); check"
                " the event feed and scores, then rerun with --force if the change is real"
            )
        return None


def make_plan(
    records: Mapping[str, tuple[tuple[str, ...], dict[str, str]]],
    ledger: Mapping[str, Mapping[str, str | None]],
    *,
    band_field: str | None,
    full: bool = False,
) -> Plan:
    """``records``: record id -> (account ids, field -> value); ``ledger``: record id ->
    field -> value last confirmed written. ``full`` ignores the ledger for what to write
    (the band guard still compares with it)."""
    plan = Plan()
    for record_id in sorted(records):
        account_ids, values = records[record_id]
        written = ledger.get(record_id, {})
        if band_field and written.get(band_field) is not None:
            plan.band_known += 1
            if written.get(band_field) != values.get(band_field):
                plan.band_changes += 1
        changes = {
            f: (written.get(f), v)
            for f, v in values.items()
            if full or f not in written or written[f] != v
        }
        if changes:
            plan.changes.append(RecordChange(record_id, account_ids, changes))
        else:
            plan.unchanged += 1
    return plan


def chunks(items: Sequence[RecordChange], size: int) -> Iterator[list[RecordChange]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class Sink(Protocol):
    """One destination's writer. ``write_batches`` yields a result for every record of
    each batch as soon as the CRM confirmed it, so the runner can record it at once."""

    name: str
    write_calls: int
    # Set by the runner before writing: called with an asynchronous job's id once it
    # exists and with None once its results are recorded (Salesforce Bulk API 2.0).
    checkpoint: Callable[[str | None], None] | None

    @property
    def api_calls(self) -> int:
        """HTTP requests made so far (every attempt counts)."""
        ...

    def check_fields(self, fields: Iterable[str]) -> None:
        """Raise ``MissingFields`` naming every mapped field the destination lacks."""

    def prepare(self, fields: Iterable[str]) -> None:
        """Before the first write: refuse (``MissingFields``) when fields are missing, by
        asking the CRM up front or by naming them all when the first write is refused."""

    def find_by_domain(self, domains: Sequence[str]) -> dict[str, list[str]]:
        """Normalised domain -> ids of the CRM records whose domain normalises to it."""
        ...

    def write_batches(self, changes: Sequence[RecordChange]) -> Iterator[list[RecordResult]]:
        """Write the changes; one list of results per confirmed batch."""
        ...

    def usage(self) -> dict[str, object]:
        """What the destination said about API usage (limits, remaining)."""
        ...

    def resume(self, token: str) -> list[tuple[str, dict[str, str]]]:
        """The writes an asynchronous job of an interrupted run confirmed, as (record id,
        field -> value), waiting for the job to finish when needed."""
        ...


def write_concurrently(
    batches: Iterable[Sequence[RecordChange]],
    write: Callable[[Sequence[RecordChange]], list[RecordResult]],
    *,
    workers: int,
) -> Iterator[list[RecordResult]]:
    """Write batches with up to ``workers`` requests in flight, yielding each batch's
    results as soon as it is confirmed. After a failure no new batch starts, but batches
    already in flight are still yielded (their writes happened) before the error is
    raised, so the ledger misses nothing the CRM confirmed."""
    if workers <= 1:
        for batch in batches:
            yield write(batch)
        return
    pending: set[Future[list[RecordResult]]] = set()
    source = iter(batches)
    error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sync-write") as pool:

        def fill() -> None:
            while error is None and len(pending) < workers:
                batch = next(source, None)
                if batch is None:
                    return
                pending.add(pool.submit(write, batch))

        fill()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                pending.discard(future)
                try:
                    results = future.result()
                except BaseException as exc:  # re-raised below, after the others land
                    error = error or exc
                    continue
                yield results
            fill()
    if error is not None:
        raise error


def write_isolating(
    batch: Sequence[RecordChange],
    write: Callable[[Sequence[RecordChange]], list[RecordResult]],
) -> list[RecordResult]:
    """Write a batch; when the CRM refuses the whole request for a record's content,
    split it until the refused record fails alone and the rest lands."""
    try:
        return write(batch)
    except BatchRejected as exc:
        if len(batch) == 1:
            return [RecordResult(batch[0].record_id, False, exc.message)]
        mid = len(batch) // 2
        return write_isolating(batch[:mid], write) + write_isolating(batch[mid:], write)


class TaskSink(Protocol):
    """A sink that also writes playbook tasks as CRM records (``PlaybookTasks``)."""

    def check_task_fields(self) -> None:
        """Raise ``MissingFields`` when the CRM lacks a field the tasks need."""

    def write_tasks(self, changes: Sequence[RecordChange]) -> Iterator[list[RecordResult]]:
        """Create or update the tasks; one list of results per confirmed batch."""
        ...


@dataclass(frozen=True)
class PlaybookTasks:
    """Optional capability: open playbook tasks written as CRM records (Salesforce Tasks
    on the Account), diffed against the ledger like fields. The runner asks every
    destination for it; the destination's sink must then be a ``TaskSink``."""

    enabled: Callable[[Config], bool]  # the destination's config switch
    # (task row, CRM record id of its account) -> field -> value
    values: Callable[[Mapping[str, Any], str], dict[str, str]]


def validate_section(config: Config, name: str, model: type[SectionModel]) -> SectionModel:
    """The ``[syncs.<name>]`` table over the model's defaults (a partial ``fields`` table
    merges with them, as it does with defaults.toml's), typed; raises ValidationError."""
    return model.model_validate(deep_merge(model().model_dump(), config.syncs.section(name)))


def load_section(config: Config, name: str, model: type[SectionModel]) -> SectionModel:
    """The ``[syncs.<name>]`` table typed by the destination's settings model.

    The CLI root and ``signals serve`` already refused a bad table at start-up (with
    the file's name); this check is for callers that built their config themselves."""
    try:
        return validate_section(config, name, model)
    except ValidationError as exc:
        raise ConfigError(error_line("in use", exc, prefix=("syncs", name))) from None


def _no_record_url(config: Config, settings: Settings) -> str | None:
    return None


@dataclass(frozen=True)
class Destination:
    """Everything the rest of the project knows about one CRM. A destination is one
    folder ``syncs/<name>/`` whose ``__init__`` exposes ``DESTINATION``; the registry
    finds it, and the runner, the schedules, the CLI and the bot's links ask it.

    ``settings_model`` types its ``[syncs.<name>]`` TOML table; ``env_model`` declares
    its environment variables (a pydantic-settings model read via ``Settings.env``):
    its ``SecretStr`` fields are the secrets every report is redacted of.
    """

    name: str
    label: str  # "Salesforce"
    target: str  # what it writes, for help texts: "Salesforce Account fields"
    credentials_hint: str
    settings_model: type[BaseModel]
    env_model: type[BaseSettings]
    has_credentials: Callable[[Settings], bool]
    field_map: Callable[[Config], dict[str, str]]
    open_sink: Callable[[Config, Settings], Sink]
    # The accounts column holding this CRM's record id; None: the account's
    # ``traits["<name>_id"]``, else matching by domain alone.
    id_column: str | None = None
    record_id: Callable[[str], str] = str  # the CRM's canonical form of a record id
    # A link to one record, ``{id}`` where the record id goes (the bot's CRM links).
    record_url: Callable[[Config, Settings], str | None] = _no_record_url
    playbook_tasks: PlaybookTasks | None = None
    # Optional capability: create the fields the sync writes in the CRM (idempotent);
    # returns a report with ``as_json()``. `signals provision <name>` calls it.
    provision: Callable[[Config, Settings], Any] | None = None

    def __post_init__(self) -> None:
        # Its secrets are redacted from every record and log line (Settings.redact).
        register_secret_model(self.env_model)

    @property
    def id_key(self) -> str:
        """Where an account keeps this CRM's record id: a column or a traits key."""
        return self.id_column or f"{self.name}_id"

    def sync_config(self, config: Config) -> Any:
        """The ``[syncs.<name>]`` table, typed by ``settings_model``."""
        return load_section(config, self.name, self.settings_model)

    def secrets(self, settings: Settings) -> list[str]:
        """The secret values among this destination's environment variables."""
        env = settings.env(self.env_model)
        values = [getattr(env, name) for name in type(env).model_fields]
        return [v.get_secret_value() for v in values if isinstance(v, SecretStr)]

    def tasks_enabled(self, config: Config) -> bool:
        return self.playbook_tasks is not None and self.playbook_tasks.enabled(config)
