"""The HTTP side of `signals serve`: the ingest API (ours and Segment's), the Slack
endpoints, health and the web dashboard — plus the scheduler's start and stop in the
app's lifespan.

Requests are refused before anything is stored: bad auth 401, a body over
``[serve] max_body_bytes`` 413 (checked while reading, and again after gunzip), a body
that is not JSON 400 naming the problem. An accepted body goes through the one ingest
code path (``store.ingest.Ingestor``), whose records are each accepted, a duplicate or
quarantined with a reason — the answer reports all three.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
import signal
import socket
import sys
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import Engine, text

from integration_signals.config import Config, ConfigError, RedactingFilter, Settings
from integration_signals.schedules import api_docs
from integration_signals.schedules.exceptions import Refused
from integration_signals.schedules.logs import configure_logging as _configure_logging
from integration_signals.schedules.logs import log_context
from integration_signals.schedules.metrics import Metrics, SlackTiming
from integration_signals.schedules.rescore import Rescorer
from integration_signals.schedules.scheduler import Scheduler, one_line, redact, secrets
from integration_signals.schedules.segment import (
    BadBatch,
    Mapped,
    map_batch,
    parse_batch,
    track_names,
)
from integration_signals.store.accounts import import_account_objects
from integration_signals.store.events import as_text, loads_json, read_jsonl
from integration_signals.store.ingest import Ingestor, IngestReport, RawRecord, read_objects
from integration_signals.store.jsonio import dumps
from integration_signals.store.sql import utcnow

log = logging.getLogger("signals.serve")

INGEST_PATHS = ("/v1/events", "/v1/batch")


def _json(data: Any, status: int = 200) -> Response:
    return Response(dumps(data, indent=False), status_code=status, media_type="application/json")


# ---------------------------------------------------------------- request checks


def _check_token(presented: str | None, settings: Settings, *, what: str) -> None:
    token = settings.signals_ingest_token
    if token is None or not token.get_secret_value():
        raise Refused(
            401,
            "ingest_disabled",
            "the ingest API is disabled: set SIGNALS_INGEST_TOKEN where `signals serve` runs",
        )
    if presented is None:
        raise Refused(401, "unauthorized", f"missing credentials: send {what}")
    if not hmac.compare_digest(presented.encode(), token.get_secret_value().encode()):
        raise Refused(401, "unauthorized", f"bad credentials: send {what}")


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _basic_user(request: Request) -> str | None:
    """The user name of HTTP basic auth: Segment sends its write key there."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return _bearer(request)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


async def _read_body(request: Request, limit: int) -> bytes:
    too_big = Refused(
        413,
        "too_large",
        f"the body is larger than {limit:,} bytes ([serve] max_body_bytes); send smaller batches",
    )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").lower().strip()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise Refused(
            415, "unsupported_encoding", f"Content-Encoding {encoding!r}: use gzip or none"
        )
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        plain = inflate.decompress(body, limit + 1)
    except zlib.error as exc:
        raise Refused(400, "bad_gzip", f"the body is not valid gzip ({exc})") from None
    if len(plain) > limit or inflate.unconsumed_tail:
        raise too_big
    return plain


def _loads(data: bytes, where: str) -> Any:
    try:
        return loads_json(data)
    except ValueError as exc:
        raise Refused(400, "bad_json", f"{where} is {exc}; nothing was stored") from None


def parse_events(body: bytes) -> list[RawRecord]:
    """A JSON array of events, or NDJSON (one event per line). NDJSON is read exactly
    like a JSONL file: a line that is not JSON (or not UTF-8) is quarantined with its
    reason and the other lines land."""
    stripped = body.strip()
    if not stripped:
        raise Refused(400, "empty", "the body is empty: send a JSON array of events or NDJSON")
    if stripped[:1] == b"[":
        data = _loads(stripped, "the body")
        return list(read_objects(data if isinstance(data, list) else [data]))
    return list(read_jsonl(stripped.split(b"\n")))


# ---------------------------------------------------------------- answers


def _ingest_answer(report: IngestReport) -> dict[str, Any]:
    data = report.as_json()
    data.pop("sources", None)
    data["reasons"] = [
        {"line": s["line"], "reason": s["reason"]} for s in report.quarantine_samples
    ]
    return data


# ---------------------------------------------------------------- the app


def create_app(
    engine: Engine,
    config: Config,
    settings: Settings,
    *,
    scheduler: Scheduler | None = None,
) -> FastAPI:
    """The serve application. With ``scheduler``, its lifespan starts and stops it and
    its runs are counted in ``/metrics``."""
    try:
        names = track_names(config.serve.segment_events)
    except ValueError as exc:
        raise ConfigError(f"config: {exc}") from None
    from integration_signals import __version__

    rescorer = Rescorer(engine, config)
    metrics = Metrics(engine)
    if scheduler is not None:
        scheduler.add_observer(metrics.job_finished)
    app = FastAPI(
        title="Integration Signals",
        version=__version__,
        description=api_docs.DESCRIPTION,
        lifespan=_lifespan(rescorer, scheduler),
        # /openapi.json documents the API (not the web pages or Slack's endpoint);
        # /docs is our own page (see api_docs): Swagger UI would need a CDN.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.metrics = metrics
    _answer_errors(app, settings, metrics)
    _route_events(app, engine, config, settings, rescorer, metrics)
    _route_segment_batch(app, engine, config, settings, rescorer, names, metrics)
    _route_healthz(app, engine, settings, rescorer, scheduler, slack=_slack_state(settings))
    _route_metrics(app, settings, metrics)
    _route_docs(app)
    _mount_slack(app, engine, config, settings)
    _mount_web(app, engine, config, settings, scheduler, metrics)
    app.add_middleware(SlackTiming, metrics=metrics)
    return app


def _lifespan(
    rescorer: Rescorer, scheduler: Scheduler | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start the rescorer (and the scheduler) with the app; stop them when it stops."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        rescorer.start()
        if scheduler is not None:
            await run_in_threadpool(scheduler.start)
        try:
            yield
        finally:
            await asyncio.to_thread(rescorer.stop)
            if scheduler is not None:
                await asyncio.to_thread(scheduler.stop)

    return lifespan


def _answer_errors(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    """A refusal answers its own status and code (401s say how to authenticate); any
    other exception answers 500 with one redacted line."""

    def count(request: Request, status: int) -> None:
        if request.url.path in INGEST_PATHS:
            metrics.ingest_answered(request.url.path, status, None)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> JSONResponse:
        count(request, exc.status)
        return JSONResponse(
            {"error": exc.message, "code": exc.code, "message": exc.message},
            status_code=exc.status,
            headers={"WWW-Authenticate": "Bearer"} if exc.status == 401 else None,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Each ingest batch is one transaction and every write is idempotent (event ids,
        # account upserts), so a client retrying after this answer double-counts nothing.
        # Only the ingest API says so: Slack's requests and the pages are not ingest.
        message = redact(one_line(exc), settings)
        log.error("%s %s failed: %s", request.method, request.url.path, message)
        count(request, 500)
        retry = "; retry: ingest is idempotent" if request.url.path.startswith("/v1/") else ""
        return JSONResponse(
            {
                "error": f"the server failed ({message}){retry}",
                "code": "server_error",
                "message": message,
            },
            status_code=500,
        )


def _route_events(
    app: FastAPI,
    engine: Engine,
    config: Config,
    settings: Settings,
    rescorer: Rescorer,
    metrics: Metrics,
) -> None:
    """``POST /v1/events``: our ingest API, a JSON array or NDJSON behind a bearer token."""
    limit = config.serve.max_body_bytes

    @app.post("/v1/events", **api_docs.EVENTS_DOC)
    async def post_events(request: Request) -> Response:
        _check_token(_bearer(request), settings, what="Authorization: Bearer $SIGNALS_INGEST_TOKEN")
        records = parse_events(await _read_body(request, limit))
        answer = await run_in_threadpool(_ingest_events, engine, config, rescorer, records)
        log.info(
            "POST /v1/events: accepted %d, duplicates %d, quarantined %d",
            answer["accepted"],
            answer["duplicates"],
            answer["quarantined"],
        )
        metrics.ingest_answered("/v1/events", 200, answer)
        return _json(answer)


def _ingest_events(
    engine: Engine, config: Config, rescorer: Rescorer, records: list[RawRecord]
) -> dict[str, Any]:
    """Store the events of one ``/v1/events`` body and queue their accounts' rescoring."""
    ingestor = Ingestor(engine, config, now=utcnow())
    report = ingestor.ingest(records, source="http:/v1/events")
    answer = _ingest_answer(report)
    answer["after_ingest"] = _queue(rescorer, report)
    return answer


def _route_segment_batch(
    app: FastAPI,
    engine: Engine,
    config: Config,
    settings: Settings,
    rescorer: Rescorer,
    names: dict[str, str],
    metrics: Metrics,
) -> None:
    """``POST /v1/batch``: Segment's batch API, the write key as the basic auth user."""
    limit = config.serve.max_body_bytes

    @app.post("/v1/batch", **api_docs.BATCH_DOC)
    async def post_batch(request: Request) -> Response:
        _check_token(
            _basic_user(request),
            settings,
            what="the write key (SIGNALS_INGEST_TOKEN) as the HTTP basic auth user name",
        )
        body = await _read_body(request, limit)
        try:
            messages = parse_batch(_loads(body, "the body"))
        except BadBatch as exc:
            raise Refused(400, "bad_batch", f"{exc}; nothing was stored") from None
        mapped = map_batch(messages, names)
        answer = await run_in_threadpool(
            _ingest_segment, engine, config, rescorer, messages, mapped
        )
        log.info(
            "POST /v1/batch: accepted %d, duplicates %d, quarantined %d, accounts %d, ignored %d",
            answer["accepted"],
            answer["duplicates"],
            answer["quarantined"],
            answer["accounts"]["imported"],
            sum(mapped.ignored.values()),
        )
        metrics.ingest_answered("/v1/batch", 200, answer)
        return _json(answer)


def _ingest_segment(
    engine: Engine, config: Config, rescorer: Rescorer, messages: list[Any], mapped: Mapped
) -> dict[str, Any]:
    """Store one Segment batch (its accounts, then its events) and queue the rescoring
    of every account it touched."""
    now = utcnow()
    accounts = import_account_objects(engine, mapped.accounts, source="segment", now=now)
    ingestor = Ingestor(engine, config, now=now)
    records = (
        RawRecord(position, _raw(messages[position - 1]), event)
        for position, event in mapped.events
    )
    report = ingestor.ingest(records, source="segment:/v1/batch")
    report.touched_accounts |= accounts.account_ids  # the refused ones touch nothing
    answer = {"success": True, **_ingest_answer(report)}
    answer["accounts"] = accounts.as_json()
    answer["ignored"] = dict(mapped.ignored.most_common())
    answer["after_ingest"] = _queue(rescorer, report)
    return answer


def _route_healthz(
    app: FastAPI,
    engine: Engine,
    settings: Settings,
    rescorer: Rescorer,
    scheduler: Scheduler | None,
    *,
    slack: str,
) -> None:
    """``GET /healthz``: 200 while the database answers (``degraded`` when a job is
    stale), 503 when it does not."""

    @app.get("/healthz", **api_docs.HEALTHZ_DOC)
    async def healthz() -> Response:
        database: dict[str, Any] = {"url": engine.url.render_as_string(hide_password=True)}

        def ping() -> None:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        try:
            await asyncio.wait_for(run_in_threadpool(ping), timeout=5)
            database["ok"] = True
        except Exception as exc:
            database["ok"] = False
            database["error"] = redact(one_line(exc), settings)
        jobs: dict[str, Any] = {}
        if scheduler is not None and database["ok"]:
            jobs = await run_in_threadpool(scheduler.status)
        stale = sorted(job_id for job_id, job in jobs.items() if job["stale"])
        status = "down" if not database["ok"] else ("degraded" if stale else "ok")
        return _json(
            {
                "status": status,
                "database": database,
                "jobs": jobs,
                "stale": stale,
                "slack": slack,
                "rescore": {"rounds": rescorer.rounds, "last_error": rescorer.last_error},
                "host": scheduler.locks.host if scheduler else None,
            },
            status=200 if database["ok"] else 503,
        )


def _route_metrics(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    """``GET /metrics``: Prometheus' text format behind the ingest API's bearer token
    (one listener, one secret; Prometheus sends it with ``authorization``)."""
    from prometheus_client import CONTENT_TYPE_LATEST

    @app.get("/metrics", **api_docs.METRICS_DOC)
    async def get_metrics(request: Request) -> Response:
        _check_token(_bearer(request), settings, what="Authorization: Bearer $SIGNALS_INGEST_TOKEN")
        # The collector queries the database: off the event loop.
        body = await run_in_threadpool(metrics.exposition)
        return Response(body, media_type=CONTENT_TYPE_LATEST)


def _route_docs(app: FastAPI) -> None:
    """``GET /docs``: the API reference rendered from ``/openapi.json`` (no script, no
    CDN), under the dashboard's Content-Security-Policy."""
    from integration_signals.web.site import SECURITY_HEADERS

    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = api_docs.with_security(original())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return HTMLResponse(api_docs.render_docs(app.openapi()), headers=SECURITY_HEADERS)

    @app.get("/docs/docs.css", include_in_schema=False)
    async def docs_css() -> Response:
        return Response(api_docs.CSS, media_type="text/css", headers=SECURITY_HEADERS)


def _mount_web(
    app: FastAPI,
    engine: Engine,
    config: Config,
    settings: Settings,
    scheduler: Scheduler | None,
    metrics: Metrics,
) -> None:
    """The web dashboard, with what it may not import itself handed in as hooks: the
    bot's Slack message refresh, the sync destinations and runs ("run now" and the
    dry-run preview) and the scheduler's job status."""
    from integration_signals.bot.tasks import refresh_task_message
    from integration_signals.schedules.compose import crm_links
    from integration_signals.schedules.locks import TickLocks
    from integration_signals.syncs import registry
    from integration_signals.syncs.run import run_sync
    from integration_signals.web.app import WebHooks, create_web_app
    from integration_signals.web.site import SyncAlreadyRunning

    def task_changed(task_id: int) -> None:
        refresh_task_message(engine, settings, task_id, now=utcnow())

    # The scheduler's own locks when it runs here (its per-job thread locks are what
    # keep SQLite's single process from overlapping), else this process's.
    locks = scheduler.locks if scheduler is not None else TickLocks(engine)

    def start_sync(destination: str, dry_run: bool) -> dict[str, Any]:
        """The scheduler's sync job's run, under its job lock (``sync.<destination>``:
        a PostgreSQL advisory lock across processes, a thread lock within one), so it
        never overlaps the scheduled run or another "run now". A dry run writes nothing
        and takes no lock."""
        with log_context(destination=destination):
            if dry_run:
                return run_sync(
                    engine, config, settings, destination, dry_run=True, now=utcnow()
                ).as_json()
            with locks.job_lock(f"sync.{destination}") as got:
                if not got:
                    raise SyncAlreadyRunning(f"a sync to {destination} is already running")
                report = run_sync(engine, config, settings, destination, now=utcnow()).as_json()
            metrics.sync_finished(report)
            return report

    links = crm_links(config, settings)
    hooks = WebHooks(
        task_changed=task_changed,
        start_sync=start_sync,
        destinations=registry.names,
        scheduler_status=scheduler.status if scheduler is not None else None,
        record_urls=lambda: dict(links.urls),
        record_labels=lambda: dict(links.labels),
    )
    app.include_router(
        create_web_app(engine, config, settings, hooks=hooks), include_in_schema=False
    )


def _queue(rescorer: Rescorer, report: IngestReport) -> dict[str, Any]:
    """Hand the touched accounts to the rescorer (it rescores them and evaluates their
    signals in the background, seconds later)."""
    if not report.touched_accounts:
        return {"accounts": 0, "queued": 0}
    return {
        "accounts": len(report.touched_accounts),
        "queued": rescorer.submit(set(report.touched_accounts)),
    }


def _raw(message: Any) -> str:
    return as_text(message)


def _slack_state(settings: Settings) -> str:
    """What ``/healthz`` says about Slack."""
    if settings.slack_signing_secret is None or settings.slack_bot_token is None:
        return "POST /slack/events answers 503: set SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN"
    return "POST /slack/events"


def _mount_slack(app: FastAPI, engine: Engine, config: Config, settings: Settings) -> None:
    """The bot's ``POST /slack/events`` (it answers 503 itself while Slack is not
    configured, so the endpoint exists either way)."""
    from integration_signals.bot.http import slack_router
    from integration_signals.schedules.compose import crm_links

    app.include_router(
        slack_router(engine, config, settings, crm_links=crm_links(config, settings)),
        include_in_schema=False,
    )


# ---------------------------------------------------------------- the process


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 picks a free one), bound before the server starts so
    the address can be printed and a busy port refused with one line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port} ({exc.strerror}); choose --port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def log_format(config: Config, settings: Settings) -> str:
    """``SIGNALS_LOG_FORMAT`` if set, else ``[log] format``."""
    return settings.signals_log_format or config.log.format


def configure_logging(config: Config | None = None, settings: Settings | None = None) -> None:
    """The process's log on stderr: text or JSON lines (``log_format``), every secret of
    ``settings`` blanked."""
    if config is None or settings is None:
        _configure_logging()
        return
    _configure_logging(
        log_format(config, settings), secrets=secrets(settings), level=config.log.level
    )


def _exit_quietly_after(server: Any) -> None:
    """uvicorn stops cleanly on SIGTERM / SIGINT and then raises the signal again for
    the handler it found. Ours lets a stop that uvicorn already handled end the process
    with exit 0; a signal before the server is up still stops the process at once."""

    def handler(signum: int, _frame: Any) -> None:
        if server.started:
            log.info("stopped by %s", signal.Signals(signum).name)
            return
        raise SystemExit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def serve(
    engine: Engine,
    config: Config,
    settings: Settings,
    *,
    host: str,
    port: int,
    jobs: list[Any] | None = None,
) -> list[str]:
    """Run HTTP and the scheduler until SIGTERM / Ctrl-C. Returns the ids of jobs that
    were still running at shutdown and were abandoned (their ticks rerun next start)."""
    import uvicorn

    from integration_signals.schedules.alerts import slack_alert
    from integration_signals.schedules.jobs import build_jobs
    from integration_signals.schedules.locks import InstanceLock

    configure_logging(config, settings)
    RedactingFilter(settings).install()  # every log line, whoever logs it
    instance = InstanceLock(engine)
    instance.acquire()
    try:
        specs = build_jobs(engine, config, settings) if jobs is None else jobs
        scheduler = Scheduler(engine, config, settings, specs, alert=slack_alert(settings))
        app = create_app(engine, config, settings, scheduler=scheduler)
        sock = bind(host, port)
        actual = sock.getsockname()[1]
        if settings.signals_ingest_token is None:
            log.warning("SIGNALS_INGEST_TOKEN is not set: the ingest API refuses every request")
        listening = f"signals serve: listening on http://{host}:{actual}"
        if log_format(config, settings) == "json":
            log.info(listening)  # every line of a JSON log is JSON
        else:
            print(listening, file=sys.stderr, flush=True)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_config=None,
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=10,
            )
        )
        _exit_quietly_after(server)
        server.run(sockets=[sock])
        return scheduler.leftovers
    finally:
        instance.release()
