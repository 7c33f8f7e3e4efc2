"""What ``/openapi.json`` and ``/docs`` say about the HTTP API of `signals serve`.

The ingest routes read their bodies themselves (streamed, size-capped, gzip, NDJSON),
so FastAPI cannot infer a schema from them: their request bodies, auth and every
answer (200 and the 400 / 401 / 413 / 415 / 500 refusals) are declared here and given
to the routes as ``openapi_extra`` and ``responses``.

``/docs`` is a page rendered on the server from the same OpenAPI document, not Swagger
UI: Swagger UI is JavaScript loaded from a CDN by default, needs an inline script that
the dashboard's Content-Security-Policy forbids, and a bundled copy would be a
multi-megabyte dependency for three endpoints. This page needs no script and no
network, and cannot drift from ``/openapi.json``, which any OpenAPI tool can load.
"""

from __future__ import annotations

import html
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from integration_signals.store.events import EVENT_TYPES

API_PATHS = ("/v1/events", "/v1/batch", "/healthz", "/metrics")

DESCRIPTION = """\
Events in, health signals out. Send integration events to `POST /v1/events` (our
contract) or point a Segment library at this server (`POST /v1/batch`). Every event
goes through the same ingest as `signals ingest`: each record is accepted, a duplicate
(same `event_id`, counted once whatever the order) or quarantined with its reason.
Refused requests store nothing. Ingest is idempotent, so retrying after a network
error or a 500 double-counts nothing.

Authentication: the token `SIGNALS_INGEST_TOKEN` set where `signals serve` runs; unset,
the API refuses every request."""


# ---------------------------------------------------------------- answer models


class Refusal(BaseModel):
    """A refused request: nothing was stored."""

    error: str = Field(description="What went wrong and what to do, in one sentence.")
    code: str = Field(
        description="unauthorized, ingest_disabled, too_large, bad_json, empty, bad_gzip,"
        " unsupported_encoding, bad_batch or server_error."
    )
    message: str = Field(description="The same sentence (for clients that read `message`).")


class QuarantineReason(BaseModel):
    line: int = Field(description="Position of the record in the body (1-based).")
    reason: str


class AfterIngest(BaseModel):
    accounts: int = Field(description="Accounts the body touched.")
    queued: int = Field(0, description="Accounts queued for rescoring (seconds later).")


class IngestAnswer(BaseModel):
    """What happened to each record of the body."""

    accepted: int
    duplicates: int = Field(description="Records whose `event_id` was already stored.")
    quarantined: int = Field(description="Records that broke a rule (see `reasons`).")
    new_accounts: int = Field(description="Stub accounts created for unknown account ids.")
    new_integrations: list[str] = Field(description="Integrations added to the catalog.")
    accounts_touched: int
    quarantine_reasons: dict[str, int] = Field(description="Reason -> count.")
    quarantine_samples: list[dict[str, Any]]
    reasons: list[QuarantineReason] = Field(description="The first quarantined records.")
    after_ingest: AfterIngest


class AccountsImported(BaseModel):
    imported: int
    created: int
    updated: int
    quarantined: int
    problems: list[dict[str, Any]]


class SegmentAnswer(IngestAnswer):
    """Segment's ``success`` plus what happened to each message."""

    success: bool = True
    accounts: AccountsImported = Field(description="Accounts from `group` calls.")
    ignored: dict[str, int] = Field(
        description="Messages not stored, by kind (identify, page, unknown track names...)."
    )


class Health(BaseModel):
    """The process, its database and its jobs."""

    status: Literal["ok", "degraded", "down"]
    database: dict[str, Any] = Field(description='`{"url", "ok", "error"?}`')
    jobs: dict[str, Any] = Field(
        description="Job id -> last_run, last_success_at, next_run_at, last_error, stale, ..."
    )
    stale: list[str] = Field(description="Jobs that have not succeeded for 3 intervals.")
    slack: str
    rescore: dict[str, Any]
    host: str | None


# ---------------------------------------------------------------- examples

EVENT_EXAMPLE = {
    "event_id": "e-000123",
    "type": "sync.succeeded",
    "occurred_at": "2026-11-20T08:00:00Z",
    "account_id": "acme",
    "integration": "salesforce",
    "connection_id": "acme-sf-1",
    "records": 15000,
    "api_calls": 320,
    "trigger": "scheduled",
}
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Event",
    "required": ["event_id", "type", "occurred_at", "account_id", "integration"],
    "properties": {
        "event_id": {"type": "string", "maxLength": 256, "description": "Idempotency key."},
        "type": {"type": "string", "enum": sorted(EVENT_TYPES)},
        "occurred_at": {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 (naive means UTC), at most 24 h ahead.",
        },
        "account_id": {"type": "string"},
        "integration": {"type": "string", "description": "Catalog key, e.g. salesforce."},
        "connection_id": {"type": "string", "description": "Default account_id:integration."},
        "records": {"type": "integer", "minimum": 0},
        "bytes": {"type": "integer", "minimum": 0},
        "api_calls": {"type": "integer", "minimum": 0},
        "trigger": {"type": "string", "enum": ["scheduled", "webhook", "manual"]},
        "error": {"type": ["string", "null"], "description": "Error code of a failure."},
        "properties": {"type": "object"},
    },
}
ANSWER_EXAMPLE = {
    "accepted": 2,
    "duplicates": 1,
    "quarantined": 1,
    "new_accounts": 0,
    "new_integrations": [],
    "accounts_touched": 1,
    "quarantine_reasons": {"type 'nope' is not a known event type": 1},
    "quarantine_samples": [],
    "reasons": [{"line": 4, "reason": "type 'nope' is not a known event type"}],
    "after_ingest": {"accounts": 1, "queued": 1},
}


def _refusal(description: str, *examples: tuple[str, str]) -> dict[str, Any]:
    return {
        "model": Refusal,
        "description": description,
        "content": {
            "application/json": {
                "examples": {
                    code: {"value": {"error": text, "code": code, "message": text}}
                    for code, text in examples
                }
            }
        },
    }


def _refusals(auth: str) -> dict[int | str, dict[str, Any]]:
    return {
        400: _refusal(
            "The body is not what the endpoint reads; nothing was stored.",
            ("bad_json", "line 2 is not valid JSON (unexpected character); nothing was stored"),
            ("empty", "the body is empty: send a JSON array of events or NDJSON"),
        ),
        401: _refusal(
            "Missing or wrong credentials (answered with `WWW-Authenticate: Bearer`).",
            ("unauthorized", f"missing credentials: send {auth}"),
            (
                "ingest_disabled",
                "the ingest API is disabled: set SIGNALS_INGEST_TOKEN where `signals serve` runs",
            ),
        ),
        413: _refusal(
            "The body (or its gunzipped form) is over `[serve] max_body_bytes`.",
            (
                "too_large",
                "the body is larger than 5,000,000 bytes ([serve] max_body_bytes);"
                " send smaller batches",
            ),
        ),
        415: _refusal(
            "A Content-Encoding other than gzip.",
            ("unsupported_encoding", "Content-Encoding 'br': use gzip or none"),
        ),
        500: _refusal(
            "The server failed; retry (ingest is idempotent).",
            (
                "server_error",
                "the server failed (OperationalError: ...); retry: ingest is idempotent",
            ),
        ),
    }


BEARER = "Authorization: Bearer $SIGNALS_INGEST_TOKEN"

EVENTS_DOC: dict[str, Any] = {
    "summary": "Ingest events",
    "description": (
        "A JSON array of events or NDJSON (one event per line), optionally gzip-compressed"
        " (`Content-Encoding: gzip`). Each record is accepted, a duplicate or quarantined;"
        " the answer counts all three and the accounts the body touched are rescored"
        " within seconds.\n\n"
        '```\ncurl -H "Authorization: Bearer $SIGNALS_INGEST_TOKEN" --data-binary'
        " @events.jsonl http://localhost:8000/v1/events\n```"
    ),
    "responses": {
        200: {
            "model": IngestAnswer,
            "description": "Stored: the count of each outcome.",
            "content": {"application/json": {"example": ANSWER_EXAMPLE}},
        },
        **_refusals(BEARER),
    },
    "openapi_extra": {
        "security": [{"bearerAuth": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "array", "items": EVENT_SCHEMA},
                    "example": [EVENT_EXAMPLE],
                },
                "application/x-ndjson": {
                    "schema": {"type": "string", "description": "One event object per line."},
                    "example": json.dumps(EVENT_EXAMPLE) + "\n",
                },
            },
        },
    },
}

SEGMENT_MESSAGE = {
    "type": "track",
    "event": "Integration Sync Succeeded",
    "messageId": "m-1",
    "timestamp": "2026-11-20T08:00:00Z",
    "context": {"groupId": "acme"},
    "properties": {"integration": "salesforce", "records": 15000},
}

BATCH_DOC: dict[str, Any] = {
    "summary": "Ingest a Segment batch",
    "description": (
        "Segment's batch API: point any Segment library at this server with"
        " `SIGNALS_INGEST_TOKEN` as its write key (HTTP basic auth user name; a bearer"
        " token works too). `track` calls whose name maps to an event type become events"
        " (`Integration Sync Succeeded` -> `sync.succeeded`; `[serve.segment_events]` adds"
        " names), `group` calls update accounts, anything else is counted in `ignored`."
    ),
    "responses": {
        200: {
            "model": SegmentAnswer,
            "description": "Stored: the count of each outcome, accounts and ignored messages.",
            "content": {
                "application/json": {
                    "example": {
                        "success": True,
                        **ANSWER_EXAMPLE,
                        "accounts": {
                            "imported": 0,
                            "created": 0,
                            "updated": 0,
                            "quarantined": 0,
                            "problems": [],
                        },
                        "ignored": {"identify": 3},
                    }
                }
            },
        },
        **_refusals("the write key (SIGNALS_INGEST_TOKEN) as the HTTP basic auth user name"),
    },
    "openapi_extra": {
        "security": [{"basicAuth": []}, {"bearerAuth": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["batch"],
                        "properties": {
                            "batch": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "description": "A Segment message (track, group, ...).",
                                },
                            },
                            "sentAt": {"type": "string", "format": "date-time"},
                        },
                    },
                    "example": {"batch": [SEGMENT_MESSAGE]},
                }
            },
        },
    },
}

HEALTHZ_DOC: dict[str, Any] = {
    "summary": "Health of the process, its database and jobs",
    "description": (
        "No authentication. 200 while the database answers (`degraded` when a job is"
        " stale), 503 when it does not: point a load balancer or uptime check here."
    ),
    "responses": {
        200: {"model": Health, "description": "The database answers."},
        503: {"model": Health, "description": "The database does not answer."},
    },
}

METRICS_DOC: dict[str, Any] = {
    "summary": "Prometheus metrics",
    "description": (
        "The Prometheus text format: job runs and durations, events by outcome, CRM"
        " records and API calls, Slack answers, open signals and tasks. Same token as"
        " the ingest API (Prometheus: `authorization: {credentials_file: ...}`)."
    ),
    "responses": {
        200: {
            "description": "Metrics in the Prometheus text format.",
            "content": {"text/plain; version=0.0.4": {"schema": {"type": "string"}}},
        },
        401: _refusal(
            "Missing or wrong credentials.",
            ("unauthorized", f"missing credentials: send {BEARER}"),
        ),
    },
    "openapi_extra": {"security": [{"bearerAuth": []}]},
}

SECURITY_SCHEMES = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "`SIGNALS_INGEST_TOKEN`.",
    },
    "basicAuth": {
        "type": "http",
        "scheme": "basic",
        "description": "User name `SIGNALS_INGEST_TOKEN` (Segment's write key), no password.",
    },
}


def with_security(document: dict[str, Any]) -> dict[str, Any]:
    """The generated document plus the security schemes the routes name."""
    document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    return document


# ---------------------------------------------------------------- the /docs page

CSS = """\
body { margin: 0 auto; max-width: 60rem; padding: 1.5rem; color: #1a202c;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; line-height: 1.5; }
h1 { font-size: 1.6rem; margin-bottom: 0.3rem; }
h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #e2e8f0; padding-bottom: .3rem; }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; color: #475569; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88rem; }
pre { background: #f5f7fa; border: 1px solid #e2e8f0; border-radius: 6px; padding: .7rem;
  overflow-x: auto; }
.method { display: inline-block; min-width: 3.5rem; padding: .1rem .4rem; border-radius: 4px;
  color: #fff; font-weight: 600; text-align: center; background: #2b6cb0; }
.method.get { background: #1f8a4c; }
.muted { color: #64748b; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0; }
th, td { text-align: left; vertical-align: top; padding: .3rem .5rem; border-bottom: 1px solid #e2e8f0; }
nav a { margin-right: 1rem; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _prose(text: str) -> str:
    """Paragraphs, ```fenced``` blocks and `code` spans of a description."""
    out = []
    for block in text.split("\n\n"):
        if block.startswith("```"):
            out.append(f"<pre>{_e(block.strip('`').strip())}</pre>")
            continue
        parts = _e(block).split("`")
        out.append(
            "<p>"
            + "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
            + "</p>"
        )
    return "\n".join(out)


def _schema_table(schema: dict[str, Any], components: dict[str, Any]) -> str:
    if "$ref" in schema:
        schema = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
    if schema.get("type") == "array":
        return "<p>An array of:</p>" + _schema_table(schema.get("items", {}), components)
    props = schema.get("properties")
    if not props:
        return f"<p class=muted>{_e(schema.get('description') or schema.get('type', ''))}</p>"
    required = set(schema.get("required", ()))
    rows = []
    for name, prop in props.items():
        kind = prop.get("type") or (prop.get("$ref", "").rsplit("/", 1)[-1]) or "object"
        if "anyOf" in prop:
            kind = " | ".join(
                str(p.get("type", p.get("$ref", "?").rsplit("/", 1)[-1])) for p in prop["anyOf"]
            )
        if "enum" in prop:
            kind = " | ".join(str(v) for v in prop["enum"])
        rows.append(
            f"<tr><td><code>{_e(name)}</code>{' *' if name in required else ''}</td>"
            f"<td>{_e(kind if isinstance(kind, str) else ' | '.join(kind))}</td>"
            f"<td>{_prose(prop.get('description', '')) if prop.get('description') else ''}</td></tr>"
        )
    return (
        "<table><tr><th>field</th><th>type</th><th>meaning</th></tr>" + "".join(rows) + "</table>"
    )


def _examples(media: dict[str, Any]) -> str:
    found = []
    if "example" in media:
        found.append(media["example"])
    found += [e.get("value") for e in media.get("examples", {}).values()]
    return "".join(
        f"<pre>{_e(v if isinstance(v, str) else json.dumps(v, indent=2))}</pre>" for v in found
    )


def render_docs(document: dict[str, Any]) -> str:
    """The whole ``/docs`` page from an OpenAPI document: no script, no external URL."""
    components = document.get("components", {}).get("schemas", {})
    schemes = document.get("components", {}).get("securitySchemes", {})
    info = document.get("info", {})
    sections = []
    nav = []
    for path, methods in document.get("paths", {}).items():
        for method, op in methods.items():
            anchor = f"{method}-{path.strip('/').replace('/', '-')}"
            nav.append(f'<a href="#{anchor}"><code>{_e(method.upper())} {_e(path)}</code></a>')
            parts = [
                f'<h2 id="{anchor}"><span class="method {_e(method)}">{_e(method.upper())}</span>'
                f" <code>{_e(path)}</code> — {_e(op.get('summary', ''))}</h2>",
                _prose(op.get("description", "")),
            ]
            security = op.get("security")
            if security:
                names = [name for option in security for name in option]
                parts.append(
                    "<h3>Authentication</h3><ul>"
                    + "".join(
                        f"<li>{_e(schemes.get(n, {}).get('scheme', n))}:"
                        f" {_prose(schemes.get(n, {}).get('description', ''))}</li>"
                        for n in names
                    )
                    + "</ul>"
                )
            else:
                parts.append("<h3>Authentication</h3><p>none</p>")
            body = op.get("requestBody")
            if body:
                for media_type, media in body.get("content", {}).items():
                    parts.append(f"<h3>Request body: <code>{_e(media_type)}</code></h3>")
                    parts.append(_schema_table(media.get("schema", {}), components))
                    parts.append(_examples(media))
            parts.append("<h3>Answers</h3>")
            for status, answer in op.get("responses", {}).items():
                parts.append(
                    f"<p><strong>{_e(status)}</strong> {_e(answer.get('description', ''))}</p>"
                )
                for media in answer.get("content", {}).values():
                    schema = media.get("schema", {})
                    if "$ref" in schema and not status.startswith(("4", "5")):
                        parts.append(_schema_table(schema, components))
                    parts.append(_examples(media))
            sections.append("\n".join(parts))
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{_e(info.get('title', 'API'))} — HTTP API</title>"
        '<link rel=stylesheet href="/docs/docs.css"></head><body>'
        f"<h1>{_e(info.get('title', 'API'))} HTTP API</h1>"
        f"<p class=muted>version {_e(info.get('version', ''))} · the same as"
        ' <a href="/openapi.json"><code>/openapi.json</code></a> (load it into any OpenAPI'
        " tool)</p>"
        f"{_prose(info.get('description', ''))}"
        f"<nav>{''.join(nav)}</nav>" + "\n".join(sections) + "</body></html>"
    )
