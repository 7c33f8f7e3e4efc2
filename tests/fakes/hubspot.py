"""A fake HubSpot CRM v3 API on 127.0.0.1 (an ephemeral port), for hubspot-api-client,
which speaks urllib3 and so needs a real socket.

It follows API-NOTES section B: at most 100 inputs per batch; 200, or 207 with
``numErrors``/``errors`` when some inputs fail; 400 VALIDATION_ERROR bodies (with the
embedded JSON string) for unknown properties or invalid values, which fail the whole
batch; 429 with ``policyName`` TEN_SECONDLY_ROLLING (no Retry-After by default) over the
burst window and DAILY over the daily allowance; ``X-HubSpot-RateLimit-*`` headers on
normal responses; search with its own 5 per second limit, raw-string matching, no rate
headers. Faults can be scripted per path; every request is logged.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BATCH_UPDATE = "/crm/v3/objects/companies/batch/update"
SEARCH = "/crm/v3/objects/companies/search"
PROPERTIES = "/crm/v3/properties/companies"
GROUPS = "/crm/v3/properties/companies/groups"
OBJECT = "/crm/v3/objects/companies"

BASE_PROPERTIES = {
    "name": {"name": "name", "label": "Name", "type": "string", "fieldType": "text"},
    "domain": {"name": "domain", "label": "Domain", "type": "string", "fieldType": "text"},
}
OUR_PROPERTIES = {
    "integration_health_score": ("number", "number", None),
    "integration_health_band": ("enumeration", "select", ["healthy", "watch", "at_risk"]),
    "integration_segments": ("string", "text", None),
    "expansion_ready": ("bool", "booleancheckbox", ["true", "false"]),
    "active_integrations": ("number", "number", None),
    "integration_health_reason": ("string", "text", None),
    "integration_scored_at": ("datetime", "date", None),
}


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Fault:
    """Answer the next ``times`` requests to ``path`` with this status/body, or hang."""

    path: str
    status: int = 500
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    hang: float = 0.0  # seconds to sleep, then drop the connection without answering
    hold: threading.Event | None = None  # wait for it, then drop the connection
    after: int = 0  # let this many matching requests through first


@dataclass
class Logged:
    method: str
    path: str
    body: Any
    status: int
    at: float


def _validation_error(name: str, error: str, message: str) -> dict[str, Any]:
    inner = [
        {
            "isValid": False,
            "message": message,
            "error": error,
            "name": name,
            "localizedErrorMessage": message,
            "portalId": 891936587,
        }
    ]
    return {
        "status": "error",
        "message": "Property values were not valid: " + json.dumps(inner),
        "correlationId": str(uuid.uuid4()),
        "errors": [{"message": message, "code": error, "context": {"propertyName": [name]}}],
        "category": "VALIDATION_ERROR",
    }


class FakeHubSpot:
    def __init__(
        self,
        *,
        token: str = "pat-na1-test-token",
        window_limit: int = 100,
        window_seconds: float = 10.0,
        daily_limit: int = 250_000,
        search_per_second: int = 5,
        latency: float = 0.0,
        provisioned: bool = True,
    ) -> None:
        self.token = token
        self.window_limit = window_limit
        self.window_seconds = window_seconds
        self.daily_limit = daily_limit
        self.search_per_second = search_per_second
        self.latency = latency
        self.companies: dict[str, dict[str, str]] = {}
        self.properties: dict[str, dict[str, Any]] = dict(BASE_PROPERTIES)
        self.groups: dict[str, dict[str, Any]] = {}
        if provisioned:
            self.groups["integration_signals"] = {"name": "integration_signals"}
            for name, (type_, field_type, options) in OUR_PROPERTIES.items():
                self.properties[name] = {
                    "name": name,
                    "label": name,
                    "type": type_,
                    "fieldType": field_type,
                    "groupName": "integration_signals",
                    "options": [{"label": o, "value": o} for o in options or []],
                }
        self.faults: list[Fault] = []
        # A vendor (or proxy) that echoes the request's headers, the bearer token among
        # them, in every error message: redaction is the only thing between it and us.
        self.echo_headers = False
        self.log: list[Logged] = []
        self.writes = Counter[str]()  # record id -> times its properties were written
        self.refuse: dict[str, str] = {}  # record id -> message (207 error for it)
        self.rate_limited = 0
        self._recent: deque[float] = deque()
        self._recent_search: deque[float] = deque()
        self._daily = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                fake._dispatch(self, raw)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ------------------------------------------------------------------ helpers
    def add_company(self, company_id: str, **properties: str) -> None:
        self.companies[company_id] = dict(properties)

    def requests(self, path: str, method: str = "POST") -> list[Logged]:
        return [r for r in self.log if r.path == path and r.method == method]

    def batch_calls(self) -> int:
        return len(self.requests(BATCH_UPDATE))

    def _rate_headers(self) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily_limit - self._daily)),
            "X-HubSpot-RateLimit-Max": str(self.window_limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.window_limit - len(self._recent))),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.window_seconds * 1000)),
        }

    # ------------------------------------------------------------------ dispatch
    def _send(
        self, handler: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str]
    ) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json;charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(data)

    def _dispatch(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        path = handler.path.split("?", 1)[0]
        method = handler.command
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        if self.latency:
            time.sleep(self.latency)
        fault = None
        with self._lock:
            for f in self.faults:
                if f.times > 0 and path == f.path:
                    if f.after > 0:
                        f.after -= 1
                        continue
                    f.times -= 1
                    fault = f
                    break
        if fault is not None and (fault.hang or fault.hold is not None):
            with self._lock:
                self.log.append(Logged(method, path, body, 0, time.monotonic()))
            if fault.hold is not None:
                fault.hold.wait(60)
            else:
                time.sleep(fault.hang)
            handler.close_connection = True
            return
        with self._lock:
            status, payload, headers = self._answer(handler, method, path, body, fault)
            if self.echo_headers and isinstance(payload, dict):
                echo = f" (request headers: {dict(handler.headers)})"
                for error in payload.get("errors") or []:
                    error["message"] = f"{error.get('message', '')}{echo}"
                if "message" in payload:
                    payload["message"] = f"{payload['message']}{echo}"
            self.log.append(Logged(method, path, body, status, time.monotonic()))
        self._send(handler, status, payload, headers)

    def _answer(
        self,
        handler: BaseHTTPRequestHandler,
        method: str,
        path: str,
        body: Any,
        fault: Fault | None,
    ) -> tuple[int, Any, dict[str, str]]:
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            return (
                401,
                {
                    "status": "error",
                    "message": "Authentication credentials not found.",
                    "correlationId": str(uuid.uuid4()),
                    "category": "INVALID_AUTHENTICATION",
                },
                {},
            )
        now = time.monotonic()
        is_search = path == SEARCH
        if is_search:
            while self._recent_search and self._recent_search[0] <= now - 1.0:
                self._recent_search.popleft()
            if len(self._recent_search) >= self.search_per_second:
                self.rate_limited += 1
                return (
                    429,
                    {
                        "status": "error",
                        "message": "You have reached your secondly limit.",
                        "correlationId": str(uuid.uuid4()),
                        "category": "RATE_LIMITS",
                    },
                    {},
                )
            self._recent_search.append(now)
        while self._recent and self._recent[0] <= now - self.window_seconds:
            self._recent.popleft()
        if self._daily >= self.daily_limit:
            self.rate_limited += 1
            return (
                429,
                {
                    "status": "error",
                    "message": "You have reached your daily limit.",
                    "errorType": "RATE_LIMIT",
                    "correlationId": str(uuid.uuid4()),
                    "policyName": "DAILY",
                    "requestId": str(uuid.uuid4()),
                },
                self._rate_headers(),
            )
        if len(self._recent) >= self.window_limit:
            self.rate_limited += 1
            return (
                429,
                {
                    "status": "error",
                    "message": "You have reached your ten_secondly_rolling limit.",
                    "errorType": "RATE_LIMIT",
                    "correlationId": str(uuid.uuid4()),
                    "policyName": "TEN_SECONDLY_ROLLING",
                    "requestId": str(uuid.uuid4()),
                },
                self._rate_headers(),
            )
        self._recent.append(now)
        self._daily += 1
        if fault is not None:
            if fault.status == 429:
                self.rate_limited += 1
            return fault.status, fault.body, fault.headers
        headers = {} if is_search else self._rate_headers()
        if method == "POST" and path == BATCH_UPDATE:
            status, payload = self._batch_update(body)
        elif method == "PATCH" and path.startswith(OBJECT + "/"):
            status, payload = self._update_one(path.rsplit("/", 1)[1], body)
        elif method == "POST" and path == SEARCH:
            status, payload = self._search(body)
        elif method == "GET" and path == PROPERTIES:
            status, payload = 200, {"results": list(self.properties.values())}
        elif method == "POST" and path == PROPERTIES:
            status, payload = self._create_property(body)
        elif method == "GET" and path.startswith(GROUPS + "/"):
            name = path.rsplit("/", 1)[1]
            if name in self.groups:
                status, payload = 200, {**self.groups[name], "archived": False}
            else:
                status, payload = 404, self._error("NOT_FOUND", f"Group {name} not found")
        elif method == "POST" and path == GROUPS:
            status, payload = self._create_group(body)
        else:
            status, payload = 404, self._error("NOT_FOUND", f"no route {method} {path}")
        return status, payload, headers

    def _error(self, category: str, message: str) -> dict[str, Any]:
        return {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
        }

    # ------------------------------------------------------------------ endpoints
    def _check_value(self, name: str, value: Any) -> str | None:
        prop = self.properties[name]
        if value in (None, ""):
            return None
        text = str(value)
        if prop["type"] == "number":
            try:
                float(text)
            except ValueError:
                return f"{text} was not a valid number."
        if prop["type"] in ("enumeration", "bool") and prop.get("options"):
            allowed = {o["value"] for o in prop["options"]}
            if text not in allowed:
                return f"{text} was not one of the allowed options: {sorted(allowed)}"
        if prop["type"] == "datetime":
            try:
                datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return f"{text} is not a valid datetime"
        return None

    def _batch_update(self, body: Any) -> tuple[int, Any]:
        inputs = (body or {}).get("inputs") or []
        if len(inputs) > 100:
            return 400, {
                **self._error("VALIDATION_ERROR", "Too many inputs: at most 100 per request."),
                "errors": [{"message": "inputs: size must be between 0 and 100"}],
            }
        for item in inputs:
            for name, value in (item.get("properties") or {}).items():
                if name not in self.properties:
                    return 400, _validation_error(
                        name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
                    )
                problem = self._check_value(name, value)
                if problem:
                    return 400, _validation_error(name, "INVALID_OPTION", problem)
        started = _now_iso()
        results, errors = [], []
        for item in inputs:
            cid = str(item.get("id"))
            if cid not in self.companies or cid in self.refuse:
                message = self.refuse.get(cid, "Object not found.  objectId are usually numeric.")
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND"
                        if cid not in self.companies
                        else "VALIDATION_ERROR",
                        "message": message,
                        "context": {"ids": [cid]},
                    }
                )
                continue
            self.companies[cid].update({k: str(v) for k, v in item["properties"].items()})
            self.writes[cid] += 1
            results.append(
                {
                    "id": cid,
                    "properties": {**self.companies[cid], "hs_object_id": cid},
                    "createdAt": "2024-01-01T00:00:00.000Z",
                    "updatedAt": _now_iso(),
                    "archived": False,
                }
            )
        envelope = {
            "status": "COMPLETE",
            "results": results,
            "requestedAt": started,
            "startedAt": started,
            "completedAt": _now_iso(),
            "links": {},
        }
        if errors:
            return 207, {**envelope, "numErrors": len(errors), "errors": errors}
        return 200, envelope

    def _update_one(self, cid: str, body: Any) -> tuple[int, Any]:
        """PATCH /crm/v3/objects/companies/{id}: what a one-call-per-record script uses."""
        props = (body or {}).get("properties") or {}
        for name, value in props.items():
            if name not in self.properties:
                return 400, _validation_error(
                    name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
                )
            problem = self._check_value(name, value)
            if problem:
                return 400, _validation_error(name, "INVALID_OPTION", problem)
        if cid not in self.companies:
            return 404, self._error("OBJECT_NOT_FOUND", "resource not found")
        self.companies[cid].update({k: str(v) for k, v in props.items()})
        self.writes[cid] += 1
        return 200, {
            "id": cid,
            "properties": {**self.companies[cid], "hs_object_id": cid},
            "createdAt": "2024-01-01T00:00:00.000Z",
            "updatedAt": _now_iso(),
            "archived": False,
        }

    def _search(self, body: Any) -> tuple[int, Any]:
        body = body or {}
        groups = body.get("filterGroups") or []
        n_filters = sum(len(g.get("filters") or []) for g in groups)
        if (
            len(groups) > 5
            or any(len(g.get("filters") or []) > 6 for g in groups)
            or n_filters > 18
            or len(json.dumps(body)) > 3000
        ):
            return 400, self._error("VALIDATION_ERROR", "search request too large")
        limit = int(body.get("limit") or 10)
        if limit > 200:
            return 400, self._error("VALIDATION_ERROR", "limit must be at most 200")
        after = int(body.get("after") or 0)

        def matches(props: dict[str, str], f: dict[str, Any]) -> bool:
            raw = props.get(f["propertyName"])
            if raw is None:
                return False
            value = str(f.get("value", ""))
            if f["operator"] == "EQ":
                return raw.lower() == value.lower()
            if f["operator"] == "CONTAINS_TOKEN":
                pattern = ".*".join(re.escape(p) for p in value.lower().split("*"))
                return re.search(pattern, raw.lower()) is not None
            raise ValueError(f["operator"])

        hits = [
            cid
            for cid, props in sorted(self.companies.items())
            if any(all(matches(props, f) for f in g.get("filters") or []) for g in groups)
        ]
        if after >= 10_000:
            return 400, self._error("VALIDATION_ERROR", "paging beyond 10,000 results")
        page = hits[after : after + limit]
        result: dict[str, Any] = {
            "total": len(hits),
            "results": [
                {
                    "id": cid,
                    "properties": {
                        p: self.companies[cid].get(p) for p in body.get("properties") or []
                    },
                    "createdAt": "2024-01-01T00:00:00.000Z",
                    "updatedAt": "2024-01-01T00:00:00.000Z",
                    "archived": False,
                }
                for cid in page
            ],
        }
        if after + limit < len(hits):
            result["paging"] = {"next": {"after": str(after + limit)}}
        return 200, result

    def _create_group(self, body: Any) -> tuple[int, Any]:
        body = body or {}
        if not body.get("name") or not body.get("label"):
            return 400, self._error("VALIDATION_ERROR", "name and label are required")
        if body["name"] in self.groups:
            return 409, self._error("OBJECT_ALREADY_EXISTS", "group exists")
        self.groups[body["name"]] = body
        return 201, {**body, "archived": False}

    def _create_property(self, body: Any) -> tuple[int, Any]:
        body = body or {}
        for key in ("name", "label", "type", "fieldType", "groupName"):
            if not body.get(key):
                return 400, self._error("VALIDATION_ERROR", f"{key} is required")
        if body["groupName"] not in self.groups:
            return 400, self._error("VALIDATION_ERROR", f"group {body['groupName']} does not exist")
        if body["name"] in self.properties:
            return 409, self._error("OBJECT_ALREADY_EXISTS", f"{body['name']} already exists")
        self.properties[body["name"]] = body
        return 201, {**body, "createdAt": _now_iso(), "updatedAt": _now_iso()}
