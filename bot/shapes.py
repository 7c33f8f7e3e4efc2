"""The one place that reads the Slack Web API's answers. Slack documents its shapes
(API-NOTES C4, C7), but an answer of another shape — ``{"ok": true}`` without the
``user``, a proxy's HTML, a field of the wrong type — must fail the one item it
belongs to with a readable reason, never crash a whole run with a ``TypeError``.

Lookups that may legitimately find nothing return None; answers the code cannot go on
without raise ``UnexpectedAnswer`` (a typed error naming the method and what was
missing). ``failure_reason`` turns any exception of a Web API call into one line.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError, SlackRequestError


class UnexpectedAnswer(Exception):
    """Slack answered ``method`` with a body of a shape we do not know."""

    def __init__(self, method: str, what: str) -> None:
        super().__init__(f"{method}: unexpected answer ({what})")
        self.method, self.what = method, what


def _data(answer: Any) -> Any:
    """The body of a SlackResponse (or a plain dict, as tests and the SDK hand out)."""
    return getattr(answer, "data", answer)


def _field(answer: Any, method: str, *path: str) -> str:
    node = _data(answer)
    for i, key in enumerate(path):
        if not isinstance(node, dict) or key not in node:
            raise UnexpectedAnswer(method, f"no {'.'.join(path[: i + 1])}")
        node = node[key]
    if not isinstance(node, str) or not node:
        raise UnexpectedAnswer(method, f"{'.'.join(path)} is not a non-empty string")
    return node


def user_id_of(answer: Any) -> str:
    """``users.lookupByEmail`` -> the user's id (``user.id``)."""
    return _field(answer, "users.lookupByEmail", "user", "id")


def channel_id_of(answer: Any) -> str:
    """``conversations.open`` -> the DM's channel id (``channel.id``)."""
    return _field(answer, "conversations.open", "channel", "id")


def posted_message_of(answer: Any) -> tuple[str, str]:
    """``chat.postMessage`` -> (channel, ts) of the message it created."""
    return (
        _field(answer, "chat.postMessage", "channel"),
        _field(answer, "chat.postMessage", "ts"),
    )


def slack_error(exc: SlackApiError) -> str:
    """Slack's error code (``channel_not_found``), preceded by the HTTP status when that
    is not 200 (a proxy's 500 page, a 429)."""
    response = exc.response
    data = getattr(response, "data", None)
    error = str(data.get("error") or "") if isinstance(data, dict) else ""
    status = getattr(response, "status_code", None)
    if status == 200 and error:
        return error[:200]
    return f"HTTP {status}: {error[:200]}" if error else f"HTTP {status}"


def is_not_found(exc: BaseException) -> bool:
    """A lookup's ordinary "no such user" (not a failure of the item)."""
    return isinstance(exc, SlackApiError) and slack_error(exc) == "users_not_found"


def failure_reason(method: str, exc: BaseException) -> str:
    """One line for any exception of a Web API call: Slack's error code, an odd answer,
    a timeout or connection error, or (a bug) the exception's type and message."""
    if isinstance(exc, SlackApiError):
        return f"{method} failed: {slack_error(exc)}"
    if isinstance(exc, UnexpectedAnswer):
        return str(exc)
    if isinstance(exc, (TimeoutError, SlackRequestError, OSError)):
        return f"{method} did not answer: {type(exc).__name__}: {exc}"[:300]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{method}: {type(exc).__name__}: {text}"[:300]
