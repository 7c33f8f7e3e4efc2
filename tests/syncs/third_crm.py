"""A third CRM, defined entirely in the tests: "TinyCRM", its fake HTTP API on
127.0.0.1 (an ephemeral port, real sockets) and a destination for it with the same
skeleton as ``syncs/salesforce/`` and ``syncs/hubspot/`` (settings, client, sink).

It proves the skeleton is closed: registered with ``syncs.registry.register``, it
syncs through ``run_sync``, is scheduled by ``schedules.jobs.build_jobs`` and has its
secret redacted, with no edit outside the tests.

The fake API:
- ``POST /v1/records/search`` ``{"domains": [...]}`` -> ``{"results": [{"id", "domain"}]}``
- ``POST /v1/records/batch`` ``{"records": [{"id", "fields"}]}`` -> ``{"results":
  [{"id", "ok", "error"?}]}``; an unknown record id fails alone.
- A wrong bearer token -> 401 whose body echoes the token it got (so redaction has
  something to remove).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from integration_signals.config import Config, Settings, check_field_map
from integration_signals.store.accounts import normalize_domain
from integration_signals.syncs.contract import (
    Destination,
    RecordChange,
    RecordResult,
    Sink,
    chunks,
    load_section,
)
from integration_signals.syncs.exceptions import FatalSyncError, MissingFields

SEARCH = "/v1/records/search"
BATCH = "/v1/records/batch"
FIELDS = ("tiny_score", "tiny_band", "tiny_reason")

# ---------------------------------------------------------------- the fake API


@dataclass
class FakeTinyCrm:
    """The fake: records by id, the token it accepts, and a log of every request."""

    token: str
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def add(self, record_id: str, domain: str | None = None) -> None:
        self.records[record_id] = {"domain": domain, "fields": {}}

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple:
        """Request -> (status, JSON body); logged first."""
        self.log.append({"method": method, "path": path, "body": body})
        got = headers.get("authorization", "").removeprefix("Bearer ")
        if got != self.token:
            return 401, {"message": f"token {got} is not valid"}
        if (method, path) == ("POST", SEARCH):
            wanted = set(body["domains"])
            found = [
                {"id": rid, "domain": r["domain"]}
                for rid, r in sorted(self.records.items())
                if r["domain"] in wanted
            ]
            return 200, {"results": found}
        if (method, path) == ("POST", BATCH):
            results = []
            for item in body["records"]:
                record = self.records.get(item["id"])
                if record is None:
                    results.append({"id": item["id"], "ok": False, "error": "no such record"})
                    continue
                unknown = sorted(set(item["fields"]) - set(FIELDS))
                if unknown:
                    return 400, {"message": f"unknown field {unknown[0]}", "fields": unknown}
                record["fields"].update(item["fields"])
                results.append({"id": item["id"], "ok": True})
            return 200, {"results": results}
        return 404, {"message": f"no route {method} {path}"}

    def writes(self) -> list[dict[str, Any]]:
        return [e for e in self.log if e["path"] == BATCH]

    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer = fake.handle("POST", self.path, headers, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# ---------------------------------------------------------------- the destination


class TinyCrmSyncConfig(BaseModel):
    """The ``[syncs.tinycrm]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: dict[str, str] = {"score": "tiny_score", "band": "tiny_band", "reason": "tiny_reason"}
    batch_size: int = Field(2, ge=1, le=50)
    record_url: str = ""

    @field_validator("fields")
    @classmethod
    def _known_values(cls, value: dict[str, str]) -> dict[str, str]:
        return check_field_map(value)


class TinyCrmEnv(BaseSettings):
    """``TINYCRM_API_URL`` and ``TINYCRM_TOKEN`` (the secret)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    tinycrm_api_url: str | None = None
    tinycrm_token: SecretStr | None = None


def sync_config(config: Config) -> TinyCrmSyncConfig:
    return load_section(config, "tinycrm", TinyCrmSyncConfig)


class TinyCrmClient:
    """JSON over urllib; counts every request."""

    def __init__(self, env: TinyCrmEnv) -> None:
        assert env.tinycrm_api_url and env.tinycrm_token
        self.base = env.tinycrm_api_url.rstrip("/")
        self._token = env.tinycrm_token.get_secret_value()
        self.calls = 0

    def post(self, path: str, body: Any) -> dict[str, Any]:
        self.calls += 1
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode(),
            headers={"authorization": f"Bearer {self._token}", "content-type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            answer = json.loads(exc.read() or b"{}")
            if exc.code == 400 and answer.get("fields"):
                raise MissingFields(
                    f"TinyCRM lacks {', '.join(answer['fields'])}",
                    fields=answer["fields"],
                    destination="tinycrm",
                ) from None
            # The vendor's message as it came: redaction is the runner's job.
            raise FatalSyncError(
                f"TinyCRM answered {exc.code}: {answer.get('message')}", destination="tinycrm"
            ) from None


class TinyCrmSink:
    """The TinyCRM destination's sink (see ``syncs.contract.Sink``)."""

    name = "tinycrm"

    def __init__(self, config: Config, settings: Settings) -> None:
        self.cfg = sync_config(config)
        self.fields = tiny_field_map(config)
        self.client = TinyCrmClient(settings.env(TinyCrmEnv))
        self.write_calls = 0
        self.checkpoint: Callable[[str | None], None] | None = None

    @property
    def api_calls(self) -> int:
        return self.client.calls

    def check_fields(self, fields: Iterable[str]) -> None:
        missing = sorted(set(fields) - set(FIELDS))
        if missing:
            raise MissingFields(
                f"TinyCRM lacks {', '.join(missing)}", fields=missing, destination=self.name
            )

    def prepare(self, fields: Iterable[str]) -> None:
        self.check_fields(fields)

    def find_by_domain(self, domains: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for record in self.client.post(SEARCH, {"domains": list(domains)})["results"]:
            domain = normalize_domain(record["domain"])
            if domain is not None:
                found.setdefault(domain, []).append(record["id"])
        return found

    def write_batches(self, changes: Sequence[RecordChange]) -> Iterator[list[RecordResult]]:
        for batch in chunks(changes, self.cfg.batch_size):
            self.write_calls += 1
            body = {"records": [{"id": c.record_id, "fields": c.new_values} for c in batch]}
            answer = self.client.post(BATCH, body)
            yield [RecordResult(r["id"], r["ok"], r.get("error")) for r in answer["results"]]

    def usage(self) -> dict[str, object]:
        return {}

    def resume(self, token: str) -> list[tuple[str, dict[str, str]]]:
        return []  # TinyCRM has no asynchronous jobs


def tiny_field_map(config: Config) -> dict[str, str]:
    return {k: v for k, v in sync_config(config).fields.items() if v}


def _open(config: Config, settings: Settings) -> Sink:
    return TinyCrmSink(config, settings)


def _has_credentials(settings: Settings) -> bool:
    env = settings.env(TinyCrmEnv)
    return bool(env.tinycrm_api_url and env.tinycrm_token)


DESTINATION = Destination(
    name="tinycrm",
    label="TinyCRM",
    target="TinyCRM records",
    credentials_hint="set TINYCRM_API_URL and TINYCRM_TOKEN",
    settings_model=TinyCrmSyncConfig,
    env_model=TinyCrmEnv,
    has_credentials=_has_credentials,
    field_map=tiny_field_map,
    open_sink=_open,
    # No accounts column: the record id is traits["tinycrm_id"], else the domain.
    record_url=lambda config, settings: sync_config(config).record_url or None,
)
