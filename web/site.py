"""The dashboard's shared machinery: the ``Site`` every page handler receives (engine,
config, hooks, templates, the signed-in actor), the page errors handlers raise, and
``WebRoute``, the one place those errors become answers and every answer gets the
security headers.

A handler parses its request, calls ONE view-model function and hands the result to
``Site.page``: HTML from a Jinja2 template, or — for ``/api/...`` and ``?format=json``
— exactly that view model as JSON.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit, urlunsplit

import orjson
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup
from sqlalchemy import Engine
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from integration_signals.config import Config, Settings
from integration_signals.store.jsonio import dumps, iso
from integration_signals.web import auth
from integration_signals.web.auth import Actor, LoginThrottle

log = logging.getLogger("signals.web")
T = TypeVar("T")

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
NAV = (
    ("portfolio", "Portfolio", "/"),
    ("integrations", "Integrations", "/integrations"),
    ("syncs", "Syncs", "/syncs"),
    ("tasks", "Tasks", "/tasks"),
    ("ops", "Ops", "/ops"),
)
COMPONENT_LABELS = {
    "activation_depth": "Activation depth",
    "usage_volume": "Usage volume",
    "health_status": "Health status",
    "frequency": "Frequency",
    "sophistication": "Sophistication",
    "growth": "Growth trajectory",
}
FLASH_COOKIE = "signals_flash"
MAX_FORM_BYTES = 64 * 1024


@dataclass
class WebHooks:
    """What the dashboard needs from layers it must not import (bot, syncs, schedules),
    injected as plain callables by ``schedules.server.create_app``. None = not
    available in this process (the page says so)."""

    # A task changed from the web: refresh its Slack message (errors logged, not raised).
    task_changed: Callable[[int], None] | None = None
    # Start a CRM sync now (or a dry-run preview) through the scheduler's job lock, so it
    # never overlaps the scheduled run; returns the run's report document (the
    # `signals sync --json` one), or raises SyncAlreadyRunning.
    start_sync: Callable[[str, bool], dict[str, Any]] | None = None
    # The destinations a sync can run to ("salesforce", "hubspot").
    destinations: Callable[[], list[str]] | None = None
    # The scheduler's job status (what /healthz reports under "jobs").
    scheduler_status: Callable[[], dict[str, Any]] | None = None
    # Per destination: the link template of one CRM record (``{id}`` marks the id) and
    # its label, from the destination registry.
    record_urls: Callable[[], dict[str, str]] | None = None
    record_labels: Callable[[], dict[str, str]] | None = None


class SyncAlreadyRunning(Exception):
    """Raised by ``WebHooks.start_sync`` when a sync to that destination is already
    running (in this process, another one, or the scheduler's own job)."""


# ---------------------------------------------------------------- page errors


class PageError(Exception):
    """Raised by handlers; ``WebRoute`` turns it into an HTML page or a JSON answer."""

    status = 500
    template = "error.html"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


class SignInFirst(PageError):
    status = 401


class Forbidden(PageError):
    status = 403


class NotFound(PageError):
    status = 404


class BadRequest(PageError):
    status = 400


class Throttled(PageError):
    status = 429

    def __init__(self, message: str, *, retry_after: int, **context: Any) -> None:
        super().__init__(message, **context)
        self.retry_after = retry_after


# ---------------------------------------------------------------- formatting helpers


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def ago(value: Any, now: datetime | None = None) -> str:
    """'3 h ago', '2 d ago', 'in 4 d' — or '–' when unknown."""
    at = _parse_time(value)
    if at is None:
        return "–"
    seconds = ((now or datetime.now(UTC)) - at).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 90:
        text = "now" if not future else "in a minute"
        return text
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            amount = int(seconds // size)
            return f"in {amount} {unit}" if future else f"{amount} {unit} ago"
    return "now"


def money(value: Any) -> str:
    if value is None:
        return "–"
    return f"${float(value):,.0f}"


def percent(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{float(value) * 100:.{digits}f}%"


def number(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    value = float(value)
    if abs(value) >= 10_000:
        return f"{value / 1000:,.0f}k"
    return f"{value:,.{digits}f}"


def signed(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:+d}" if isinstance(value, int) else f"{float(value):+.0f}"


def label(value: Any) -> str:
    """'at_risk' -> 'at risk', 'mid_market' -> 'mid market'."""
    return "–" if value in (None, "") else str(value).replace("_", " ")


def day(value: Any) -> str:
    at = _parse_time(value)
    if at is not None:
        return at.strftime("%Y-%m-%d")
    return "–" if value in (None, "") else str(value)[:10]


def when(value: Any) -> str:
    at = _parse_time(value)
    return "–" if at is None else at.strftime("%Y-%m-%d %H:%M UTC")


def account_url(account_id: Any) -> str:
    return "/accounts/" + quote(str(account_id), safe="")


def integration_url(key: Any) -> str:
    return "/integrations/" + quote(str(key), safe="")


def sync_run_url(run_id: Any) -> str:
    return "/syncs/runs/" + quote(str(run_id), safe="")


# The pages that can show a past moment (``?as_of=``); the others (syncs, ops) show
# the present only, so the top bar's links to them do not carry the moment.
MOMENT_NAV = frozenset({"portfolio", "integrations", "tasks"})


def with_as_of(url: str, moment: str | None) -> str:
    """``url`` (a path on this site, or a bare ``?query``) at ``moment``: its ``as_of``
    set to it (replaced if there), the rest of the query and the fragment kept. None
    leaves the URL as it is."""
    if not moment:
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "as_of"]
    query.append(("as_of", moment))
    return urlunsplit(("", "", parts.path, urlencode(query), parts.fragment))


@pass_context
def at_moment(context: Context, url: Any) -> str:
    """The ``at`` filter: a link that stays in the moment the page shows. On a page of
    the past (``?as_of=``) every internal link goes through it, so account, integration
    and task links, sorting, paging and filters all keep that ``as_of``."""
    return with_as_of(str(url), context.get("as_of_param"))


FILTERS: dict[str, Callable[..., Any]] = {
    "at": at_moment,
    "account_url": account_url,
    "integration_url": integration_url,
    "sync_run_url": sync_run_url,
    "ago": ago,
    "money": money,
    "percent": percent,
    "number": number,
    "signed": signed,
    "label": label,
    "day": day,
    "when": when,
    "iso": lambda v: iso(_parse_time(v)) if v else "",
}


def make_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html", "xml", "svg"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.globals["component_labels"] = COMPONENT_LABELS
    return env


def static_version() -> str:
    """A fingerprint of our CSS and JS, appended to their URLs so browsers refetch them
    after an upgrade and may cache them forever otherwise."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.glob("*")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


# ---------------------------------------------------------------- requests


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.query_params.get("format") == "json"


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path on this site (no scheme, host or ``//``), else the
    default: a redirect after sign-in or an action must not leave the site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


async def read_form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body as {field: first value} (64 KB at most;
    our forms are small)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise BadRequest("the form is too large")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and kind not in ("application/x-www-form-urlencoded", ""):
        raise BadRequest("send the form as application/x-www-form-urlencoded")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the form could not be read") from None
    return {key: values[0] for key, values in parsed.items()}


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# ---------------------------------------------------------------- the site


@dataclass
class Site:
    """What every page handler works with."""

    engine: Engine
    config: Config
    settings: Settings
    hooks: WebHooks
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    templates: Environment = field(default_factory=make_templates)
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    version: str = field(default_factory=static_version)

    @property
    def record_urls(self) -> dict[str, str]:
        return self.hooks.record_urls() if self.hooks.record_urls is not None else {}

    @property
    def record_labels(self) -> dict[str, str]:
        return self.hooks.record_labels() if self.hooks.record_labels is not None else {}

    async def run(self, work: Callable[[], T]) -> T:
        """Blocking work (the database) off the event loop."""
        return await run_in_threadpool(work)

    # ------------------------------------------------------------ who is asking

    def actor(self, request: Request) -> Actor | None:
        if "actor" not in request.state._state:
            request.state.actor = auth.session_actor(
                self.engine, request.cookies.get(auth.COOKIE), now=self.clock()
            )
        return request.state.actor  # type: ignore[no-any-return]

    def signed_in(self, request: Request) -> Actor:
        """The actor, or SignInFirst (a redirect to /login for pages, 401 for the API)."""
        actor = self.actor(request)
        if actor is None:
            raise SignInFirst("sign in first")
        return actor

    def allowed(self, request: Request, action: auth.Action, *, what: str) -> Actor:
        """The actor when ``auth.can`` lets them do ``action``, else Forbidden."""
        actor = self.signed_in(request)
        if not auth.can(actor, action):
            raise Forbidden(f"your role ({actor.role}) may not {what}")
        return actor

    async def checked_form(self, request: Request) -> tuple[Actor, dict[str, str]]:
        """A state-changing request: signed in, and the session's CSRF token in the form
        field ``csrf_token`` (or the ``X-CSRF-Token`` header); else 401 / 403."""
        actor = await self.run(lambda: self.signed_in(request))
        form = await read_form(request)
        presented = form.get("csrf_token") or request.headers.get("x-csrf-token")
        if not auth.csrf_ok(actor, presented):
            raise Forbidden(
                "this form has expired or did not come from this site; reload the page and try again"
            )
        return actor, form

    # ------------------------------------------------------------ answers

    def json(self, data: Any, *, status: int = 200) -> Response:
        return Response(
            dumps(data, indent=False),
            status_code=status,
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    def as_of(self, request: Request) -> datetime:
        """The moment a page shows: ``?as_of=`` as a date (midnight UTC, as the CLI's
        ``--as-of`` reads it) or an RFC 3339 timestamp; the clock when absent. A bad
        value is a 400. A page asked about a moment sets ``request.state.as_of`` so its
        HTML carries the "as of" banner and no live polling."""
        raw = (request.query_params.get("as_of") or "").strip()
        if raw in ("", "now"):
            return self.clock()
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise BadRequest(
                f"as_of {raw[:40]!r} is not a date or timestamp;"
                " use e.g. 2026-11-20 or 2026-11-20T08:00:00Z"
            ) from None
        when = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        request.state.as_of = when
        return when

    def html(
        self,
        request: Request,
        template: str,
        *,
        status: int = 200,
        title: str = "",
        nav: str = "",
        **context: Any,
    ) -> HTMLResponse:
        actor = self.actor(request) if "actor" in request.state._state else None
        flash = self.read_flash(request, actor)
        past = getattr(request.state, "as_of", None)
        body = self.templates.get_template(template).render(
            title=title,
            nav=nav,
            nav_items=NAV,
            actor=actor,
            csrf_token=actor.csrf_token if actor else "",
            flash=flash,
            live_poll_ms=int(self.config.web.live_poll_seconds * 1000),
            static_version=self.version,
            # A page of the past reads its relative times ("due in 2 d") at that moment.
            now=past or self.clock(),
            request_path=request.url.path,
            as_of_banner=past,
            # The moment as asked, carried by every link (the ``at`` filter) and filter form.
            as_of_param=request.query_params.get("as_of") if past else None,
            moment_nav=MOMENT_NAV,
            now_link=_without_as_of(request),
            **context,
        )
        response = HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
        if flash is not None:
            response.delete_cookie(FLASH_COOKIE, path="/")
        return response

    def page(
        self,
        request: Request,
        view: Any,
        template: str,
        *,
        title: str,
        nav: str = "",
        **context: Any,
    ) -> Response:
        """The view model as JSON (``/api/...``, ``?format=json``) or as HTML."""
        if wants_json(request):
            return self.json(view)
        return self.html(request, template, title=title, nav=nav, view=view, **context)

    def redirect(
        self, target: str, *, background: Callable[[], Any] | None = None
    ) -> RedirectResponse:
        return RedirectResponse(
            target,
            status_code=303,
            background=BackgroundTask(background) if background else None,
        )

    # ------------------------------------------------------------ flash messages

    def flash(self, response: Response, actor: Actor, text: str, *, level: str = "info") -> None:
        """A one-time notice for the next page (after a redirect), signed with the
        session's CSRF token so no one else can plant one."""
        payload = orjson.dumps({"text": text[:500], "level": level})
        mac = hmac.new(actor.csrf_token.encode(), payload, hashlib.sha256).hexdigest()[:32]
        value = base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + mac
        response.set_cookie(
            FLASH_COOKIE,
            value,
            max_age=120,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.config.web.secure_cookies,
        )

    def read_flash(self, request: Request, actor: Actor | None) -> dict[str, str] | None:
        raw = request.cookies.get(FLASH_COOKIE)
        if not raw or actor is None or "." not in raw:
            return None
        encoded, _, mac = raw.rpartition(".")
        try:
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError:
            return None
        expected = hmac.new(actor.csrf_token.encode(), payload, hashlib.sha256).hexdigest()[:32]
        if not hmac.compare_digest(expected, mac):
            return None
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        return {"text": str(data.get("text", "")), "level": str(data.get("level", "info"))}

    # ------------------------------------------------------------ errors

    def error(self, request: Request, exc: PageError) -> Response:
        headers: dict[str, str] = {}
        if isinstance(exc, Throttled):
            headers["Retry-After"] = str(exc.retry_after)
        if wants_json(request):
            response = self.json({"error": exc.message, **exc.context}, status=exc.status)
            response.headers.update(headers)
            return response
        if isinstance(exc, SignInFirst):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return self.redirect("/login?next=" + quote(target, safe="/"))
        response = self.html(
            request,
            exc.template,
            status=exc.status,
            title=exc.message if exc.status != 404 else "Not found",
            message=exc.message,
            status_code=exc.status,
            **exc.context,
        )
        response.headers.update(headers)
        return response

    def crash(self, request: Request, exc: BaseException) -> Response:
        """An unexpected failure: the trace to the log under a short reference, the
        person sees only the reference."""
        ref = uuid.uuid4().hex[:8]
        log.error("%s %s failed (ref %s)", request.method, request.url.path, ref, exc_info=exc)
        message = f"the page failed on our side (ref {ref}); the details are in the server log"
        if wants_json(request):
            return self.json({"error": message, "ref": ref}, status=500)
        try:
            return self.html(
                request, "error.html", status=500, title="Server error", message=message
            )
        except Exception:
            return HTMLResponse(f"<p>{Markup.escape(message)}</p>", status_code=500)


def secure(response: Response, extra: Mapping[str, str] | None = None) -> Response:
    for key, value in SECURITY_HEADERS.items():
        response.headers[key] = value
    if extra:
        response.headers.update(extra)
    return response


def web_route_class(site: Site) -> type[APIRoute]:
    """A route class whose handlers' page errors and crashes become answers, and whose
    every answer carries the security headers."""

    class WebRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Any]:
            original = super().get_route_handler()

            async def handler(request: Request) -> Response:
                try:
                    response = await original(request)
                except PageError as exc:
                    response = site.error(request, exc)
                except Exception as exc:  # the web's one boundary: nothing escapes as a trace
                    response = site.crash(request, exc)
                return secure(response)

            return handler

    return WebRoute


def _without_as_of(request: Request) -> str:
    """This page's URL at the present moment: the same query without ``as_of``."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "as_of"]
    return request.url.path + ("?" + urlencode(kept) if kept else "")
