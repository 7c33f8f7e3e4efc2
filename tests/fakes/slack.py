"""A fake Slack Web API on 127.0.0.1 (ephemeral port), after bolt-python's
``tests/mock_web_api_server``: a function from request to response plus a log of
every request received, for tests to assert on.

It follows the shapes in API-NOTES section C: errors are HTTP 200 with ``ok: false``;
JSON and form bodies are both accepted; ``auth.test`` answers for ``xoxb-`` tokens;
messages are kept so ``chat.update`` of an unknown ``ts`` fails with
``message_not_found``; Block Kit limits are enforced (``invalid_blocks``), and every
refusal is also kept in ``rejected`` so a test can fail on an over-limit message.
``response_url``\\s point at ``/response/<id>`` on the fake itself (5 posts each).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

AUTH_TEST = {
    "ok": True,
    "url": "https://subarachnoid.slack.com/",
    "team": "Subarachnoid Workspace",
    "user": "bot",
    "team_id": "T0G9PQBBK",
    "user_id": "W23456789",
    "bot_id": "BZYBOTHED",
}
TEXT_TYPES = {"plain_text", "mrkdwn"}
Answer = tuple[int, Any, dict[str, str]]


def block_errors(blocks: Any) -> list[str]:
    """Why Slack would answer ``invalid_blocks`` (API-NOTES C5); empty when fine."""
    errors: list[str] = []
    if not isinstance(blocks, list):
        return ["blocks is not a list"]
    if len(blocks) > 50:
        errors.append(f"{len(blocks)} blocks (max 50)")

    def text_obj(where: str, obj: Any, limit: int, *, plain_only: bool = False) -> None:
        if not isinstance(obj, dict) or obj.get("type") not in TEXT_TYPES:
            errors.append(f"{where}: not a text object")
            return
        if plain_only and obj["type"] != "plain_text":
            errors.append(f"{where}: must be plain_text")
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            errors.append(f"{where}: empty text")
        elif len(text) > limit:
            errors.append(f"{where}: {len(text)} characters (max {limit})")

    def element(where: str, el: Any) -> None:
        if not isinstance(el, dict):
            errors.append(f"{where}: not an object")
            return
        if len(str(el.get("action_id", ""))) > 255:
            errors.append(f"{where}: action_id over 255")
        if el.get("type") == "button":
            text_obj(f"{where}.text", el.get("text"), 75, plain_only=True)
            if len(str(el.get("value", ""))) > 2000:
                errors.append(f"{where}: value over 2000")
            if len(str(el.get("url", ""))) > 3000:
                errors.append(f"{where}: url over 3000")

    for i, block in enumerate(blocks if isinstance(blocks, list) else []):
        where = f"blocks[{i}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if len(str(block.get("block_id", ""))) > 255:
            errors.append(f"{where}: block_id over 255")
        if kind == "header":
            text_obj(f"{where}.text", block.get("text"), 150, plain_only=True)
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                errors.append(f"{where}: section without text or fields")
            if "text" in block:
                text_obj(f"{where}.text", block["text"], 3000)
            fields = block.get("fields", [])
            if len(fields) > 10:
                errors.append(f"{where}: {len(fields)} fields (max 10)")
            for j, f in enumerate(fields):
                text_obj(f"{where}.fields[{j}]", f, 2000)
            if "accessory" in block:
                element(f"{where}.accessory", block["accessory"])
        elif kind == "actions":
            elements = block.get("elements", [])
            if not elements or len(elements) > 25:
                errors.append(f"{where}: {len(elements)} elements (1-25)")
            ids = [e.get("action_id") for e in elements if isinstance(e, dict)]
            if len(ids) != len(set(ids)):
                errors.append(f"{where}: duplicate action_id")
            for j, el in enumerate(elements):
                element(f"{where}.elements[{j}]", el)
        elif kind == "context":
            elements = block.get("elements", [])
            if not elements or len(elements) > 10:
                errors.append(f"{where}: {len(elements)} context elements (1-10)")
            for j, el in enumerate(elements):
                text_obj(f"{where}.elements[{j}]", el, 3000)
        elif kind == "divider":
            pass
        else:
            errors.append(f"{where}: unknown block type {kind!r}")
    return errors


@dataclass
class Received:
    """One request as the fake saw it."""

    method: str
    path: str
    body: Any
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)

    @property
    def api(self) -> str:
        return self.path.rsplit("/", 1)[-1]


class FakeSlack:
    """Start with ``FakeSlack().start()``; ``api_url`` is the WebClient base URL."""

    def __init__(self, *, users: dict[str, str] | None = None, latency: float = 0.0) -> None:
        self.users = dict(users or {})  # e-mail -> user id, for users.lookupByEmail
        self.latency = latency
        self.requests: list[Received] = []
        self.rejected: list[tuple[str, list[str]]] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.fail_next: dict[str, str] = {}  # method -> error to answer once
        # method -> a function of the request answering (status, body, headers), or
        # None for the normal answer; it may sleep (a timeout) or answer any shape.
        self.scripts: dict[str, Callable[[Received], Answer | None]] = {}
        self.socket_url: str | None = None  # apps.connections.open answers this
        # A Slack (or proxy) that echoes the request's Authorization header, the bot
        # token in it, in every error it answers.
        self.echo_token = False
        self._ts = itertools.count(1)
        self._urls = itertools.count(1)
        self._lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    # -------------------------------------------------------------- lifecycle

    def start(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def response_url(self) -> str:
        return f"{self.url}/response/{next(self._urls)}"

    # -------------------------------------------------------------- queries

    def calls(self, api: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if api is None or r.api == api]

    def wait_for(
        self, predicate: Callable[[Received], bool], *, count: int = 1, timeout: float = 10
    ) -> list[Received]:
        """Block until ``count`` received requests satisfy ``predicate``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                hits = [r for r in self.requests if predicate(r)]
                if len(hits) >= count:
                    return hits
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"fake Slack got {len(hits)} of {count} expected requests; "
                        f"received: {[r.path for r in self.requests]}"
                    )
                self._lock.wait(left)

    def responses(self, count: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
        """The bodies posted to response_urls (waiting for ``count`` of them)."""
        hits = self.wait_for(
            lambda r: r.path.startswith("/response/"), count=count, timeout=timeout
        )
        return [r.body for r in hits]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    # -------------------------------------------------------------- handling

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parsed = urlparse(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode("utf-8") if length else ""
        if raw.startswith("{"):
            body: Any = json.loads(raw)
        else:
            body = {k: v[0] for k, v in parse_qs(raw or parsed.query).items()}
        received = Received(
            handler.command, parsed.path, body, {k.lower(): v for k, v in handler.headers.items()}
        )
        if self.latency:
            time.sleep(self.latency)
        status, payload, headers = self._answer(received)
        if self.echo_token and (
            status >= 400 or isinstance(payload, dict) and not payload.get("ok")
        ):
            payload = self._echo(payload, received)
        with self._lock:
            self.requests.append(received)
            self._lock.notify_all()
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        handler.send_response(status)
        ctype = "text/plain" if isinstance(payload, str) else "application/json;charset=utf-8"
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _echo(payload: Any, r: Received) -> Any:
        echo = f" (authorization: {r.headers.get('authorization', '')})"
        if not isinstance(payload, dict):
            return f"{payload}{echo}"
        return {
            **payload,
            "error": f"{payload.get('error', '')}{echo}",
            "response_metadata": {"messages": [f"[ERROR] request{echo}"]},
        }

    def _reject(self, where: str, errors: list[str]) -> None:
        with self._lock:
            self.rejected.append((where, errors))

    def _answer(self, r: Received) -> tuple[int, Any, dict[str, str]]:
        if r.path.startswith("/response/"):
            return self._response_url(r)
        if not r.path.startswith("/api/"):
            return 404, {"ok": False, "error": "unknown_method"}, {}
        token = r.headers.get("authorization", "")
        if r.api == "apps.connections.open":  # Socket Mode: the app-level token
            if not token.startswith("Bearer xapp-") or not self.socket_url:
                return 200, {"ok": False, "error": "invalid_auth"}, {}
            return 200, {"ok": True, "url": self.socket_url}, {}
        if not token.startswith("Bearer xoxb-"):
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        api = r.api
        script = self.scripts.get(api)
        if script is not None:
            scripted = script(r)
            if scripted is not None:
                return scripted
        if api in self.fail_next:
            error = self.fail_next.pop(api)
            if error == "ratelimited":
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "0"}
            return 200, {"ok": False, "error": error}, {}
        body = r.body if isinstance(r.body, dict) else {}
        if api == "auth.test":
            return 200, AUTH_TEST, {"x-oauth-scopes": "chat:write,commands,users:read.email"}
        if api == "chat.postMessage":
            return self._post_message(body)
        if api == "chat.update":
            return self._update(body)
        if api == "users.lookupByEmail":
            user = self.users.get(str(body.get("email", "")).lower())
            if user is None:
                return 200, {"ok": False, "error": "users_not_found"}, {}
            return 200, {"ok": True, "user": {"id": user, "profile": {"email": body["email"]}}}, {}
        if api == "conversations.open":
            users = str(body.get("users", ""))
            if not users:
                return 200, {"ok": False, "error": "users_list_not_supplied"}, {}
            return 200, {"ok": True, "channel": {"id": "D" + users.lstrip("UW")}}, {}
        return 200, {"ok": False, "error": "unknown_method"}, {}

    def _check_message(self, api: str, body: dict[str, Any]) -> str | None:
        blocks = body.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if not body.get("text") and not blocks:
            return "no_text"
        if len(str(body.get("text") or "")) > 40000:
            return "msg_too_long"
        if blocks is not None:
            errors = block_errors(blocks)
            if errors:
                self._reject(api, errors)
                return "invalid_blocks"
        return None

    def _post_message(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        channel = str(body.get("channel") or "")
        if not channel:
            return 200, {"ok": False, "error": "channel_not_found"}, {}
        error = self._check_message("chat.postMessage", body)
        if error:
            return 200, {"ok": False, "error": error}, {}
        ts = f"1700000000.{next(self._ts):06d}"
        message = {"text": body.get("text"), "blocks": body.get("blocks"), "ts": ts}
        if body.get("thread_ts"):
            message["thread_ts"] = body["thread_ts"]
        with self._lock:
            self.messages[(channel, ts)] = message
        return 200, {"ok": True, "channel": channel, "ts": ts, "message": message}, {}

    def _update(self, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        key = (str(body.get("channel") or ""), str(body.get("ts") or ""))
        with self._lock:
            known = key in self.messages
        if not known:
            return 200, {"ok": False, "error": "message_not_found"}, {}
        error = self._check_message("chat.update", body)
        if error:
            return 200, {"ok": False, "error": error}, {}
        with self._lock:
            self.messages[key] = {
                **self.messages[key],
                "text": body.get("text"),
                "blocks": body.get("blocks"),
            }
        return 200, {"ok": True, "channel": key[0], "ts": key[1], "text": body.get("text")}, {}

    def _response_url(self, r: Received) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            used = sum(1 for x in self.requests if x.path == r.path)
        if used >= 5:
            return 404, "used_url", {}
        body = r.body if isinstance(r.body, dict) else {}
        errors = block_errors(body["blocks"]) if "blocks" in body else []
        if errors:
            self._reject("response_url", errors)
            return 400, "invalid_blocks", {}
        if not body.get("text") and not body.get("blocks"):
            return 400, "no_text", {}
        return 200, "ok", {}
